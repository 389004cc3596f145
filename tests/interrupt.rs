//! Ctrl-C: the load stops at once, the stack is torn down, the report is
//! still written (marked interrupted) and the exit code is 130.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

#[test]
fn an_interrupted_run_stops_promptly_reports_and_exits_130() {
    let dir = std::env::temp_dir().join(format!("faultline-interrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    let scenario = dir.join("long.toml");
    std::fs::write(
        &scenario,
        r#"duration = "60s"
[stack]
time_scale = 0.01
[load]
window = "100ms"
[[load.journeys]]
kind = "payment"
rate = 20
[[faults]]
injector = "order-service"
from = "1s"
until = "50s"
fault = { kind = "status", code = 503 }
[[checks]]
kind = "breaker_opens"
downstream = "order-service"
"#,
    )
    .expect("scenario");
    let mut child = Command::new(FAULTLINE)
        .args(["run", "--out"])
        .arg(dir.join("reports"))
        .arg(&scenario)
        .env("FAULTLINE_LOG", "faultline=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");
    // Wait until the load is running (preflight passed), then interrupt.
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = stderr.lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in lines.by_ref() {
        if line.expect("stderr line").contains("preflight passed") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never started its load");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let interrupted_at = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            interrupted_at.elapsed() < Duration::from_secs(15),
            "still running 15 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped_in = interrupted_at.elapsed();
    let messages = drain.join().expect("stderr").join("\n");
    assert_eq!(status.code(), Some(130), "{messages}");
    assert!(
        stopped_in < Duration::from_secs(5),
        "took {stopped_in:?} to stop a 60 s run"
    );
    assert!(messages.contains("interrupted"), "{messages}");
    let run = std::fs::read_dir(dir.join("reports"))
        .expect("reports")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report"))
            .expect("json");
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["verdict"], "fail");
    let junit = std::fs::read_to_string(run.join("junit.xml")).expect("junit");
    assert!(
        junit.contains("run-completed"),
        "the interruption is not in junit.xml"
    );
}
