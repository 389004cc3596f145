//! Ctrl-C, SIGTERM and SIGHUP: the load stops at once, the faults are
//! cleared, the stack is torn down, the report is still written (marked
//! interrupted, the signal named) and the exit code is 128 + the signal
//! (130, 143, 129). A second signal quits at once. Nothing is left: no
//! process (an image build's cargo and compilers included), no listening
//! port.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// A 60 s run with a fault in force from 1 s: stopping early is visible.
const LONG: &str = r#"duration = "60s"
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
"#;

/// A run under heavier payment load with an integrity check: after the
/// load stops, every acknowledged payment is looked up, which keeps the
/// teardown busy long enough for a second signal to land in it. The fault
/// (on a downstream payments do not call) marks 2 s of load.
const BUSY: &str = r#"duration = "60s"
[stack]
time_scale = 0.01
[load]
window = "100ms"
[[load.journeys]]
kind = "payment"
rate = 400
[[faults]]
injector = "analytics-service"
from = "2s"
fault = { kind = "latency", fixed_ms = 1 }
[[checks]]
kind = "integrity"
journey = "payment"
"#;

/// A running `faultline run` and what it has said so far.
struct Running {
    child: Child,
    dir: PathBuf,
    /// stderr lines, read on a thread so the pipe never fills.
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `toml` in a fresh folder named after `test`.
    fn start(test: &str, toml: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("faultline-interrupt-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("folder");
        let scenario = dir.join("scenario.toml");
        std::fs::write(&scenario, toml).expect("scenario");
        let mut child = Command::new(FAULTLINE)
            .args(["run", "--quiet", "--out"])
            .arg(dir.join("reports"))
            .arg(&scenario)
            .env("FAULTLINE_LOG", "faultline=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("faultline starts");
        let stderr: Lines<BufReader<ChildStderr>> =
            BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            dir,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `within`) for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no `{text}` within {within:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Waits for the exit; returns its code, how long it took and all of
    /// stderr.
    fn exit(mut self, within: Duration) -> (Option<i32>, Duration, String, PathBuf) {
        let since = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if since.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "still running {within:?} after the signal; stderr:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = since.elapsed();
        // The pipe closes with the process: the rest of stderr is there.
        self.seen.extend(self.lines.iter());
        (status.code(), took, self.seen.join("\n"), self.dir)
    }
}

/// The `host:port` of every URL in the `stack up` debug line.
fn ports_of(stack_up: &str) -> Vec<String> {
    stack_up
        .split_whitespace()
        .filter_map(|w| w.split("http://").nth(1))
        .map(|a| a.trim_matches(|c: char| c == '"' || c == ',').to_string())
        .collect()
}

/// Nothing of the run is left: no port it listened on still accepts, no
/// process mentions its folder.
fn nothing_left(ports: &[String], dir: &Path) {
    assert!(ports.len() >= 5, "too few ports seen: {ports:?}");
    for port in ports {
        assert!(
            std::net::TcpStream::connect_timeout(
                &port.parse().expect("host:port"),
                Duration::from_secs(1)
            )
            .is_err(),
            "{port} still accepts connections"
        );
    }
    let dir = dir.display().to_string();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&dir) {
            left.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    assert!(left.is_empty(), "processes of the run remain: {left:?}");
}

/// The run folder's report.json and junit.xml.
fn report(dir: &Path) -> (serde_json::Value, String) {
    let run = std::fs::read_dir(dir.join("reports"))
        .expect("reports")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    let report = serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report"))
        .expect("json");
    let junit = std::fs::read_to_string(run.join("junit.xml")).expect("junit");
    (report, junit)
}

/// Interrupts a long run with `signal` while its fault is in force; checks
/// the exit code, the report, that the fault was cleared and that nothing
/// is left.
fn interrupted_by(signal: &str, code: i32) {
    let mut run = Running::start(&signal.to_lowercase(), LONG);
    let ports = ports_of(&run.wait_for("stack up", Duration::from_secs(60)));
    run.wait_for("preflight passed", Duration::from_secs(60));
    run.wait_for("fault set", Duration::from_secs(30));
    run.signal(signal);
    let (status, took, stderr, dir) = run.exit(Duration::from_secs(15));
    assert_eq!(status, Some(code), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to stop a 60 s run"
    );
    assert!(
        stderr.contains(&format!("interrupted (SIG{signal})")),
        "{stderr}"
    );
    let (report, junit) = report(&dir);
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["interrupted_by"], format!("SIG{signal}"));
    assert_eq!(report["verdict"], "fail");
    // The fault was cleared when the signal came, long before its `until`.
    let actions: Vec<(&str, f64)> = report["faults"]
        .as_array()
        .expect("fault timeline")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["t_s"].as_f64().unwrap_or(f64::MAX),
            )
        })
        .collect();
    assert!(
        matches!(actions.as_slice(), [("set", _), ("clear", t)] if *t < 40.0),
        "{actions:?}"
    );
    assert!(
        junit.contains("run-completed") && junit.contains(&format!("SIG{signal}")),
        "the interruption is not in junit.xml"
    );
    nothing_left(&ports, &dir);
}

