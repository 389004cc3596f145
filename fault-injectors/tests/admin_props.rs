//! Property tests of the admin API against an in-process injector: faults
//! generated valid, invalid and extreme (every field at, inside and beyond
//! its bound, wrong types, garbage bodies, unknown injectors and ids). For
//! each request: no panic, an answer of the API's statuses, and a fault
//! refused is answered 400 naming a field that is wrong and changes
//! nothing; a fault valid by construction is accepted.

mod common;

use std::sync::OnceLock;

use axum::body::Body;
use fault_injectors::{InjectorSet, admin};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

/// One runtime and one injector for every case: the API is what is tested.
fn world() -> &'static (tokio::runtime::Runtime, InjectorSet) {
    static WORLD: OnceLock<(tokio::runtime::Runtime, InjectorSet)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let set = runtime.block_on(async {
            InjectorSet::new([common::stand_in("order-service", 1).await]).expect("set")
        });
        (runtime, set)
    })
}

/// A number for a field, and whether it is within the field's bounds.
type Num = (Value, bool);

/// Milliseconds bounded by `max`: inside (0 and `max` included) or beyond
/// (negative, just over, astronomically over); `zero_ok` says whether 0 is
/// allowed.
fn millis(max: f64, zero_ok: bool) -> impl Strategy<Value = Num> {
    prop_oneof![
        12 => (0.001f64..max).prop_map(|v| (json!(v), true)),
        1 => Just((json!(max), true)),
        1 => Just((json!(0), zero_ok)),
        1 => Just((json!(max + 1.0), false)),
        1 => Just((json!(1.8e22), false)),
        1 => Just((json!(f64::MAX), false)),
        1 => (-1e30f64..-0.001).prop_map(|v| (json!(v), false)),
        1 => Just((json!(u64::MAX), false)),
        1 => Just((json!("250"), false)),
    ]
}

/// A share in [0, 1] (`zero_ok`: whether 0 is allowed).
fn share(zero_ok: bool) -> impl Strategy<Value = Num> {
    prop_oneof![
        12 => (0.001f64..=1.0).prop_map(|v| (json!(v), true)),
        1 => Just((json!(0.0), zero_ok)),
        1 => Just((json!(1.0000001), false)),
        1 => Just((json!(1e300), false)),
        1 => Just((json!(-0.5), false)),
        1 => Just((json!(true), false)),
    ]
}

/// An HTTP status code, as i64 or worse.
fn code() -> impl Strategy<Value = Num> {
    prop_oneof![
        12 => (100i64..=599).prop_map(|c| (json!(c), true)),
        1 => (-100_000i64..100).prop_map(|c| (json!(c), false)),
        1 => (600i64..100_000).prop_map(|c| (json!(c), false)),
        1 => Just((json!(i64::MAX), false)),
        1 => Just((json!(i64::MIN), false)),
        1 => Just((json!(u64::MAX), false)),
        1 => Just((json!(503.5), false)),
        1 => Just((json!("503"), false)),
    ]
}

