//! Breaker flavours through a running service: pybreaker's lock serialises calls,
//! opossum's reset timer and Envoy's sweeps move the breaker without a request.

use std::time::{Duration, Instant};

use reference_stack::{BreakerFlavour, ClientSettings, Downstream, ServiceConfig, State, start};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// How long the slow stand-in takes to answer.
const SLOW: Duration = Duration::from_millis(300);

fn lookup_ok() -> ResponseTemplate {
    ok(serde_json::json!({
        "merchant_id": "M001",
        "password_hash": reference_stack::password_hash("password123"),
        "status": "active",
    }))
}

fn one_attempt(breaker: BreakerFlavour) -> ClientSettings {
    ClientSettings {
        breaker,
        max_attempts: 1,
        ..fast()
    }
}

async fn stand_in(script: &Script) -> MockServer {
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(script.clone())
        .mount(&merchant)
        .await;
    merchant
}

/// Two logins at once through one breaker to a stand-in answering in [`SLOW`]: how
/// long both took, and how far apart their lookups arrived.
async fn two_at_once(breaker: BreakerFlavour) -> (Duration, Duration) {
    let script = Script::new(vec![lookup_ok().set_delay(SLOW)]);
    let merchant = stand_in(&script).await;
    let auth = start(auth_config(&merchant.uri(), one_attempt(breaker)))
        .await
        .unwrap();
    let url = auth.url();
    let started = Instant::now();
    let statuses = concurrently(2, || {
        let url = url.clone();
        async move { login(&url).await }
    })
    .await;
    let took = started.elapsed();
    assert_eq!(statuses, [200, 200]);
    let arrivals = script.arrivals();
    assert_eq!(arrivals.len(), 2);
    auth.shutdown().await;
    (took, arrivals[1] - arrivals[0])
}

#[tokio::test]
async fn pybreaker_runs_the_calls_through_one_breaker_one_at_a_time() {
    let (took, gap) = two_at_once(BreakerFlavour::Pybreaker).await;
    // The second call's lookup is sent only once the first call has finished.
    assert!(
        gap >= SLOW - Duration::from_millis(10),
        "lookups {gap:?} apart"
    );
    assert!(took >= SLOW * 2, "two serialised calls took {took:?}");
    assert!(took < SLOW * 3, "two serialised calls took {took:?}");

    // The same calls through gobreaker overlap: the test tells the two apart.
    let (took, gap) = two_at_once(BreakerFlavour::Gobreaker).await;
    assert!(gap < SLOW / 2, "lookups {gap:?} apart");
    assert!(took < SLOW * 3 / 2, "two concurrent calls took {took:?}");
}

#[tokio::test]
async fn pybreaker_calls_made_while_open_wait_for_the_lock_then_are_refused_at_once() {
    let script = Script::new(vec![fail(503).set_delay(SLOW)]);
    let merchant = stand_in(&script).await;
    let settings = ClientSettings {
        min_requests: 2, // fail_max
        ..one_attempt(BreakerFlavour::Pybreaker)
    };
    let auth = start(auth_config(&merchant.uri(), settings)).await.unwrap();
    let url = auth.url();
    assert_eq!(login(&url).await.0, 502, "first consecutive failure");

    // The second failure holds the lock for SLOW and trips the breaker; a call made
    // meanwhile waits for the lock, then is refused without reaching the stand-in.
    let tripping = tokio::spawn({
        let url = url.clone();
        async move {
            let status = login(&url).await.0;
            (status, Instant::now())
        }
    });
    wait_until(
        "the tripping lookup to arrive",
        Duration::from_secs(2),
        || async { script.arrivals().len() == 2 },
    )
    .await;
    let waiting_since = Instant::now();
    let (status, _) = login(&url).await;
    let refused_at = Instant::now();
    let (tripping_status, tripped_at) = tripping.await.unwrap();
    assert_eq!(tripping_status, 502);
    assert_eq!(status, 503, "refused by the open breaker");
    assert_eq!(script.arrivals().len(), 2, "the refused call sent nothing");
    assert!(
        refused_at - waiting_since >= SLOW / 2,
        "it waited for the lock: {:?}",
        refused_at - waiting_since
    );
    assert!(
        refused_at.saturating_duration_since(tripped_at) < Duration::from_millis(100),
        "refused as soon as it had the lock: {:?} after the trip",
        refused_at.saturating_duration_since(tripped_at)
    );

    // With nobody holding the lock, a call while open is refused at once.
    let started = Instant::now();
    assert_eq!(login(&url).await.0, 503);
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(script.arrivals().len(), 2);
    auth.shutdown().await;
}

