//! Harness load benchmark: `cargo bench --bench harness`.
//!
//! Prints, in one run, against one target — a trivial hyper server in a
//! child process, so the generator's CPU is measured alone:
//! - closed loop, 32 connections: requests/s and CPU per 100 000 requests of
//!   `wrk -t1 -c32` (the anchor, when `wrk` is installed) and of the
//!   harness's closed model with 32 users, and their ratios (targets: ≥ 0.8×
//!   wrk's rate, ≤ 1.5× wrk's CPU);
//! - the open model at 0.5×, 0.8× and 1.0× of that measured capacity:
//!   requests sent of those scheduled, lateness (actual − intended send)
//!   p50/p99/max, connections opened (target at 0.8×: p99 ≤ 5 ms);
//! - the open model's maximum schedule-keeping rate (p99 lateness ≤ 5 ms,
//!   nothing dropped, ≥ 98 % sent), found by bisection.
//!
//! The production path runs: every request's record spilled to a file and
//! flushed by a task as a run does, progress line off. Lateness is read back
//! from the spilled records (intended vs sent).
//!
//! `FH_BENCH_SECONDS` (default 5) sets each window.

#[path = "support/env.rs"]
mod env;
#[path = "support/target.rs"]
mod target;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::load::driver::{Lane, LoadSettings, drive};
use faultline::load::journeys::Caller;
use faultline::load::recorder::{Recorder, SeriesSpec};
use faultline::load::requests::RequestRecord;
use faultline::platform::JourneyKind;
use faultline::scenario::{Journey, Merchant, Model, Phase};
use faultline::spill::Spill;
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

const CONNECTIONS: usize = 32;

/// A window keeps its schedule when its lateness p99 is at most this.
const KEEP_P99_US: u64 = 5_000;

fn seconds() -> u64 {
    env::env_or("FH_BENCH_SECONDS", 5.0) as u64
}

struct Closed {
    rate: f64,
    cpu_per_100k: f64,
}

/// wrk with one thread and `CONNECTIONS` connections; None without wrk.
fn wrk(addr: SocketAddr, secs: u64) -> Option<Closed> {
    let (_, before) = target::cpu_seconds();
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{secs}s"),
            &format!("http://{addr}/api/v1/merchants/M001/dashboard"),
        ])
        .output()
        .ok()?;
    let (_, after) = target::cpu_seconds();
    let text = String::from_utf8_lossy(&output.stdout);
    let requests: f64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())?;
    let rate: f64 = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())?;
    Some(Closed {
        rate,
        cpu_per_100k: (after - before) / requests * 100_000.0,
    })
}

fn merchant() -> Merchant {
    Merchant {
        id: "M001".into(),
        api_key: "k".into(),
        api_secret: "s".into(),
        signature: reference_stack::SignatureVersion::V1,
        password: "p".into(),
    }
}

fn journey(model: Model, rate: f64) -> Journey {
    Journey {
        name: "dashboard".into(),
        kind: JourneyKind::Dashboard,
        rate: match model {
            Model::Open => vec![(Duration::ZERO, rate)],
            Model::Closed => Vec::new(),
        },
        users: CONNECTIONS as u32,
        think: Duration::ZERO,
        webhook: false,
        success_statuses: vec![200],
        expects: Vec::new(),
    }
}

/// What one harness run measured.
struct Run {
    requests: u64,
    dropped: u64,
    /// Lateness (sent − intended), µs, of every request sent.
    lateness: Histogram<u64>,
    cpu_s: f64,
    secs: f64,
    connections: u64,
    /// Lateness p99 of each window, µs (from the recorder).
    windows: Vec<u64>,
}

impl Run {
    fn p(&self, q: f64) -> f64 {
        self.lateness.value_at_quantile(q) as f64 / 1000.0
    }

    fn keeps(&self, scheduled: f64) -> bool {
        self.dropped == 0
            && self.requests as f64 >= 0.98 * scheduled
            && self.lateness.value_at_quantile(0.99) <= KEEP_P99_US
    }
}

