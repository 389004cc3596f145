//! payment-gateway: the payment chain, queries, webhooks and their async notification.

use std::time::{Duration, Instant};

use reference_stack::{ClientSettings, Downstream, SignatureVersion, start};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::*;

async fn body_of(server: &wiremock::MockServer, route: &str) -> Value {
    let requests = received(server, route).await;
    serde_json::from_slice(&requests.last().expect("a request").body).unwrap()
}

#[tokio::test]
async fn payment_flows_through_risk_order_channel() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let url = gw.url();

    let (status, body) = create_payment(&url, "ORDER-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0);
    let data = &body["data"];
    let payment_no = data["payment_no"].as_str().unwrap().to_string();
    assert_eq!(data["status"], "awaiting_payment");
    assert_eq!(data["payment_url"], "https://pay.example/checkout/1");
    assert_eq!(data["channel_trade_no"], "CT-1");

    let risk = body_of(&s.risk, "/api/v1/risk/check").await;
    assert_eq!(risk["payment_no"], payment_no.as_str());
    assert_eq!(risk["amount"], 1250);
    assert_eq!(risk["customer_email"], "payer@example.com");
    let orders = received(&s.order, "/api/v1/orders").await;
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].headers.get("Idempotency-Key").unwrap(),
        payment_no.as_str()
    );
    let channel = body_of(&s.channel, "/api/v1/channel/payment").await;
    assert_eq!(channel["order_no"], "ORDER-1");
    assert_eq!(channel["channel"], "card");
    // Payment creation notifies nobody (only the webhook does).
    assert_eq!(arrivals(&s.notification, "/api/v1/notifications").await, 0);

    let (status, one) = get_json(&format!("{url}/api/v1/payments/{payment_no}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["data"]["status"], "awaiting_payment");
    assert_eq!(one["data"]["merchant_id"], "M001");
    assert_eq!(one["data"]["amount"], 1250);
    let (status, list) = get_json(&format!("{url}/api/v1/payments?merchant_id=M001")).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"]["total"], 1);
    assert_eq!(
        list["data"]["payments"][0]["payment_no"],
        payment_no.as_str()
    );
    let (status, _) = get_json(&format!("{url}/api/v1/payments/PAY404")).await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&format!("{url}/api/v1/payments")).await;
    assert_eq!(status, 400);
    gw.shutdown().await;
}

#[tokio::test]
async fn signature_v2_is_accepted() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let body = payment_body("ORDER-V2");
    let mut call = PaymentCall::new(&body);
    call.version = SignatureVersion::V2;
    let (status, answer) = call.send(&gw.url()).await;
    assert_eq!(status, 200, "{answer}");
    gw.shutdown().await;
}

#[tokio::test]
async fn auth_errors_are_401() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let url = gw.url();
    let body = payment_body("ORDER-AUTH");

    let mut wrong_secret = PaymentCall::new(&body);
    wrong_secret.secret = "not-the-secret";
    let (status, answer) = wrong_secret.send(&url).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (401, Some("invalid signature"))
    );

    let mut stale = PaymentCall::new(&body);
    stale.timestamp = Some((chrono::Utc::now() - chrono::Duration::minutes(3)).to_rfc3339());
    let (status, answer) = stale.send(&url).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"].as_str().unwrap().contains("X-Timestamp"),
        "{answer}"
    );

    let mut first = PaymentCall::new(&body);
    first.nonce = Some("fixed-nonce".into());
    assert_eq!(first.send(&url).await.0, 200);
    let second = payment_body("ORDER-AUTH-2");
    let mut replay = PaymentCall::new(&second);
    replay.nonce = Some("fixed-nonce".into());
    let (status, answer) = replay.send(&url).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"].as_str().unwrap().contains("X-Nonce"),
        "{answer}"
    );

    let (status, _) = post_json(&format!("{url}/api/v1/payments"), &body).await;
    assert_eq!(status, 401, "no headers at all");

    let mut foreign = payment_body("ORDER-AUTH-3");
    foreign["merchant_id"] = json!("M002");
    let (status, answer) = PaymentCall::new(&foreign).send(&url).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"].as_str().unwrap().contains("merchant_id"),
        "{answer}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn validation_errors_are_400_naming_the_field() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let url = gw.url();
    let cases = [
        ("amount", json!(0)),
        ("amount", json!("12")),
        ("currency", json!("usd")),
        ("customer_email", json!("nobody")),
        ("order_no", json!("")),
        ("notify_url", json!("not a url")),
    ];
    for (field, value) in cases {
        let mut body = payment_body("ORDER-VAL");
        body[field] = value.clone();
        let (status, answer) = PaymentCall::new(&body).send(&url).await;
        assert_eq!(status, 400, "{field}={value}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{field}: {answer}"
        );
    }
    let mut body = payment_body("ORDER-VAL");
    body.as_object_mut().unwrap().remove("return_url");
    let (status, answer) = PaymentCall::new(&body).send(&url).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("return_url"));
    assert_eq!(arrivals(&s.risk, "/api/v1/risk/check").await, 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_replays_and_refuses_a_different_body() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let url = gw.url();
    let body = payment_body("ORDER-IDEM");
    let mut call = PaymentCall::new(&body);
    call.idempotency_key = Some("key-1");
    let (first_status, first) = call.send(&url).await;
    let (second_status, second) = call.send(&url).await;
    assert_eq!((first_status, second_status), (200, 200));
    assert_eq!(first, second, "the same answer is replayed");
    assert_eq!(
        arrivals(&s.risk, "/api/v1/risk/check").await,
        1,
        "no new payment"
    );

    let other = payment_body("ORDER-IDEM-2");
    let mut call = PaymentCall::new(&other);
    call.idempotency_key = Some("key-1");
    let (status, answer) = call.send(&url).await;
    assert_eq!(status, 409, "{answer}");
    gw.shutdown().await;
}

