//! Property tests of scenario validation: files generated with every
//! duration, count, rate and fault value valid, at its bound, beyond it,
//! of the wrong type or not a number. Whatever is written: no panic; a file
//! valid by construction loads; a bad one is refused with every error at
//! `file:line:col` of a value written wrong (or of one it makes wrong);
//! and through the binary, `faultline run` exits 2 and starts nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use faultline::verdict::Plan;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};

/// A value as written, and whether it is within its bound.
type Written = (String, bool);

/// A float as TOML writes it (`nan`, `inf`, `1e300`, `0.5`).
fn toml_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:?}")
    }
}

/// A duration string and the duration it means, if it is one faultline
/// takes (at most 30 days): mostly from `typical` (seconds), else at the
/// bound, zero, beyond it or not a duration.
fn duration(typical: std::ops::Range<f64>) -> impl Strategy<Value = (String, Option<Duration>)> {
    let unit = |n: u64, u: &'static str, d: Duration| (format!("{n}{u}"), Some(d));
    prop_oneof![
        24 => typical.prop_map(|secs| {
            let ms = (secs * 1000.0).round() as u64;
            (format!("{ms}ms"), Some(Duration::from_millis(ms)))
        }),
        1 => (1u64..100_000).prop_map(move |n| unit(n, "s", Duration::from_secs(n))),
        1 => (1u64..720).prop_map(move |n| unit(n, "h", Duration::from_secs(n * 3600))),
        1 => Just(("30d".to_string(), Some(Duration::from_secs(30 * 86_400)))),
        1 => Just(("1m30s".to_string(), Some(Duration::from_secs(90)))),
        1 => Just(("0s".to_string(), Some(Duration::ZERO))),
        1 => Just(("31d".to_string(), None)),
        1 => Just(("1000000h".to_string(), None)),
        1 => Just(("584942417355y".to_string(), None)),
        1 => Just(("99999999999999999999999s".to_string(), None)),
        1 => Just(("-5s".to_string(), None)),
        1 => Just(("30".to_string(), None)),
        1 => Just(("".to_string(), None)),
        1 => Just(("5 fortnights".to_string(), None)),
    ]
}

/// An unsigned count written in TOML, valid within `lo..=hi`.
fn count(lo: u64, hi: u64) -> impl Strategy<Value = Written> {
    prop_oneof![
        40 => (lo..=hi).prop_map(|n| (n.to_string(), true)),
        1 => Just(("0".to_string(), lo == 0)),
        1 => Just(((hi + 1).to_string(), false)),
        1 => Just(("70000".to_string(), 70_000 <= hi)),
        1 => Just((u32::MAX.to_string(), u64::from(u32::MAX) <= hi)),
        1 => Just(("4294967296".to_string(), false)),
        1 => Just(("-1".to_string(), false)),
        1 => Just(("9223372036854775808".to_string(), false)),
        1 => Just(("2.5".to_string(), false)),
        1 => Just(("\"3\"".to_string(), false)),
    ]
}

/// A float written in TOML, valid where `ok` says.
fn float(ok: fn(f64) -> bool, typical: std::ops::Range<f64>) -> impl Strategy<Value = Written> {
    prop_oneof![
        40 => typical.prop_map(move |x| (toml_float(x), ok(x))),
        1 => prop_oneof![
            Just(0.0),
            Just(-1.0),
            Just(1e-300),
            Just(1e300),
            Just(f64::MAX),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.001),
            Just(100.0),
            Just(100_000.0),
            Just(100_000.5),
        ]
        .prop_map(move |x| (toml_float(x), ok(x))),
        1 => Just(("\"fast\"".to_string(), false)),
    ]
}

