//! Scenario files as users write them: a corpus of malformed files, each
//! refused at the location its first line states; a corpus of good files
//! that load; the defaults a loaded scenario resolves to; and the JSON schema
//! shipped for editors.
//!
//! Every file in `tests/corpus/bad/` starts with
//! `# expect: LINE:COL: <part of the message>`, the place and words of the
//! first error `faultline validate` must report for it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use faultline::scenario::{Model, ScenarioError, StackKind};
use faultline::verdict::Plan;
use serde_json::json;

fn json_schema() -> String {
    Plan::json_schema()
}
use reference_stack::{BreakerFlavour, Downstream};

/// The `.toml` files of `tests/corpus/<dir>`, sorted.
fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// What a bad file's first line says its first error is.
#[derive(Debug)]
struct Expected {
    line: usize,
    column: usize,
    message: String,
}

/// Reads `# expect: LINE:COL: message` from the first line of `path`.
fn expected(path: &Path) -> Expected {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| {
            panic!(
                "{}: first line must be `# expect: LINE:COL: message`",
                path.display()
            )
        });
    let mut parts = header.splitn(3, ':');
    let mut number = || -> usize {
        parts
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: bad `# expect:` line `{header}`", path.display()))
    };
    let (line, column) = (number(), number());
    let message = parts.next().unwrap_or_default().trim().to_string();
    assert!(
        !message.is_empty(),
        "{}: `# expect:` needs a message",
        path.display()
    );
    Expected {
        line,
        column,
        message,
    }
}

/// Loads `text` as if read from `name`, the way `faultline validate` does.
fn parse(name: &str, text: &str) -> Result<Plan, Vec<ScenarioError>> {
    Plan::parse(Path::new(name), text, None).map_err(|e| e.0)
}

/// Loads `text`, failing the test with every error if it is refused.
fn load_ok(text: &str) -> Plan {
    parse("test.toml", text).unwrap_or_else(|errors| {
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("refused:\n{}", shown.join("\n"))
    })
}

#[test]
fn every_bad_file_is_refused_at_the_location_it_states() {
    let files = corpus("bad");
    assert!(
        files.len() >= 30,
        "the bad corpus has only {} files",
        files.len()
    );
    let mut wrong = Vec::new();
    for path in &files {
        let want = expected(path);
        let errors = match Plan::load(path, None) {
            Ok(_) => {
                wrong.push(format!("{}: loaded, but should be refused", path.display()));
                continue;
            }
            Err(errors) => errors,
        };
        let first = &errors.0[0];
        let here = (first.line, first.column) == (want.line, want.column);
        if !here || !first.message.contains(&want.message) {
            wrong.push(format!(
                "{}: expected {}:{}: …{}…, got\n{errors}",
                path.display(),
                want.line,
                want.column,
                want.message
            ));
        }
        assert!(
            errors.to_string().starts_with(&format!(
                "{}:{}:{}: ",
                path.display(),
                first.line,
                first.column
            )),
            "errors read `path:line:col: message`: {errors}"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} of {} files:\n\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn every_good_file_loads() {
    let files = corpus("good");
    assert!(
        files.len() >= 5,
        "the good corpus has only {} files",
        files.len()
    );
    let scenarios: Vec<Plan> = files
        .iter()
        .map(|path| {
            Plan::load(path, None)
                .unwrap_or_else(|errors| panic!("{} is refused:\n{errors}", path.display()))
        })
        .collect();
    // The good corpus keeps exercising the features editors and users rely on.
    let mut kinds: Vec<&str> = scenarios
        .iter()
        .flat_map(|s| &s.checks)
        .map(|c| c.check.kind())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "amplification",
            "breaker_opens",
            "half_open_probes",
            "integrity",
            "latency",
            "no_cascade",
            "no_duplicates",
            "recovers_within"
        ],
        "every check kind"
    );
    let has = |what: &str, f: &dyn Fn(&faultline::scenario::Scenario) -> bool| {
        assert!(
            scenarios.iter().any(|p| f(&p.scenario)),
            "no good file has {what}"
        );
    };
    has("an open model", &|s| s.load.model == Model::Open);
    has("a closed model", &|s| s.load.model == Model::Closed);
    has("a ramp", &|s| {
        s.load.journeys.iter().any(|j| j.rate.len() > 1)
    });
    has("a flapping fault", &|s| {
        s.faults.iter().any(|f| f.fault.flapping.is_some())
    });
    has("an external stack with injectors", &|s| {
        s.stack.kind == StackKind::External && !s.stack.injectors.is_empty()
    });
    has("statements about the SUT's breakers", &|s| {
        !s.sut.breakers.is_empty()
    });
    has("gauge label values mapped to injectors", &|s| {
        !s.sut.downstream_names.is_empty()
    });
}

