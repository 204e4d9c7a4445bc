//! `/metrics` for 1,000 services: rendering alone, and the whole `GET /metrics` through the
//! router (gauge refresh from every breaker, rendering, the Prometheus text rewrite).
//!
//! Run: `cargo bench --bench exposition`. Target: at most 5 ms for 1,000 services.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use breakerd::api::{Shared, router};
use breakerd::breaker::Outcome;
use breakerd::config::{Config, ProcessEnvironment};
use breakerd::metrics::Metrics;
use breakerd::probe::{FailureReason, HttpClient};
use breakerd::registry::Registry;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

const SERVICES: usize = 1_000;

fn shared() -> Arc<Shared> {
    let mut text = String::new();
    for index in 0..SERVICES {
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
            let outcome = if (call + index as u64) % 7 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            service.metrics.call(
                breakerd::metrics::Source::Check,
                outcome,
                Some(Duration::from_millis(3 + call * 40)),
                call == 19,
            );
        }
        service
            .metrics
            .probe(Some(FailureReason::HttpStatus), SystemTime::now());
    }
    Arc::new(Shared::new(registry, metrics, None))
}

fn exposition(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let shared = runtime.block_on(async { shared() });
    let mut group = c.benchmark_group("metrics_1000_services");
    group.bench_function("render_prometheus_text", |b| {
        b.iter(|| shared.metrics.render_prometheus_text())
    });
    group.bench_function("render_openmetrics", |b| {
        b.iter(|| shared.metrics.render_openmetrics())
    });
    let app = router(Arc::clone(&shared));
    group.bench_function("get_metrics_endpoint", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .expect("request");
                let response = app.clone().oneshot(request).await.expect("response");
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .expect("body")
                    .len()
            })
        })
    });
    group.finish();
    let size = shared.metrics.render_prometheus_text().len();
    println!("exposition size for {SERVICES} services: {size} bytes");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = exposition
}
criterion_main!(benches);