/// The harness's driver, on the production path.
async fn harness(url: &str, model: Model, rate: f64, secs: u64) -> Run {
    let duration = Duration::from_secs(secs);
    let phases = vec![Phase {
        name: "all".into(),
        from: Duration::ZERO,
        until: duration,
    }];
    let spec = SeriesSpec {
        name: "dashboard".into(),
        journey: "dashboard".into(),
        kind: JourneyKind::Dashboard,
    };
    let recorder = Arc::new(Recorder::new(
        vec![spec],
        phases,
        Duration::from_secs(1),
        Duration::from_secs(10),
    ));
    let lane = Lane {
        journey: journey(model, rate),
        index: 0,
        target: url.to_string(),
        series: 0,
        webhook_series: None,
    };
    let path = std::env::temp_dir().join(format!("faultline-bench-{}.bin", std::process::id()));
    let requests = Arc::new(Spill::<RequestRecord>::create(&path).expect("spill file"));
    let settings = LoadSettings {
        model,
        duration,
        timeout: Duration::from_secs(10),
        max_lag: Duration::from_secs(1),
        requests: Some(Arc::clone(&requests)),
        // The dashboard journey acknowledges no payment.
        acks: None,
        slice: faultline::load::schedule::Slice::WHOLE,
    };
    let flusher = {
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                requests.flush();
            }
        })
    };
    let load_start = Instant::now() + Duration::from_millis(500);
    let (cpu_before, _) = target::cpu_seconds();
    let stats = drive(
        vec![lane],
        &settings,
        Arc::new(Caller::new(merchant(), "BENCH")),
        Arc::clone(&recorder),
        load_start,
        CancellationToken::new(),
    )
    .await
    .expect("harness drives");
    let (cpu_after, _) = target::cpu_seconds();
    flusher.abort();
    requests.flush();
    let mut lateness = Histogram::<u64>::new(3).expect("histogram");
    let records = faultline::spill::read::<RequestRecord>(&path, |_| true).expect("records");
    for r in &records {
        let _ = lateness.record(u64::try_from(r.sent_us - r.intended_us).unwrap_or(0));
    }
    let _ = std::fs::remove_file(&path);
    let record = recorder.finish();
    let s = &record.series[0];
    Run {
        requests: s.total.requests,
        dropped: s.total.dropped,
        lateness,
        cpu_s: cpu_after - cpu_before,
        secs: secs as f64,
        connections: stats.connections,
        windows: s.windows.iter().map(|w| w.lateness_p99_us).collect(),
    }
}

async fn open(url: &str, rate: f64, secs: u64, label: &str) -> Run {
    let run = harness(url, Model::Open, rate, secs).await;
    let scheduled = rate * secs as f64;
    println!(
        "  {label:<6} {rate:>7.0} req/s  sent {:>6} of {scheduled:>6.0}  dropped {:>5}  lateness p50 {:>7.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  {:>4} connections  {}",
        run.requests,
        run.dropped,
        run.p(0.5),
        run.p(0.99),
        run.lateness.max() as f64 / 1000.0,
        run.connections,
        if run.keeps(scheduled) {
            "keeps schedule"
        } else {
            "BEHIND"
        }
    );
    let windows: Vec<String> = run
        .windows
        .iter()
        .map(|us| format!("{:.1}", *us as f64 / 1000.0))
        .collect();
    println!(
        "         lateness p99 per 1 s window, ms: {}",
        windows.join(" ")
    );
    run
}

fn main() {
    target::bench_against_target(bench);
}

async fn bench(addr: SocketAddr) {
    let secs = seconds();
    let url = format!("http://{addr}");
    println!(
        "faultline harness benchmark ({} cores, {secs}s windows, target: trivial hyper server in a child process)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    println!("closed loop, {CONNECTIONS} connections, same target:");
    let anchor = wrk(addr, secs);
    match &anchor {
        Some(w) => println!(
            "  wrk -t1 -c{CONNECTIONS}          {:>9.0} req/s   CPU {:.2} s per 100k requests",
            w.rate, w.cpu_per_100k
        ),
        None => println!("  wrk: not installed (apt-get install wrk) — external anchor skipped"),
    }
    let run = harness(&url, Model::Closed, 0.0, secs).await;
    let ours = Closed {
        rate: run.requests as f64 / run.secs,
        cpu_per_100k: run.cpu_s / run.requests.max(1) as f64 * 100_000.0,
    };
    println!(
        "  faultline, {CONNECTIONS} users     {:>9.0} req/s   CPU {:.2} s per 100k requests",
        ours.rate, ours.cpu_per_100k
    );
    if let Some(w) = &anchor {
        println!(
            "  ratio to wrk           rate {:.2} (target >= 0.8)   CPU {:.2}x (target <= 1.5x)",
            ours.rate / w.rate,
            ours.cpu_per_100k / w.cpu_per_100k
        );
    }

    let capacity = ours.rate;
    println!(
        "open model at fractions of the measured closed-loop capacity ({capacity:.0} req/s), lateness = actual - intended send (target at 0.8x: p99 <= 5 ms):"
    );
    let mut keeping = 0.0_f64;
    let mut failing = f64::INFINITY;
    for fraction in [0.5, 0.8, 1.0] {
        let rate = capacity * fraction;
        let run = open(&url, rate, secs, &format!("{fraction:.1}x")).await;
        if run.keeps(rate * secs as f64) {
            keeping = keeping.max(rate);
        } else {
            failing = failing.min(rate);
        }
    }
    // Bisect between the fastest rate kept and the slowest one lost.
    if failing.is_infinite() {
        failing = capacity * 1.5;
        let run = open(&url, failing, secs, "1.5x").await;
        if run.keeps(failing * secs as f64) {
            keeping = failing;
        }
    }
    for _ in 0..2 {
        if keeping >= failing {
            break;
        }
        let rate = if keeping == 0.0 {
            failing / 2.0
        } else {
            (keeping + failing) / 2.0
        };
        let run = open(&url, rate, secs, "bisect").await;
        if run.keeps(rate * secs as f64) {
            keeping = rate;
        } else {
            failing = rate;
        }
    }
    println!(
        "  maximum schedule-keeping rate  {keeping:.0} req/s = {:.2}x closed-loop capacity{}",
        keeping / capacity,
        anchor.as_ref().map_or(String::new(), |w| format!(
            " = {:.2}x wrk",
            keeping / w.rate
        ))
    );
}
