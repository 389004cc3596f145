//! One test per defect switch: the same scenario with and without the defect, and the
//! difference an outside observer sees.

use std::time::{Duration, Instant};

use reference_stack::{ClientSettings, Defect, Defects, Downstream, ServiceConfig, start};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

use crate::support::*;

fn single_attempt() -> ClientSettings {
    ClientSettings {
        max_attempts: 1,
        ..fast()
    }
}

/// A merchant stand-in that always answers `status`.
async fn failing_merchant(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(fail(status))
        .mount(&server)
        .await;
    server
}

/// Log in `n` times in a row against `merchant`; returns (statuses, arrivals).
async fn logins(config: ServiceConfig, merchant: &MockServer, n: usize) -> (Vec<u16>, usize) {
    let auth = start(config).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(login(&auth.url()).await.0);
    }
    auth.shutdown().await;
    (statuses, arrivals(merchant, LOOKUP).await)
}

#[tokio::test]
async fn no_breaker_keeps_calling_a_failing_downstream() {
    let correct = failing_merchant(503).await;
    let (statuses, arrived) =
        logins(auth_config(&correct.uri(), single_attempt()), &correct, 20).await;
    assert_eq!(arrived, 5, "the breaker trips after 5 and stops the calls");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 15);

    let defective = failing_merchant(503).await;
    let config = auth_config(&defective.uri(), single_attempt()).defect(Defect::NoBreaker);
    let (statuses, arrived) = logins(config, &defective, 20).await;
    assert_eq!(arrived, 20, "every call reaches the downstream");
    assert!(statuses.iter().all(|s| *s == 502));
}

#[tokio::test]
async fn retries_outside_the_breaker_trip_it_after_fewer_logical_calls() {
    let retrying = ClientSettings {
        max_attempts: 4,
        ..fast()
    };
    let correct = failing_merchant(503).await;
    let (statuses, arrived) =
        logins(auth_config(&correct.uri(), retrying.clone()), &correct, 6).await;
    assert_eq!(
        statuses,
        [502, 502, 502, 502, 502, 503],
        "trips on the 5th logical call"
    );
    assert_eq!(arrived, 20);

    let defective = failing_merchant(503).await;
    let config = auth_config(&defective.uri(), retrying)
        .defect_for(Defect::RetriesOutsideBreaker, Downstream::Merchant);
    let (statuses, arrived) = logins(config, &defective, 6).await;
    // Call 1: four attempts = four breaker failures. Call 2: the fifth trips it, and
    // the loop stops at the refusal of its next attempt.
    assert_eq!(statuses, [502, 503, 503, 503, 503, 503]);
    assert_eq!(arrived, 5);
}

#[tokio::test]
async fn unlimited_half_open_lets_every_probe_through() {
    async fn probes(defects: Defects) -> usize {
        let open_timeout = Duration::from_millis(150);
        let switch = Switch::new(vec![
            fail(503),
            ok(json!({
                "merchant_id": "M001",
                "password_hash": reference_stack::password_hash("password123"),
            }))
            .set_delay(Duration::from_millis(400)),
        ]);
        let merchant = MockServer::start().await;
        Mock::given(path(LOOKUP))
            .respond_with(switch.clone())
            .mount(&merchant)
            .await;
        let settings = ClientSettings {
            open_timeout,
            ..single_attempt()
        };
        let auth = start(auth_config(&merchant.uri(), settings).defects(defects))
            .await
            .unwrap();
        let url = auth.url();
        for _ in 0..5 {
            login(&url).await;
        }
        switch.set(1);
        let_elapse(open_timeout + Duration::from_millis(50)).await;
        concurrently(10, || {
            let url = url.clone();
            async move { login(&url).await }
        })
        .await;
        auth.shutdown().await;
        arrivals(&merchant, LOOKUP).await - 5
    }
    assert_eq!(
        probes(Defects::none()).await,
        3,
        "half-open admits MaxRequests"
    );
    assert_eq!(
        probes(Defects::none().with(Defect::UnlimitedHalfOpen)).await,
        10,
        "every concurrent request becomes a probe"
    );
}

