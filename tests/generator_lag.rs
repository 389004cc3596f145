//! A run whose load generator fell behind its schedule says so in every
//! output (summary, report.json, junit.xml, index.html), and a run that kept
//! its schedule says nothing.

mod support;

use faultline::load::recorder::GeneratorLag;
use faultline::report::summary;
use faultline::run::{RunOptions, run};
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"name = "generator-lag"
seed = 5
duration = "1s"
[stack]
time_scale = 0.01
[load]
window = "100ms"
[[load.journeys]]
kind = "payment"
rate = 20
[[checks]]
kind = "integrity"
journey = "payment"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_generator_is_named_in_every_output() {
    let out = support::scratch("generator-lag");
    let options = RunOptions {
        out: out.clone(),
        quiet: true,
        baseline: None,
        distribution: None,
    };
    let plan = support::scenario("generator-lag", SCENARIO);
    let outcome = run(&plan, &options, CancellationToken::new())
        .await
        .expect("run");
    let mut report = outcome.report.clone();
    // 20 req/s on an idle stack: on schedule, and nothing said about it.
    if !report.generator.fell_behind() {
        assert!(!summary::render(&report, &outcome.dir).contains("NOTE"));
        let junit = std::fs::read_to_string(outcome.dir.join("junit.xml")).expect("junit");
        assert!(!junit.contains("generator_on_schedule"), "{junit}");
    }

    report.generator = GeneratorLag {
        windows_behind: 3,
        late: 40,
        dropped: 2,
        lateness_p99_us: 12_000,
        worst_window_p99_us: 48_000,
    };
    report.write(&outcome.dir, 1.0).expect("report written");
    let text = summary::render(&report, &outcome.dir);
    assert!(
        text.contains("NOTE the load generator fell behind its schedule in 3 window(s)")
            && text.contains("48.0 ms"),
        "{text}"
    );
    let junit = std::fs::read_to_string(outcome.dir.join("junit.xml")).expect("junit");
    assert!(
        junit.contains("load:generator_on_schedule") && junit.contains("<skipped"),
        "{junit}"
    );
    let page = std::fs::read_to_string(outcome.dir.join("index.html")).expect("page");
    assert!(
        page.contains("fell behind its schedule"),
        "the page says nothing"
    );
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(outcome.dir.join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(json["generator"]["windows_behind"], 3);
    let _ = std::fs::remove_dir_all(&out);
}
