//! The detection matrix over breaker flavours: the reference stack's order
//! and channel clients run with the state machine of each library faultline
//! must judge (gobreaker, pybreaker, resilience4j, opossum, Envoy outlier
//! detection). For every flavour the correct configuration passes every
//! check and each defect fails exactly the check that names it, judged
//! twice from the same run: with the SUT's breaker gauge and black-box.
//! The inferred open instants are compared with the transitions the
//! breakers logged.

mod support;

use faultline::run::RunOutcome;
use faultline::scenario::GaugeUse;
use faultline::verdict::Plan;
use faultline::verdict::{self, CheckResult};
use support::{explain, run_scenario, scenario};

/// A broken configuration and the check meant to catch it.
struct Defect {
    name: &'static str,
    toml: &'static str,
    check: &'static str,
}

/// resilience4j caps its minimum number of calls at the window's size, so
/// only a 100 % failure rate keeps every flavour from tripping.
const NEVER_TRIPS: Defect = Defect {
    name: "never-trips",
    toml: "[stack.client.order-service]\nmin_requests = 100000\nfailure_ratio = 1.0",
    check: "breaker_opens:order-service",
};
const OPEN_TOO_LONG: Defect = Defect {
    name: "open-too-long",
    toml: "[stack.client.order-service]\nopen_timeout = \"300s\"",
    check: "recovers_within:payment",
};
const RETRY_STORM: Defect = Defect {
    name: "retry-storm",
    toml: "[stack.client.order-service]\nmax_attempts = 11\nretry_delay = \"0s\"",
    check: "amplification:order-service:fault",
};
const NO_CLIENT_TIMEOUT: Defect = Defect {
    name: "no-client-timeout",
    toml: "[stack.defects]\npayment-gateway = \"no_client_timeout@channel\"",
    check: "latency:payment:fault:p99",
};

/// The library's own defaults where the platform's numbers would change
/// its shape: pybreaker closes on one successful trial.
fn tweaks(flavour: &str) -> &'static str {
    match flavour {
        "pybreaker" => "max_requests = 1",
        _ => "",
    }
}

/// How soon the correct configuration opens: resilience4j's count window
/// of 100 calls (its default) needs 60 failures for a 60 % rate, 1.2 s of
/// this load.
fn open_within(flavour: &str) -> &'static str {
    match flavour {
        "resilience4j" => "1.5s",
        _ => "1s",
    }
}

/// order-service answers 503 from 1 s to 3 s under payment load: long
/// enough for every flavour to reopen after failed probes.
fn outage(flavour: &str, defect: &str) -> String {
    format!(
        r#"seed = 7
duration = "4.5s"

[stack]
time_scale = 0.01
[stack.clients]
breaker = "{flavour}"
{tweaks}
{defect}

[load]
window = "100ms"
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 50

[[faults]]
injector = "order-service"
from = "1s"
until = "3s"
fault = {{ kind = "status", code = 503 }}

[[checks]]
kind = "breaker_opens"
downstream = "order-service"
within = "{within}"
[[checks]]
kind = "recovers_within"
journey = "payment"
within = "1s"
[[checks]]
kind = "amplification"
downstream = "order-service"
max_ratio = 4.5
"#,
        tweaks = tweaks(flavour),
        within = open_within(flavour)
    )
}

/// channel-adapter hangs from 0.5 s to 3.5 s; attempts time out after
/// 50 ms (scaled), unless the defect removed the timeout.
fn hang(flavour: &str, defect: &str) -> String {
    format!(
        r#"seed = 7
duration = "4s"

[stack]
time_scale = 0.01
[stack.clients]
breaker = "{flavour}"
attempt_timeout = "5s"
interval = "600s"
{tweaks}
{defect}

[load]
window = "100ms"
timeout = "3s"
[[load.journeys]]
kind = "payment"
rate = 30

[[faults]]
injector = "channel-adapter"
from = "0.5s"
until = "3.5s"
fault = {{ kind = "hang" }}

[[checks]]
kind = "latency"
journey = "payment"
phase = "fault"
percentile = "p99"
max = "2s"
"#,
        tweaks = tweaks(flavour)
    )
}

