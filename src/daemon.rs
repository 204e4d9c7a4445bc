//! Wiring: builds the services, the alert machinery and the HTTP server from a config, reloads
//! the config file (on change, on SIGHUP, on `POST /-/reload`) and shuts down gracefully.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::{self, ReloadRequest, Shared};
use crate::budget::{Budget, Demand};
use crate::config::{Config, Shard};
use crate::history::History;
use crate::metrics::Metrics;
use crate::probe::HttpClient;
use crate::supervisor::Supervisor;
use crate::transport::ProxyPool;

/// How often the config file is looked at for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// A changed file must stay the same this long before it is read (editors that truncate, then
/// write, are caught between the two).
const SETTLE: Duration = Duration::from_millis(200);

/// A running daemon: its address, and a handle to stop it.
#[derive(Debug)]
pub struct RunningDaemon {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    /// The sidecar proxy's address and server, when `server.proxy_listen` is set.
    proxy: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    supervisor: Arc<Mutex<Option<Supervisor>>>,
    reloader: Option<JoinHandle<()>>,
    grace: Duration,
}

/// What `breakerd check` runs once the file is valid: the build a start or a reload does
/// (every service's breaker, probe and TLS roots, every alert channel), short of opening
/// sockets, reading the state directory or sending anything. Every problem, one line each.
///
/// # Errors
/// What would stop `run` or a reload.
pub fn preflight(config: &Config) -> Result<(), Vec<String>> {
    let client = HttpClient::new().map_err(|error| vec![format!("the HTTP client: {error}")])?;
    crate::supervisor::build(config, &client, None)
        .map(drop)
        .map_err(|refused| refused.problems)
}

