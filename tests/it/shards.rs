//! Sharding across replicas, as an operator runs it: three `breakerd run --shard N/3` on one
//! config check every service exactly once between them and each says which shard it is; two
//! replicas of the same shard behind a real Alertmanager give one alert per outage.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::support::alertmanager::Alertmanager;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::Receiver;
use crate::support::{
    closed_port, eventually, get_json, http_get, scratch_dir, wait_until_listening,
};

const BIN: &str = env!("CARGO_BIN_EXE_breakerd");

/// A `breakerd run --shard` process in its own directory (its own default `state_dir`), killed
/// when dropped.
struct Replica {
    address: SocketAddr,
    child: Child,
}

impl Replica {
    fn start(config: &std::path::Path, shard: &str) -> Self {
        let port = closed_port();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--shard", shard])
            .current_dir(scratch_dir("replica"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start breakerd run --shard");
        wait_until_listening(port, "breakerd");
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    /// The services it lists, and the shard its answer names.
    async fn services(&self) -> (BTreeSet<String>, Option<String>) {
        breakerd::probe::install_crypto_provider();
        let response = reqwest::get(format!("http://{}/api/v1/circuit-breakers", self.address))
            .await
            .expect("the replica answers");
        let shard = response
            .headers()
            .get("x-breakerd-shard")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let names = body.as_object().unwrap().keys().cloned().collect();
        (names, shard)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn services(fake: &FakeProvider, names: &[String], extra: &str) -> String {
    names
        .iter()
        .map(|name| {
            format!(
                "[services.{name}]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"100ms\"\nfailure_threshold = 1\nreset_timeout = \"300ms\"\n{extra}",
                fake.url()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_check_every_service_exactly_once() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let names: Vec<String> = (0..12).map(|n| format!("provider-{n}")).collect();
    let config = scratch_dir("shards").join("alerts.toml");
    std::fs::write(&config, services(&fake, &names, "")).unwrap();
    let replicas: Vec<Replica> = (0..3)
        .map(|index| Replica::start(&config, &format!("{index}/3")))
        .collect();
    let mut seen = BTreeSet::new();
    for (index, replica) in replicas.iter().enumerate() {
        let (listed, shard) = replica.services().await;
        assert_eq!(shard.as_deref(), Some(format!("{index}/3").as_str()));
        assert!(!listed.is_empty(), "shard {index} runs nothing: {listed:?}");
        for name in &listed {
            assert_eq!(
                breakerd::config::shard_of(name, 3),
                index as u32,
                "{name} on shard {index}"
            );
            assert!(seen.insert(name.clone()), "{name} runs on two replicas");
        }
        // Its checks run, and it exports its own services only.
        let address = replica.address;
        for name in listed.clone() {
            eventually(10, "the replica checks its service", || {
                let name = name.clone();
                async move {
                    get_json(address, &format!("/api/v1/circuit-breakers/{name}")).await
                        ["successCount"]
                        .as_u64()
                        >= Some(1)
                }
            })
            .await;
        }
        let (_, metrics) = http_get(address, "/metrics").await;
        let exported: BTreeSet<String> = names
            .iter()
            .filter(|name| metrics.contains(&format!("breakerd_breaker_state{{service=\"{name}\"")))
            .cloned()
            .collect();
        assert_eq!(exported, listed, "shard {index} exports only its services");
        assert!(
            metrics.contains(&format!(
                "breakerd_shard_info{{shard=\"{index}\",shards=\"3\"}} 1"
            )),
            "{metrics}"
        );
        let status = get_json(address, "/api/v1/status").await;
        assert_eq!(status["shard"], format!("{index}/3"));
    }
    assert_eq!(seen, names.iter().cloned().collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_one_shard_give_one_alertmanager_alert() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let am_hook = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start(&am_hook.url(), "1s");
    // One service of each of two shards; both replicas run shard 0.
    let pick = |shard: u32| {
        (0..)
            .map(|n| format!("provider-{n}"))
            .find(|name| breakerd::config::shard_of(name, 2) == shard)
            .unwrap()
    };
    let (ours, theirs) = (pick(0), pick(1));
    let config = scratch_dir("shard-ha").join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "{}[alerts]\nmin_interval = \"0s\"\n[[alerts.alertmanager]]\nurl = \"{}\"\nresend_every = \"1s\"\n",
            services(&fake, &[ours.clone(), theirs.clone()], ""),
            alertmanager.url()
        ),
    )
    .unwrap();
    let first = Replica::start(&config, "0/2");
    let second = Replica::start(&config, "0/2");
    for replica in [&first, &second] {
        let (listed, _) = replica.services().await;
        assert_eq!(listed, BTreeSet::from([ours.clone()]));
    }
    eventually(30, "Alertmanager notifies the outage", || async {
        !am_hook.alertmanager_said("firing").is_empty()
    })
    .await;
    // Both replicas keep posting; Alertmanager holds one alert and notified once.
    let posted = |address: SocketAddr| async move {
        let (_, text) = http_get(address, "/metrics").await;
        crate::support::sample(
            &text,
            "breakerd_alert_attempts_total{channel=\"alertmanager\",outcome=\"ok\"}",
        )
        .unwrap_or(0.0)
    };
    eventually(15, "both replicas have posted several times", || async {
        posted(first.address).await >= 2.0 && posted(second.address).await >= 2.0
    })
    .await;
    let alerts = alertmanager.alerts().await;
    let services: Vec<&str> = alerts
        .iter()
        .filter_map(|alert| alert["labels"]["service"].as_str())
        .collect();
    assert_eq!(services, [ours.as_str()], "{alerts:#?}");
    let firing = am_hook.alertmanager_said("firing");
    assert_eq!(firing.len(), 1, "{firing:#?}");
    assert_eq!(firing[0]["alerts"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_bad_shard_is_refused_with_what_is_allowed() {
    let error = breakerd::config::Config::parse(
        "[server]\nshard = \"3/3\"\n[services.a]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        "alerts.toml",
        &breakerd::config::ProcessEnvironment,
    )
    .unwrap_err();
    assert_eq!(
        error.lines(),
        [
            "alerts.toml:2:9: server.shard \"3/3\" counts shards from 0: N must be below M; write N/M with 0 <= N < M <= 1024, e.g. \"0/3\", \"1/3\", \"2/3\""
        ]
    );
    let output = Command::new(BIN)
        .args(["run", "--shard", "1-3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("shard \"1-3\" has no /; write N/M"),
        "{stderr}"
    );
}
