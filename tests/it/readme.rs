//! README.md against the running daemon: its metric table lists exactly the families `/metrics`
//! exports.

use std::collections::BTreeSet;

use crate::support::{http_get, start_daemon};

const README: &str = include_str!("../../README.md");

/// The metric names of README's "## Metrics" table: every backticked `breakerd_*` name in the
/// first column, counters without their `_total`.
fn documented_families() -> BTreeSet<String> {
    let section = README
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Metrics section");
    section
        .lines()
        .filter(|line| line.starts_with("| `breakerd_"))
        .flat_map(|line| {
            let first = line.split('|').nth(1).unwrap_or("");
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|name| name.trim_end_matches("_total").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metric_table_lists_exactly_what_metrics_exports() {
    let daemon = start_daemon(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/health\"\nupstream = \"http://127.0.0.1:9\"\nevery = \"1h\"\n\
         [[alerts.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\n",
    )
    .await;
    let (status, text) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(status, 200);
    let mut exported: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| name.trim_end_matches("_total").to_string())
        .collect();
    daemon.shutdown().await.expect("clean shutdown");
    // Absent until the channel's first delivery, on purpose: 0 would read as 1970.
    exported.insert("breakerd_alert_last_success_timestamp_seconds".to_string());
    let documented = documented_families();
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&exported).collect();
    assert!(
        undocumented.is_empty() && gone.is_empty(),
        "exported but not in README's Metrics table: {undocumented:?}\n\
         in the table but not exported: {gone:?}"
    );
}

/// README's provider tables are exactly what `breakerd rules --markdown` writes from the
/// catalogues and rules: regenerate them with that command when a rule changes.
#[test]
fn the_provider_tables_are_the_rules_themselves() {
    let begin = "<!-- breakerd rules --markdown: begin -->\n";
    let end = "<!-- breakerd rules --markdown: end -->";
    let start = README
        .find(begin)
        .expect("README marks the generated tables")
        + begin.len();
    let stop = README.find(end).expect("and where they end");
    let generated = breakerd::provider::markdown();
    assert!(
        README[start..stop] == generated,
        "README's provider tables are stale: run `cargo run -- rules --markdown` and paste its output between the markers"
    );
}

/// The `explain` example in README is what `breakerd explain` prints for Daraja's published
/// "being processed" answer.
#[test]
fn the_explain_example_is_what_explain_prints() {
    let fixture = crate::support::fixtures::load("mpesa/stk_query_pending");
    let config = breakerd::config::Config::parse(
        include_str!("../../alerts.toml"),
        "alerts.toml",
        &crate::support::TestEnv::default(),
    )
    .expect("the bundled config");
    let judge = breakerd::registry::judge_of(config.service("mpesa").expect("mpesa"));
    let printed = breakerd::provider::explain(
        &judge,
        "POST",
        "/mpesa/stkpushquery/v1/query",
        500,
        &Vec::new(),
        Some(&fixture.body),
    );
    let shown = README
        .split("--body answer.json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README shows explain's output");
    assert_eq!(shown, printed);
}