#[tokio::test]
async fn duplicate_order_number_is_409() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    assert_eq!(create_payment(&gw.url(), "ORDER-DUP").await.0, 200);
    let (status, answer) = create_payment(&gw.url(), "ORDER-DUP").await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("ORDER-DUP"));
    gw.shutdown().await;
}

#[tokio::test]
async fn risk_rejection_is_422_and_kept_as_rejected() {
    let s = GatewayStandIns::healthy().await;
    Mock::given(path("/api/v1/risk/check"))
        .respond_with(ok(
            json!({"decision": "reject", "score": 95, "risk_level": "high"}),
        ))
        .with_priority(1)
        .mount(&s.risk)
        .await;
    let gw = start(s.config()).await.unwrap();
    let (status, answer) = create_payment(&gw.url(), "ORDER-RISKY").await;
    assert_eq!(status, 422, "{answer}");
    let payment_no = answer["data"]["payment_no"].as_str().unwrap();
    let (_, one) = get_json(&format!("{}/api/v1/payments/{payment_no}", gw.url())).await;
    assert_eq!(one["data"]["status"], "rejected");
    assert!(one["data"]["error"].as_str().unwrap().contains("95"));
    assert_eq!(arrivals(&s.order, "/api/v1/orders").await, 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn downstream_failure_marks_the_payment_failed_with_its_error() {
    let s = GatewayStandIns::healthy().await;
    Mock::given(path("/api/v1/channel/payment"))
        .respond_with(fail(500))
        .with_priority(1)
        .mount(&s.channel)
        .await;
    let gw = start(s.config()).await.unwrap();
    let (status, answer) = create_payment(&gw.url(), "ORDER-FAIL").await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["data"]["status"], "failed");
    let payment_no = answer["data"]["payment_no"].as_str().unwrap();
    let (status, one) = get_json(&format!("{}/api/v1/payments/{payment_no}", gw.url())).await;
    assert_eq!(status, 200, "a failed payment is kept");
    assert_eq!(one["data"]["status"], "failed");
    let error = one["data"]["error"].as_str().unwrap();
    assert!(
        error.contains("channel") && error.contains("500"),
        "{error}"
    );
    // Its order number is free again: the merchant may retry the order.
    assert_eq!(create_payment(&gw.url(), "ORDER-FAIL").await.0, 502);
    gw.shutdown().await;
}

#[tokio::test]
async fn open_breaker_answers_503_without_calling_the_downstream() {
    let s = GatewayStandIns::healthy().await;
    Mock::given(path("/api/v1/orders"))
        .respond_with(fail(503))
        .with_priority(1)
        .mount(&s.order)
        .await;
    let settings = ClientSettings {
        max_attempts: 1,
        ..fast()
    };
    let gw = start(s.config().client_settings_for(Downstream::Order, settings))
        .await
        .unwrap();
    for i in 0..5 {
        assert_eq!(
            create_payment(&gw.url(), &format!("ORDER-BRK-{i}")).await.0,
            502
        );
    }
    let (status, answer) = create_payment(&gw.url(), "ORDER-BRK-5").await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(arrivals(&s.order, "/api/v1/orders").await, 5);
    let payment_no = answer["data"]["payment_no"].as_str().unwrap();
    let (_, one) = get_json(&format!("{}/api/v1/payments/{payment_no}", gw.url())).await;
    assert_eq!(one["data"]["status"], "failed");
    assert!(
        one["data"]["error"]
            .as_str()
            .unwrap()
            .contains("circuit breaker is open")
    );
    let metrics = gw.metrics_text();
    assert!(metrics.contains(
        r#"circuit_breaker_state{service="payment-gateway",downstream="order-service"} 2"#
    ));
    assert!(metrics.contains(
        r#"payment_gateway_payment_total{status="failed",channel="card",currency="USD"} 6"#
    ));
    gw.shutdown().await;
}

#[tokio::test]
async fn webhook_updates_status_then_notifies_in_the_background() {
    let s = GatewayStandIns::healthy().await;
    let gw = start(s.config()).await.unwrap();
    let url = gw.url();
    let (_, created) = create_payment(&url, "ORDER-HOOK").await;
    let payment_no = created["data"]["payment_no"].as_str().unwrap().to_string();

    let hook = format!("{url}/api/v1/webhooks/card");
    let (status, answer) = post_json(
        &hook,
        &json!({"payment_no": payment_no, "status": "success", "channel_trade_no": "CT-9"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["status"], "succeeded");
    let (_, one) = get_json(&format!("{url}/api/v1/payments/{payment_no}")).await;
    assert_eq!(one["data"]["status"], "succeeded");
    assert_eq!(one["data"]["channel_trade_no"], "CT-9");

    wait_until(
        "notification and analytics",
        Duration::from_secs(5),
        || async {
            arrivals(&s.notification, "/api/v1/notifications").await == 1
                && arrivals(&s.analytics, "/api/v1/events").await == 1
        },
    )
    .await;
    let note = body_of(&s.notification, "/api/v1/notifications").await;
    assert_eq!(note["type"], "payment.succeeded");
    assert_eq!(note["merchant_id"], "M001");
    let event = body_of(&s.analytics, "/api/v1/events").await;
    assert_eq!(event["status"], "succeeded");
    assert_eq!(event["amount"], 1250);

    // The same callback again changes nothing; a contradicting one is refused.
    assert_eq!(
        post_json(
            &hook,
            &json!({"payment_no": payment_no, "status": "success"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post_json(
            &hook,
            &json!({"payment_no": payment_no, "status": "failed"})
        )
        .await
        .0,
        409
    );
    assert_eq!(
        post_json(
            &hook,
            &json!({"payment_no": "PAY-NONE", "status": "success"})
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post_json(&hook, &json!({"payment_no": payment_no, "status": "maybe"}))
            .await
            .0,
        400
    );
    assert_eq!(arrivals(&s.notification, "/api/v1/notifications").await, 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn notification_outage_neither_slows_nor_fails_the_webhook() {
    let s = GatewayStandIns::healthy().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/notifications"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .with_priority(1)
        .mount(&s.notification)
        .await;
    Mock::given(path("/api/v1/events"))
        .respond_with(fail(500))
        .with_priority(1)
        .mount(&s.analytics)
        .await;
    let settings = ClientSettings {
        async_timeout: Duration::from_millis(300),
        ..fast()
    };
    let gw = start(s.config().client_settings(settings)).await.unwrap();
    let url = gw.url();
    let (_, created) = create_payment(&url, "ORDER-SLOW-NOTE").await;
    let payment_no = created["data"]["payment_no"].as_str().unwrap();
    let started = Instant::now();
    let (status, _) = post_json(
        &format!("{url}/api/v1/webhooks/card"),
        &json!({"payment_no": payment_no, "status": "failed"}),
    )
    .await;
    assert_eq!(status, 200);
    // Well under the notification's 3 s delay: nothing on the request path waits for it.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let (_, one) = get_json(&format!("{url}/api/v1/payments/{payment_no}")).await;
    assert_eq!(one["data"]["status"], "failed");
    assert!(one["data"]["error"].as_str().unwrap().contains("card"));
    wait_until(
        "the notification attempt",
        Duration::from_secs(5),
        || async { arrivals(&s.notification, "/api/v1/notifications").await >= 1 },
    )
    .await;
    gw.shutdown().await;
}
