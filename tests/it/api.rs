//! The JSON API through the router: the seed's routes and fields, the admin guard, and a
//! clear JSON error for every kind of bad input.

use serde_json::json;

use crate::support::{app_state, send};

const TOKEN: &str = "admin-token-value";

fn state() -> breakerd::api::AppState {
    app_state(
        "[server]\nadmin_token = \"${ADMIN_TOKEN}\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"http://127.0.0.1:9\"\nconsumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"\n\
         [services.sms]\npreset = \"africastalking\"\nusername = \"${AT_USERNAME}\"\napi_key = \"${AT_API_KEY}\"\n",
    )
}

#[tokio::test]
async fn all_breakers_carry_the_seed_fields() {
    let (status, body) = send(&state(), "GET", "/api/v1/circuit-breakers", None, None).await;
    assert_eq!(status, 200);
    let mpesa = &body["mpesa"];
    assert_eq!(mpesa["state"], "CLOSED");
    assert_eq!(mpesa["failureCount"], 0);
    assert_eq!(mpesa["successCount"], 0);
    assert_eq!(mpesa["uptime"], 100.0);
    assert_eq!(mpesa["failureThreshold"], 3);
    assert_eq!(mpesa["kind"], "mpesa");
    assert_eq!(mpesa["schedule"], "every 30s");
    assert_eq!(body["sms"]["kind"], "africastalking");
}

