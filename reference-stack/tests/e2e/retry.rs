//! Retry timing and attempt counts per status class, seen from the downstream.
//! merchant-auth-service is the vehicle: one login = one logical call to `merchant`.

use std::time::Duration;

use reference_stack::{ClientSettings, start};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// Log in once against a stand-in answering `answer`; returns (login status, arrivals).
async fn attempts_for(answer: ResponseTemplate) -> (u16, usize) {
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(answer)
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), fast())).await.unwrap();
    let (status, _) = login(&auth.url()).await;
    let n = arrivals(&merchant, LOOKUP).await;
    auth.shutdown().await;
    (status, n)
}

#[tokio::test]
async fn server_errors_are_retried_three_times() {
    assert_eq!(attempts_for(fail(500)).await, (502, 4));
    assert_eq!(attempts_for(fail(503)).await, (502, 4));
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    assert_eq!(attempts_for(fail(429)).await, (502, 4));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    assert_eq!(attempts_for(fail(400)).await, (502, 1));
    // The lookup's 404 means "no such merchant": a 401 for the caller, still one attempt.
    assert_eq!(attempts_for(fail(404)).await, (401, 1));
}

#[tokio::test]
async fn timeouts_are_retried() {
    let settings = ClientSettings {
        attempt_timeout: Duration::from_millis(50),
        ..fast()
    };
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(ok_merchant().set_delay(Duration::from_millis(500)))
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), settings)).await.unwrap();
    let (status, body) = login(&auth.url()).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );
    assert_eq!(arrivals(&merchant, LOOKUP).await, 4);
    assert!(
        auth.metrics_text().contains(
            r#"downstream_attempts_total{service="merchant-auth-service",downstream="merchant-service",outcome="timeout"} 4"#
        ),
        "{}",
        auth.metrics_text()
    );
    auth.shutdown().await;
}

#[tokio::test]
async fn network_errors_are_retried() {
    let auth = start(auth_config(&closed_port_url(), fast()))
        .await
        .unwrap();
    let (status, body) = login(&auth.url()).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    assert!(
        auth.metrics_text().contains(
            r#"downstream_attempts_total{service="merchant-auth-service",downstream="merchant-service",outcome="network"} 4"#
        ),
        "{}",
        auth.metrics_text()
    );
    auth.shutdown().await;
}

#[tokio::test]
async fn success_after_failures_stops_retrying() {
    let script = Script::new(vec![fail(503), fail(503), ok_merchant()]);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(script.clone())
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), fast())).await.unwrap();
    let (status, body) = login(&auth.url()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(script.arrivals().len(), 3);
    auth.shutdown().await;
}

fn ok_merchant() -> ResponseTemplate {
    ok(serde_json::json!({
        "merchant_id": "M001",
        "password_hash": reference_stack::password_hash("password123"),
        "status": "active",
    }))
}

#[tokio::test]
async fn backoff_is_linear_in_the_attempt_number() {
    let delay = Duration::from_millis(40);
    let settings = ClientSettings {
        retry_delay: delay,
        ..fast()
    };
    let script = Script::new(vec![fail(503)]);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(script.clone())
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), settings)).await.unwrap();
    login(&auth.url()).await;
    let arrivals = script.arrivals();
    assert_eq!(arrivals.len(), 4);
    for (n, pair) in arrivals.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let expected = delay * (n as u32 + 1);
        // Never early; late only by scheduling and a local round trip.
        assert!(
            gap >= expected && gap < expected + Duration::from_millis(150),
            "gap {n}: {gap:?}, expected about {expected:?}"
        );
    }
    auth.shutdown().await;
}
