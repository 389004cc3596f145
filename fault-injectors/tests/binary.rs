//! The standalone `fault-injector` binary: config file, admin API, signals,
//! bad input.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_fault-injector");

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("fi-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// Starts the binary and reads the URLs it prints: `(injector urls, admin url)`.
async fn start(args: &[&str]) -> (Child, Vec<String>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut injectors = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            if let Some(url) = line.strip_prefix("admin API on ") {
                return url.to_string();
            }
            if let Some((_, url)) = line.split_once(" listening on ") {
                injectors.push(url.to_string());
            }
        }
        panic!("binary exited before serving");
    };
    let admin = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("started in time");
    (child, injectors, admin)
}

#[tokio::test]
async fn the_binary_serves_injectors_and_the_admin_api_and_stops_on_sigterm() {
    let config = temp_file(
        "ok.toml",
        r#"
seed = 5
admin = "127.0.0.1:0"

[[injector]]
name = "order-service"
listen = "127.0.0.1:0"
faults = [{ kind = "status", code = 503, path = "/api/v1/orders" }]
"#,
    );
    let (mut child, injectors, admin) = start(&[
        "--config",
        config.to_str().expect("utf-8"),
        "--stand-in",
        "risk-service@127.0.0.1:0",
    ])
    .await;
    let _ = std::fs::remove_file(&config);
    assert_eq!(injectors.len(), 2);
    let http = client(Duration::from_secs(5));
    let orders = &injectors[0];
    let faulted = http
        .post(format!("{orders}/api/v1/orders"))
        .json(&common::order_body("O1"))
        .send()
        .await
        .expect("answered");
    assert_eq!(faulted.status(), 503);

    let cleared = http
        .delete(format!("{admin}/injectors/order-service/faults"))
        .send()
        .await
        .expect("admin");
    assert_eq!(cleared.status(), 200);
    let served = http
        .post(format!("{orders}/api/v1/orders"))
        .json(&common::order_body("O2"))
        .send()
        .await
        .expect("answered");
    assert_eq!(served.status(), 200);
    let risk = http
        .get(format!("{}/health/live", injectors[1]))
        .send()
        .await
        .expect("answered");
    assert_eq!(risk.status(), 200);

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    // Nothing listens any more.
    assert!(
        http.get(format!("{orders}/health/live"))
            .send()
            .await
            .is_err()
    );
}

async fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN).args(args).kill_on_drop(true).output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_input_exits_2_with_the_location() {
    let config = temp_file(
        "bad.toml",
        "[[injector]]\nname = \"order-service\"\nlisten = \"127.0.0.1:0\"\nfaults = [{ kind = \"latency\", fixed_ms = -5 }]\n",
    );
    let path = config.to_str().expect("utf-8").to_string();
    let (code, stderr) = run_to_exit(&["--config", &path]).await;
    let _ = std::fs::remove_file(&config);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(&format!("{path}:4:")), "{stderr}");
    assert!(
        stderr.contains("fixed_ms must be >= 0 ms, got -5"),
        "{stderr}"
    );

    let (code, stderr) = run_to_exit(&[]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no injectors"), "{stderr}");

    let (code, stderr) = run_to_exit(&["--stand-in", "nonsense"]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("expected NAME@ADDR"), "{stderr}");

    let (code, stderr) = run_to_exit(&["--stand-in", "unknown-service@127.0.0.1:0"]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no built-in stand-in"), "{stderr}");
}

#[tokio::test]
async fn help_and_list_explain_themselves() {
    let output = Command::new(BIN)
        .arg("--help")
        .output()
        .await
        .expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for word in [
        "--config",
        "--stand-in",
        "--front",
        "--admin",
        "--seed",
        "admin API",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    let output = Command::new(BIN)
        .arg("--list-stand-ins")
        .output()
        .await
        .expect("runs");
    let list = String::from_utf8_lossy(&output.stdout);
    assert!(list.lines().any(|l| l == "order-service"));
    assert_eq!(
        list.lines().count(),
        fault_injectors::stand_in::PLATFORM_STAND_INS.len()
    );
}
