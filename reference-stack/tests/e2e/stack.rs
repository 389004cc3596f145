//! All five services started together and wired to each other and to stand-ins.

use std::collections::BTreeMap;
use std::time::Instant;

use reference_stack::{Defect, Downstream, ServiceConfig, ServiceKind, StackConfig, start_all};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn stack_starts_fast_and_wires_services_to_each_other() {
    let s = GatewayStandIns::healthy().await;
    let shared = MockServer::start().await;
    for (verb, route, data) in [
        (
            "GET",
            r"^/api/v1/balances/merchants/[^/]+/summary$",
            json!({"available": 10_000, "pending": 0, "currency": "USD"}),
        ),
        (
            "GET",
            r"^/api/v1/transactions$",
            json!({"transactions": [{"transaction_id": "T1", "amount": 700, "type": "credit"}], "total": 1}),
        ),
        (
            "POST",
            r"^/api/v1/transactions$",
            json!({"transaction_id": "TX1", "status": "posted"}),
        ),
        (
            "POST",
            r"^/api/v1/bank/transfers$",
            json!({"transfer_id": "BT1", "status": "accepted"}),
        ),
    ] {
        Mock::given(method(verb))
            .and(path_regex(route))
            .respond_with(ok(data))
            .mount(&shared)
            .await;
    }
    let merchant = merchant_stand_in().await;
    let urls: BTreeMap<Downstream, String> = BTreeMap::from([
        (Downstream::Risk, s.risk.uri()),
        (Downstream::Order, s.order.uri()),
        (Downstream::Channel, s.channel.uri()),
        (Downstream::Notification, s.notification.uri()),
        (Downstream::Analytics, s.analytics.uri()),
        (Downstream::Accounting, shared.uri()),
        (Downstream::Bank, shared.uri()),
        (Downstream::Merchant, merchant.uri()),
    ]);
    // The dashboard's other parts come from the gateway's stand-ins.
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v1/statistics/merchant/[^/]+$"))
        .respond_with(ok(json!({"total_payments": 1})))
        .mount(&s.analytics)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v1/risk/merchants/[^/]+/summary$"))
        .respond_with(ok(json!({"risk_level": "low"})))
        .mount(&s.risk)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications/merchants/M001/unread/count"))
        .respond_with(ok(json!({"unread_count": 2})))
        .mount(&s.notification)
        .await;

    let started = Instant::now();
    let stack = start_all(
        StackConfig::new()
            .downstream_urls(urls)
            .time_scale(0.01)
            .service(ServiceConfig::gateway().defect_for(Defect::Retry4xx, Downstream::Risk)),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    println!("start_all took {elapsed:?}");
    assert!(elapsed.as_secs_f64() < 1.0, "{elapsed:?}");

    let gateway = stack.service(ServiceKind::PaymentGateway).unwrap();
    let merchant_svc = stack.service(ServiceKind::MerchantService).unwrap();
    let settlement = stack.service(ServiceKind::SettlementService).unwrap();
    for service in stack.services() {
        assert_eq!(
            get_json(&format!("{}/health/ready", service.url())).await.0,
            200,
            "{}",
            service.kind()
        );
    }

    // The dashboard's payments part comes from the started gateway.
    assert_eq!(create_payment(&gateway.url(), "ORDER-STACK").await.0, 200);
    let (status, page) = get_json(&format!(
        "{}/api/v1/merchants/M001/dashboard",
        merchant_svc.url()
    ))
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"]["payments"]["total"], 1, "{page}");
    assert_eq!(page["data"]["notifications"]["unread_count"], 2);
    assert_eq!(page["data"]["degraded"], json!([]));

    // Settlement → the started withdrawal-service → accounting and bank stand-ins.
    let (status, settled) = post_json(
        &format!("{}/api/v1/settlements", settlement.url()),
        &json!({"merchant_id": "M001", "start": "2025-01-01", "end": "2025-01-31"}),
    )
    .await;
    assert_eq!(status, 200, "{settled}");
    assert!(
        settled["data"]["withdrawal_no"]
            .as_str()
            .unwrap()
            .starts_with("WD")
    );
    assert_eq!(arrivals(&shared, "/api/v1/bank/transfers").await, 1);

    // The time scale reached every client (30 s open timeout → 300 ms), the defect one.
    let (_, debug) = get_json(&format!("{}/debug/breakers", gateway.url())).await;
    assert_eq!(debug["defects"], "retry_4xx@risk");
    for service in stack.services() {
        let (_, debug) = get_json(&format!("{}/debug/breakers", service.url())).await;
        for breaker in debug["breakers"].as_array().unwrap() {
            assert_eq!(breaker["settings"]["open_timeout_ms"], 300.0, "{breaker}");
            assert_eq!(breaker["settings"]["retry_delay_ms"], 10.0, "{breaker}");
        }
    }
    stack.shutdown().await;
}
