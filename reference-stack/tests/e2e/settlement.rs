//! settlement-service: accounting transactions → sum → withdrawal.

use reference_stack::{ClientSettings, Downstream, ServiceConfig, start};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer};

use crate::support::*;

async fn accounting_with(amounts: &[i64]) -> MockServer {
    let server = MockServer::start().await;
    let transactions: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"transaction_id": format!("T{i}"), "amount": a, "type": "credit"}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/api/v1/transactions"))
        .and(query_param("merchant_id", "M001"))
        .and(query_param("start", "2025-01-01"))
        .and(query_param("end", "2025-01-31"))
        .respond_with(ok(
            json!({"transactions": transactions, "total": amounts.len()}),
        ))
        .mount(&server)
        .await;
    server
}

fn config(accounting: &MockServer, withdrawal: &str) -> ServiceConfig {
    ServiceConfig::settlement()
        .client_settings(ClientSettings {
            max_attempts: 2,
            ..fast()
        })
        .downstream_url(Downstream::Accounting, accounting.uri())
        .downstream_url(Downstream::Withdrawal, withdrawal)
}

fn request() -> serde_json::Value {
    json!({"merchant_id": "M001", "start": "2025-01-01", "end": "2025-01-31"})
}

#[tokio::test]
async fn settlement_sums_transactions_and_withdraws() {
    let accounting = accounting_with(&[100, 250, 30]).await;
    let withdrawal = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/withdrawals"))
        .respond_with(ok(json!({"withdrawal_no": "WD-7", "status": "pending"})))
        .mount(&withdrawal)
        .await;
    let svc = start(config(&accounting, &withdrawal.uri())).await.unwrap();
    let (status, body) = post_json(&format!("{}/api/v1/settlements", svc.url()), &request()).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["amount"], 380);
    assert_eq!(data["withdrawal_no"], "WD-7");
    assert_eq!(data["status"], "completed");
    let settlement_no = data["settlement_no"].as_str().unwrap();
    let sent = received(&withdrawal, "/api/v1/withdrawals").await;
    let sent: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(sent["amount"], 380);
    assert_eq!(sent["settlement_no"], settlement_no);
    let (status, kept) =
        get_json(&format!("{}/api/v1/settlements/{settlement_no}", svc.url())).await;
    assert_eq!(status, 200);
    assert_eq!(kept["data"]["status"], "completed");
    let (status, answer) = post_json(
        &format!("{}/api/v1/settlements", svc.url()),
        &json!({"merchant_id": "M001", "start": "yesterday", "end": "2025-01-31"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("start"));
    svc.shutdown().await;
}

#[tokio::test]
async fn failed_settlement_is_kept_as_failed() {
    let accounting = accounting_with(&[100]).await;
    let withdrawal = MockServer::start().await;
    Mock::given(path("/api/v1/withdrawals"))
        .respond_with(fail(503))
        .mount(&withdrawal)
        .await;
    let svc = start(config(&accounting, &withdrawal.uri())).await.unwrap();
    let (status, body) = post_json(&format!("{}/api/v1/settlements", svc.url()), &request()).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(arrivals(&withdrawal, "/api/v1/withdrawals").await, 2);
    let settlement_no = body["data"]["settlement_no"].as_str().unwrap();
    let (_, kept) = get_json(&format!("{}/api/v1/settlements/{settlement_no}", svc.url())).await;
    assert_eq!(kept["data"]["status"], "failed");
    assert!(
        kept["data"]["error"]
            .as_str()
            .unwrap()
            .contains("withdrawal")
    );
    svc.shutdown().await;
}