#[tokio::test]
async fn no_client_timeout_lets_a_hanging_downstream_hold_the_call() {
    let settings = ClientSettings {
        attempt_timeout: Duration::from_millis(100),
        ..single_attempt()
    };
    let hang = Duration::from_millis(1500);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(
            ok(json!({
                "merchant_id": "M001",
                "password_hash": reference_stack::password_hash("password123"),
            }))
            .set_delay(hang),
        )
        .mount(&merchant)
        .await;

    let auth = start(auth_config(&merchant.uri(), settings.clone()))
        .await
        .unwrap();
    let started = Instant::now();
    let (status, _) = login(&auth.url()).await;
    assert_eq!(status, 502);
    assert!(
        started.elapsed() < hang,
        "cut at the attempt timeout: {:?}",
        started.elapsed()
    );
    auth.shutdown().await;

    let auth = start(auth_config(&merchant.uri(), settings).defect(Defect::NoClientTimeout))
        .await
        .unwrap();
    let started = Instant::now();
    let (status, _) = login(&auth.url()).await;
    assert_eq!(status, 200, "waited for the slow answer");
    assert!(
        started.elapsed() >= hang,
        "held for {:?}",
        started.elapsed()
    );
    auth.shutdown().await;
}

#[tokio::test]
async fn retry_4xx_retries_client_errors() {
    let retrying = ClientSettings {
        max_attempts: 4,
        ..fast()
    };
    let correct = failing_merchant(400).await;
    let (_, arrived) = logins(auth_config(&correct.uri(), retrying.clone()), &correct, 1).await;
    assert_eq!(arrived, 1);
    let defective = failing_merchant(400).await;
    let config = auth_config(&defective.uri(), retrying).defect(Defect::Retry4xx);
    let (_, arrived) = logins(config, &defective, 1).await;
    assert_eq!(arrived, 4);
}

#[tokio::test]
async fn sync_notification_makes_a_notification_outage_fail_payments_and_webhooks() {
    /// (payment status, webhook status, payment latency) under a notification outage.
    async fn run(defects: Defects) -> (u16, u16, Duration) {
        let s = GatewayStandIns::healthy().await;
        let notification = Switch::new(vec![
            ok(json!({"notification_id": "N-1", "status": "queued"})),
            fail(503),
        ]);
        Mock::given(path("/api/v1/notifications"))
            .respond_with(notification.clone())
            .with_priority(1)
            .mount(&s.notification)
            .await;
        let settings = ClientSettings {
            retry_delay: Duration::from_millis(50),
            ..fast()
        };
        let gw = start(s.config().client_settings(settings).defects(defects))
            .await
            .unwrap();
        let url = gw.url();

        notification.set(1);
        let started = Instant::now();
        let (payment_status, _) = create_payment(&url, "ORDER-SYNC-1").await;
        let payment_time = started.elapsed();

        // A payment made while notifications work, then a callback during the outage.
        notification.set(0);
        let (status, created) = create_payment(&url, "ORDER-SYNC-2").await;
        assert_eq!(status, 200, "{created}");
        notification.set(1);
        let (hook_status, _) = post_json(
            &format!("{url}/api/v1/webhooks/card"),
            &json!({"payment_no": created["data"]["payment_no"], "status": "success"}),
        )
        .await;
        gw.shutdown().await;
        (payment_status, hook_status, payment_time)
    }
    let (payment, hook, fast_path) = run(Defects::none()).await;
    assert_eq!((payment, hook), (200, 200));
    let (payment, hook, slow_path) = run(Defects::none().with(Defect::SyncNotification)).await;
    assert_eq!((payment, hook), (500, 500));
    // The defect also puts the notification's retries (50+100+150 ms) on the path.
    assert!(slow_path >= Duration::from_millis(300), "{slow_path:?}");
    assert!(fast_path < slow_path, "{fast_path:?} vs {slow_path:?}");
}

