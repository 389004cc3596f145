//! Live control under traffic: switches take effect at once with no stale or
//! 404 answers, flapping follows its schedule, and the wiremock server behind
//! overrides rotates without a gap.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{client, stand_in};
use fault_injectors::{Fault, Injector, Override};
use wiremock::ResponseTemplate;
use wiremock::matchers::{method, path};

const SUMMARY: &str = "/api/v1/risk/merchants/M001/summary";

/// One request as the client saw it.
struct Seen {
    sent: Instant,
    done: Instant,
    status: u16,
}

/// Runs `workers` request loops against `url` until `stop` is set.
fn hammer(
    url: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Seen>>> {
    let http = client(Duration::from_secs(5));
    (0..workers)
        .map(|_| {
            let (http, url, stop) = (http.clone(), url.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let status = http
                        .get(&url)
                        .send()
                        .await
                        .expect("answered")
                        .status()
                        .as_u16();
                    seen.push(Seen {
                        sent,
                        done: Instant::now(),
                        status,
                    });
                }
                seen
            })
        })
        .collect()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Vec<Seen>>>) -> Vec<Seen> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_faults_under_load_has_no_stale_or_404_answers() {
    let risk = stand_in("risk-service", 3).await;
    risk.set_faults(vec![Fault::status(503)]).expect("valid");
    let stop = Arc::new(AtomicBool::new(false));
    let workers = hammer(format!("{}{SUMMARY}", risk.url()), 8, Arc::clone(&stop));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_500 = Instant::now();
    risk.set_faults(vec![Fault::status(500)]).expect("valid");
    let after_500 = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_clear = Instant::now();
    risk.clear_faults();
    let after_clear = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = collect(workers).await;

    let expected = |s: &Seen| -> Option<u16> {
        if s.done < before_500 {
            Some(503)
        } else if s.sent > after_500 && s.done < before_clear {
            Some(500)
        } else if s.sent > after_clear {
            Some(200)
        } else {
            None // in flight across a switch: either answer is right
        }
    };
    let mut checked = [0usize; 3];
    for s in &seen {
        assert_ne!(s.status, 404, "a 404 gap");
        if let Some(want) = expected(s) {
            assert_eq!(s.status, want, "stale answer");
            checked[match want {
                503 => 0,
                500 => 1,
                _ => 2,
            }] += 1;
        } else {
            assert!([503, 500, 200].contains(&s.status));
        }
    }
    assert!(
        checked.iter().all(|n| *n > 50),
        "too little traffic per phase: {checked:?}"
    );
}

/// Expected state of a flapping fault at `t` after it was set, or None near a
/// toggle, where timing jitter makes either state right.
fn phase(t: Duration, period: Duration, duty: f64, guard: Duration) -> Option<bool> {
    let p = period.as_secs_f64();
    let x = t.as_secs_f64() % p;
    let on_len = duty * p;
    let g = guard.as_secs_f64();
    let near = |edge: f64| (x - edge).abs() < g;
    if near(0.0) || near(on_len) || near(p) {
        return None;
    }
    Some(x < on_len)
}

/// When the injector's latest fault change happened, as an `Instant`.
fn last_change(injector: &Injector) -> Instant {
    let change = injector.fault_changes().pop().expect("a change");
    injector.clock().origin() + Duration::from_secs_f64(change.at_s)
}

#[tokio::test]
async fn flapping_status_follows_its_schedule() {
    let risk = stand_in("risk-service", 1).await;
    let (period, duty) = (Duration::from_millis(200), 0.5);
    risk.inject(Fault::status(503).flapping(period, duty))
        .expect("valid");
    let since = last_change(&risk);
    let http = client(Duration::from_secs(5));
    let url = format!("{}{SUMMARY}", risk.url());
    let (mut on, mut off) = (0, 0);
    while since.elapsed() < Duration::from_millis(1200) {
        let sent = Instant::now();
        let status = http
            .get(&url)
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16();
        let done = Instant::now();
        let guard = Duration::from_millis(15);
        let (a, b) = (
            phase(sent - since, period, duty, guard),
            phase(done - since, period, duty, guard),
        );
        if let (Some(a), Some(b)) = (a, b)
            && a == b
        {
            assert_eq!(status, if a { 503 } else { 200 }, "at {:?}", sent - since);
            if a { on += 1 } else { off += 1 }
        }
    }
    assert!(on > 50 && off > 50, "on {on}, off {off}");
}

