//! A full breaker episode through a running service, observed from outside (arrivals,
//! answers) and from inside (transition history, metrics, debug endpoint).

use std::time::Duration;

use reference_stack::{ClientSettings, Downstream, State, start};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

use crate::support::*;

fn single_attempt(open_timeout: Duration) -> ClientSettings {
    ClientSettings {
        max_attempts: 1,
        open_timeout,
        ..fast()
    }
}

#[tokio::test]
async fn episode_closed_open_half_open_closed() {
    let open_timeout = Duration::from_millis(200);
    let switch = Switch::new(vec![
        fail(503),
        ok(serde_json::json!({
            "merchant_id": "M001",
            "password_hash": reference_stack::password_hash("password123"),
            "status": "active",
        })),
    ]);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(switch.clone())
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), single_attempt(open_timeout)))
        .await
        .unwrap();
    let url = auth.url();

    // Five failures trip it (5 requests, 100 % failures); then calls are refused unsent.
    for _ in 0..5 {
        assert_eq!(login(&url).await.0, 502);
    }
    assert_eq!(auth.breaker_state(Downstream::Merchant), Some(State::Open));
    let (status, body) = login(&url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(arrivals(&merchant, LOOKUP).await, 5);

    // After the timeout nothing moves until a request comes (lazy half-open).
    switch.set(1);
    let_elapse(open_timeout * 2).await;
    assert_eq!(auth.breaker_state(Downstream::Merchant), Some(State::Open));
    for _ in 0..3 {
        assert_eq!(login(&url).await.0, 200);
    }
    assert_eq!(
        auth.breaker_state(Downstream::Merchant),
        Some(State::Closed)
    );

    let transitions = auth.breaker_transitions();
    let kinds: Vec<(State, State)> = transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        kinds,
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    let lazy_gap = transitions[1].at - transitions[0].at;
    assert!(
        lazy_gap >= open_timeout * 2,
        "half-open came with the first request after the timeout, not at it: {lazy_gap:?}"
    );
    let wall_gap = transitions[1]
        .wall
        .duration_since(transitions[0].wall)
        .unwrap();
    let skew = wall_gap.as_secs_f64() - lazy_gap.as_secs_f64();
    assert!(skew.abs() < 0.01, "both clocks agree: {skew}");
    let stamp = transitions[0].timestamp();
    assert!(
        stamp.ends_with('Z') && stamp.split('.').nth(1).map(|f| f.len()) == Some(7),
        "RFC 3339 with microseconds: {stamp}"
    );

    let metrics = auth.metrics_text();
    for line in [
        r#"circuit_breaker_state{service="merchant-auth-service",downstream="merchant-service"} 0"#,
        r#"circuit_breaker_transitions_total{service="merchant-auth-service",downstream="merchant-service",from="closed",to="open"} 1"#,
        r#"circuit_breaker_transitions_total{service="merchant-auth-service",downstream="merchant-service",from="half_open",to="closed"} 1"#,
        r#"circuit_breaker_rejections_total{service="merchant-auth-service",downstream="merchant-service",reason="open"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line}\n{metrics}");
    }
    let (_, debug) = get_json(&format!("{url}/debug/breakers")).await;
    assert_eq!(debug["breakers"][0]["state"], "closed");
    assert_eq!(debug["transitions"].as_array().unwrap().len(), 3);
    auth.shutdown().await;
}

#[tokio::test]
async fn half_open_failure_reopens_and_limits_probes() {
    let open_timeout = Duration::from_millis(150);
    let switch = Switch::new(vec![
        fail(503),
        fail(503).set_delay(Duration::from_millis(400)),
    ]);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(switch.clone())
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), single_attempt(open_timeout)))
        .await
        .unwrap();
    let url = auth.url();
    for _ in 0..5 {
        login(&url).await;
    }
    assert!(
        auth.wait_for_breaker(Downstream::Merchant, State::Open, Duration::from_secs(5))
            .await
    );
    switch.set(1);
    let_elapse(open_timeout + Duration::from_millis(50)).await;
    // Eight concurrent calls in half-open: three probes go out (slow, failing), the
    // other five are refused at once.
    let statuses = concurrently(8, || {
        let url = url.clone();
        async move { login(&url).await }
    })
    .await;
    assert_eq!(arrivals(&merchant, LOOKUP).await, 5 + 3);
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 502).count(),
        3,
        "{statuses:?}"
    );
    // The first failed probe reopened it.
    assert_eq!(auth.breaker_state(Downstream::Merchant), Some(State::Open));
    let last = auth.breaker_transitions().last().copied().unwrap();
    assert_eq!((last.from, last.to), (State::HalfOpen, State::Open));
    auth.shutdown().await;
}

#[tokio::test]
async fn an_abandoned_call_counts_as_a_failure() {
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(ok(serde_json::json!({})).set_delay(Duration::from_secs(3)))
        .mount(&merchant)
        .await;
    let settings = ClientSettings {
        min_requests: 1,
        failure_ratio: 1.0,
        ..single_attempt(Duration::from_secs(60))
    };
    let auth = start(auth_config(&merchant.uri(), settings)).await.unwrap();
    // The caller hangs up while the lookup hangs: the server drops the handler, and the
    // breaker is told the call failed instead of waiting for an outcome forever.
    let hung_up = http()
        .post(format!("{}/api/v1/auth/login", auth.url()))
        .json(&serde_json::json!({"merchant_id": "M001", "password": "password123"}))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(hung_up.is_err());
    assert!(
        auth.wait_for_breaker(Downstream::Merchant, State::Open, Duration::from_secs(2))
            .await,
        "the abandoned call was recorded as a failure"
    );
    auth.shutdown().await;
}
