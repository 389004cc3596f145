//! Distributed load benchmark: `cargo bench --bench distributed`.
//!
//! `faultline run --workers N --engine local` against a trivial hyper
//! target in a child process (the SUT's place taken by something that costs
//! next to nothing, as in the harness bench), through the library exactly as
//! `faultline run` goes, local workers being the `faultline` binary:
//! - the open model at `FH_DIST_RATE` (default 5 000) requests/s with 1 and
//!   with 4 workers: arrivals sent or dropped of those scheduled, the worst
//!   window's arrivals off the rate, and the two runs' counts against each
//!   other (targets: ±0.5 % counts, ±2 % arrivals per window);
//! - the closed model (64 users shared out, no think time) with 1, 2 and 4
//!   workers: requests/s, and the coordinator's CPU (cores, and its share of
//!   the CPU the coordinator and workers used together).
//!
//! Every process is on this machine, the target included: more workers than
//! cores share them, so the closed-model figures show the coordinator's cost
//! and the workers' overhead here, not what N machines would do.
//!
//! `FH_BENCH_SECONDS` (default 10) sets each run's length.

#[path = "support/env.rs"]
mod env;
#[path = "support/target.rs"]
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use faultline::distribute::crew::{Distribution, EngineKind};
use faultline::distribute::engine::kubernetes::KubeOptions;
use faultline::load::recorder::SeriesRecord;
use faultline::run::{RunOptions, RunOutcome, run};
use faultline::verdict::Plan;
use tokio_util::sync::CancellationToken;

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// This bench's scratch folder.
fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("faultline-dist-bench-{}", std::process::id()))
}

/// The scenario: one dashboard journey at the target, `load` its `[load]`
/// table's body.
fn scenario(name: &str, addr: SocketAddr, secs: f64, load: &str) -> Plan {
    let dir = scratch();
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(format!("{name}.toml"));
    let toml = format!(
        r#"
name = "{name}"
description = "the dashboard journey at a trivial target"
seed = 5
duration = "{secs}s"

[stack]
kind = "external"
[stack.services]
payment-gateway = "http://{addr}"
merchant-service = "http://{addr}"

[load]
window = "1s"
{load}

[[checks]]
kind = "latency"
journey = "dashboard"
phase = "baseline"
percentile = "p99"
max = "10s"
"#
    );
    std::fs::write(&path, toml).expect("scenario written");
    Plan::load(&path, None).unwrap_or_else(|e| panic!("{name} does not validate:\n{e}"))
}

/// What one run gave: the outcome, and the CPU seconds of the coordinator
/// (this process) and of the workers (its reaped children).
struct Measured {
    outcome: RunOutcome,
    coordinator_cpu: f64,
    workers_cpu: f64,
}

/// Runs `plan` on `workers` local workers; a run that could not give a
/// verdict (a worker fell behind, say) is reported as such.
async fn run_with(plan: &Plan, workers: usize) -> Option<Measured> {
    let out = scratch().join("reports");
    let options = RunOptions {
        out,
        quiet: true,
        baseline: None,
        distribution: Some(Distribution {
            workers,
            engine: EngineKind::Local,
            advertise: None,
            image: None,
            kube: KubeOptions::default(),
            program: Some(PathBuf::from(FAULTLINE)),
        }),
    };
    let (own, children) = target::cpu_seconds();
    let outcome = match run(plan, &options, CancellationToken::new()).await {
        Ok(outcome) => outcome,
        Err(e) => {
            println!("  {workers} worker(s): the run gave no verdict: {e}");
            return None;
        }
    };
    let (own_after, children_after) = target::cpu_seconds();
    Some(Measured {
        outcome,
        coordinator_cpu: own_after - own,
        workers_cpu: children_after - children,
    })
}

fn series(outcome: &RunOutcome) -> SeriesRecord {
    outcome
        .observations
        .load
        .series("dashboard")
        .cloned()
        .expect("the dashboard series")
}

