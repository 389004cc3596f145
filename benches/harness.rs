//! Harness load benchmark: `cargo bench --bench harness`.
//!
//! Prints, in one run, against one in-process target (an injector stand-in
//! answering the dashboard route):
//! - requests/s of the harness's closed model vs raw goose with the same
//!   users and the same shared client (target ≥ 0.9×);
//! - arrival-rate accuracy of the open model at 100, 1 000 and 5 000
//!   requests/s (sent ÷ scheduled; target ±2 %), with late and dropped counts.
//!
//! `FH_BENCH_SECONDS` (default 5) sets each window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fault_injectors::Injector;
use fault_injectors::stand_in::{Reply, Route, StandIn};
use faultline::load::driver::{Lane, LoadSettings, drive};
use faultline::load::journeys::Caller;
use faultline::load::recorder::{Recorder, SeriesSpec};
use faultline::load::requests::RequestRecord;
use faultline::platform::JourneyKind;
use faultline::scenario::{Journey, Merchant, Model, Phase};
use faultline::spill::Spill;
use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path_regex};

const USERS: usize = 32;

fn seconds() -> u64 {
    std::env::var("FH_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

async fn target() -> Injector {
    let stand_in = StandIn::new("merchant-service").route(
        Route::given(method("GET"))
            .and(path_regex(r"^/api/v1/merchants/[^/]+/dashboard$"))
            .reply_with(Reply::ok(json!({"merchant_id": "M001", "degraded": []}))),
    );
    Injector::builder("merchant-service")
        .stand_in(stand_in)
        .start()
        .await
        .expect("target starts")
}

fn merchant() -> Merchant {
    Merchant {
        id: "M001".into(),
        api_key: "k".into(),
        api_secret: "s".into(),
        signature: reference_stack::SignatureVersion::V1,
        password: "p".into(),
    }
}

/// Raw goose: `USERS` users loop GET as fast as they can for `secs`.
async fn raw_goose(url: &str, secs: u64) -> f64 {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let step: TransactionFunction = Arc::new(move |user: &mut GooseUser| {
        let counter = Arc::clone(&counter);
        Box::pin(async move {
            // Read the body, as the harness does (and any real test would).
            let answer = user.get("/api/v1/merchants/M001/dashboard").await?;
            if let Ok(response) = answer.response {
                let _ = response.bytes().await;
            }
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    });
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .expect("goose")
        .register_scenario(
            scenario!("raw")
                .set_host(url)
                .register_transaction(Transaction::new(step)),
        );
    let attack = *attack
        .set_default(GooseDefault::Users, USERS)
        .expect("users");
    let attack = *attack
        .set_default(GooseDefault::IncreaseRate, "1000")
        .expect("rate");
    let attack = *attack
        .set_default(GooseDefault::RunTime, secs as usize)
        .expect("run time");
    let attack = *attack.set_default(GooseDefault::Quiet, 1).expect("quiet");
    let attack = *attack
        .set_default(GooseDefault::NoPrintMetrics, true)
        .expect("no print");
    let attack = *attack
        .set_default(GooseDefault::NoMetrics, true)
        .expect("no metrics");
    let attack = *attack
        .set_default(GooseDefault::NoTelnet, true)
        .expect("no telnet");
    let attack = attack
        .set_client_builder_without_cookies(
            GooseClientBuilder::new()
                .without_cookies()
                .timeout(Duration::from_secs(10)),
        )
        .expect("client");
    let started = Instant::now();
    attack.execute().await.expect("raw goose runs");
    sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64().max(secs as f64)
}

fn journey(model: Model, rate: f64) -> Journey {
    Journey {
        name: "dashboard".into(),
        kind: JourneyKind::Dashboard,
        rate: match model {
            Model::Open => vec![(Duration::ZERO, rate)],
            Model::Closed => Vec::new(),
        },
        users: USERS as u32,
        think: Duration::ZERO,
        webhook: false,
        success_statuses: vec![200],
        expects: Vec::new(),
    }
}

/// The harness's driver; returns (requests recorded, dropped, late, seconds).
async fn harness(url: &str, model: Model, rate: f64, secs: u64) -> (u64, u64, u64, f64) {
    let duration = Duration::from_secs(secs);
    let phases = vec![Phase {
        name: "all".into(),
        from: Duration::ZERO,
        until: duration,
    }];
    let spec = SeriesSpec {
        name: "dashboard".into(),
        journey: "dashboard".into(),
        kind: JourneyKind::Dashboard,
    };
    let recorder = Arc::new(Recorder::new(
        vec![spec],
        phases,
        Duration::from_secs(1),
        Duration::from_secs(10),
        1,
    ));
    let lane = Lane {
        journey: journey(model, rate),
        index: 0,
        target: url.to_string(),
        series: 0,
        webhook_series: None,
    };
    // The production path: every request's record spilled to a file,
    // flushed by a task as a run does.
    let path = std::env::temp_dir().join(format!("faultline-bench-{}.bin", std::process::id()));
    let requests = Arc::new(Spill::<RequestRecord>::create(&path).expect("spill file"));
    let settings = LoadSettings {
        model,
        duration,
        timeout: Duration::from_secs(10),
        max_lag: Duration::from_secs(1),
        requests: Some(Arc::clone(&requests)),
    };
    let flusher = {
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                requests.flush();
            }
        })
    };
    let load_start = Instant::now() + Duration::from_millis(500);
    drive(
        vec![lane],
        &settings,
        Arc::new(Caller::new(merchant(), "BENCH")),
        Arc::clone(&recorder),
        load_start,
        CancellationToken::new(),
    )
    .await
    .expect("harness drives");
    flusher.abort();
    requests.flush();
    let _ = std::fs::remove_file(&path);
    let record = recorder.finish();
    let s = &record.series[0];
    (s.total.requests, s.total.dropped, s.late, secs as f64)
}

#[tokio::main]
async fn main() {
    let secs = seconds();
    let target = target().await;
    let url = target.url();
    println!(
        "faultline harness benchmark ({} cores, {secs}s windows)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let raw = raw_goose(&url, secs).await;
    let (n, _, _, s) = harness(&url, Model::Closed, 0.0, secs).await;
    let ours = n as f64 / s;
    println!("closed loop, {USERS} users, same target and client:");
    println!("  raw goose          {raw:>9.0} req/s");
    println!(
        "  faultline harness  {ours:>9.0} req/s   ratio {:.2} (target >= 0.9)",
        ours / raw
    );

    println!("open model, arrival-rate accuracy (sent / scheduled):");
    for rate in [100.0, 1000.0, 5000.0] {
        let (n, dropped, late, s) = harness(&url, Model::Open, rate, secs).await;
        let scheduled = rate * s;
        println!(
            "  {rate:>6.0} req/s  scheduled {scheduled:>7.0}  sent {n:>7}  error {:+.2}%  dropped {dropped}  late(>10ms) {late}   (target ±2 %)",
            (n as f64 - scheduled) / scheduled * 100.0
        );
    }
}