/// A fault object and the fields written wrong in it (empty: valid).
fn fault() -> impl Strategy<Value = (Value, Vec<&'static str>)> {
    let latency = prop_oneof![
        millis(3_600_000.0, true).prop_map(|(v, ok)| (json!({"fixed_ms": v}), bad(ok, "fixed_ms"))),
        (millis(3_600_000.0, true), millis(3_600_000.0, true)).prop_map(|((a, aok), (b, bok))| {
            let ordered = !(aok && bok) || a.as_f64() <= b.as_f64();
            let mut wrong = bad(aok && bok && ordered, "uniform_ms");
            wrong.dedup();
            (json!({"uniform_ms": [a, b]}), wrong)
        }),
        (
            millis(3_600_000.0, false),
            prop_oneof![
                (0.0f64..=10.0).prop_map(|s| (json!(s), true)),
                Just((json!(10.5), false)),
                Just((json!(-1), false)),
                Just((json!(1e308), false)),
            ]
        )
            .prop_map(|((m, mok), (s, sok))| {
                let mut wrong = bad(mok, "lognormal.median_ms");
                wrong.extend(bad(sok, "lognormal.sigma"));
                (json!({"lognormal": {"median_ms": m, "sigma": s}}), wrong)
            }),
    ]
    .prop_map(|(mut v, wrong)| {
        v["kind"] = json!("latency");
        (v, wrong)
    });
    let status = (code(), proptest::option::of(share(true)), any::<bool>()).prop_map(
        |((c, cok), rate, body)| {
            let mut v = json!({"kind": "status", "code": c});
            let mut wrong = bad(cok, "code");
            if let Some((r, rok)) = rate {
                v["rate"] = r;
                wrong.extend(bad(rok, "rate"));
            }
            if body {
                v["body"] = json!("{\"code\":1,\"message\":\"x, y\"}");
            }
            (v, wrong)
        },
    );
    let slow = millis(3_600_000.0, false).prop_map(|(d, ok)| {
        (
            json!({"kind": "slow_body", "duration_ms": d}),
            bad(ok, "duration_ms"),
        )
    });
    let flapping = (
        prop_oneof![
            Just("hang"),
            Just("refuse"),
            Just("empty_body"),
            Just("reset")
        ],
        millis(86_400_000.0, false),
        share(false),
    )
        .prop_map(|(kind, (p, pok), (d, dok))| {
            let mut wrong = bad(pok, "flapping.period_ms");
            wrong.extend(bad(dok, "flapping.duty"));
            (
                json!({"kind": kind, "flapping": {"period_ms": p, "duty": d}}),
                wrong,
            )
        });
    let targeted = (
        prop_oneof![
            Just((json!("POST"), true)),
            Just((json!("get"), true)),
            Just((json!("GE T"), false)),
            Just((json!(7), false)),
        ],
        prop_oneof![
            Just((json!("/api/v1/orders"), true)),
            Just((json!("/api/v1/merchants/*/dashboard"), true)),
            Just((json!("/api/{id}/x"), true)),
            Just((json!("orders"), false)),
            Just((json!("/a/**/b"), false)),
        ],
    )
        .prop_map(|((m, mok), (p, pok))| {
            let mut wrong = bad(mok, "method");
            wrong.extend(bad(pok, "path"));
            (
                json!({"kind": "malformed_body", "method": m, "path": p}),
                wrong,
            )
        });
    let unknown = prop_oneof![
        Just((json!({"kind": "explode"}), vec!["kind"])),
        Just((json!({"kind": "hang", "rat": 0.5}), vec!["rat"])),
        Just((
            json!({"kind": "latency", "fixed_ms": 5, "code": 503}),
            vec!["code"]
        )),
        Just((json!({"kind": "status"}), vec!["code"])),
        Just((json!({"kind": "refuse", "rate": 0.5}), vec!["refuse"])),
        Just((json!({"kind": 5}), vec!["kind"])),
        Just((json!({"fixed_ms": 5}), vec!["kind"])),
    ];
    (
        prop_oneof![
            3 => latency,
            2 => status,
            1 => slow,
            2 => flapping,
            1 => targeted,
            1 => unknown,
        ],
        proptest::option::of(prop_oneof![
            Just((json!("f-1.a_b"), true)),
            Just((json!("has space"), false)),
            Just((json!(""), false)),
        ]),
    )
        .prop_map(|((mut v, mut wrong), id)| {
            if let Some((id, ok)) = id {
                v["id"] = id;
                wrong.extend(bad(ok, "id"));
            }
            (v, wrong)
        })
}

fn bad(ok: bool, field: &'static str) -> Vec<&'static str> {
    if ok { Vec::new() } else { vec![field] }
}

/// What is sent.
#[derive(Clone, Debug)]
enum Call {
    /// POST one fault to an injector (`known`: one that exists).
    Post {
        known: bool,
        fault: Value,
        wrong: Vec<&'static str>,
    },
    /// PUT a list of faults.
    Put {
        faults: Vec<(Value, Vec<&'static str>)>,
    },
    /// A body that is not a fault at all.
    Garbage { method: Method, body: Vec<u8> },
    /// Reads and deletes by name and id, some unknown.
    Other { method: Method, path: String },
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        6 => (prop_oneof![5 => Just(true), 1 => Just(false)], fault())
            .prop_map(|(known, (fault, wrong))| Call::Post { known, fault, wrong }),
        2 => proptest::collection::vec(fault(), 0..4).prop_map(|faults| Call::Put { faults }),
        1 => (
            prop_oneof![Just(Method::POST), Just(Method::PUT)],
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                Just(b"{\"kind\":\"latency\",\"fixed_ms\":1e400}".to_vec()),
                Just(b"{\"kind\":\"status\",\"code\":".to_vec()),
                Just(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec()),
                Just(b"null".to_vec()),
            ],
        )
            .prop_map(|(method, body)| Call::Garbage { method, body }),
        1 => (
            prop_oneof![Just(Method::GET), Just(Method::DELETE)],
            prop_oneof![
                Just("/injectors".to_string()),
                Just("/injectors/order-service".to_string()),
                Just("/injectors/nope/faults".to_string()),
                Just("/injectors/order-service/faults/no-such-id".to_string()),
                Just("/injectors/order-service/buckets?since=18446744073709551615".to_string()),
                Just("/injectors/order-service/buckets?since=-1".to_string()),
                Just("/injectors/order-service/changes".to_string()),
                Just("/nowhere".to_string()),
            ],
        )
            .prop_map(|(method, path)| Call::Other { method, path }),
    ]
}

