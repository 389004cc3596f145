//! The harness against the embedded reference stack, with scaled timings:
//! the correct configuration passes, every defect switch is caught by the
//! check meant for it, black-box breaker instants match the stack's own log,
//! and a seed reproduces the fault decisions exactly.

mod support;

use support::{SCALED, check, explain, run_toml};

/// order-service answers 503 from 1 s to 3 s under payment and dashboard load.
fn order_outage(extra: &str, rate: u32) -> String {
    format!(
        r#"{SCALED}
{extra}
[[load.journeys]]
kind = "payment"
rate = {rate}
webhook = true
[[load.journeys]]
kind = "dashboard"
rate = 20

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
[[checks]]
kind = "recovers_within"
journey = "payment"
within = "1s"
[[checks]]
kind = "no_cascade"
journey = "dashboard"
latency_factor = 4
[[checks]]
kind = "no_duplicates"
[[checks]]
kind = "integrity"
journey = "payment"
[[checks]]
kind = "amplification"
downstream = "order-service"
max_ratio = 4.0
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_configuration_passes_every_check_and_writes_the_run_folder() {
    let outcome = run_toml("correct", &order_outage("", 50)).await;
    assert!(outcome.report.passed(), "{}", explain(&outcome));
    assert_eq!(outcome.report.checks.len(), 7);

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(outcome.dir.join("report.json")).expect("report.json"),
    )
    .expect("json");
    for field in [
        "scenario",
        "seed",
        "verdict",
        "checks",
        "phases",
        "breakers",
        "journeys",
        "downstreams",
        "recoveries",
    ] {
        assert!(json.get(field).is_some(), "report.json lacks {field}");
    }
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["seed"], 7);
    let phases: Vec<&str> = json["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(phases, ["baseline", "fault", "recovery"]);
    let breaker = &json["breakers"].as_array().expect("breakers")[0];
    assert_eq!(breaker["downstream"], "order-service");
    assert_eq!(breaker["source"], "inferred");
    assert!(
        breaker["opened_at_s"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let payment = json["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .find(|j| j["name"] == "payment")
        .expect("payment journey");
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            payment["latency_us"][p].as_u64().is_some_and(|v| v > 0),
            "latency_us.{p}"
        );
    }
    assert_eq!(payment["requests"], 200);
    let recovery = &json["recoveries"].as_array().expect("recoveries")[0];
    assert!((recovery["cleared_at_s"].as_f64().expect("cleared") - 2.5).abs() < 0.05);

    let junit = std::fs::read_to_string(outcome.dir.join("junit.xml")).expect("junit.xml");
    // One testcase per check (plus a skipped note when a busy machine made
    // the load generator lag).
    let notes = junit.matches("name=\"load:generator_on_schedule\"").count();
    assert_eq!(junit.matches("<testcase").count() - notes, 7);
    assert!(!junit.contains("<failure"));
    assert!(outcome.dir.join("index.html").exists());
    assert!(outcome.dir.join("decisions/order-service.tsv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_box_breaker_instants_match_the_logged_transitions_within_100ms() {
    let outcome = run_toml("instants", &order_outage("", 50)).await;
    let report = &outcome.report;
    let logged: Vec<_> = report
        .transitions
        .iter()
        .filter(|t| {
            t.service == "payment-gateway" && t.downstream == reference_stack::Downstream::Order
        })
        .collect();
    use faultline::observe::sut::BreakerState;
    let first = |to: BreakerState| logged.iter().find(|t| t.to == to).map(|t| t.t_s);
    let inferred = report
        .breakers
        .iter()
        .find(|b| {
            b.downstream == "order-service" && b.source == faultline::verdict::Source::Inferred
        })
        .expect("inferred breaker");
    let pairs = [
        (
            "open",
            inferred.episodes.opened_at_s.first().copied(),
            first(BreakerState::Open),
        ),
        (
            "half_open",
            inferred.episodes.half_open_at_s.first().copied(),
            first(BreakerState::HalfOpen),
        ),
        (
            "closed",
            inferred.episodes.closed_at_s.first().copied(),
            first(BreakerState::Closed),
        ),
    ];
    for (state, inferred, truth) in pairs {
        let (Some(i), Some(t)) = (inferred, truth) else {
            panic!(
                "{state}: inferred {inferred:?}, logged {truth:?}\n{}",
                explain(&outcome)
            );
        };
        assert!(
            (i - t).abs() <= 0.1,
            "{state}: inferred {i:.3}s, logged {t:.3}s\n{}",
            explain(&outcome)
        );
    }
    // Every reopening after a failed probe is matched too.
    let logged_opens: Vec<f64> = logged
        .iter()
        .filter(|t| t.to == faultline::observe::sut::BreakerState::Open)
        .map(|t| t.t_s)
        .collect();
    assert_eq!(
        inferred.episodes.opened_at_s.len(),
        logged_opens.len(),
        "{}",
        explain(&outcome)
    );
    for (i, t) in inferred.episodes.opened_at_s.iter().zip(&logged_opens) {
        assert!(
            (i - t).abs() <= 0.1,
            "reopen: inferred {i:.3}s, logged {t:.3}s"
        );
    }
}

/// One row of the detection matrix: a defect switch, a scenario in which the
/// correct stack passes the named check, and which the defect must fail.
struct Case {
    defect: &'static str,
    scenario: Box<dyn Fn(&str) -> String>,
    check: &'static str,
}

fn detection_cases() -> Vec<Case> {
    fn partial_risk_errors(defects: &str) -> String {
        format!(
            r#"{SCALED}
{defects}
[[load.journeys]]
kind = "payment"
rate = 50

[[faults]]
injector = "risk-service"
from = "1s"
until = "3s"
fault = {{ kind = "status", code = 503, rate = 0.7, path = "/api/v1/risk/check" }}

[[checks]]
name = "retries-absorb-partial-errors"
kind = "no_cascade"
journey = "payment"
success_tolerance = 0.4
latency_factor = 0
"#
        )
    }
    // Failing calls (4 timed-out attempts, 260 ms) must fit well inside the
    // breaker's counting interval, or gobreaker resets the counts (or drops
    // the failures as stale) before they reach 60 %: a long interval here.
    fn hanging_channel(defects: &str) -> String {
        format!(
            r#"{SCALED}
[stack.clients]
attempt_timeout = "5s"
interval = "600s"
{defects}
[[load.journeys]]
kind = "payment"
rate = 30

[[faults]]
injector = "channel-adapter"
from = "0.5s"
until = "3.5s"
fault = {{ kind = "hang" }}

[[checks]]
kind = "breaker_opens"
downstream = "channel-adapter"
within = "2s"
"#
        )
    }
    fn notification_down(defects: &str) -> String {
        format!(
            r#"{SCALED}
{defects}
[[load.journeys]]
kind = "payment"
rate = 30
webhook = true

[[faults]]
injector = "notification-service"
from = "1s"
until = "3s"
fault = {{ kind = "refuse" }}

[[checks]]
name = "payments-unaffected"
kind = "no_cascade"
journey = "payment"
latency_factor = 5
"#
        )
    }
    fn slow_orders(defects: &str) -> String {
        format!(
            r#"{SCALED}
{defects}
[[load.journeys]]
kind = "payment"
rate = 20

[[faults]]
injector = "order-service"
from = "1s"
until = "2s"
fault = {{ kind = "latency", fixed_ms = 400 }}

[[checks]]
kind = "no_duplicates"
downstream = "order-service"
"#
        )
    }
    fn conflicting_orders(defects: &str) -> String {
        format!(
            r#"{SCALED}
{defects}
[[load.journeys]]
kind = "payment"
rate = 30

[[faults]]
injector = "order-service"
from = "1s"
until = "3s"
fault = {{ kind = "status", code = 409 }}

[[checks]]
kind = "amplification"
downstream = "order-service"
max_ratio = 1.2
"#
        )
    }
    vec![
        Case {
            defect: "[stack.defects]\npayment-gateway = \"no_breaker@order\"",
            scenario: Box::new(|d| order_outage(d, 50)),
            check: "breaker_opens:order-service",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"unlimited_half_open@order\"",
            scenario: Box::new(|d| order_outage(d, 200)),
            check: "half_open_probes:order-service",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"delete_failed_payments\"",
            scenario: Box::new(|d| order_outage(d, 50)),
            check: "integrity:payment",
        },
        Case {
            defect: "[stack.client.order-service]\nopen_timeout = \"300s\"",
            scenario: Box::new(|d| order_outage(d, 50)),
            check: "recovers_within:payment",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"retries_outside_breaker@risk\"",
            scenario: Box::new(partial_risk_errors),
            check: "retries-absorb-partial-errors",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"no_client_timeout@channel\"",
            scenario: Box::new(hanging_channel),
            check: "breaker_opens:channel-adapter",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"sync_notification\"",
            scenario: Box::new(notification_down),
            check: "payments-unaffected",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"order_retry_without_idempotency@order\"",
            scenario: Box::new(slow_orders),
            check: "no_duplicates:order-service:order_no",
        },
        Case {
            defect: "[stack.defects]\npayment-gateway = \"retry_4xx@order\"",
            scenario: Box::new(conflicting_orders),
            check: "amplification:order-service:fault",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_defect_switch_makes_its_check_fail_and_the_correct_stack_passes_it() {
    let mut failures = Vec::new();
    for (i, case) in detection_cases().into_iter().enumerate() {
        let correct = run_toml(&format!("matrix-{i}-correct"), &(case.scenario)("")).await;
        let defective =
            run_toml(&format!("matrix-{i}-defect"), &(case.scenario)(case.defect)).await;
        let (ok, bad) = (check(&correct, case.check), check(&defective, case.check));
        if !ok.passed {
            failures.push(format!(
                "{}: the correct stack failed {}: {}\n{}",
                case.defect,
                case.check,
                ok.observed,
                explain(&correct)
            ));
        }
        if bad.passed || bad.inconclusive {
            failures.push(format!(
                "{}: {} was not caught (passed={}, {}): {}\n{}",
                case.defect,
                case.check,
                bad.passed,
                if bad.inconclusive {
                    "inconclusive"
                } else {
                    "decided"
                },
                bad.observed,
                explain(&defective)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Probabilistic faults on two injectors, load spaced widely enough that
/// every request's attempts reach the injectors in the same order each run,
/// and the faults switch on halfway between two arrivals (every 100 ms), so
/// no request races the edge.
fn decisions_scenario(seed: u64) -> String {
    format!(
        r#"seed = {seed}
duration = "3s"

[stack]
time_scale = 0.001

[load]
window = "100ms"
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 10

[[faults]]
injector = "risk-service"
from = "0.45s"
fault = {{ kind = "status", code = 503, rate = 0.3 }}

[[faults]]
injector = "order-service"
from = "0.45s"
fault = {{ kind = "latency", uniform_ms = [0, 5], rate = 0.5 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_fault_decision_log() {
    let logs = |dir: &std::path::Path| -> (String, String) {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join("decisions").join(name)).expect("decision log")
        };
        (read("risk-service.tsv"), read("order-service.tsv"))
    };
    let a = run_toml("decisions-a", &decisions_scenario(11)).await;
    let b = run_toml("decisions-b", &decisions_scenario(11)).await;
    let c = run_toml("decisions-c", &decisions_scenario(12)).await;
    let (risk_a, order_a) = logs(&a.dir);
    let (risk_b, order_b) = logs(&b.dir);
    let (risk_c, _) = logs(&c.dir);
    assert!(risk_a.lines().count() > 25, "too few decisions:\n{risk_a}");
    assert!(risk_a.contains("status_503") && risk_a.contains("served"));
    assert_eq!(
        risk_a, risk_b,
        "same seed, different risk-service decisions"
    );
    assert_eq!(
        order_a, order_b,
        "same seed, different order-service decisions"
    );
    assert_ne!(risk_a, risk_c, "another seed gave the same decisions");
}
