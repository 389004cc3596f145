//! Helpers for the harness's end-to-end tests: write a scenario, run it
//! through the library one at a time (goose's stop switch is process-wide),
//! read the outcome.
#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;

use faultline::run::{RunOptions, RunOutcome, run};
use faultline::verdict::Plan;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Runs never overlap within a test binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A folder for this test binary's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Parses `toml` as a scenario named `name`.
pub fn scenario(name: &str, toml: &str) -> Plan {
    let path = scratch("scenarios").join(format!("{name}.toml"));
    std::fs::write(&path, toml).expect("scenario written");
    Plan::load(&path, None).unwrap_or_else(|e| panic!("{name} does not validate:\n{e}"))
}

/// Runs `scenario` to its verdict.
pub async fn run_scenario(scenario: &Plan) -> RunOutcome {
    let _turn = ONE_AT_A_TIME.lock().await;
    let options = RunOptions {
        out: scratch("reports"),
        quiet: true,
        baseline: None,
        distribution: None,
    };
    run(scenario, &options, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{} did not run: {e}", scenario.scenario.name))
}

/// Parses and runs.
pub async fn run_toml(name: &str, toml: &str) -> RunOutcome {
    run_scenario(&scenario(name, toml)).await
}

/// The named check's result, or a panic listing the checks.
pub fn check<'a>(outcome: &'a RunOutcome, name: &str) -> &'a faultline::verdict::CheckResult {
    outcome
        .report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no check {name} in {:?}",
                outcome
                    .report
                    .checks
                    .iter()
                    .map(|c| &c.name)
                    .collect::<Vec<_>>()
            )
        })
}

/// A compact account of a run for assertion messages.
pub fn explain(outcome: &RunOutcome) -> String {
    faultline::report::summary::render(&outcome.report, &outcome.dir)
}

/// Scaled-down platform timings: retries 10/20/30 ms, attempt timeout
/// 300 ms, open timeout 300 ms, counting interval 600 ms.
pub const SCALED: &str = r#"
seed = 7
duration = "4s"

[stack]
time_scale = 0.01

[load]
window = "100ms"
timeout = "2s"
"#;