/// A fault inline table and whether it is valid.
fn fault() -> impl Strategy<Value = Written> {
    let ms = |max: f64, zero_ok: bool| {
        prop_oneof![
            30 => (0.001f64..max).prop_map(|v| (v, true)),
            1 => Just((max, true)),
            1 => Just((0.0, zero_ok)),
            1 => Just((max + 1.0, false)),
            1 => Just((1.8e22, false)),
            1 => Just((1e300, false)),
            1 => Just((-5.0, false)),
        ]
    };
    let share = || {
        prop_oneof![
            30 => (0.0f64..=1.0).prop_map(|v| (v, true)),
            1 => Just((1.7, false)),
            1 => Just((-0.1, false)),
        ]
    };
    prop_oneof![
        6 => ms(3_600_000.0, true).prop_map(|(v, ok)| (json!({"kind": "latency", "fixed_ms": v}), ok)),
        6 => (
            ms(3_600_000.0, false),
            prop_oneof![
                (0.0f64..=10.0).prop_map(|s| (s, true)),
                Just((10.5, false)),
                Just((1e300, false))
            ]
        )
            .prop_map(|((m, mok), (s, sok))| (
                json!({"kind": "latency", "lognormal": {"median_ms": m, "sigma": s}}),
                mok && sok
            )),
        6 => (
            prop_oneof![
                30 => (100i64..=599).prop_map(|c| (c, true)),
                1 => Just((700, false)),
                1 => Just((-1, false)),
                1 => Just((i64::MAX, false))
            ],
            share()
        )
            .prop_map(|((c, cok), (r, rok))| (
                json!({"kind": "status", "code": c, "rate": r, "body": "{\"code\":1,\"message\":\"x, y\"}"}),
                cok && rok
            )),
        6 => (ms(86_400_000.0, false), share()).prop_map(|((p, pok), (d, dok))| (
            json!({"kind": "hang", "flapping": {"period_ms": p, "duty": d}}),
            pok && dok && d > 0.0
        )),
        6 => ms(3_600_000.0, false)
            .prop_map(|(d, ok)| (json!({"kind": "slow_body", "duration_ms": d}), ok)),
        1 => Just((json!({"kind": "explode"}), false)),
        1 => Just((json!({"kind": "refuse", "rate": 0.5}), false)),
    ]
    .prop_map(|(v, ok): (Value, bool)| {
        let inline = toml::Value::try_from(&v).map_or_else(|_| v.to_string(), |t| t.to_string());
        (inline, ok)
    })
}

/// A generated scenario: its text and the lines whose values are wrong (or
/// that a wrong value makes wrong). Empty: valid by construction.
#[derive(Clone, Debug)]
struct Generated {
    text: String,
    bad_lines: Vec<usize>,
}

fn scenario() -> impl Strategy<Value = Generated> {
    let stack = (
        float(|x| (0.001..=100.0).contains(&x), 0.001..100.0),
        count(1, 100),
        count(1, 10_000),
        count(0, 1_000_000),
        float(|x| x > 0.0 && x <= 1.0, 0.01..1.0),
        duration(0.0..10.0),
    );
    let load = (
        duration(30.0..3600.0),
        duration(0.01..5.0),
        float(|x| x > 0.0 && x <= 100_000.0, 0.1..100_000.0),
    );
    let checks = (count(1, 10_000), count(1, 10_000), duration(0.001..600.0));
    (stack, load, fault(), checks).prop_map(
        |(
            (ts, ma, mr, mn, fr, (rd, rd_ok)),
            ((d, run), (w, window), rate),
            fault,
            (mp, h, (wi, within)),
        )| {
            let text = format!(
                r#"duration = "{d}"
[stack]
time_scale = {}
[stack.clients]
max_attempts = {}
max_requests = {}
min_requests = {}
failure_ratio = {}
retry_delay = "{rd}"
[load]
window = "{w}"
[[load.journeys]]
kind = "payment"
rate = {}
[[faults]]
injector = "order-service"
from = "1s"
until = "30s"
fault = {}
[[checks]]
kind = "half_open_probes"
downstream = "order-service"
max_probes = {}
[[checks]]
kind = "recovers_within"
journey = "payment"
hold = {}
within = "{wi}"
"#,
                ts.0, ma.0, mr.0, mn.0, fr.0, rate.0, fault.0, mp.0, h.0
            );
            let mut bad = Vec::new();
            let mut wrong = |line: usize, ok: bool| {
                if !ok {
                    bad.push(line);
                }
            };
            // The run must hold the fault window (1 s to 30 s); a shorter
            // one makes `from` and `until` wrong too.
            let run_ok = run.is_some_and(|r| r >= Duration::from_secs(30));
            wrong(1, run_ok);
            if run.is_some() && !run_ok {
                wrong(17, false);
                wrong(18, false);
            }
            wrong(3, ts.1);
            wrong(5, ma.1);
            wrong(6, mr.1);
            wrong(7, mn.1);
            wrong(8, fr.1);
            wrong(9, rd_ok.is_some());
            let window_ok = window.is_some_and(|w| {
                w >= Duration::from_millis(1)
                    && run.is_none_or(|r| r.as_nanos() / w.as_nanos() <= 1_000_000)
            });
            wrong(11, window_ok);
            wrong(14, rate.1);
            wrong(19, fault.1);
            wrong(23, mp.1);
            wrong(27, h.1);
            wrong(28, within.is_some_and(|w| !w.is_zero()));
            Generated {
                text,
                bad_lines: bad,
            }
        },
    )
}