/// Starts everything `config` describes and serves HTTP on `listen` (or the config's address).
/// There is no file to reload.
pub async fn start(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<RunningDaemon> {
    launch(config, listen, None, None).await
}

/// Loads `path`, starts the daemon, and reloads `path` whenever it changes, on `POST /-/reload`
/// and on [`RunningDaemon::reload`].
/// `shard` (`--shard`) overrides any `server.shard` in the file, at start and on every reload.
pub async fn start_from_file(
    path: &Path,
    listen: Option<SocketAddr>,
    shard: Option<Shard>,
) -> anyhow::Result<RunningDaemon> {
    // Parse the very bytes the watcher starts from, so an edit made right after start is seen.
    let (config, bytes) = Config::load_off_runtime(path)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    launch(config, listen, shard, Some((path.to_path_buf(), bytes))).await
}

async fn launch(
    config: Config,
    listen: Option<SocketAddr>,
    shard: Option<Shard>,
    watched: Option<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<RunningDaemon> {
    let metrics = Arc::new(Metrics::new());
    // Reading the platform's roots is file I/O: off the runtime, once.
    let client = tokio::task::spawn_blocking(HttpClient::new)
        .await
        .context("building the HTTP client")?
        .context("building the HTTP client")?;
    let history = Arc::new(History::default());
    let address = listen.unwrap_or(config.server.listen);
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} (set server.listen or --listen to a free address)")
    })?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    if config.server.admin_token.is_none() {
        info!("admin routes are off: no server.admin_token is set");
    }
    for note in crate::config::defaulted_environments(&config) {
        tracing::warn!("{note}");
    }
    let proxy_listener = match config.server.proxy_listen {
        Some(address) => Some(bind_proxy(address).await?),
        None => None,
    };
    let grace = config.server.shutdown_grace;
    let count = config.services.len();
    let check_threads = config.server.check_threads;
    let descriptors = crate::serve::raise_descriptor_limit();
    let wanted = usize::try_from(config.server.max_connections).unwrap_or(usize::MAX);
    let budget = Budget::split(descriptors, demand(&config, proxy_listener.is_some()));
    info!(
        open_file_limit = descriptors,
        reserved = budget.reserved,
        api_connections = budget.api_connections,
        proxy_connections = budget.proxy.map(|proxy| proxy.connections),
        proxy_upstream_in_flight = budget.proxy.map(|proxy| proxy.upstream_in_flight),
        proxy_idle_per_host = budget.proxy.map(|proxy| proxy.idle_per_host),
        "descriptor budget: {budget}"
    );
    let limits = crate::serve::Limits {
        max_connections: budget.api_connections,
        header_read_timeout: config.server.header_read_timeout,
        idle_timeout: config.server.idle_timeout,
    };
    if limits.max_connections < wanted {
        warn!(
            wanted,
            serving = limits.max_connections,
            open_file_limit = descriptors,
            "server.max_connections lowered to leave descriptors for checks and alerts; raise the open-file limit (LimitNOFILE=) to serve more"
        );
    }
    let client = match budget.proxy {
        Some(proxy) => client
            .with_proxy_pool(ProxyPool {
                idle_timeout: config.server.proxy_pool_idle,
                idle_per_host: proxy.idle_per_host,
            })
            .context("building the proxy's client")?,
        None => client,
    };
    let supervisor = Supervisor::start(
        config,
        shard,
        client,
        Arc::clone(&metrics),
        Arc::clone(&history),
    )
    .await?;
    metrics.config_loaded(true);
    let (requests, receiver) = mpsc::channel::<ReloadRequest>(4);
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared::live(
        supervisor.published(),
        supervisor.alert_feeds(),
        metrics,
        history,
        watched.as_ref().map(|_| requests),
        stopping.clone(),
    ));
    let supervisor = Arc::new(Mutex::new(Some(supervisor)));
    let reloader = watched.map(|(path, seen)| {
        tokio::spawn(reload_loop(
            path,
            seen,
            receiver,
            Arc::clone(&supervisor),
            Arc::clone(&shared),
            stopping.clone(),
        ))
    });
    let router = api::router(Arc::clone(&shared));
    let proxy = match (proxy_listener, budget.proxy) {
        (Some((listener, proxy_address)), Some(share)) => {
            let proxy = Arc::new(crate::proxy::Proxy::new(
                shared.published(),
                Arc::clone(&shared.metrics),
                share.upstream_in_flight,
            ));
            let proxy_limits = crate::serve::Limits {
                max_connections: share.connections,
                ..limits
            };
            let server = crate::proxy_threads::serve(
                listener,
                proxy.service(),
                proxy_limits,
                Arc::clone(&shared.metrics),
                stopping.clone(),
            )
            .context("starting the proxy's threads")?;
            info!(address = %proxy_address, "breakerd is proxying /<service>/... to the services' upstreams");
            Some((proxy_address, server))
        }
        _ => None,
    };
    let server = tokio::spawn(crate::serve::serve_telling_peers(
        listener,
        router,
        limits,
        Arc::clone(&shared.metrics),
        stopping,
    ));
    info!(
        %address,
        services = count,
        check_threads,
        "breakerd is serving /metrics and /api/v1"
    );
    Ok(RunningDaemon {
        address,
        shared,
        stop,
        server,
        proxy,
        supervisor,
        reloader,
        grace,
    })
}

/// What the descriptor budget is split for: `config`'s services, channels and connectivity
/// targets, and with the proxy on (`proxy`) the services it can forward to.
fn demand(config: &Config, proxy: bool) -> Demand {
    Demand {
        wanted: usize::try_from(config.server.max_connections).unwrap_or(usize::MAX),
        services: config.services.len(),
        channels: config.alerts.channels.len(),
        targets: config.server.connectivity.len(),
        proxy_hosts: proxy.then(|| {
            config
                .services
                .iter()
                .filter(|service| service.upstream.is_some())
                .count()
        }),
    }
}

/// Binds the sidecar proxy's listener; a non-loopback address is allowed, with a warning.
async fn bind_proxy(address: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address} for the proxy (set server.proxy_listen to a free address)"
        )
    })?;
    let bound = listener
        .local_addr()
        .context("reading the proxy's listening address")?;
    if !bound.ip().is_loopback() {
        warn!(
            address = %bound,
            "server.proxy_listen is not a loopback address: anyone who can reach it can make calls with the credentials applications send through it; keep it on 127.0.0.1 or firewall it"
        );
    }
    Ok((listener, bound))
}

