//! Every fault kind as a real HTTP client sees it.

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::{client, incomplete_message, io_kind, order_body, stand_in};
use fault_injectors::clock::Clock;
use fault_injectors::decide::{Action, Key, decide, injector_seed};
use fault_injectors::program::FaultControl;
use fault_injectors::{Delay, Fault};
use http::Method;

const SUMMARY: &str = "/api/v1/risk/merchants/M001/summary";

#[tokio::test]
async fn no_fault_serves_the_stand_in() {
    let risk = stand_in("risk-service", 1).await;
    let body: serde_json::Value = client(Duration::from_secs(5))
        .get(format!("{}{SUMMARY}", risk.url()))
        .send()
        .await
        .expect("served")
        .json()
        .await
        .expect("json");
    assert_eq!(body["code"], 0);
    assert_eq!(body["data"]["merchant_id"], "M001");
    assert_eq!(risk.counters().by_outcome["served"], 1);
}

#[tokio::test]
async fn status_counts_are_exact_for_a_fixed_seed() {
    let seed = 20_261_122;
    let fault = Fault::status(503).rate(0.3);
    let risk = stand_in("risk-service", seed).await;
    risk.set_faults(vec![fault.clone()]).expect("valid");
    let http = client(Duration::from_secs(5));
    let n = 400;
    let mut seen = Vec::new();
    for _ in 0..n {
        let status = http
            .get(format!("{}{SUMMARY}", risk.url()))
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16();
        seen.push(status);
    }
    // The same pure decision function, same seed, same arrival numbers.
    let control = FaultControl::new(Clock::start());
    control.set(vec![fault]).expect("valid");
    let program = control.program();
    let expected: Vec<u16> = (0..n)
        .map(|seq| {
            let d = decide(
                injector_seed(seed, "risk-service"),
                seq,
                Key::Arrival,
                &program,
                Instant::now(),
                &Method::GET,
                SUMMARY,
            );
            if matches!(d.action, Action::Status { .. }) {
                503
            } else {
                200
            }
        })
        .collect();
    assert_eq!(
        seen, expected,
        "client-visible statuses follow the seeded decisions"
    );
    let failures = seen.iter().filter(|s| **s == 503).count();
    assert_eq!(risk.counters().by_outcome["status_503"], failures as u64);
}

#[tokio::test]
async fn status_rate_holds_across_seeds() {
    let http = client(Duration::from_secs(5));
    for seed in 1..=5 {
        let risk = stand_in("risk-service", seed).await;
        risk.inject(Fault::status(500).rate(0.3)).expect("valid");
        let mut failures = 0;
        for _ in 0..400 {
            let r = http
                .get(format!("{}{SUMMARY}", risk.url()))
                .send()
                .await
                .expect("answered");
            failures += usize::from(r.status() == 500);
        }
        // Binomial(400, 0.3): mean 120, sd 9.2; 5 sd either side.
        assert!(
            (74..=166).contains(&failures),
            "seed {seed}: {failures} failures"
        );
    }
}