/// Sends one request to the router; the status and the JSON answer.
async fn send(method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let (_, set) = world();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = admin::router(set.clone())
        .oneshot(request)
        .await
        .expect("the router always answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The faults in force, as the API lists them.
fn in_force() -> Value {
    let (_, set) = world();
    serde_json::to_value(set.get("order-service").expect("injector").faults()).expect("json")
}

/// A 400 carries an error message; `wrong` non-empty: it names one of them.
fn refused(status: StatusCode, answer: &Value, wrong: &[&str]) -> Result<(), TestCaseError> {
    prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
    REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let error = answer["error"].as_str().unwrap_or_default();
    prop_assert!(!error.is_empty(), "no error message: {}", answer);
    if !wrong.is_empty() {
        // `lognormal.sigma`: the checks say it whole, a type error `sigma`.
        prop_assert!(
            wrong
                .iter()
                .any(|f| error.contains(f.rsplit('.').next().unwrap_or(f))),
            "the error names none of {:?}: {}",
            wrong,
            error
        );
    }
    Ok(())
}

fn check(call: Call) -> Result<(), TestCaseError> {
    let (runtime, set) = world();
    runtime.block_on(async {
        // One standing fault: a refused request must leave it as it is.
        set.get("order-service")
            .expect("injector")
            .set_faults(vec![fault_injectors::Fault::hang().id("standing")])
            .expect("a valid fault");
        let before = in_force();
        match call {
            Call::Post {
                known,
                fault,
                wrong,
            } => {
                let name = if known {
                    "order-service"
                } else {
                    "payment-gateway"
                };
                let body = serde_json::to_vec(&fault).expect("json");
                let (status, answer) =
                    send(Method::POST, &format!("/injectors/{name}/faults"), body).await;
                if !known {
                    refused(status, &answer, &["payment-gateway"])?;
                    prop_assert_eq!(in_force(), before);
                } else if wrong.is_empty() {
                    prop_assert_eq!(status, StatusCode::CREATED, "{} → {}", fault, answer);
                    ACCEPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else {
                    refused(status, &answer, &wrong)?;
                    prop_assert_eq!(in_force(), before, "a refused fault changed the faults");
                }
            }
            Call::Put { faults } => {
                let wrong: Vec<&str> = faults.iter().flat_map(|(_, w)| w.clone()).collect();
                let list: Vec<Value> = faults.iter().map(|(f, _)| f.clone()).collect();
                // Two faults with one id are refused as a whole too.
                let ids: Vec<&Value> = list.iter().filter_map(|f| f.get("id")).collect();
                let clash = (1..ids.len()).any(|i| ids[..i].contains(&ids[i]));
                let body = serde_json::to_vec(&list).expect("json");
                let (status, answer) =
                    send(Method::PUT, "/injectors/order-service/faults", body).await;
                if wrong.is_empty() && !clash {
                    prop_assert_eq!(status, StatusCode::OK, "{:?} → {}", list, answer);
                    ACCEPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else {
                    refused(status, &answer, if clash { &[] } else { &wrong })?;
                    prop_assert_eq!(in_force(), before, "a refused list changed the faults");
                }
            }
            Call::Garbage { method, body } => {
                let valid = serde_json::from_slice::<Value>(&body).is_ok_and(|v| {
                    serde_json::from_value::<fault_injectors::Fault>(v.clone()).is_ok()
                        || serde_json::from_value::<Vec<fault_injectors::Fault>>(v).is_ok()
                });
                let (status, answer) = send(method, "/injectors/order-service/faults", body).await;
                if !valid {
                    refused(status, &answer, &[])?;
                    prop_assert_eq!(in_force(), before);
                }
            }
            Call::Other { method, path } => {
                let (status, answer) = send(method, &path, Vec::new()).await;
                prop_assert!(
                    [
                        StatusCode::OK,
                        StatusCode::BAD_REQUEST,
                        StatusCode::NOT_FOUND,
                        StatusCode::METHOD_NOT_ALLOWED
                    ]
                    .contains(&status),
                    "{} {}: {}",
                    path,
                    status,
                    answer
                );
                if status.is_client_error() && status != StatusCode::METHOD_NOT_ALLOWED {
                    prop_assert!(answer["error"].is_string(), "{}: {}", path, answer);
                }
            }
        }
        // Faults in force never hold a value beyond its bound.
        for f in set.get("order-service").expect("injector").faults() {
            prop_assert!(f.validate().is_ok(), "{:?}", f);
        }
        Ok(())
    })
}

/// Generated cases.
const CASES: u32 = 4000;

#[test]
fn admin_requests_never_panic_and_refuse_bad_faults_with_the_field() {
    // Deeply nested strategies and axum's futures are large in a debug
    // build: the cases run on a thread with room for them.
    let runner = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
                cases: CASES,
                failure_persistence: None,
                ..ProptestConfig::default()
            });
            let result = runner.run(&call(), check);
            (result, runner)
        })
        .expect("thread");
    let (result, _) = runner.join().expect("no panic escaped proptest");
    if let Err(e) = result {
        panic!("{e}");
    }
    let (accepted, refused) = (
        ACCEPTED.load(std::sync::atomic::Ordering::Relaxed),
        REFUSED.load(std::sync::atomic::Ordering::Relaxed),
    );
    eprintln!(
        "{CASES} generated admin requests: {accepted} faults accepted, {refused} refused with 400"
    );
    // Both sides were exercised.
    assert!(
        accepted > CASES / 10 && refused > CASES / 10,
        "{accepted} accepted, {refused} refused"
    );
}

static ACCEPTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static REFUSED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A bounded setting of the injector config file: its text and whether it
/// is within bounds (`lo..=hi`).
fn setting(lo: u64, hi: u64) -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        8 => (lo..=hi).prop_map(|v| (v.to_string(), true)),
        1 => Just(("0".to_string(), lo == 0)),
        1 => Just(((hi + 1).to_string(), false)),
        1 => Just((i64::MAX.to_string(), false)),
        1 => Just(("-1".to_string(), false)),
        1 => Just(("18446744073709551616".to_string(), false)),
        1 => Just(("1.5".to_string(), false)),
    ]
}

/// Injector config files: every setting and fault valid, at or beyond its
/// bound. A valid file loads; a bad one is refused at `file:line:` of a
/// wrong value, never a panic.
#[test]
fn injector_config_files_are_refused_at_the_bad_value() {
    let strategy = (
        setting(1, 1_000_000_000),
        setting(1, 3_600_000),
        setting(1, 10_000_000),
        fault(),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            runner.run(&strategy, |((rot, rok), (bms, bok), (cap, cok), (fault, wrong))| {
                // TOML has no u64 beyond i64: such a fault is a bad line.
                let (inline, fault_ok) = match toml::Value::try_from(&fault) {
                    Ok(v) => (v.to_string(), wrong.is_empty()),
                    Err(_) => (fault.to_string(), false),
                };
                let text = format!(
                    "seed = 7\nrotate_every = {rot}\n[observe]\nbucket_ms = {bms}\nbucket_capacity = {cap}\n[[injector]]\nname = \"order-service\"\nlisten = \"127.0.0.1:0\"\nfaults = [{inline}]\n"
                );
                let bad_lines: Vec<usize> = [(2, rok), (4, bok), (5, cok), (9, fault_ok)]
                    .into_iter()
                    .filter(|(_, ok)| !ok)
                    .map(|(line, _)| line)
                    .collect();
                match fault_injectors::config::FileConfig::parse(std::path::Path::new("f.toml"), &text) {
                    Ok(_) => prop_assert!(bad_lines.is_empty(), "accepted with bad lines {:?}:\n{}", bad_lines, text),
                    Err(e) => {
                        let msg = e.to_string();
                        let line = msg
                            .strip_prefix("f.toml:")
                            .and_then(|m| m.split(':').next())
                            .and_then(|l| l.parse::<usize>().ok());
                        prop_assert!(
                            line.is_some_and(|l| bad_lines.contains(&l)),
                            "`{}` is not at a bad line {:?}:\n{}",
                            msg,
                            bad_lines,
                            text
                        );
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
        })
        .expect("thread")
        .join()
        .expect("no panic escaped proptest");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
