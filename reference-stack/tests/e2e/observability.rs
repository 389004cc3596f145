//! Health, readiness and metrics as ground truth: passive, by route template.

use reference_stack::{ClientSettings, Downstream, start};
use serde_json::Value;
use wiremock::Mock;
use wiremock::matchers::path;

use crate::support::*;

fn check<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn readiness_follows_an_unreachable_hard_dependency_without_probing() {
    let s = GatewayStandIns::healthy().await;
    let settings = ClientSettings {
        max_attempts: 1,
        ..fast()
    };
    let gw = start(
        s.config()
            .client_settings(settings)
            .downstream_url(Downstream::Risk, closed_port_url()),
    )
    .await
    .unwrap();
    let url = gw.url();
    assert_eq!(
        get_json(&format!("{url}/health/live")).await,
        (200, serde_json::json!({"status": "alive"}))
    );
    let (status, ready) = get_json(&format!("{url}/health/ready")).await;
    assert_eq!((status, &ready["status"]), (200, &Value::from("ready")));

    assert_eq!(create_payment(&url, "ORDER-H1").await.0, 502);
    let (status, ready) = get_json(&format!("{url}/health/ready")).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains("risk: unreachable"),
        "{ready}"
    );
    let (status, health) = get_json(&format!("{url}/health")).await;
    assert_eq!(status, 503);
    assert_eq!(health["status"], "unhealthy");
    assert!(health["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(health["duration"].is_string());
    assert_eq!(check(&health, "risk")["status"], "unhealthy");
    assert_eq!(
        check(&health, "risk")["metadata"]["last_attempt"],
        "network"
    );
    assert_eq!(check(&health, "order")["status"], "healthy");
    // Health never probes: the order stand-in saw nothing.
    assert_eq!(arrivals(&s.order, "/api/v1/orders").await, 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn readiness_fails_while_a_hard_breaker_is_open() {
    let s = GatewayStandIns::healthy().await;
    Mock::given(path("/api/v1/channel/payment"))
        .respond_with(fail(503))
        .with_priority(1)
        .mount(&s.channel)
        .await;
    let gw = start(s.config().client_settings(ClientSettings {
        max_attempts: 1,
        ..fast()
    }))
    .await
    .unwrap();
    let url = gw.url();
    for i in 0..5 {
        create_payment(&url, &format!("ORDER-R{i}")).await;
    }
    let (status, ready) = get_json(&format!("{url}/health/ready")).await;
    assert_eq!(status, 503);
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains("channel: circuit breaker open"),
        "{ready}"
    );
    let (_, health) = get_json(&format!("{url}/health")).await;
    assert_eq!(
        check(&health, "channel")["metadata"]["breaker_state"],
        "open"
    );
    assert_eq!(
        check(&health, "channel")["metadata"]["hard_dependency"],
        true
    );
    assert_eq!(
        check(&health, "notification")["metadata"]["hard_dependency"],
        false
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn metrics_use_route_templates_and_the_platform_names() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let url = gw.url();
    let (_, created) = create_payment(&url, "ORDER-M1").await;
    let payment_no = created["data"]["payment_no"].as_str().unwrap();
    get_json(&format!("{url}/api/v1/payments/{payment_no}")).await;
    let response = http().get(format!("{url}/metrics")).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for line in [
        r#"payment_gateway_http_requests_total{method="POST",path="/api/v1/payments",status="200"} 1"#,
        r#"payment_gateway_http_requests_total{method="GET",path="/api/v1/payments/{payment_no}",status="200"} 1"#,
        r#"payment_gateway_http_request_duration_seconds_count{method="POST",path="/api/v1/payments",status="200"} 1"#,
        r#"payment_gateway_payment_total{status="awaiting_payment",channel="card",currency="USD"} 1"#,
        r#"downstream_attempts_total{service="payment-gateway",downstream="risk-service",outcome="success"} 1"#,
        r#"circuit_breaker_state{service="payment-gateway",downstream="analytics-service"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    assert!(!text.contains(payment_no), "raw paths never become labels");
    gw.shutdown().await;
}
