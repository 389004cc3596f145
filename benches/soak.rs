//! Soak bench: one payment journey at 1,000 requests/s on the embedded stack
//! for 30 minutes (`FAULTLINE_SOAK_MINUTES`, `FAULTLINE_SOAK_RATE` to
//! change), through the `faultline run` binary exactly as a user runs it.
//! Prints the faultline process's resident memory over time (at 5, 15 and
//! 30 minutes, and the growth from minute 5 to the end), the size of
//! `report.json` and of the run folder, sent == recorded + dropped, latency
//! p99 and p99.9 (a stop-the-world pause in the SUT model shows there), the
//! integrity lookups, and the time from load end to exit.
//!
//! `cargo bench --bench soak` (30 minutes and more: not part of the tests).

#[path = "support/env.rs"]
mod env;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// Resident memory of `pid`, MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let minutes = env::env_or("FAULTLINE_SOAK_MINUTES", 30.0);
    let rate = env::env_or("FAULTLINE_SOAK_RATE", 1000.0);
    let dir = std::env::temp_dir().join(format!("faultline-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let scenario = dir.join("soak.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "soak"
description = "one payment journey, no fault, for a long time"
seed = 3
duration = "{seconds}s"

[load]
[[load.journeys]]
kind = "payment"
rate = {rate}

[[checks]]
kind = "integrity"
journey = "payment"
"#,
            seconds = (minutes * 60.0).round()
        ),
    )
    .expect("scenario written");
    let out = dir.join("reports");
    println!("soak: {rate} payments/s for {minutes} min on the embedded stack ({FAULTLINE})");
    let began = Instant::now();
    let mut child = Command::new(FAULTLINE)
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("faultline runs");
    let pid = child.id();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let exited = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if let Some(rss) = rss_mib(pid) {
            let t = began.elapsed().as_secs_f64() / 60.0;
            if samples.last().is_none_or(|(last, _)| t - last >= 0.5) {
                samples.push((t, rss));
                println!("  {t:6.1} min  rss {rss:7.1} MiB");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let ended = began.elapsed();
    let stdout = {
        use std::io::Read as _;
        let mut text = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        text
    };
    println!("{stdout}");
    println!("exit: {exited}");
    let at = |minute: f64| {
        samples
            .iter()
            .min_by(|a, b| (a.0 - minute).abs().total_cmp(&(b.0 - minute).abs()))
            .map_or(f64::NAN, |s| s.1)
    };
    // The load ends `minutes` after it starts (half a second after launch);
    // the last samples before then are the soak's steady state.
    let load_samples: Vec<&(f64, f64)> = samples.iter().filter(|s| s.0 <= minutes).collect();
    let last = load_samples.last().map_or(f64::NAN, |s| s.1);
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let five = at(5.0_f64.min(minutes));
    println!(
        "rss: 5 min {five:.1} MiB, 15 min {:.1} MiB, 30 min {:.1} MiB, end of load {last:.1} MiB, peak {peak:.1} MiB; growth from minute 5 to the end of the load {:+.1} %",
        at(15.0),
        at(30.0),
        (last - five) / five * 100.0
    );
    let Some(run) = std::fs::read_dir(&out)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
    else {
        println!("no run folder");
        return;
    };
    report_figures(&run, rate * minutes * 60.0, ended, minutes);
    let _ = std::fs::remove_dir_all(&dir);
}

fn report_figures(run: &Path, scheduled: f64, ended: Duration, minutes: f64) {
    let json = std::fs::read(run.join("report.json")).unwrap_or_default();
    let report: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
    println!(
        "report.json {:.2} MB, run folder {:.1} MB",
        json.len() as f64 / 1e6,
        folder_size(run) as f64 / 1e6
    );
    for j in report["journeys"].as_array().into_iter().flatten() {
        let (requests, dropped) = (
            j["requests"].as_u64().unwrap_or(0),
            j["dropped"].as_u64().unwrap_or(0),
        );
        println!(
            "{}: scheduled {scheduled:.0}, recorded {requests} + dropped {dropped} = {} ({}), errors {}, late {}, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
            j["name"].as_str().unwrap_or("?"),
            requests + dropped,
            if (requests + dropped) as f64 == scheduled {
                "exact"
            } else {
                "MISMATCH"
            },
            j["errors"],
            j["late"],
            j["latency_us"]["p50"].as_f64().unwrap_or(0.0) / 1e3,
            j["latency_us"]["p99"].as_f64().unwrap_or(0.0) / 1e3,
            j["latency_us"]["p999"].as_f64().unwrap_or(0.0) / 1e3,
            j["latency_us"]["max"].as_f64().unwrap_or(0.0) / 1e3,
        );
    }
    for i in report["integrity"].as_array().into_iter().flatten() {
        println!(
            "integrity {}: acknowledged {}, looked up {}, missing {}, inconsistent {}, unanswered {}",
            i["journey"].as_str().unwrap_or("?"),
            i["acknowledged"],
            i["checked"],
            i["missing"],
            i["inconsistent"],
            i["unanswered"]
        );
    }
    // The load started half a second after launch and lasted `minutes`.
    let load_end = Duration::from_secs_f64(minutes * 60.0 + 0.5);
    println!(
        "load end to exit: {:.1} s (integrity lookups, teardown and the report included)",
        ended.saturating_sub(load_end).as_secs_f64()
    );
}
