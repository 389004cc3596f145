//! The `external` stack: the reference stack's payment-gateway runs as a
//! separate process configured (through the platform's env vars) to call
//! injectors on fixed ports; `faultline run` starts those injectors, proves
//! the wires, drives the load and decides.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// The `reference-stack` binary, built next to faultline's.
fn reference_stack_bin() -> PathBuf {
    let dir = PathBuf::from(FAULTLINE)
        .parent()
        .expect("target dir")
        .to_path_buf();
    let bin = dir.join("reference-stack");
    if !bin.exists() {
        // `cargo test --workspace` builds it; `cargo test -p faultline` may not.
        let built = Command::new(env!("CARGO"))
            .args(["build", "-p", "reference-stack", "--bin", "reference-stack"])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "cannot build the reference-stack binary");
    }
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Ports of the gateway and of the injectors it calls.
struct Ports {
    gateway: u16,
    risk: u16,
    order: u16,
    channel: u16,
    notification: u16,
    analytics: u16,
}

impl Ports {
    fn new() -> Self {
        Self {
            gateway: free_port(),
            risk: free_port(),
            order: free_port(),
            channel: free_port(),
            notification: free_port(),
            analytics: free_port(),
        }
    }
}

/// Starts payment-gateway with its downstreams at `order_port` (for order)
/// and the injector ports (others), scaled timings; waits until it answers.
fn start_gateway(ports: &Ports, order_port: u16) -> Running {
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let child = Command::new(reference_stack_bin())
        .arg("payment-gateway")
        .env("LISTEN_ADDR", format!("127.0.0.1:{}", ports.gateway))
        .env("RISK_SERVICE_URL", url(ports.risk))
        .env("ORDER_SERVICE_URL", url(order_port))
        .env("CHANNEL_SERVICE_URL", url(ports.channel))
        .env("NOTIFICATION_SERVICE_URL", url(ports.notification))
        .env("ANALYTICS_SERVICE_URL", url(ports.analytics))
        .env("TIME_SCALE", "0.01")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("reference-stack starts");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", ports.gateway)).is_err() {
        assert!(
            Instant::now() < deadline,
            "payment-gateway did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

fn scenario(ports: &Ports) -> String {
    format!(
        r#"seed = 3
duration = "4s"

[stack]
kind = "external"
[stack.services]
payment-gateway = "http://127.0.0.1:{gw}"
[stack.injectors.risk-service]
listen = "127.0.0.1:{risk}"
[stack.injectors.order-service]
listen = "127.0.0.1:{order}"
[stack.injectors.channel-adapter]
listen = "127.0.0.1:{channel}"
[stack.injectors.notification-service]
listen = "127.0.0.1:{notification}"
[stack.injectors.analytics-service]
listen = "127.0.0.1:{analytics}"

[sut]
sample_every = "50ms"

[load]
window = "100ms"
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 50

[[faults]]
injector = "order-service"
from = "1s"
until = "2.5s"
fault = {{ kind = "status", code = 503 }}

[[checks]]
kind = "breaker_opens"
downstream = "order-service"
within = "1s"
[[checks]]
kind = "half_open_probes"
downstream = "order-service"
period = "300ms"
tolerance = "150ms"
[[checks]]
kind = "recovers_within"
journey = "payment"
within = "1s"
[[checks]]
kind = "integrity"
journey = "payment"
"#,
        gw = ports.gateway,
        risk = ports.risk,
        order = ports.order,
        channel = ports.channel,
        notification = ports.notification,
        analytics = ports.analytics,
    )
}

fn run(name: &str, toml: &str) -> (Output, PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("faultline-external-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, toml).expect("scenario written");
    let out = dir.join("reports");
    let output = Command::new(FAULTLINE)
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .expect("faultline runs");
    (output, out)
}

#[test]
fn faultline_drives_and_judges_a_separately_started_stack() {
    let ports = Ports::new();
    let _gateway = start_gateway(&ports, ports.order);
    let (output, out) = run("external", &scenario(&ports));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("PASS breaker_opens:order-service"),
        "{stdout}"
    );
    assert!(stdout.contains("external stack"), "{stdout}");
    // The SUT's own gauge was read and agrees with the inference.
    // The reports folder also holds the history file.
    let run_dir = std::fs::read_dir(&out)
        .expect("reports")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).expect("report"))
            .expect("json");
    let sources: Vec<&str> = report["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .filter_map(|b| b["source"].as_str())
        .collect();
    assert_eq!(sources, ["inferred", "metrics"], "{report:#}");
    assert_eq!(report["stack"], "external");
}

#[test]
fn a_sut_wired_to_the_wrong_port_fails_preflight_with_the_wire_named() {
    let ports = Ports::new();
    let wrong = free_port();
    let _gateway = start_gateway(&ports, wrong);
    let (output, out) = run("wrong-port", &scenario(&ports));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("payment-gateway never called order-service"),
        "{stderr}"
    );
    assert!(stderr.contains("ORDER_SERVICE_URL"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", ports.order)),
        "{stderr}"
    );
    // Nothing half-done is left: no run folder, and the injector ports are free again.
    let folders = std::fs::read_dir(&out)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    assert_eq!(folders, 0, "a failed preflight left a run folder");
    assert!(
        TcpListener::bind(("127.0.0.1", ports.order)).is_ok(),
        "the order-service injector still holds its port"
    );
}

#[test]
fn a_readiness_path_the_sut_does_not_serve_fails_preflight_naming_it() {
    let ports = Ports::new();
    let _gateway = start_gateway(&ports, ports.order);
    let toml = scenario(&ports).replace(
        "sample_every = \"50ms\"",
        "sample_every = \"50ms\"\nready_path = \"/readyz\"",
    );
    let (output, _) = run("ready-404", &toml);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("404 on its readiness path /readyz"),
        "{stderr}"
    );
    assert!(stderr.contains("ready_path"), "{stderr}");
}