/// Runs the `faultline` binary with `args`: (exit code, stdout, stderr).
fn faultline(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run faultline: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn faultline_validate_exits_2_at_the_stated_location() {
    for path in corpus("bad") {
        let want = expected(&path);
        let (code, _, stderr) = faultline(&["validate".as_ref(), path.as_os_str()]);
        let at = format!("{}:{}:{}: ", path.display(), want.line, want.column);
        assert_eq!(code, Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.starts_with(&at) && stderr.contains(&want.message),
            "{}: expected `{at}…{}…` first, got\n{stderr}",
            path.display(),
            want.message
        );
    }
    let good = corpus("good");
    let mut args = vec!["validate".as_ref()];
    args.extend(good.iter().map(|p| p.as_os_str()));
    let (code, stdout, stderr) = faultline(&args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[test]
fn faultline_run_refuses_a_bad_file_before_starting_anything() {
    let out = std::env::temp_dir().join(format!("faultline-corpus-{}", std::process::id()));
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bad/rate-negative.toml");
    let (code, _, stderr) = faultline(&[
        "run".as_ref(),
        bad.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("rate-negative.toml:7:8: rate must be more than 0"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "a refused run must not write {}",
        out.display()
    );
}

#[test]
fn a_missing_file_is_reported_at_its_path() {
    let path = Path::new("tests/corpus/no-such-file.toml");
    let errors = Plan::load(path, None).expect_err("no such file").0;
    assert_eq!((errors[0].line, errors[0].column), (1, 1));
    assert!(
        errors[0].message.starts_with("cannot read"),
        "{}",
        errors[0]
    );
}

/// A file that sets only what is required plus one of each check.
const MINIMAL: &str = r#"
duration = "60s"

[stack]
time_scale = 0.1

[load]
[[load.journeys]]
kind = "payment"
rate = 10

[[load.journeys]]
name = "dash"
kind = "dashboard"
rate = 2

[[faults]]
injector = "order-service"
from = "20s"
until = "40s"
fault = { kind = "status", code = 503 }

[[checks]]
kind = "breaker_opens"
downstream = "order-service"

[[checks]]
kind = "half_open_probes"
downstream = "order-service"

[[checks]]
kind = "recovers_within"
journey = "payment"

[[checks]]
kind = "latency"
journey = "payment"
max = "1s"

[[checks]]
kind = "no_cascade"
journey = "dash"

[[checks]]
kind = "amplification"
downstream = "order-service"
max_ratio = 4

[[checks]]
kind = "no_duplicates"

[[checks]]
kind = "integrity"
journey = "payment"
"#;

#[test]
fn unset_fields_take_their_defaults() {
    let plan = parse("tests/order-outage.toml", MINIMAL).unwrap_or_else(|e| panic!("{e:?}"));
    let s = &plan.scenario;
    assert_eq!(s.name, "order-outage", "the name defaults to the file name");
    assert_eq!(s.seed, 0);
    assert_eq!(s.stack.kind, StackKind::Embedded);
    assert_eq!(s.sut.success_statuses, vec![200, 201]);
    assert_eq!(s.sut.sample_every, Duration::from_millis(250));
    assert_eq!(s.load.timeout, Duration::from_secs(60));
    assert_eq!(s.load.window, Duration::from_secs(1));
    let payment = s
        .journey("payment")
        .expect("a journey named after its kind");
    assert_eq!(payment.success_statuses, vec![200, 201]);
    assert_eq!(payment.rate, vec![(Duration::ZERO, 10.0)]);
    assert_eq!(
        payment.expects,
        vec![Downstream::Risk, Downstream::Order, Downstream::Channel]
    );
    assert!(!payment.webhook);
    assert_eq!(s.merchant.id, "M001");

    let names: Vec<&str> = plan.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "breaker_opens:order-service",
            "half_open_probes:order-service",
            "recovers_within:payment",
            "latency:payment:fault:p99",
            "no_cascade:dash:fault",
            "amplification:order-service:fault",
            "no_duplicates:order-service:order_no",
            "integrity:payment",
        ]
    );
    let params = |kind: &str| {
        plan.checks
            .iter()
            .find(|c| c.check.kind() == kind)
            .map(|c| c.check.params())
            .unwrap_or_else(|| panic!("no {kind} check"))
    };
    let probes = params("half_open_probes");
    // The platform's open timeout is 30 s; time_scale 0.1 makes it 3 s. The
    // slack is a fifth of it: probes are timed from the failed probe's end,
    // so no retry loop of the SUT needs to be allowed for.
    assert_eq!(
        (
            &probes["max_probes"],
            &probes["period"],
            &probes["tolerance"]
        ),
        (&json!(3), &json!("3s"), &json!("600ms"))
    );
    let recovery = params("recovers_within");
    assert_eq!(
        (&recovery["within"], &recovery["window"], &recovery["hold"]),
        (&json!("30s"), &json!(1.0), &json!(3))
    );
    assert_eq!(params("latency")["bound"], json!({ "max": "1s" }));
}

#[test]
fn the_breaker_flavour_is_set_for_every_client_or_one() {
    let text = MINIMAL.replace(
        "[stack]\ntime_scale = 0.1\n",
        "[stack]\ntime_scale = 0.1\n\n[stack.clients]\nbreaker = \"resilience4j\"\n\n\
         [stack.client.order-service]\nbreaker = \"pybreaker\"\n",
    );
    let s = load_ok(&text).scenario;
    let flavour = |d| s.stack.client_settings(d).breaker;
    assert_eq!(flavour(Downstream::Order), BreakerFlavour::Pybreaker);
    assert_eq!(flavour(Downstream::Risk), BreakerFlavour::Resilience4j);
    assert_eq!(
        load_ok(MINIMAL)
            .scenario
            .stack
            .client_settings(Downstream::Order)
            .breaker,
        BreakerFlavour::Gobreaker,
        "gobreaker unless told"
    );
}

#[test]
fn probe_period_follows_the_clients_open_timeout_and_time_scale() {
    let text = MINIMAL.replace(
        "[stack]\ntime_scale = 0.1\n",
        "[stack]\ntime_scale = 0.5\n\n[stack.clients]\nopen_timeout = \"10s\"\n\n\
         [stack.client.order-service]\nopen_timeout = \"4s\"\nmax_requests = 5\n",
    );
    let plan = load_ok(&text);
    let s = &plan.scenario;
    let probes = plan
        .checks
        .iter()
        .find(|c| c.check.kind() == "half_open_probes")
        .map(|c| c.check.params())
        .expect("a half_open_probes check");
    assert_eq!(
        (&probes["max_probes"], &probes["period"]),
        (&json!(5), &json!("2s")),
        "order-service's own settings, scaled"
    );
    assert_eq!(
        s.stack.client_settings(Downstream::Risk).open_timeout,
        Duration::from_secs(5)
    );
}

#[test]
fn phases_are_derived_from_the_fault_windows() {
    let phases = |faults: &str| -> Vec<(String, u64, u64)> {
        let text = format!(
            "duration = \"60s\"\n[load]\n[[load.journeys]]\nkind = \"payment\"\nrate = 1\n{faults}"
        );
        load_ok(&text)
            .scenario
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.from.as_secs(), p.until.as_secs()))
            .collect()
    };
    let fault = |injector: &str, from: u64, until: Option<u64>| {
        let until = until.map_or(String::new(), |u| format!("until = \"{u}s\"\n"));
        format!(
            "[[faults]]\ninjector = \"{injector}\"\nfrom = \"{from}s\"\n{until}fault = {{ kind = \"hang\" }}\n"
        )
    };
    let named = |list: &[(&str, u64, u64)]| -> Vec<(String, u64, u64)> {
        list.iter()
            .map(|(n, a, b)| (n.to_string(), *a, *b))
            .collect()
    };
    assert_eq!(phases(""), named(&[("baseline", 0, 60)]));
    assert_eq!(
        phases(&(fault("order-service", 30, Some(45)) + &fault("risk-service", 20, Some(40)))),
        named(&[("baseline", 0, 20), ("fault", 20, 45), ("recovery", 45, 60)]),
        "the fault phase spans every window"
    );
    assert_eq!(
        phases(&fault("order-service", 20, None)),
        named(&[("baseline", 0, 20), ("fault", 20, 60)]),
        "a fault never cleared leaves no recovery"
    );
}

#[test]
fn every_problem_in_a_file_is_reported_in_file_order() {
    let text = r#"duration = "60s"

[stack]
time_scale = 0

[load]
[[load.journeys]]
kind = "payment"
rate = -5

[[faults]]
injector = "order-servce"
from = "20s"
until = "10s"
fault = { kind = "hang", rate = 1.7 }

[[checks]]
kind = "latency"
journey = "payments"
max = "1s"

[sut]
sample_every = "1ms"
"#;
    let errors = parse("multi.toml", text).expect_err("seven mistakes");
    let found: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str()))
        .collect();
    let expect = [
        (4, 14, "time_scale must be more than 0"),
        (9, 8, "rate must be more than 0"),
        (12, 12, "unknown injector `order-servce`"),
        (14, 9, "until = 10s must be after from = 20s"),
        // The fault's own checks are reported with the others, at the
        // `{` of the fault.
        (15, 9, "rate must be between 0 and 1, got 1.7"),
        (19, 11, "unknown journey `payments`"),
        // [sut] is checked before [load] but written after it: errors come
        // in the order of the file.
        (23, 16, "sample_every must be at least 5ms"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((line, column, message), want) in found.iter().zip(expect) {
        assert_eq!((*line, *column), (want.0, want.1), "{message}");
        assert!(
            message.contains(want.2),
            "`{message}` should say `{}`",
            want.2
        );
    }
}

#[test]
fn a_refused_fault_does_not_cascade_into_its_checks() {
    let text = r#"duration = "60s"

[load]
[[load.journeys]]
kind = "payment"
rate = 10

[[faults]]
injector = "order-servce"
from = "20s"
until = "40s"
fault = { kind = "status", code = 503 }

[[checks]]
kind = "breaker_opens"
downstream = "order-service"

[[checks]]
kind = "recovers_within"
journey = "payment"

[[checks]]
kind = "no_cascade"
journey = "payment"
"#;
    let errors = parse("typo.toml", text).expect_err("unknown injector");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "typo.toml:9:12: unknown injector `order-servce`; known: risk-service, order-service, channel-adapter, notification-service, analytics-service, accounting-service, withdrawal-service, merchant-service, payment-gateway, bank-api"
        ]
    );
}