#[tokio::test]
async fn status_fault_targets_method_and_path() {
    let orders = stand_in("order-service", 1).await;
    orders
        .inject(
            Fault::status(429)
                .method(Method::POST)
                .path("/api/v1/orders"),
        )
        .expect("valid");
    let http = client(Duration::from_secs(5));
    let post = http
        .post(format!("{}/api/v1/orders", orders.url()))
        .json(&order_body("O1"))
        .send()
        .await
        .expect("answered");
    assert_eq!(post.status(), 429);
    assert_eq!(post.headers()["retry-after"], "1");
    let health = http
        .get(format!("{}/health/live", orders.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn fixed_latency_delays_by_that_much() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::latency(Delay::Fixed(Duration::from_millis(120))))
        .expect("valid");
    let http = client(Duration::from_secs(5));
    for _ in 0..3 {
        let started = Instant::now();
        let r = http
            .get(format!("{}{SUMMARY}", risk.url()))
            .send()
            .await
            .expect("served");
        let elapsed = started.elapsed();
        assert_eq!(r.status(), 200);
        assert!(elapsed >= Duration::from_millis(120), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(200), "{elapsed:?}");
    }
    assert_eq!(risk.counters().delayed, 3);
}

// The injector's own workers: the clients' load must not delay its timers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lognormal_latency_median_as_configured() {
    let fault = Fault::latency(Delay::LogNormal {
        median: Duration::from_millis(40),
        sigma: 0.5,
    });
    let risk = stand_in("risk-service", 99).await;
    risk.inject(fault.clone()).expect("valid");
    let http = client(Duration::from_secs(10));
    let url = format!("{}{SUMMARY}", risk.url());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                for _ in 0..10 {
                    let started = Instant::now();
                    http.get(&url).send().await.expect("served");
                    times.push(started.elapsed());
                }
                times
            })
        })
        .collect();
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.expect("task"));
    }
    times.sort();
    // The delays drawn for these 400 arrivals (the same pure decision
    // function, seed and arrival numbers): their distribution is the
    // configured one — sample median within 12 % (standard error ≈ 3 %)...
    let control = FaultControl::new(Clock::start());
    control.set(vec![fault]).expect("valid");
    let program = control.program();
    let mut drawn: Vec<f64> = (0..times.len() as u64)
        .map(|seq| {
            let d = decide(
                injector_seed(99, "risk-service"),
                seq,
                Key::Arrival,
                &program,
                Instant::now(),
                &Method::GET,
                SUMMARY,
            );
            d.delay.as_secs_f64() * 1e3
        })
        .collect();
    drawn.sort_by(f64::total_cmp);
    let drawn_median = drawn[drawn.len() / 2];
    assert!(
        (35.2..=44.8).contains(&drawn_median),
        "drawn median {drawn_median:.1} ms"
    );
    // ...with its tail: e^(1.2816 × 0.5) ≈ 1.9 × the median at p90.
    let drawn_p90 = drawn[drawn.len() * 9 / 10];
    assert!(
        drawn_p90 > 60.0,
        "p90 {drawn_p90:.1} ms shows no lognormal tail"
    );
    // ...and the clients waited that long: never less than drawn (up to the
    // timer's slack), more only by HTTP overhead, which a loaded machine can
    // stretch to several milliseconds.
    let seen = |q: f64| times[(times.len() as f64 * q) as usize].as_secs_f64() * 1e3;
    let (median, p90) = (seen(0.5), seen(0.9));
    assert!(
        median >= drawn_median - 0.5 && median <= drawn_median + 25.0,
        "clients' median {median:.1} ms vs drawn {drawn_median:.1} ms"
    );
    assert!(
        p90 >= drawn_p90 - 0.5,
        "clients' p90 {p90:.1} ms vs drawn {drawn_p90:.1} ms"
    );
}

#[tokio::test]
async fn refuse_refuses_connections_then_the_port_comes_back() {
    let risk = stand_in("risk-service", 1).await;
    let http = client(Duration::from_secs(5));
    let url = format!("{}{SUMMARY}", risk.url());
    assert_eq!(http.get(&url).send().await.expect("up").status(), 200);
    risk.inject(Fault::refuse().id("down")).expect("valid");
    // The pooled connection dies with the outage, as with a crashed process.
    let err = http.get(&url).send().await.expect_err("connection dropped");
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    // New connections are refused.
    let err = client(Duration::from_secs(5))
        .get(&url)
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(io_kind(&err), Some(io::ErrorKind::ConnectionRefused));
    assert_eq!(
        risk.counters().attempts,
        1,
        "nothing arrives during an outage"
    );
    assert!(risk.clear_fault("down"));
    let r = http.get(&url).send().await.expect("listening again");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn reset_is_a_connection_reset() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::reset()).expect("valid");
    let err = client(Duration::from_secs(5))
        .get(format!("{}{SUMMARY}", risk.url()))
        .send()
        .await
        .expect_err("reset");
    assert_eq!(
        io_kind(&err),
        Some(io::ErrorKind::ConnectionReset),
        "{err:?}"
    );
    assert_eq!(risk.counters().by_outcome["reset"], 1);
}