/// Reloads on request and whenever the file's contents change (and settle).
async fn reload_loop(
    path: PathBuf,
    seen: Vec<u8>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    supervisor: Arc<Mutex<Option<Supervisor>>>,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut seen = Some(seen);
    let mut ticks = tokio::time::interval(WATCH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(reply) = request else { return };
                let outcome = guarded_reload(&path, &supervisor, &shared).await;
                seen = read_watched(&path).await;
                let _ = reply.send(outcome);
            }
            _ = ticks.tick() => {
                let now = read_watched(&path).await;
                if now.is_none() || now == seen {
                    continue;
                }
                // Let an editor finish writing: wait until two reads agree.
                let mut settled = now;
                loop {
                    tokio::time::sleep(SETTLE).await;
                    let again = read_watched(&path).await;
                    if again == settled {
                        break;
                    }
                    settled = again;
                }
                seen = settled;
                info!(path = %path.display(), "the config file changed; reloading");
                let _ = guarded_reload(&path, &supervisor, &shared).await;
            }
            _ = stopped(&mut stopping) => return,
        }
    }
}

/// [`reload`], with a panic logged, counted and answered as a failed reload: the watcher
/// goes on watching.
async fn guarded_reload(
    path: &Path,
    supervisor: &Mutex<Option<Supervisor>>,
    shared: &Shared,
) -> Result<Vec<String>, Vec<String>> {
    let context = path.display().to_string();
    crate::tasks::guard(
        &shared.metrics,
        crate::tasks::TaskKind::ConfigWatcher,
        &context,
        reload(path, supervisor, shared),
    )
    .await
    .unwrap_or_else(|| {
        shared.metrics.config_loaded(false);
        Err(vec![
            "the reload failed on a bug (see the log); the previous config keeps running"
                .to_string(),
        ])
    })
}

/// The config file's bytes as the watcher compares them; `None` when it cannot be read (the
/// reload that follows says why).
async fn read_watched(path: &Path) -> Option<Vec<u8>> {
    let owned = path.to_path_buf();
    crate::config::read_off_runtime(move || {
        crate::config::read_regular(&owned, crate::config::MAX_CONFIG_BYTES)
    })
    .await
    .ok()
    .and_then(Result::ok)
}

async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Validates `path` and applies it. A bad file changes nothing: its problems are logged as
/// `breakerd check` prints them and `breakerd_config_last_reload_successful` drops to 0.
async fn reload(
    path: &Path,
    supervisor: &Mutex<Option<Supervisor>>,
    shared: &Shared,
) -> Result<Vec<String>, Vec<String>> {
    let next = match Config::load_off_runtime(path).await {
        Ok((next, _)) => next,
        Err(problems) => {
            let lines = problems.lines();
            for line in &lines {
                error!("{line}");
            }
            error!("config reload failed; the previous config keeps running");
            shared.metrics.config_loaded(false);
            return Err(lines);
        }
    };
    let mut guard = supervisor.lock().await;
    let Some(running) = guard.as_mut() else {
        return Err(vec!["the daemon is shutting down".to_string()]);
    };
    let old = running.config().server.clone();
    if next.server.listen != old.listen {
        warn!(old = %old.listen, new = %next.server.listen, "server.listen changed: restart breakerd to apply it");
    }
    if next.server.proxy_listen != old.proxy_listen {
        warn!("server.proxy_listen changed: restart breakerd to apply it");
    }
    if next.server.proxy_pool_idle != old.proxy_pool_idle {
        warn!("server.proxy_pool_idle changed: restart breakerd to apply it");
    }
    if next.server.shutdown_grace != old.shutdown_grace {
        warn!("server.shutdown_grace changed: restart breakerd to apply it");
    }
    if next.server.check_threads != old.check_threads {
        warn!(
            old = old.check_threads,
            new = next.server.check_threads,
            "server.check_threads changed: restart breakerd to apply it"
        );
    }
    match running.apply(next).await {
        Ok(changes) => {
            shared.metrics.config_loaded(true);
            if changes.is_empty() {
                info!("config reloaded: nothing changed");
            }
            for change in &changes {
                info!("config reloaded: {change}");
            }
            Ok(changes)
        }
        Err(refused) => {
            for problem in &refused.problems {
                error!("{problem}");
            }
            error!("config reload could not be applied; the previous config keeps running");
            shared.metrics.config_loaded(false);
            Err(refused.problems)
        }
    }
}