#[test]
fn the_stack_flag_overrides_the_file() {
    let path = Path::new("tests/corpus/good/baseline-only.toml");
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let errors = Plan::parse(path, &text, Some(StackKind::External))
        .expect_err("external needs services")
        .0;
    assert_eq!((errors[0].line, errors[0].column), (1, 1), "{errors:#?}");
    assert!(
        errors[0]
            .message
            .contains("an external stack (--stack external) needs [stack.services]"),
        "{errors:#?}"
    );
    let s = Plan::parse(path, &text, Some(StackKind::Embedded)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.scenario.stack.kind, StackKind::Embedded);
}

/// `scenarios/schema.json`, the schema shipped for editors.
fn shipped_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/schema.json")
}

#[test]
fn the_shipped_schema_is_the_generated_one() {
    let path = shipped_schema_path();
    let generated = json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let shipped = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "{} is out of date with the scenario file types; regenerate it with\n  \
         UPDATE_SCHEMA=1 cargo test --test scenario_corpus the_shipped_schema_is_the_generated_one",
        path.display()
    );
}

#[test]
fn the_schema_refuses_unknown_keys_and_knows_every_kind() {
    let schema: serde_json::Value =
        serde_json::from_str(&json_schema()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        schema["additionalProperties"],
        serde_json::json!(false),
        "unknown top-level keys"
    );
    let required = schema["required"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert!(required.contains(&"duration".into()) && required.contains(&"load".into()));
    let text = schema.to_string();
    for word in [
        "breaker_opens",
        "half_open_probes",
        "recovers_within",
        "no_cascade",
        "amplification",
        "no_duplicates",
        "integrity",
        "settlement",
        "slow_body",
        "closed",
        "order-service",
        "payment-gateway",
    ] {
        assert!(
            text.contains(&format!("\"{word}\"")),
            "the schema does not know `{word}`"
        );
    }
}