/// The run's checks judged with the gauge (as reported) and black-box.
fn judged(plan: &Plan, outcome: &RunOutcome) -> [(&'static str, Vec<CheckResult>); 2] {
    let mut blind = plan.clone();
    blind.scenario.sut.gauge = GaugeUse::Off;
    let black_box = verdict::evaluate(&blind, &outcome.observations).checks;
    [
        ("with the gauge", outcome.report.checks.clone()),
        ("black-box", black_box),
    ]
}

/// Runs one scenario; pushes a line to `failures` for every check that is
/// not as expected (`defect`: the check that must fail, decided).
async fn expect(
    name: &str,
    toml: String,
    defect: Option<&str>,
    failures: &mut Vec<String>,
) -> RunOutcome {
    let scenario = scenario(name, &toml);
    let outcome = run_scenario(&scenario).await;
    for (how, checks) in judged(&scenario, &outcome) {
        for c in &checks {
            let should_fail = defect == Some(c.name.as_str());
            let wrong = if should_fail {
                c.passed || c.inconclusive
            } else {
                !c.passed
            };
            if wrong {
                failures.push(format!(
                    "{name} ({how}): {} {} — {}\n  evidence: {}\n{}",
                    c.name,
                    if should_fail {
                        "was not caught"
                    } else {
                        "failed"
                    },
                    c.observed,
                    c.evidence.join("\n  "),
                    explain(&outcome)
                ));
            }
        }
        if let Some(check) = defect
            && !checks.iter().any(|c| c.name == check)
        {
            failures.push(format!("{name}: no check {check}"));
        }
    }
    outcome
}

/// Inferred openings against the breaker's logged ones: (inferred, logged).
fn openings(outcome: &RunOutcome) -> (Vec<f64>, Vec<f64>) {
    let logged: Vec<f64> = outcome
        .report
        .transitions
        .iter()
        .filter(|t| {
            t.service == "payment-gateway"
                && t.downstream == reference_stack::Downstream::Order
                && t.to == faultline::observe::sut::BreakerState::Open
        })
        .map(|t| t.t_s)
        .collect();
    let inferred = outcome
        .report
        .breakers
        .iter()
        .find(|b| {
            b.downstream == "order-service" && b.source == faultline::verdict::Source::Inferred
        })
        .map(|b| b.episodes.opened_at_s.clone())
        .unwrap_or_default();
    (inferred, logged)
}

async fn matrix(flavour: &str) {
    let mut failures = Vec::new();
    let correct = expect(
        &format!("{flavour}-outage-correct"),
        outage(flavour, ""),
        None,
        &mut failures,
    )
    .await;
    let (inferred, logged) = openings(&correct);
    let errors: Vec<String> = inferred
        .iter()
        .zip(&logged)
        .map(|(i, l)| format!("{:+.1}ms", (i - l) * 1000.0))
        .collect();
    println!(
        "{flavour}: {} openings logged, {} inferred, errors {}",
        logged.len(),
        inferred.len(),
        errors.join(" ")
    );
    if inferred.len() != logged.len()
        || inferred
            .iter()
            .zip(&logged)
            .any(|(i, l)| (i - l).abs() > 0.05)
    {
        failures.push(format!(
            "{flavour}: inferred openings {inferred:?} vs logged {logged:?} (±50 ms)\n{}",
            explain(&correct)
        ));
    }
    for defect in [NEVER_TRIPS, OPEN_TOO_LONG, RETRY_STORM] {
        // Envoy ejects the host after 5 consecutive 5xx attempts, whichever
        // calls they belong to: the downstream never sees more than 5
        // attempts in a row, so a client's retry storm hits the proxy, not
        // the service, and bounded amplification is the right verdict.
        if flavour == "envoy" && defect.name == RETRY_STORM.name {
            continue;
        }
        expect(
            &format!("{flavour}-outage-{}", defect.name),
            outage(flavour, defect.toml),
            Some(defect.check),
            &mut failures,
        )
        .await;
    }
    expect(
        &format!("{flavour}-hang-correct"),
        hang(flavour, ""),
        None,
        &mut failures,
    )
    .await;
    expect(
        &format!("{flavour}-hang-{}", NO_CLIENT_TIMEOUT.name),
        hang(flavour, NO_CLIENT_TIMEOUT.toml),
        Some(NO_CLIENT_TIMEOUT.check),
        &mut failures,
    )
    .await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gobreaker() {
    matrix("gobreaker").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pybreaker() {
    matrix("pybreaker").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resilience4j() {
    matrix("resilience4j").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opossum() {
    matrix("opossum").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy() {
    matrix("envoy").await;
}