#[tokio::test]
async fn an_unknown_service_is_a_404_naming_the_known_ones() {
    let (status, body) = send(
        &state(),
        "GET",
        "/api/v1/circuit-breakers/mpsea",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"],
        "unknown service \"mpsea\"; known services: mpesa, sms"
    );
    assert_eq!(body["knownServices"], json!(["mpesa", "sms"]));
    let (status, _) = send(
        &state(),
        "POST",
        "/api/v1/circuit-breakers/mpsea/reset",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn health_summarises_the_states() {
    let state = state();
    // Credentials set, no check run yet, every breaker closed: nothing says otherwise.
    let (status, body) = send(&state, "GET", "/api/v1/circuit-breakers/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["degradedServices"], json!([]));
    // A failed last check, breaker still closed: degraded, and why.
    state
        .registry()
        .get("sms")
        .unwrap()
        .remember(breakerd::registry::CheckRecord {
            at: std::time::SystemTime::now(),
            outcome: breakerd::breaker::Outcome::Failure,
            duration_ms: 12.0,
            reason: Some(breakerd::outcome::FailureReason::Auth),
            detail: Some("HTTP 401 from the token endpoint".into()),
            note: None,
            http_status: Some(401),
            tls: None,
            phases: None,
        });
    let (_, body) = send(&state, "GET", "/api/v1/circuit-breakers/health", None, None).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(
        body["degradedServices"],
        json!([{"service": "sms", "why": "last check failed (auth): HTTP 401 from the token endpoint"}])
    );
    // One breaker open is an outage: unhealthy, however the others are.
    state.registry().get("mpesa").unwrap().breaker.force_open();
    let (status, body) = send(&state, "GET", "/api/v1/circuit-breakers/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["services"], 2);
    assert_eq!(body["states"]["closed"], 1);
    assert_eq!(body["states"]["forcedOpen"], 1);
    assert_eq!(body["openServices"], json!(["mpesa"]));
    state.registry().get("sms").unwrap().breaker.force_open();
    let (_, body) = send(&state, "GET", "/api/v1/circuit-breakers/health", None, None).await;
    assert_eq!(body["status"], "unhealthy");
}

#[tokio::test]
async fn performance_metrics_per_service() {
    let (status, body) = send(
        &state(),
        "GET",
        "/api/v1/circuit-breakers/metrics",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    for key in ["totalCalls", "timeouts", "rejections", "slowCalls"] {
        assert_eq!(body["mpesa"][key], 0, "{key}");
    }
    assert_eq!(body["mpesa"]["failureRate"], 0.0);
    assert_eq!(
        body["mpesa"]["latencyMs"],
        json!({"p50": 0.0, "p95": 0.0, "p99": 0.0})
    );
}

#[tokio::test]
async fn admin_routes_need_the_token_and_are_off_without_one() {
    let state = state();
    let reset = "/api/v1/circuit-breakers/mpesa/reset";
    let (status, body) = send(&state, "POST", reset, None, None).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (
            401,
            "admin route: send the admin token as `Authorization: Bearer <token>`"
        )
    );
    let (status, _) = send(&state, "POST", reset, Some("admin-token-valuX"), None).await;
    assert_eq!(status, 401);
    state.registry().get("mpesa").unwrap().breaker.force_open();
    let (status, body) = send(&state, "POST", reset, Some(TOKEN), None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("CLOSED")));
    let (status, body) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/reset-all",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["sms"]["state"], "CLOSED");

    let no_token = app_state("[services.mpesa]\npreset = \"mpesa\"\n");
    let (status, body) = send(&no_token, "POST", reset, Some(TOKEN), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"],
        "admin routes are off: set server.admin_token in the config to turn them on"
    );
}

#[tokio::test]
async fn simulate_failure_opens_a_test_breaker_with_the_seed_errors() {
    let state = state();
    let body = r#"{"serviceName": "test-service", "shouldFail": true, "iterations": 5}"#;
    let (status, report) = send(
        &state,
        "POST",
        "/api/v1/test-circuit-breaker/simulate-failure",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[2]["state"], "OPEN", "opens on the third failure");
    assert_eq!(
        results[3]["error"]["message"],
        "Circuit breaker test-service is OPEN"
    );
    assert_eq!(results[3]["error"]["circuitBreakerOpen"], true);
    assert_eq!(report["finalState"], "OPEN");
    assert_eq!(report["stats"]["rejections"], 2);
    // The real services are untouched.
    assert_eq!(
        state
            .registry()
            .get("mpesa")
            .unwrap()
            .breaker
            .stats()
            .total_calls,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn simulate_timeout_returns_the_seed_timeout_error() {
    let state = state();
    let body = r#"{"serviceName": "timeout-test", "delay": 6000}"#;
    let (status, report) = send(
        &state,
        "POST",
        "/api/v1/test-circuit-breaker/simulate-timeout",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["timedOut"], true);
    assert_eq!(
        report["error"]["message"],
        "Circuit breaker timeout-test timeout after 5000ms"
    );
    assert_eq!(report["error"]["timeout"], true);
    let quick = r#"{"serviceName": "timeout-test", "delay": 10}"#;
    let (_, report) = send(
        &state,
        "POST",
        "/api/v1/test-circuit-breaker/simulate-timeout",
        Some(TOKEN),
        Some(quick),
    )
    .await;
    assert_eq!(report["timedOut"], false);
}

#[tokio::test]
async fn bad_input_gets_a_json_error_with_the_right_status() {
    let state = state();
    let failure = "/api/v1/test-circuit-breaker/simulate-failure";
    let timeout = "/api/v1/test-circuit-breaker/simulate-timeout";
    let cases: [(&str, String, u16, &str); 6] = [
        (failure, "{not json".to_string(), 400, "malformed JSON body"),
        (
            failure,
            r#"{"serviceName": "x", "iterations": 1000}"#.to_string(),
            400,
            "iterations is 1000, allowed is 1 to 100",
        ),
        (
            failure,
            r#"{"serviceName": "x", "iterations": 0}"#.to_string(),
            400,
            "iterations is 0, allowed is 1 to 100",
        ),
        (
            failure,
            r#"{"serviceName": "../etc", "iterations": 1}"#.to_string(),
            400,
            "serviceName must be 1 to 64",
        ),
        (
            timeout,
            r#"{"serviceName": "x", "delay": 60000}"#.to_string(),
            400,
            "delay is 60000 ms, allowed is 0 to 30000 ms",
        ),
        (
            failure,
            format!(r#"{{"serviceName": "{}"}}"#, "x".repeat(20_000)),
            413,
            "request body is larger than 16384 bytes",
        ),
    ];
    for (path, body, expected_status, expected_error) in cases {
        let (status, answer) = send(&state, "POST", path, Some(TOKEN), Some(&body)).await;
        assert_eq!(status, expected_status, "{path} {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(expected_error), "{path}: {error}");
    }
    let (status, answer) = send(&state, "GET", "/api/v2/nothing", None, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("no route GET /api/v2/nothing"))
    );
}

#[tokio::test]
async fn secrets_appear_in_no_answer() {
    let state = state();
    let mut bodies = Vec::new();
    for path in [
        "/api/v1/circuit-breakers",
        "/api/v1/circuit-breakers/health",
        "/api/v1/circuit-breakers/metrics",
        "/metrics",
    ] {
        bodies.push(send(&state, "GET", path, None, None).await.1.to_string());
    }
    bodies.push(
        send(
            &state,
            "POST",
            "/api/v1/test-circuit-breaker/test-external-services",
            Some(TOKEN),
            None,
        )
        .await
        .1
        .to_string(),
    );
    for body in bodies {
        for secret in ["test-secret", "at-api-key-value", TOKEN] {
            assert!(!body.contains(secret), "secret {secret} leaked into {body}");
        }
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_wrong_methods_get_405_before_401() {
    use tower::ServiceExt;
    let state = state();
    let call = |method: &str, path: &str, authorization: Option<String>| {
        let state = state.clone();
        let mut request = axum::http::Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        async move {
            let response = breakerd::api::router(state).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let allow = response
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            (status, allow, json)
        }
    };
    let reset = "/api/v1/circuit-breakers/mpesa/reset";
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, _, body) = call("POST", reset, Some(format!("{scheme}  {TOKEN}"))).await;
        assert_eq!(
            (status, &body["state"]),
            (200, &json!("CLOSED")),
            "{scheme}"
        );
    }
    let (status, _, _) = call("POST", reset, Some(format!("Basic {TOKEN}"))).await;
    assert_eq!(status, 401, "another scheme is not a bearer token");

    let (status, allow, body) = call("GET", reset, None).await;
    assert_eq!(
        status, 405,
        "the method is wrong before the token is missing"
    );
    assert_eq!(allow.as_deref(), Some("POST"));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("GET /api/v1/circuit-breakers/mpesa/reset: method not allowed"),
        "{body}"
    );
    let (status, allow, body) = call("DELETE", "/metrics", None).await;
    assert_eq!((status, allow.as_deref()), (405, Some("GET,HEAD")));
    assert_eq!(
        body["error"],
        "DELETE /metrics: method not allowed on this route (its Allow header lists the methods it takes)",
        "405 answers are JSON like every other error"
    );
}

#[tokio::test]
async fn force_open_and_disable_are_admin_routes_undone_by_reset() {
    let state = state();
    let route = |action: &str| format!("/api/v1/circuit-breakers/mpesa/{action}");
    let (status, _) = send(&state, "POST", &route("force-open"), None, None).await;
    assert_eq!(status, 401, "force-open needs the admin token");
    let (status, body) = send(&state, "POST", &route("force-open"), Some(TOKEN), None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("FORCED_OPEN")));
    let breaker = state.registry().get("mpesa").unwrap().breaker.clone();
    assert!(
        breaker.call(|| async { Ok::<(), &str>(()) }).await.is_err(),
        "a forced-open breaker rejects every call"
    );
    let (status, body) = send(&state, "POST", &route("disable"), Some(TOKEN), None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("DISABLED")));
    for _ in 0..10 {
        let _ = breaker.call(|| async { Err::<(), &str>("down") }).await;
    }
    let (_, body) = send(&state, "GET", "/api/v1/circuit-breakers/mpesa", None, None).await;
    assert_eq!(
        body["state"], "DISABLED",
        "failures do not trip a disabled breaker"
    );
    let (status, body) = send(&state, "POST", &route("reset"), Some(TOKEN), None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("CLOSED")));
    let (status, body) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/nope/disable",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn healthy_and_ready_answer_without_a_token() {
    let state = state();
    let (status, body) = send(&state, "GET", "/-/healthy", None, None).await;
    assert_eq!(
        (status, body.as_str()),
        (200, Some("breakerd is Healthy.\n"))
    );
    let (status, body) = send(&state, "GET", "/-/ready", None, None).await;
    assert_eq!((status, body.as_str()), (200, Some("breakerd is Ready.\n")));
    let (status, _) = send(&state, "POST", "/-/ready", None, None).await;
    assert_eq!(status, 405);
}