/// Runs `cases` generated scenarios through `check` on a thread with room
/// for deeply nested strategies in a debug build.
fn run_cases(cases: u32, check: fn(Generated) -> Result<(), TestCaseError>) {
    let outcome = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            TestRunner::new(ProptestConfig {
                cases,
                failure_persistence: None,
                ..ProptestConfig::default()
            })
            .run(&scenario(), check)
            .map_err(|e| e.to_string())
        })
        .expect("thread")
        .join()
        .expect("no panic escaped proptest");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

static VALID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static REFUSED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Generated files checked through the library (parse and validate only).
const CASES: u32 = 6000;

#[test]
fn generated_scenarios_never_panic_and_bad_ones_are_refused_at_the_value() {
    run_cases(CASES, |g| {
        let lines = g.text.lines().count();
        match Plan::parse(Path::new("gen.toml"), &g.text, None) {
            Ok(_) => {
                prop_assert!(
                    g.bad_lines.is_empty(),
                    "accepted, but lines {:?} are wrong:\n{}",
                    g.bad_lines,
                    g.text
                );
                VALID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(errors) => {
                prop_assert!(
                    !g.bad_lines.is_empty(),
                    "refused a valid file:\n{}\n{}",
                    errors,
                    g.text
                );
                for e in &errors.0 {
                    prop_assert!(
                        (1..=lines).contains(&e.line) && e.column >= 1,
                        "not located in the file: {}",
                        e
                    );
                    prop_assert!(
                        g.bad_lines.contains(&e.line),
                        "an error at a line written right ({}; wrong: {:?}):\n{}",
                        e,
                        g.bad_lines,
                        g.text
                    );
                }
                REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    });
    let valid = VALID.load(std::sync::atomic::Ordering::Relaxed);
    let refused = REFUSED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{CASES} generated scenarios: {valid} valid and loaded, {refused} refused at a wrong value"
    );
    assert!(
        valid > CASES / 20 && refused > CASES / 5,
        "{valid} valid, {refused} refused"
    );
}

/// The same files through the binary: `faultline run` on a bad file exits 2
/// with the location, and starts nothing (its output folder is never even
/// created); `faultline validate` accepts a valid one.
#[test]
fn faultline_run_on_a_generated_bad_file_exits_2_and_starts_nothing() {
    run_cases(48, |g| {
        let dir = std::env::temp_dir().join(format!(
            "faultline-props-{}-{}",
            std::process::id(),
            std::thread::current().name().unwrap_or("t").len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("folder");
        let file = dir.join("gen.toml");
        std::fs::write(&file, &g.text).expect("scenario");
        let out = dir.join("reports");
        let faultline = env!("CARGO_BIN_EXE_faultline");
        if g.bad_lines.is_empty() {
            let validated = Command::new(faultline)
                .arg("validate")
                .arg(&file)
                .output()
                .expect("faultline runs");
            prop_assert_eq!(validated.status.code(), Some(0));
        } else {
            let run = Command::new(faultline)
                .args(["run", "--quiet", "--out"])
                .arg(&out)
                .arg(&file)
                .output()
                .expect("faultline runs");
            let stderr = String::from_utf8_lossy(&run.stderr);
            prop_assert_eq!(run.status.code(), Some(2), "{}", stderr);
            let at = format!("{}:", file.display());
            let located = stderr
                .lines()
                .filter_map(|l| l.strip_prefix(&at))
                .all(|rest| {
                    rest.split(':')
                        .next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| g.bad_lines.contains(&n))
                });
            prop_assert!(
                stderr.contains(&at) && located,
                "not located at a wrong line {:?}: {}",
                g.bad_lines,
                stderr
            );
            prop_assert!(!out.exists(), "a run started: {} exists", out.display());
            prop_assert!(!stderr.contains("panicked"), "{}", stderr);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    });
}
