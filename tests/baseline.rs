//! A run judged against a baseline: a regression fails the run, and the
//! report, its JUnit file, its page and the summary all say so.

mod support;

use faultline::report::compare::Gate;
use faultline::run::{RunOptions, run};
use tokio_util::sync::CancellationToken;

/// Payments at 100 req/s for 1.5 s (enough for a p99 to compare); `extra`
/// adds faults.
fn scenario(extra: &str) -> String {
    format!(
        r#"name = "baseline-gate"
seed = 3
duration = "1.5s"

[stack]
time_scale = 0.01

[load]
window = "100ms"
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 100

{extra}

[[phases]]
name = "all"
from = "0s"
until = "1.5s"

[[checks]]
kind = "latency"
journey = "payment"
phase = "all"
max = "10s"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_against_the_baseline_fails_every_output_alike() {
    let out = support::scratch("baseline-reports");
    let options = |baseline: Option<Gate>| RunOptions {
        out: out.clone(),
        quiet: true,
        baseline,
        distribution: None,
    };
    let fast = support::scenario("fast", &scenario(""));
    let first = run(&fast, &options(None), CancellationToken::new())
        .await
        .expect("first run");
    assert!(first.report.passed(), "{}", support::explain(&first));
    // The same scenario, every risk check now 150 ms slower: the payments'
    // p99 grows far beyond 10 %, while the check itself (p99 under 10 s)
    // still passes.
    let slow = support::scenario(
        "slow",
        &scenario(
            r#"[[faults]]
injector = "risk-service"
from = "0s"
fault = { kind = "latency", fixed_ms = 150 }"#,
        ),
    );
    let gate = Gate {
        baseline: first.dir.display().to_string(),
        max_regression: 0.1,
    };
    let second = run(&slow, &options(Some(gate)), CancellationToken::new())
        .await
        .expect("second run");
    let report = &second.report;
    assert!(report.checks.iter().all(|c| c.passed), "the checks pass");
    let comparison = report.comparison.as_ref().expect("compared");
    assert!(comparison.regressed, "{comparison:#?}");
    assert!(!report.passed());

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(second.dir.join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["comparison"]["regressed"], true);

    let junit = std::fs::read_to_string(second.dir.join("junit.xml")).expect("junit.xml");
    assert!(junit.contains("baseline:no_regression"), "{junit}");
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");
    assert!(
        junit.contains("p99"),
        "the deltas are in the failure: {junit}"
    );

    let page = std::fs::read_to_string(second.dir.join("index.html")).expect("index.html");
    assert!(page.contains("REGRESSED"));

    let summary = support::explain(&second);
    assert!(summary.contains("FAIL baseline:no_regression"), "{summary}");
    assert!(
        summary.contains("regression") && summary.contains("against the baseline"),
        "{summary}"
    );
    assert!(
        !summary.contains("FAIL (0 of 1 checks failed)"),
        "{summary}"
    );
}
