//! `faultline explore` on the embedded stack with one client's breaker
//! removed (a defect switch): exactly that client's cells fail, the other
//! client's pass. The exploration is interrupted after its first cell and
//! resumed: the finished cell is kept, only the missing ones run, and the
//! matrix (explore.json, junit.xml) is complete.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const FAULTLINE: &str = env!("CARGO_BIN_EXE_faultline");

/// The gateway's calls to order-service lose their breaker; its calls to
/// risk-service keep theirs.
const ARGS: &[&str] = &[
    "explore",
    "--quiet",
    "--jobs",
    "1",
    "--clients",
    "payment-gateway->order-service,payment-gateway->risk-service",
    "--faults",
    "outage,errors",
    "--defect",
    "payment-gateway=no_breaker@order",
];

const BROKEN: &str = "payment-gateway→order-service";
const KEPT: &str = "payment-gateway→risk-service";

/// Waits for `what` up to `limit`, polling.
fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run folders with a report under `cells/`, by cell.
fn finished_runs(exploration: &Path) -> Vec<PathBuf> {
    let mut runs = Vec::new();
    for cell in std::fs::read_dir(exploration.join("cells"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for run in std::fs::read_dir(cell.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if run.path().join("report.json").is_file() {
                runs.push(run.path());
            }
        }
    }
    runs.sort();
    runs
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_removed_breaker_fails_exactly_its_clients_cells_and_an_interrupted_exploration_resumes() {
    let out = std::env::temp_dir().join(format!("faultline-explore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("folder");

    // Interrupted once its first cell has finished.
    let mut child = Command::new(FAULTLINE)
        .args(ARGS)
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faultline explore starts");
    let exploration = wait_for(Duration::from_secs(120), "the exploration folder", || {
        std::fs::read_dir(&out)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .next()
    });
    let first = wait_for(Duration::from_secs(180), "a finished cell", || {
        finished_runs(&exploration).into_iter().next()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("signal");
    let stopped = wait_for(
        Duration::from_secs(60),
        "the interrupted exploration",
        || child.try_wait().expect("wait"),
    );
    let said = child.wait_with_output().expect("output");
    assert_eq!(
        stopped.code(),
        Some(130),
        "interrupted exploration exits 130: {}",
        String::from_utf8_lossy(&said.stderr)
    );
    let partial = read_json(&exploration.join("explore.json"));
    assert_eq!(partial["interrupted"], true, "{partial:#}");
    let done = |e: &Value| {
        e["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .filter(|c| c["outcome"] == "pass" || c["outcome"] == "fail")
            .count()
    };
    assert!(
        (1..4).contains(&done(&partial)),
        "some but not all cells ran before the interrupt: {partial:#}"
    );

    // Resumed: only the missing cells run.
    let resumed = Command::new(FAULTLINE)
        .args(ARGS)
        .arg("--resume")
        .arg(&exploration)
        .stdin(Stdio::null())
        .output()
        .expect("faultline explore --resume");
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert_eq!(
        resumed.status.code(),
        Some(1),
        "a client is not protected: exit 1\n{stdout}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        stdout.contains("clients protected: 1 of 2"),
        "coverage line: {stdout}"
    );
    assert!(
        first.join("report.json").is_file(),
        "the cell finished before the interrupt is kept"
    );
    let cell_of = |run: &Path| run.parent().map(Path::to_path_buf);
    let runs = finished_runs(&exploration);
    assert_eq!(
        runs.iter()
            .filter(|r| cell_of(r) == cell_of(&first))
            .count(),
        1,
        "the finished cell is not run again: {runs:#?}"
    );

    let matrix = read_json(&exploration.join("explore.json"));
    assert_eq!(matrix["interrupted"], false);
    let cells = matrix["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 4, "{matrix:#}");
    for cell in cells {
        let client = cell["client"].as_str().expect("client");
        let failed: Vec<&str> = cell["failed"]
            .as_array()
            .expect("failed")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match client {
            BROKEN => {
                assert_eq!(cell["outcome"], "fail", "{cell:#}");
                assert!(
                    failed.iter().any(|f| f.starts_with("opens:")),
                    "the breaker that is not there never opens: {cell:#}"
                );
            }
            KEPT => {
                assert_eq!(cell["outcome"], "pass", "{cell:#}");
                assert!(cell["time_to_open_s"].as_f64().is_some(), "{cell:#}");
            }
            other => panic!("a client not asked for: {other}"),
        }
    }
    let rows = matrix["clients"].as_array().expect("clients");
    for row in rows {
        let expected = row["name"] == KEPT;
        assert_eq!(row["protected"], expected, "{row:#}");
    }

    let junit = std::fs::read_to_string(exploration.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase").count(), 4, "{junit}");
    assert_eq!(junit.matches("<failure").count(), 2, "{junit}");
    assert!(
        std::fs::read_to_string(exploration.join("index.html"))
            .expect("index.html")
            .contains("clients protected: 1 of 2")
    );
    let _ = std::fs::remove_dir_all(&out);
}
