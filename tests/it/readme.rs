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