fn arrivals(s: &SeriesRecord) -> u64 {
    s.total.requests + s.total.dropped
}

/// The window whose arrivals are furthest from `rate`, as a fraction of it.
fn worst_window(s: &SeriesRecord, rate: f64) -> f64 {
    s.windows
        .iter()
        .map(|w| ((w.requests + w.dropped) as f64 - rate).abs() / rate)
        .fold(0.0, f64::max)
}

fn main() {
    target::bench_against_target(bench);
}

async fn bench(addr: SocketAddr) {
    let secs = env::env_or("FH_BENCH_SECONDS", 10.0);
    let rate = env::env_or("FH_DIST_RATE", 5000.0);
    println!(
        "faultline distributed benchmark ({} cores, {secs}s runs, local workers, target: trivial hyper server in a child process)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    println!("open model, {rate} req/s:");
    let open = scenario(
        "dist-open",
        addr,
        secs,
        &format!("[[load.journeys]]\nkind = \"dashboard\"\nrate = {rate}"),
    );
    let scheduled = (rate * secs).round() as u64;
    let mut counts = Vec::new();
    for workers in [1, 4] {
        let Some(m) = run_with(&open, workers).await else {
            continue;
        };
        let s = series(&m.outcome);
        let figures = m.outcome.report.load_workers.as_ref();
        let per_worker: Vec<String> = figures
            .into_iter()
            .flat_map(|f| &f.workers)
            .map(|w| {
                format!(
                    "#{} sent {} late {} dropped {} offset {:+.2}±{:.2} ms",
                    w.index, w.sent, w.late, w.dropped, w.clock_offset_ms, w.clock_uncertainty_ms
                )
            })
            .collect();
        println!(
            "  {workers} worker(s): sent {} + dropped {} = {} of {scheduled} scheduled ({:+.3} %), worst window {:.2} % off the rate over {} windows, late {}, lateness p99 {:.2} ms, latency p99 {:.2} ms",
            s.total.requests,
            s.total.dropped,
            arrivals(&s),
            (arrivals(&s) as f64 - scheduled as f64) / scheduled as f64 * 100.0,
            worst_window(&s, rate) * 100.0,
            s.windows.len(),
            s.late,
            s.lateness.value_at_quantile(0.99) as f64 / 1000.0,
            s.total.latency.value_at_quantile(0.99) as f64 / 1000.0,
        );
        println!("     {}", per_worker.join("; "));
        counts.push(arrivals(&s));
    }
    if let [one, four] = counts[..] {
        println!(
            "  1 vs 4 workers: {one} vs {four} arrivals ({:+.3} %; target ±0.5 %)",
            (four as f64 - one as f64) / one as f64 * 100.0
        );
    }

    println!("closed model, 64 users, no think time:");
    let closed = scenario(
        "dist-closed",
        addr,
        secs,
        "model = \"closed\"\n[[load.journeys]]\nkind = \"dashboard\"\nusers = 64\nthink = \"0s\"",
    );
    for workers in [1, 2, 4] {
        let began = Instant::now();
        let Some(m) = run_with(&closed, workers).await else {
            continue;
        };
        let wall = began.elapsed().as_secs_f64();
        let s = series(&m.outcome);
        let total = m.coordinator_cpu + m.workers_cpu;
        println!(
            "  {workers} worker(s): {:>8.0} req/s ({} requests, {} errors); coordinator {:.2} cores over the run ({:.1} % of the {:.1} CPU s it and its workers used), workers {:.1} CPU s",
            s.total.requests as f64 / secs,
            s.total.requests,
            s.total.errors,
            m.coordinator_cpu / wall,
            m.coordinator_cpu / total.max(f64::EPSILON) * 100.0,
            total,
            m.workers_cpu,
        );
    }
    let _ = std::fs::remove_dir_all(scratch());
}
