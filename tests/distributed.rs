//! `faultline run --workers N --engine local`: the load of one scenario
//! spread over worker processes is the same load as one process sends
//! (counts, the schedule window by window, merged histograms that hold
//! every worker's requests), each worker's figures are reported, and a
//! worker killed mid-run makes the run invalid (exit 2, the worker named)
//! with nothing left running.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline::distribute::crew::{Distribution, EngineKind};
use faultline::distribute::engine::kubernetes::KubeOptions;
use faultline::run::{RunOptions, RunOutcome, run};
use tokio_util::sync::CancellationToken;

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// The payment rate of the comparison, requests/s.
const RATE: f64 = 300.0;

fn steady(name: &str) -> String {
    format!(
        r#"
name = "{name}"
description = "steady payments, no fault"
seed = 11
duration = "6s"

[load]
window = "1s"
[[load.journeys]]
kind = "payment"
rate = {RATE}

[[checks]]
kind = "integrity"
journey = "payment"
"#
    )
}

async fn run_on(workers: Option<usize>, name: &str) -> RunOutcome {
    let plan = support::scenario(name, &steady(name));
    let options = RunOptions {
        out: support::scratch("reports"),
        quiet: true,
        baseline: None,
        distribution: workers.map(|n| Distribution {
            workers: n,
            engine: EngineKind::Local,
            advertise: None,
            image: None,
            kube: KubeOptions::default(),
            program: Some(PathBuf::from(FAULTLINE)),
        }),
    };
    run(&plan, &options, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{name} did not run: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_local_workers_send_the_load_one_process_sends() {
    let one = run_on(Some(1), "dist-one").await;
    let four = run_on(Some(4), "dist-four").await;
    let series = |o: &RunOutcome| o.observations.load.series("payment").cloned().unwrap();
    let (a, b) = (series(&one), series(&four));

    // The same schedule: every arrival sent (or dropped) once.
    let sent = |s: &faultline::load::recorder::SeriesRecord| s.total.requests + s.total.dropped;
    let scheduled = (RATE * 6.0) as u64;
    for (who, s) in [("1 worker", &a), ("4 workers", &b)] {
        let diff = sent(s).abs_diff(scheduled) as f64 / scheduled as f64;
        assert!(diff <= 0.005, "{who}: {} of {scheduled}", sent(s));
        // Arrival accuracy window by window: ±2 % of the rate.
        for w in &s.windows {
            let got = (w.requests + w.dropped) as f64;
            assert!(
                (got - RATE).abs() <= RATE * 0.02,
                "{who}: window {} had {got} arrivals for {RATE}/s",
                w.index
            );
        }
    }
    assert_eq!(sent(&a), sent(&b));
    assert_eq!(a.windows.len(), b.windows.len());

    // Merged exactly: the histogram holds every worker's requests, and the
    // workers' figures add up to the merged ones.
    let figures = four.report.load_workers.as_ref().expect("worker figures");
    assert_eq!(figures.engine, EngineKind::Local);
    assert_eq!(figures.workers.len(), 4);
    let by_workers: u64 = figures.workers.iter().map(|w| w.sent).sum();
    assert_eq!(b.total.latency.len(), b.total.requests);
    assert_eq!(by_workers, b.total.requests);
    let windows: u64 = b.windows.iter().map(|w| w.requests).sum();
    assert_eq!(windows, b.total.requests);
    // Interleaved slices: no worker has more than one arrival above another.
    let most = figures.workers.iter().map(|w| w.sent + w.dropped).max();
    let least = figures.workers.iter().map(|w| w.sent + w.dropped).min();
    assert!(most.unwrap() - least.unwrap() <= 1, "{:?}", figures.workers);
    for w in &figures.workers {
        assert!(
            w.clock_offset_ms.abs() <= w.clock_uncertainty_ms + 1.0,
            "same machine, same clock: {w:?}"
        );
    }
    // Every acknowledged payment came back from the workers and was
    // looked up.
    let integrity = &four.observations.integrity[0];
    assert_eq!(integrity.acknowledged, b.total.requests - b.total.errors);
    assert_eq!(integrity.checked, integrity.acknowledged);
    let check = support::check(&four, "integrity:payment");
    assert!(check.passed, "{}", support::explain(&four));
    // The summary and page show the workers.
    let page = std::fs::read_to_string(four.dir.join("index.html")).unwrap();
    assert!(page.contains("Load workers (4 on local)"), "page");
    assert!(one.report.load_workers.as_ref().unwrap().workers.len() == 1);
}

/// Processes whose parent is `pid`, with their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the name may hold spaces, so read after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((child, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: it only waits for its parent to read it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one run folder under `out`, once it exists.
fn run_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

#[test]
fn a_killed_worker_makes_the_run_invalid_and_names_it() {
    let dir = support::scratch("killed");
    let scenario = dir.join("killed.toml");
    std::fs::write(
        &scenario,
        steady("killed").replace("duration = \"6s\"", "duration = \"60s\""),
    )
    .unwrap();
    let out = dir.join("reports");
    let child = Command::new(FAULTLINE)
        .args(["run", "--quiet", "--workers", "2", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline runs");
    let coordinator = child.id();
    let mut workers = Vec::new();
    wait_until(Duration::from_secs(60), "two workers started", || {
        workers = children(coordinator)
            .into_iter()
            .filter(|(_, cmd)| cmd.ends_with("worker "))
            .map(|(pid, _)| pid)
            .collect();
        workers.len() == 2
    });
    // The load is flowing once merged request records reach the run folder.
    wait_until(Duration::from_secs(60), "merged requests", || {
        run_dir(&out)
            .and_then(|d| std::fs::metadata(d.join("requests.bin")).ok())
            .is_some_and(|m| m.len() > 0)
    });
    // Which index a pid has: its environment says.
    let index_of = |pid: u32| {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        String::from_utf8_lossy(&env)
            .split('\0')
            .find_map(|v| v.strip_prefix("FAULTLINE_WORKER_INDEX=").map(String::from))
            .expect("a worker's index")
    };
    let victim = workers[0];
    let index = index_of(victim);
    let killed = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let began = Instant::now();
    let output = child.wait_with_output().expect("faultline ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "it took {:?} to give up",
        began.elapsed()
    );
    assert!(stderr.contains("the run is invalid"), "{stderr}");
    assert!(stderr.contains(&format!("worker {index} (")), "{stderr}");
    assert!(stderr.contains("killed by signal 9"), "{stderr}");
    // Nothing is left: no worker, no half-written run folder.
    for pid in workers {
        wait_until(Duration::from_secs(10), "workers gone", || !alive(pid));
    }
    assert!(run_dir(&out).is_none(), "a run folder was left");
}