impl RunningDaemon {
    /// The address it serves on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The sidecar proxy's address, when it runs.
    pub fn proxy_address(&self) -> Option<SocketAddr> {
        self.proxy.as_ref().map(|(address, _)| *address)
    }

    /// The shared state (registry, metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reloads the config file now (as SIGHUP does): the applied changes, or every problem.
    pub async fn reload(&self) -> Result<Vec<String>, Vec<String>> {
        let Some(requests) = &self.shared.reload else {
            return Err(vec![
                "this daemon was not started from a config file".to_string(),
            ]);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if requests.send(reply).await.is_err() {
            return Err(vec!["the reloader has stopped".to_string()]);
        }
        answer
            .await
            .unwrap_or_else(|_| Err(vec!["the reloader dropped the request".to_string()]))
    }

    /// Stops taking requests and scheduling checks; running checks and queued alerts get the
    /// shutdown grace to finish, then are cancelled (pending alerts stay in the outbox).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.grace;
        if let Some(reloader) = self.reloader {
            let _ = reloader.await;
        }
        if let Some(supervisor) = self.supervisor.lock().await.take() {
            supervisor.shutdown(deadline).await;
        }
        let proxied = match self.proxy {
            Some((_, proxy)) => finish_server(proxy, deadline, self.grace, "proxy").await,
            None => Ok(()),
        };
        let served = finish_server(self.server, deadline, self.grace, "HTTP server").await;
        info!("breakerd stopped");
        served.and(proxied)
    }
}

/// Waits for a server to close its connections, until `deadline`.
async fn finish_server(
    mut server: JoinHandle<std::io::Result<()>>,
    deadline: tokio::time::Instant,
    grace: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let result = tokio::select! {
        joined = &mut server => Some(joined),
        _ = tokio::time::sleep_until(deadline) => None,
    };
    match result {
        Some(joined) => joined
            .with_context(|| format!("the {what} task failed"))?
            .with_context(|| format!("the {what} failed")),
        None => {
            server.abort();
            warn!(
                "open {what} connections did not close within {} ms",
                grace.as_millis()
            );
            Ok(())
        }
    }
}

/// The signals the daemon answers, registered before it starts so none is missed.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

enum SignalKind {
    Stop,
    Reload,
}

impl Signals {
    fn register() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind as Kind, signal};
            Ok(Self {
                terminate: signal(Kind::terminate()).context("listening for SIGTERM")?,
                interrupt: signal(Kind::interrupt()).context("listening for Ctrl-C")?,
                hangup: signal(Kind::hangup()).context("listening for SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) -> SignalKind {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => SignalKind::Stop,
                _ = self.interrupt.recv() => SignalKind::Stop,
                _ = self.hangup.recv() => SignalKind::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            SignalKind::Stop
        }
    }
}

/// Runs on the config file at `path`, already loaded (`loaded`: the config and the bytes it was
/// read from), until SIGTERM or Ctrl-C, reloading it on SIGHUP and when it changes, then shuts
/// down gracefully.
pub async fn run(
    path: &Path,
    loaded: (Config, Vec<u8>),
    listen: Option<SocketAddr>,
    shard: Option<Shard>,
) -> anyhow::Result<()> {
    let mut signals = Signals::register()?;
    let (config, bytes) = loaded;
    let daemon = launch(config, listen, shard, Some((path.to_path_buf(), bytes))).await?;
    loop {
        match signals.next().await {
            SignalKind::Stop => break,
            SignalKind::Reload => {
                info!("SIGHUP: reloading the config file");
                let _ = daemon.reload().await;
            }
        }
    }
    info!("shutting down");
    daemon.shutdown().await
}