#[tokio::test]
async fn opossum_goes_half_open_by_its_timer_and_the_transition_carries_the_timer_instant() {
    let reset_timeout = Duration::from_millis(200);
    let switch = Switch::new(vec![fail(503), lookup_ok()]);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(switch.clone())
        .mount(&merchant)
        .await;
    let settings = ClientSettings {
        open_timeout: reset_timeout,
        ..one_attempt(BreakerFlavour::Opossum)
    };
    let auth = start(auth_config(&merchant.uri(), settings)).await.unwrap();
    let url = auth.url();
    for _ in 0..5 {
        assert_eq!(login(&url).await.0, 502);
    }
    assert_eq!(auth.breaker_state(Downstream::Merchant), Some(State::Open));

    // No request comes; a scrape well after the timer shows it fired, at its instant.
    let_elapse(reset_timeout * 2).await;
    let metrics = auth.metrics_text();
    let gauge =
        r#"circuit_breaker_state{service="merchant-auth-service",downstream="merchant-service"} 1"#;
    assert!(metrics.contains(gauge), "half-open by timer:\n{metrics}");
    let transitions = auth.breaker_transitions();
    let kinds: Vec<(State, State)> = transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        kinds,
        [(State::Closed, State::Open), (State::Open, State::HalfOpen)]
    );
    let timer = transitions[1].at - transitions[0].at;
    assert_eq!(
        timer, reset_timeout,
        "stamped at the timer, not at the scrape"
    );

    // The single trial succeeds and closes it.
    switch.set(1);
    assert_eq!(login(&url).await.0, 200);
    assert_eq!(
        auth.breaker_state(Downstream::Merchant),
        Some(State::Closed)
    );
    auth.shutdown().await;
}

#[tokio::test]
async fn envoy_counts_each_attempt_and_lifts_the_ejection_on_a_sweep() {
    // time_scale 0.01: sweeps every 100 ms, first ejection 200 ms, backoff 5 ms.
    let settings = ClientSettings {
        breaker: BreakerFlavour::Envoy,
        open_timeout: Duration::from_secs(20),
        retry_delay: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(100),
        ..ClientSettings::platform()
    };
    let switch = Switch::new(vec![fail(503), lookup_ok()]);
    let merchant = MockServer::start().await;
    Mock::given(path(LOOKUP))
        .respond_with(switch.clone())
        .mount(&merchant)
        .await;
    let auth = start(
        ServiceConfig::merchant_auth()
            .client_settings(settings)
            .time_scale(0.01)
            .downstream_url(Downstream::Merchant, merchant.uri()),
    )
    .await
    .unwrap();
    let url = auth.url();
    // The first call's four attempts are four 5xx; the second call's first attempt is
    // the fifth and ejects the host, and its retry is answered by the proxy at once.
    assert_eq!(login(&url).await.0, 502);
    assert_eq!(login(&url).await.0, 503);
    assert_eq!(arrivals(&merchant, LOOKUP).await, 5);
    assert_eq!(auth.breaker_state(Downstream::Merchant), Some(State::Open));

    switch.set(1);
    assert!(
        auth.wait_for_breaker(Downstream::Merchant, State::Closed, Duration::from_secs(2))
            .await,
        "a sweep un-ejects the host"
    );
    let transitions = auth.breaker_transitions();
    let kinds: Vec<(State, State)> = transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        kinds,
        [(State::Closed, State::Open), (State::Open, State::Closed)],
        "no half-open"
    );
    let ejected_for = transitions[1].at - transitions[0].at;
    assert!(
        ejected_for >= Duration::from_millis(200) && ejected_for < Duration::from_millis(300),
        "lifted by the first sweep after the 200 ms ejection: {ejected_for:?}"
    );
    // Un-ejected means all traffic flows again.
    let statuses = concurrently(6, || {
        let url = url.clone();
        async move { login(&url).await }
    })
    .await;
    assert_eq!(statuses, [200; 6]);
    auth.shutdown().await;
}
