//! `/metrics` for 1,000 and 10,000 services that have both succeeded and failed (80 lines each),
//! and for 10,000 healthy ones (64 lines each, as a fleet mostly is), every one of them checked
//! once more since the last scrape (as at one check a second and a scrape every few seconds):
//! rendering alone (in the pieces a response sends), and the whole `GET /metrics` through the
//! router (gauge refresh from every breaker, rendering, reading the body). One more figure
//! renders with nothing changed since the last scrape.
//!
//! Run: `cargo bench --bench exposition`. Targets: 5 ms for 1,000 services, 20 ms for 10,000.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use breakerd::api::{Shared, router};
use breakerd::breaker::Outcome;
use breakerd::config::{Config, ProcessEnvironment};
use breakerd::metrics::{Format, Metrics};
use breakerd::probe::{FailureReason, HttpClient};
use breakerd::registry::Registry;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;
use tower::ServiceExt;

/// The fleets measured: how many services, and whether one call in seven fails.
const FLEETS: [(usize, bool); 3] = [(1_000, true), (10_000, true), (10_000, false)];

fn shared(services: usize, with_failures: bool) -> Arc<Shared> {
    let mut text = String::new();
    for index in 0..services {
        text.push_str(&format!(
            "[services.provider-{index:04}]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/health\"\nevery = \"1s\"\n"
        ));
    }
    let config =
        Config::parse(&text, "bench.toml", &ProcessEnvironment).expect("valid bench config");
    let metrics = Arc::new(Metrics::new());
    let client = HttpClient::new().expect("HTTP client");
    let registry = Registry::build(&config, &client, &metrics).expect("registry");
    for (index, service) in registry.iter().enumerate() {
        for call in 0..20u64 {
            let outcome = if with_failures && (call + index as u64) % 7 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            service.metrics.call(
                breakerd::metrics::Source::Check.tag(),
                outcome,
                Some(Duration::from_millis(3 + call * 40)),
                call == 19,
            );
        }
        let failure = with_failures.then_some(FailureReason::HttpStatus);
        service.metrics.probe(failure, SystemTime::now());
    }
    Arc::new(Shared::new(registry, metrics, Arc::new(config)))
}

/// One more successful check of every service, as the scheduler records it.
fn check_every_service(shared: &Shared) {
    for service in shared.registry().iter() {
        service.metrics.call(
            breakerd::metrics::Source::Check.tag(),
            Outcome::Success,
            Some(Duration::from_millis(42)),
            false,
        );
        service.metrics.probe(None, SystemTime::now());
    }
}

fn exposition(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (services, with_failures) in FLEETS {
        let shared = runtime.block_on(async { shared(services, with_failures) });
        let fleet = if with_failures { "" } else { "healthy_" };
        let mut group = c.benchmark_group(format!("metrics_{services}_{fleet}services"));
        let check_all = || check_every_service(&shared);
        group.bench_function("render_prometheus_text", |b| {
            b.iter_batched(
                check_all,
                |()| shared.metrics.exposition(Format::Prometheus).len(),
                BatchSize::PerIteration,
            )
        });
        group.bench_function("render_openmetrics", |b| {
            b.iter_batched(
                check_all,
                |()| shared.metrics.exposition(Format::OpenMetrics).len(),
                BatchSize::PerIteration,
            )
        });
        group.bench_function("render_unchanged", |b| {
            b.iter(|| shared.metrics.exposition(Format::Prometheus).len())
        });
        let app = router(Arc::clone(&shared));
        group.bench_function("get_metrics_endpoint", |b| {
            b.iter_batched(
                check_all,
                |()| {
                    runtime.block_on(async {
                        let request = axum::http::Request::get("/metrics")
                            .body(axum::body::Body::empty())
                            .expect("request");
                        let response = app.clone().oneshot(request).await.expect("response");
                        // Read the pieces as a socket write would, without gluing them together.
                        let mut body = response.into_body().into_data_stream();
                        let mut length = 0;
                        while let Some(piece) = body.next().await {
                            length += piece.expect("piece").len();
                        }
                        length
                    })
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
        let size = shared.metrics.exposition(Format::Prometheus).len();
        println!("exposition size for {services} {fleet}services: {size} bytes");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = exposition
}
criterion_main!(benches);
