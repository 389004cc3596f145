//! merchant-service: the dashboard degrades part by part and never fails.

use reference_stack::{Downstream, ServiceConfig, start};
use serde_json::json;
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer};

use crate::support::*;

struct DashboardStandIns {
    analytics: MockServer,
    accounting: MockServer,
    risk: MockServer,
    notification: MockServer,
    gateway: MockServer,
}

async fn healthy() -> DashboardStandIns {
    let s = DashboardStandIns {
        analytics: MockServer::start().await,
        accounting: MockServer::start().await,
        risk: MockServer::start().await,
        notification: MockServer::start().await,
        gateway: MockServer::start().await,
    };
    Mock::given(path("/api/v1/statistics/merchant/M001"))
        .respond_with(ok(json!({"merchant_id": "M001", "total_payments": 7, "total_amount": 900, "success_rate": 0.9})))
        .mount(&s.analytics)
        .await;
    Mock::given(path("/api/v1/balances/merchants/M001/summary"))
        .respond_with(ok(
            json!({"merchant_id": "M001", "available": 500, "pending": 20, "currency": "USD"}),
        ))
        .mount(&s.accounting)
        .await;
    Mock::given(path("/api/v1/risk/merchants/M001/summary"))
        .respond_with(ok(
            json!({"merchant_id": "M001", "risk_level": "low", "flagged_payments": 0}),
        ))
        .mount(&s.risk)
        .await;
    Mock::given(path("/api/v1/notifications/merchants/M001/unread/count"))
        .respond_with(ok(json!({"merchant_id": "M001", "unread_count": 3})))
        .mount(&s.notification)
        .await;
    Mock::given(path("/api/v1/payments"))
        .and(query_param("merchant_id", "M001"))
        .respond_with(ok(json!({"payments": [], "total": 0})))
        .mount(&s.gateway)
        .await;
    s
}

fn config(s: &DashboardStandIns) -> ServiceConfig {
    ServiceConfig::merchant()
        .client_settings(fast())
        .downstream_url(Downstream::Analytics, s.analytics.uri())
        .downstream_url(Downstream::Accounting, s.accounting.uri())
        .downstream_url(Downstream::Risk, s.risk.uri())
        .downstream_url(Downstream::Notification, s.notification.uri())
        .downstream_url(Downstream::Gateway, s.gateway.uri())
}

#[tokio::test]
async fn dashboard_gathers_all_five_parts() {
    let s = healthy().await;
    let svc = start(config(&s)).await.unwrap();
    let (status, body) = get_json(&format!("{}/api/v1/merchants/M001/dashboard", svc.url())).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["merchant_id"], "M001");
    assert_eq!(data["statistics"]["total_payments"], 7);
    assert_eq!(data["balance"]["available"], 500);
    assert_eq!(data["risk"]["risk_level"], "low");
    assert_eq!(data["notifications"]["unread_count"], 3);
    assert_eq!(data["payments"]["total"], 0);
    assert_eq!(data["degraded"], json!([]));
    svc.shutdown().await;
}

#[tokio::test]
async fn failed_parts_are_null_and_named_but_the_page_is_200() {
    let s = healthy().await;
    Mock::given(path("/api/v1/balances/merchants/M001/summary"))
        .respond_with(fail(500))
        .with_priority(1)
        .mount(&s.accounting)
        .await;
    let svc = start(
        config(&s)
            .downstream_url(Downstream::Risk, closed_port_url())
            .client_settings(reference_stack::ClientSettings {
                max_attempts: 1,
                ..fast()
            }),
    )
    .await
    .unwrap();
    let (status, body) = get_json(&format!("{}/api/v1/merchants/M001/dashboard", svc.url())).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["degraded"], json!(["balance", "risk"]));
    assert!(data["balance"].is_null() && data["risk"].is_null());
    assert_eq!(data["statistics"]["total_payments"], 7);
    // merchant-service has no hard dependency: it stays ready while degrading.
    assert_eq!(
        get_json(&format!("{}/health/ready", svc.url())).await.0,
        200
    );

    let (status, _) = get_json(&format!(
        "{}/api/v1/merchants/bad%20id/dashboard",
        svc.url()
    ))
    .await;
    assert_eq!(status, 400);
    svc.shutdown().await;
}