#[tokio::test]
async fn order_retry_without_idempotency_drops_the_key_from_every_attempt() {
    async fn keys(defects: Defects) -> Vec<Option<String>> {
        let s = GatewayStandIns::healthy().await;
        let script = Script::new(vec![
            fail(503),
            ok(json!({"order_id": "ORD-1", "status": "created"})),
        ]);
        Mock::given(path("/api/v1/orders"))
            .respond_with(script)
            .with_priority(1)
            .mount(&s.order)
            .await;
        let gw = start(s.config().defects(defects)).await.unwrap();
        assert_eq!(create_payment(&gw.url(), "ORDER-IK").await.0, 200);
        gw.shutdown().await;
        received(&s.order, "/api/v1/orders")
            .await
            .iter()
            .map(|r| {
                r.headers
                    .get("Idempotency-Key")
                    .map(|v| v.to_str().unwrap().to_string())
            })
            .collect()
    }
    let correct = keys(Defects::none()).await;
    assert_eq!(correct.len(), 2, "the order create was retried once");
    assert!(
        correct[0].is_some() && correct[0] == correct[1],
        "{correct:?}"
    );
    let defective = keys(Defects::none().with(Defect::OrderRetryWithoutIdempotency)).await;
    assert_eq!(
        defective,
        vec![None, None],
        "a retry can duplicate the order"
    );
}

#[tokio::test]
async fn delete_failed_payments_loses_the_failed_payment() {
    async fn lookup(defects: Defects) -> (u16, serde_json::Value) {
        let s = GatewayStandIns::healthy().await;
        Mock::given(path("/api/v1/channel/payment"))
            .respond_with(fail(500))
            .with_priority(1)
            .mount(&s.channel)
            .await;
        let gw = start(
            s.config()
                .client_settings(single_attempt())
                .defects(defects),
        )
        .await
        .unwrap();
        let (status, answer) = create_payment(&gw.url(), "ORDER-DEL").await;
        assert_eq!(status, 502);
        let payment_no = answer["data"]["payment_no"].as_str().unwrap().to_string();
        let found = get_json(&format!("{}/api/v1/payments/{payment_no}", gw.url())).await;
        gw.shutdown().await;
        found
    }
    let (status, kept) = lookup(Defects::none()).await;
    assert_eq!(status, 200);
    assert_eq!(kept["data"]["status"], "failed");
    let (status, _) = lookup(Defects::none().with(Defect::DeleteFailedPayments)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn custom_thresholds_and_open_timeout_change_when_it_trips_and_recovers() {
    let custom = ClientSettings {
        min_requests: 2,
        failure_ratio: 1.0,
        open_timeout: Duration::from_millis(100),
        ..single_attempt()
    };
    let merchant = failing_merchant(503).await;
    let auth = start(auth_config(&merchant.uri(), custom)).await.unwrap();
    let url = auth.url();
    assert_eq!(login(&url).await.0, 502);
    assert_eq!(login(&url).await.0, 502);
    assert_eq!(login(&url).await.0, 503, "open after 2 failures");
    let_elapse(Duration::from_millis(150)).await;
    assert_eq!(login(&url).await.0, 502, "a half-open probe after 100 ms");
    assert_eq!(arrivals(&merchant, LOOKUP).await, 3);
    auth.shutdown().await;
}

#[tokio::test]
async fn defects_are_settable_from_the_env() {
    let merchant = failing_merchant(503).await;
    let config = ServiceConfig::from_env_vars(
        reference_stack::ServiceKind::MerchantAuthService,
        [
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("MERCHANT_SERVICE_URL", merchant.uri().as_str()),
            ("DEFECTS", "no_breaker@merchant"),
            ("RETRY_MAX_ATTEMPTS", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let (_, arrived) = logins(config, &merchant, 8).await;
    assert_eq!(arrived, 8);
}
