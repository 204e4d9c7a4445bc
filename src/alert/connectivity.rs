//! The connectivity guard's probe: it opens a TCP connection to each `tcp://` target of
//! `server.connectivity`, every [`GUARD_EVERY`] and at once when the alert stage asks (an outage
//! is about to page), and reports whether any answered. The stage owns what follows from it
//! (offline or online, holding pages); this task only looks.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{MissedTickBehavior, interval, timeout};

use crate::config::ConnectivityTarget;

/// How often the guard looks when nobody asks.
pub const GUARD_EVERY: Duration = Duration::from_secs(10);
/// How long one connection attempt may take.
pub const GUARD_TIMEOUT: Duration = Duration::from_secs(3);

/// What one look found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reachability {
    /// Whether any target answered.
    pub(crate) reachable: bool,
    /// Each target that failed and why (`tcp://1.1.1.1:443: connection refused`).
    pub(crate) failures: Vec<String>,
}

/// Looks at `targets` (their `tcp://` entries) until `stop`, sending what it finds.
pub(crate) async fn run(
    targets: Vec<ConnectivityTarget>,
    mut asked: mpsc::Receiver<()>,
    found: mpsc::Sender<Reachability>,
    mut stop: watch::Receiver<bool>,
) {
    let tcp: Vec<(String, u16)> = targets
        .into_iter()
        .filter_map(|target| match target {
            ConnectivityTarget::Tcp { host, port } => Some((host, port)),
            ConnectivityTarget::Service(_) => None,
        })
        .collect();
    if tcp.is_empty() {
        return;
    }
    let mut ticks = interval(GUARD_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            request = asked.recv() => if request.is_none() { return },
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let result = look(&tcp).await;
        if found.send(result).await.is_err() {
            return;
        }
    }
}

/// Tries every target at once; reachable as soon as one connects.
async fn look(targets: &[(String, u16)]) -> Reachability {
    let mut attempts = JoinSet::new();
    for (host, port) in targets {
        let (host, port) = (host.clone(), *port);
        attempts.spawn(async move {
            let name = ConnectivityTarget::Tcp {
                host: host.clone(),
                port,
            }
            .to_string();
            match timeout(GUARD_TIMEOUT, TcpStream::connect((host.as_str(), port))).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(format!("{name}: {error}")),
                Err(_) => Err(format!(
                    "{name}: no answer within {}s",
                    GUARD_TIMEOUT.as_secs()
                )),
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok(Ok(())) => {
                attempts.abort_all();
                return Reachability {
                    reachable: true,
                    failures: Vec::new(),
                };
            }
            Ok(Err(failure)) => failures.push(failure),
            Err(failure) => failures.push(format!("a connectivity check failed: {failure}")),
        }
    }
    failures.sort();
    Reachability {
        reachable: false,
        failures,
    }
}