#[tokio::test]
async fn reset_mid_response_cuts_the_body() {
    let orders = stand_in("order-service", 1).await;
    orders.inject(Fault::reset_mid_response()).expect("valid");
    let response = client(Duration::from_secs(5))
        .post(format!("{}/api/v1/orders", orders.url()))
        .json(&order_body("O1"))
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status(), 200);
    let err = response.bytes().await.expect_err("body cut");
    assert!(err.is_body() || err.is_decode(), "{err:?}");
}

#[tokio::test]
async fn hang_times_the_client_out_and_resumes_when_cleared() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::hang().id("stuck")).expect("valid");
    let url = format!("{}{SUMMARY}", risk.url());
    let err = client(Duration::from_millis(300))
        .get(&url)
        .send()
        .await
        .expect_err("hangs");
    assert!(err.is_timeout(), "{err:?}");

    let patient = client(Duration::from_secs(10));
    let started = Instant::now();
    let pending = tokio::spawn(async move { patient.get(&url).send().await });
    // Wait until the request is being held, then clear the fault.
    let deadline = Instant::now() + Duration::from_secs(5);
    while risk.counters().attempts < 2 {
        assert!(Instant::now() < deadline, "second request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    risk.clear_fault("stuck");
    let response = pending.await.expect("task").expect("served after the hang");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn empty_response_closes_without_a_byte() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::empty_response()).expect("valid");
    let err = client(Duration::from_secs(5))
        .get(format!("{}{SUMMARY}", risk.url()))
        .send()
        .await
        .expect_err("no response");
    assert!(!err.is_timeout() && !err.is_connect(), "{err:?}");
    assert!(incomplete_message(&err), "{err:?}");
}

#[tokio::test]
async fn empty_body_keeps_status_and_drops_the_body() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::empty_body()).expect("valid");
    let response = client(Duration::from_secs(5))
        .get(format!("{}{SUMMARY}", risk.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let err = response
        .json::<serde_json::Value>()
        .await
        .expect_err("no JSON");
    assert!(err.is_decode(), "{err:?}");
}

#[tokio::test]
async fn malformed_body_fails_to_decode() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::malformed_body()).expect("valid");
    let response = client(Duration::from_secs(5))
        .get(format!("{}{SUMMARY}", risk.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let err = response
        .json::<serde_json::Value>()
        .await
        .expect_err("malformed");
    assert!(err.is_decode(), "{err:?}");
}

#[tokio::test]
async fn slow_body_sends_headers_at_once_and_the_body_over_time() {
    let risk = stand_in("risk-service", 1).await;
    risk.inject(Fault::slow_body(Duration::from_millis(400)))
        .expect("valid");
    let started = Instant::now();
    let response = client(Duration::from_secs(5))
        .get(format!("{}{SUMMARY}", risk.url()))
        .send()
        .await
        .expect("headers");
    let headers_at = started.elapsed();
    let body: serde_json::Value = response.json().await.expect("whole body, eventually");
    let body_at = started.elapsed();
    assert!(
        headers_at < Duration::from_millis(150),
        "headers after {headers_at:?}"
    );
    assert!(
        body_at >= Duration::from_millis(400),
        "body after {body_at:?}"
    );
    assert_eq!(body["data"]["merchant_id"], "M001");
}

#[tokio::test]
async fn faults_combine_latency_with_errors() {
    let risk = stand_in("risk-service", 5).await;
    risk.set_faults(vec![
        Fault::status(503).rate(0.3),
        Fault::latency(Delay::Fixed(Duration::from_millis(30))),
    ])
    .expect("valid");
    let http = client(Duration::from_secs(5));
    let mut statuses = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let started = Instant::now();
        let r = http
            .get(format!("{}{SUMMARY}", risk.url()))
            .send()
            .await
            .expect("answered");
        assert!(started.elapsed() >= Duration::from_millis(30));
        statuses.insert(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 503].into_iter().collect());
    assert_eq!(risk.counters().delayed, 30);
}