// Several workers: the test's own client must not be what delays the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_refuse_opens_and_closes_the_port() {
    let risk = stand_in("risk-service", 1).await;
    let (period, duty) = (Duration::from_millis(200), 0.5);
    risk.inject(Fault::refuse().flapping(period, duty))
        .expect("valid");
    let since = last_change(&risk);
    let url = format!("{}{SUMMARY}", risk.url());
    // No pooling: every request opens a connection, as refuse is about
    // connecting.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds");
    let (mut refused, mut served) = (0, 0);
    while since.elapsed() < Duration::from_millis(1200) {
        let sent = Instant::now();
        let result = http.get(&url).send().await;
        let done = Instant::now();
        let guard = Duration::from_millis(15);
        let (a, b) = (
            phase(sent - since, period, duty, guard),
            phase(done - since, period, duty, guard),
        );
        if let (Some(a), Some(b)) = (a, b)
            && a == b
        {
            match (a, result) {
                (true, Err(e)) if e.is_connect() => refused += 1,
                (false, Ok(r)) if r.status() == 200 => served += 1,
                (state, other) => panic!("fault on={state} at {:?}: {other:?}", sent - since),
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(
        refused > 20 && served > 20,
        "refused {refused}, served {served}"
    );
}

#[tokio::test]
async fn overrides_use_the_wiremock_api_and_win_over_the_stand_in() {
    let orders = stand_in("order-service", 1).await;
    let http = client(Duration::from_secs(5));
    orders
        .mount(
            Override::given(method("POST"))
                .and(path("/api/v1/orders"))
                .respond_with(
                    ResponseTemplate::new(409).set_body_json(
                        serde_json::json!({"code": 409, "message": "duplicate order"}),
                    ),
                ),
        )
        .await;
    orders
        .mount(
            Override::given(method("GET"))
                .and(path("/teapot"))
                .respond_with(ResponseTemplate::new(418)),
        )
        .await;
    let created = http
        .post(format!("{}/api/v1/orders", orders.url()))
        .json(&common::order_body("O1"))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 409);
    let teapot = http
        .get(format!("{}/teapot", orders.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(teapot.status(), 418);
    // Faults apply to overridden routes like any other.
    orders
        .inject(Fault::status(503).path("/teapot"))
        .expect("valid");
    let faulted = http
        .get(format!("{}/teapot", orders.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(faulted.status(), 503);

    orders.clear_overrides().await;
    let back = http
        .post(format!("{}/api/v1/orders", orders.url()))
        .json(&common::order_body("O2"))
        .send()
        .await
        .expect("answered");
    assert_eq!(back.status(), 200, "the built-in route answers again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_server_rotates_under_load_without_a_gap() {
    let injector = Injector::builder("analytics-service")
        .rotate_every(100)
        .start()
        .await
        .expect("starts");
    injector
        .mount(
            Override::given(method("GET"))
                .and(path("/hot"))
                .respond_with(ResponseTemplate::new(202)),
        )
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers = hammer(format!("{}/hot", injector.url()), 8, Arc::clone(&stop));
    let deadline = Instant::now() + Duration::from_secs(20);
    while injector.status().override_rotations < 10 {
        assert!(Instant::now() < deadline, "no rotations happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = collect(workers).await;
    // Ten rotations, one every 100 requests: at least 1,000 answers crossed them.
    assert!(seen.len() >= 1000, "only {} answers", seen.len());
    assert!(
        seen.iter().all(|s| s.status == 202),
        "a request fell into a rotation gap"
    );
}