#[test]
fn a_second_signal_quits_at_once() {
    let mut run = Running::start("twice", BUSY);
    let ports = ports_of(&run.wait_for("stack up", Duration::from_secs(60)));
    run.wait_for("preflight passed", Duration::from_secs(60));
    // 2 s of load: enough acknowledged payments that looking them all up
    // takes a while.
    run.wait_for("fault set", Duration::from_secs(30));
    run.signal("TERM");
    run.wait_for("interrupted (SIGTERM)", Duration::from_secs(10));
    run.signal("HUP");
    let (status, took, stderr, dir) = run.exit(Duration::from_secs(10));
    assert_eq!(status, Some(129), "{stderr}");
    assert!(stderr.contains("SIGHUP again: quitting now"), "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // It quit before the report: a second signal does not wait for it.
    let reports: Vec<PathBuf> = std::fs::read_dir(dir.join("reports"))
        .map(|d| d.flatten().map(|e| e.path().join("report.json")).collect())
        .unwrap_or_default();
    assert!(reports.iter().all(|r| !r.exists()), "{reports:?}");
    nothing_left(&ports, &dir);
}

#[test]
fn ctrl_c_stops_promptly_reports_and_exits_130() {
    interrupted_by("INT", 130);
}

#[test]
fn sigterm_stops_promptly_reports_and_exits_143() {
    interrupted_by("TERM", 143);
}

#[test]
fn sighup_stops_promptly_reports_and_exits_129() {
    interrupted_by("HUP", 129);
}

/// Kills the processes when dropped by a failing test, which so leaves
/// none behind (a passing one has seen them gone: their pids may be
/// another's by then).
struct KillOnDrop(Vec<String>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for pid in &self.0 {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Whether process `pid` still runs (a zombie does not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn an_image_build_under_way_stops_with_its_compilers_on_sigterm() {
    let dir =
        std::env::temp_dir().join(format!("faultline-interrupt-{}-build", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    // A cargo that starts a long "compiler" in its process group and waits
    // for it, as cargo waits for rustc.
    let cargo = dir.join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\nsleep 120 &\necho $! > \"$FAKE_DIR/compiler.pid\"\necho $$ > \"$FAKE_DIR/cargo.pid\"\nwait\n",
    )
    .expect("fake cargo");
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    let mut child = Command::new(FAULTLINE)
        .args(["images", "build"])
        .env("CARGO", &cargo)
        .env("FAKE_DIR", &dir)
        .env("FAULTLINE_SOURCE", env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline starts");
    let pid_of = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (cargo_pid, compiler_pid) = loop {
        if let (Some(c), Some(r)) = (pid_of("cargo.pid"), pid_of("compiler.pid")) {
            break (c.trim().to_string(), r.trim().to_string());
        }
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _leftovers = KillOnDrop(vec![cargo_pid.clone(), compiler_pid.clone()]);
    assert!(
        running(&compiler_pid),
        "the compiler runs before the signal"
    );
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let since = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if since.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("faultline images build still runs 15 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by an interrupt"), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while (running(&cargo_pid) || running(&compiler_pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !running(&cargo_pid) && !running(&compiler_pid),
        "left running: cargo {cargo_pid} {}, compiler {compiler_pid} {}",
        running(&cargo_pid),
        running(&compiler_pid)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
