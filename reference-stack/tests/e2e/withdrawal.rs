//! withdrawal-service: balance → debit → bank transfer → notification (background).

use std::time::Duration;

use reference_stack::{Downstream, ServiceConfig, start};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

struct WithdrawalStandIns {
    accounting: MockServer,
    bank: MockServer,
    notification: MockServer,
}

async fn healthy(available: i64) -> WithdrawalStandIns {
    let s = WithdrawalStandIns {
        accounting: MockServer::start().await,
        bank: MockServer::start().await,
        notification: MockServer::start().await,
    };
    Mock::given(method("GET"))
        .and(path("/api/v1/balances/merchants/M001/summary"))
        .respond_with(ok(
            json!({"merchant_id": "M001", "available": available, "pending": 0, "currency": "USD"}),
        ))
        .mount(&s.accounting)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/transactions"))
        .respond_with(ok(json!({"transaction_id": "TX-1", "status": "posted"})))
        .mount(&s.accounting)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/bank/transfers"))
        .respond_with(ok(json!({"transfer_id": "BT-1", "status": "accepted"})))
        .mount(&s.bank)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/notifications"))
        .respond_with(ok(json!({"notification_id": "N-1", "status": "queued"})))
        .mount(&s.notification)
        .await;
    s
}

fn config(s: &WithdrawalStandIns) -> ServiceConfig {
    ServiceConfig::withdrawal()
        .client_settings(fast())
        .downstream_url(Downstream::Accounting, s.accounting.uri())
        .downstream_url(Downstream::Bank, s.bank.uri())
        .downstream_url(Downstream::Notification, s.notification.uri())
}

fn request(amount: i64) -> Value {
    json!({"merchant_id": "M001", "amount": amount, "currency": "USD"})
}

#[tokio::test]
async fn withdrawal_debits_transfers_and_notifies() {
    let s = healthy(1000).await;
    let svc = start(config(&s)).await.unwrap();
    let (status, body) =
        post_json(&format!("{}/api/v1/withdrawals", svc.url()), &request(300)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "pending");
    let withdrawal_no = body["data"]["withdrawal_no"].as_str().unwrap();
    let debit = received(&s.accounting, "/api/v1/transactions").await;
    let debit: Value = serde_json::from_slice(&debit[0].body).unwrap();
    assert_eq!(debit["type"], "debit");
    assert_eq!(debit["amount"], 300);
    assert_eq!(debit["reference"], withdrawal_no);
    let transfer = received(&s.bank, "/api/v1/bank/transfers").await;
    let transfer: Value = serde_json::from_slice(&transfer[0].body).unwrap();
    assert_eq!(transfer["withdrawal_no"], withdrawal_no);
    wait_until("the notification", Duration::from_secs(5), || async {
        arrivals(&s.notification, "/api/v1/notifications").await == 1
    })
    .await;
    let (_, kept) = get_json(&format!("{}/api/v1/withdrawals/{withdrawal_no}", svc.url())).await;
    assert_eq!(kept["data"]["transfer_id"], "BT-1");
    svc.shutdown().await;
}

#[tokio::test]
async fn insufficient_balance_is_422_without_a_debit() {
    let s = healthy(100).await;
    let svc = start(config(&s)).await.unwrap();
    let (status, body) =
        post_json(&format!("{}/api/v1/withdrawals", svc.url()), &request(300)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(arrivals(&s.accounting, "/api/v1/transactions").await, 0);
    let withdrawal_no = body["data"]["withdrawal_no"].as_str().unwrap();
    let (_, kept) = get_json(&format!("{}/api/v1/withdrawals/{withdrawal_no}", svc.url())).await;
    assert_eq!(kept["data"]["status"], "rejected");
    svc.shutdown().await;
}

#[tokio::test]
async fn bank_outage_fails_the_withdrawal() {
    let s = healthy(1000).await;
    Mock::given(path("/api/v1/bank/transfers"))
        .respond_with(fail(502))
        .with_priority(1)
        .mount(&s.bank)
        .await;
    let svc = start(config(&s)).await.unwrap();
    let (status, body) =
        post_json(&format!("{}/api/v1/withdrawals", svc.url()), &request(300)).await;
    assert_eq!(status, 502, "{body}");
    let withdrawal_no = body["data"]["withdrawal_no"].as_str().unwrap();
    let (_, kept) = get_json(&format!("{}/api/v1/withdrawals/{withdrawal_no}", svc.url())).await;
    assert_eq!(kept["data"]["status"], "failed");
    assert_eq!(arrivals(&s.notification, "/api/v1/notifications").await, 0);
    svc.shutdown().await;
}
