//! Injector benchmark: `cargo bench -p fault-injectors --bench injector`.
//!
//! Prints, in one run:
//! - throughput with no fault vs a bare trivial hyper server (closed loop,
//!   same load generator, same process and cores), for a stand-in and a
//!   front, each on the production path (decision log written, every arrival
//!   observed) and with both off: what observation costs (target: on ≥ 0.9 ×
//!   off); `wrk -t1 -c32` as an external generator too, when installed;
//! - latency the injector adds in front of a service (p50/p99);
//! - delay error (measured − configured) for 10 ms and 100 ms delays at an
//!   open-loop 1 000 requests/s;
//! - resident memory every 250 000 requests up to 1 000 000 through a
//!   stand-in, and through wiremock overrides with server rotation.
//!
//! `FI_BENCH_SECONDS` (default 5) sets each throughput window;
//! `FI_BENCH_REQUESTS` (default 1000000) the memory run's length.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_injectors::{Delay, Fault, Injector, Override};
use hdrhistogram::Histogram;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

const RISK_SUMMARY: &str = "/api/v1/risk/merchants/M001/summary";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The anchor: a trivial hyper server answering `hello` to everything.
async fn hyper_hello() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"hello"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `wrk -t1 -c32` for `secs` against `url`: requests/s, None without wrk.
fn wrk(url: &str, secs: u64) -> Option<f64> {
    let output = std::process::Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{secs}s"), url])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// What one load-generator request looks like.
#[derive(Clone)]
struct Shot {
    addr: SocketAddr,
    method: Method,
    path: String,
    body: Option<fn(u64) -> Bytes>,
}

impl Shot {
    fn get(addr: SocketAddr, path: &str) -> Self {
        Self {
            addr,
            method: Method::GET,
            path: path.to_string(),
            body: None,
        }
    }

    fn request(&self, n: u64) -> Request<Full<Bytes>> {
        let body = self.body.map_or_else(Bytes::new, |f| f(n));
        Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request builds")
    }
}

/// A unique order per call, as real payment traffic would send.
fn order_body(_: u64) -> Bytes {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Bytes::from(format!(
        r#"{{"merchant_id":"M001","order_no":"ORD-{n}","payment_no":"PAY-{n}","amount":1250,"currency":"USD","customer_email":"a@example.com"}}"#
    ))
}

/// Closed loop: `conns` keep-alive connections send back to back until
/// `total` requests or `window` elapses; returns (requests, seconds).
async fn closed_loop(shot: &Shot, conns: usize, window: Duration, total: u64) -> (u64, f64) {
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (shot, sent, stop) = (shot.clone(), Arc::clone(&sent), Arc::clone(&stop));
            tokio::spawn(async move {
                let stream = TcpStream::connect(shot.addr).await.expect("connect");
                let _ = stream.set_nodelay(true);
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= total || Instant::now() >= deadline {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    sender.ready().await.expect("connection usable");
                    let response = sender
                        .send_request(shot.request(n))
                        .await
                        .expect("answered");
                    let _ = response.into_body().collect().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    let done = sent.load(Ordering::Relaxed).min(total);
    (done, started.elapsed().as_secs_f64())
}

async fn throughput(shot: &Shot, window: Duration) -> f64 {
    closed_loop(shot, 32, Duration::from_millis(500), u64::MAX).await; // warm up
    let (n, secs) = closed_loop(shot, 32, window, u64::MAX).await;
    n as f64 / secs
}

/// Sequential latency, one connection per target, targets taken in turn
/// (so drift in machine load hits them alike); microseconds.
async fn latency(shots: &[Shot], n: u64) -> Vec<Histogram<u64>> {
    let mut senders = Vec::new();
    for shot in shots {
        let stream = TcpStream::connect(shot.addr).await.expect("connect");
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let mut hists = vec![Histogram::<u64>::new(3).expect("histogram"); shots.len()];
    for i in 0..n + 500 {
        for ((shot, sender), hist) in shots.iter().zip(&mut senders).zip(&mut hists) {
            sender.ready().await.expect("connection usable");
            let started = Instant::now();
            let response = sender
                .send_request(shot.request(i))
                .await
                .expect("answered");
            let _ = response.into_body().collect().await;
            if i >= 500 {
                hist.record(started.elapsed().as_micros() as u64)
                    .expect("in range");
            }
        }
    }
    hists
}

/// Open loop at `rate`/s for `window`: each request leaves at its scheduled
/// instant; returns the histogram of (latency − delay) in microseconds,
/// floored at zero, and the share of requests sent more than 1 ms late.
async fn delay_error(
    url: &str,
    delay: Duration,
    rate: u64,
    window: Duration,
) -> (Histogram<u64>, f64) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let hist = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new(3).expect("histogram"),
    ));
    let late = Arc::new(AtomicU64::new(0));
    let total = rate * window.as_secs();
    let interval = Duration::from_secs(1) / rate as u32;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + interval * i as u32;
        tokio::time::sleep_until(at).await;
        if at.elapsed() > Duration::from_millis(1) {
            late.fetch_add(1, Ordering::Relaxed);
        }
        let (client, hist, url) = (client.clone(), Arc::clone(&hist), url.to_string());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let request = Request::get(url)
                .body(Full::new(Bytes::new()))
                .expect("request");
            let response = client.request(request).await.expect("answered");
            let _ = response.into_body().collect().await;
            let error = sent.elapsed().saturating_sub(delay);
            hist.lock()
                .expect("lock")
                .record(error.as_micros() as u64)
                .expect("in range");
        }));
    }
    for t in tasks {
        t.await.expect("request task");
    }
    let hist = hist.lock().expect("lock").clone();
    (hist, late.load(Ordering::Relaxed) as f64 / total as f64)
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn memory_run(label: &str, shot: &Shot, total: u64) {
    let step = (total / 4).max(1);
    let mut done = 0;
    let mut line = format!("  {label}: RSS MB at 0 = {:.0}", rss_mb());
    let started = Instant::now();
    while done < total {
        let (n, _) = closed_loop(shot, 32, Duration::from_secs(3600), step).await;
        done += n;
        line += &format!(", {}k = {:.0}", done / 1000, rss_mb());
    }
    println!(
        "{line}  ({:.0} req/s)",
        done as f64 / started.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let window = Duration::from_secs(env_u64("FI_BENCH_SECONDS", 5));
    let total = env_u64("FI_BENCH_REQUESTS", 1_000_000);
    println!(
        "fault-injectors benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Throughput.
    let hello = hyper_hello().await;
    let logs = std::env::temp_dir().join(format!("fi-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&logs);
    // The production path: a decision log written, every arrival observed.
    let risk = Injector::builder("risk-service")
        .decision_log(logs.join("risk.tsv"))
        .start()
        .await
        .expect("stand-in");
    let risk_off = Injector::builder("risk-service")
        .without_observation()
        .start()
        .await
        .expect("stand-in");
    let front = Injector::builder("hello-front")
        .front(format!("http://{hello}"))
        .decision_log(logs.join("front.tsv"))
        .start()
        .await
        .expect("front");
    let front_off = Injector::builder("hello-front")
        .front(format!("http://{hello}"))
        .without_observation()
        .start()
        .await
        .expect("front");
    let bare = throughput(&Shot::get(hello, "/hello"), window).await;
    // On and off alternate, twice, so drift in machine load hits both alike.
    let (mut stand_in, mut stand_in_off, mut fronted, mut fronted_off) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        stand_in_off += throughput(&Shot::get(risk_off.addr(), RISK_SUMMARY), window).await / 2.0;
        stand_in += throughput(&Shot::get(risk.addr(), RISK_SUMMARY), window).await / 2.0;
        fronted_off += throughput(&Shot::get(front_off.addr(), "/hello"), window).await / 2.0;
        fronted += throughput(&Shot::get(front.addr(), "/hello"), window).await / 2.0;
    }
    println!(
        "throughput, no fault, 32 connections, {}s windows (on = decision log + observation, off = neither; mean of two alternating runs):",
        window.as_secs()
    );
    println!("  bare hyper hello                 {bare:>9.0} req/s");
    println!(
        "  injector stand-in route, on      {stand_in:>9.0} req/s   ratio {:.2} to bare (target >= 0.5)",
        stand_in / bare
    );
    println!(
        "  injector stand-in route, off     {stand_in_off:>9.0} req/s   on/off {:.2} (target >= 0.9)",
        stand_in / stand_in_off
    );
    println!(
        "  injector front -> hyper, on      {fronted:>9.0} req/s   ratio {:.2} to bare",
        fronted / bare
    );
    println!(
        "  injector front -> hyper, off     {fronted_off:>9.0} req/s   on/off {:.2} (target >= 0.9)",
        fronted / fronted_off
    );
    match (
        wrk(&format!("http://{hello}/hello"), window.as_secs()),
        wrk(&format!("{}{RISK_SUMMARY}", risk.url()), window.as_secs()),
    ) {
        (Some(w_bare), Some(w_risk)) => println!(
            "  wrk -t1 -c32: bare {w_bare:.0} req/s, stand-in (on) {w_risk:.0} req/s   ratio {:.2}",
            w_risk / w_bare
        ),
        _ => println!("  wrk: not installed (apt-get install wrk) — external generator skipped"),
    }
    drop((risk_off, front_off));

    // 2. Added latency.
    let hists = latency(
        &[
            Shot::get(hello, "/hello"),
            Shot::get(front.addr(), "/hello"),
            Shot::get(risk.addr(), RISK_SUMMARY),
        ],
        20_000,
    )
    .await;
    let (direct, via, standin) = (&hists[0], &hists[1], &hists[2]);
    println!("latency, one connection each, sequential, interleaved (20 000 requests each):");
    println!(
        "  bare hyper hello           p50 {:.3} ms  p99 {:.3} ms",
        ms(direct.value_at_quantile(0.5)),
        ms(direct.value_at_quantile(0.99))
    );
    println!(
        "  injector front -> hyper    p50 {:.3} ms  p99 {:.3} ms",
        ms(via.value_at_quantile(0.5)),
        ms(via.value_at_quantile(0.99))
    );
    println!(
        "  injector stand-in route    p50 {:.3} ms  p99 {:.3} ms",
        ms(standin.value_at_quantile(0.5)),
        ms(standin.value_at_quantile(0.99))
    );
    println!(
        "  added by the injector      p50 {:.3} ms  p99 {:.3} ms   (target p50 <= 0.3 ms)",
        ms(via
            .value_at_quantile(0.5)
            .saturating_sub(direct.value_at_quantile(0.5))),
        ms(via
            .value_at_quantile(0.99)
            .saturating_sub(direct.value_at_quantile(0.99)))
    );

    // 3. Delay accuracy at 1k rps, open loop.
    println!("delay error (measured - configured), open loop 1000 req/s, 5 s:");
    for delay_ms in [10, 100] {
        let delay = Duration::from_millis(delay_ms);
        risk.set_faults(vec![Fault::latency(Delay::Fixed(delay))])
            .expect("valid");
        let (err, late) = delay_error(
            &format!("{}{RISK_SUMMARY}", risk.url()),
            delay,
            1000,
            Duration::from_secs(5),
        )
        .await;
        println!(
            "  {delay_ms:>3} ms delay               p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} requests, generator {:.1}% >1 ms late)   (target p99 <= 2 ms)",
            ms(err.value_at_quantile(0.5)),
            ms(err.value_at_quantile(0.99)),
            ms(err.max()),
            err.len(),
            late * 100.0
        );
    }
    risk.clear_faults();

    // 4. Memory.
    println!("memory, closed loop, 32 connections:");
    memory_run(
        "stand-in GET route (no ids)",
        &Shot::get(risk.addr(), RISK_SUMMARY),
        total,
    )
    .await;
    let orders = Injector::builder("order-service")
        .start()
        .await
        .expect("stand-in");
    let post = Shot {
        addr: orders.addr(),
        method: Method::POST,
        path: "/api/v1/orders".into(),
        body: Some(order_body),
    };
    memory_run("stand-in POST /api/v1/orders (ids tracked)", &post, total).await;
    let c = orders.counters();
    println!(
        "    counted {} attempts, {} duplicate effects",
        c.attempts, c.ids["order_no"].duplicate_effects
    );
    let over = Injector::builder("overrides")
        .front(format!("http://{hello}"))
        .start()
        .await
        .expect("front");
    over.mount(
        Override::given(wiremock::matchers::method("GET"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("from wiremock")),
    )
    .await;
    memory_run(
        "wiremock override, rotated every 10 000",
        &Shot::get(over.addr(), "/x"),
        total / 2,
    )
    .await;
    println!(
        "    wiremock server rotations: {}",
        over.status().override_rotations
    );
}
