//! Observation: arrival buckets by route and outcome, duplicate ids, and the
//! seeded decision log.

mod common;

use std::time::Duration;

use common::{client, order_body, stand_in};
use fault_injectors::{Delay, Fault, Injector, ObserveConfig};

#[tokio::test]
async fn buckets_count_arrivals_by_route_and_outcome_in_time() {
    let orders = Injector::builder("order-service")
        .observe(ObserveConfig {
            bucket_ms: 50,
            ..ObserveConfig::default()
        })
        .start()
        .await
        .expect("starts");
    let http = client(Duration::from_secs(5));
    for i in 0..5 {
        http.post(format!("{}/api/v1/orders", orders.url()))
            .json(&order_body(&format!("A{i}")))
            .send()
            .await
            .expect("ok");
    }
    orders.inject(Fault::status(503)).expect("valid");
    tokio::time::sleep(Duration::from_millis(120)).await;
    for i in 0..3 {
        http.post(format!("{}/api/v1/orders", orders.url()))
            .json(&order_body(&format!("B{i}")))
            .send()
            .await
            .expect("ok");
    }
    http.get(format!("{}/health/live", orders.url()))
        .send()
        .await
        .expect("ok");
    let page = orders.buckets_since(0);
    assert_eq!(page.width_ms, 50);
    let count = |route: &str, outcome: &str| -> u32 {
        page.buckets
            .iter()
            .flat_map(|b| &b.counts)
            .filter(|c| c.route == route && c.outcome == outcome)
            .map(|c| c.count)
            .sum()
    };
    assert_eq!(count("POST /api/v1/orders", "served"), 5);
    assert_eq!(count("POST /api/v1/orders", "status_503"), 3);
    assert_eq!(count("GET /health/live", "status_503"), 1);
    // The two groups are at least two buckets apart.
    let first_fault = page
        .buckets
        .iter()
        .find(|b| b.counts.iter().any(|c| c.outcome == "status_503"))
        .expect("fault bucket");
    let last_served = page
        .buckets
        .iter()
        .rev()
        .find(|b| b.counts.iter().any(|c| c.outcome == "served"))
        .expect("served bucket");
    assert!(first_fault.index >= last_served.index + 2);
    // Paging: asking from `next` returns only the still-open bucket, if any.
    let again = orders.buckets_since(page.next);
    assert!(again.buckets.iter().all(|b| b.index >= page.next));
    let c = orders.counters();
    assert!(c.first_arrival_s.expect("first") < c.last_arrival_s.expect("last"));
}

#[tokio::test]
async fn repeated_order_numbers_are_counted_as_duplicate_effects() {
    let orders = stand_in("order-service", 1).await;
    let http = client(Duration::from_secs(5));
    let post = |order_no: &'static str, key: Option<&'static str>| {
        let mut request = http
            .post(format!("{}/api/v1/orders", orders.url()))
            .json(&order_body(order_no));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    post("O-1", None).await.expect("ok");
    post("O-1", None).await.expect("ok"); // duplicate effect
    post("O-2", Some("k2")).await.expect("ok");
    post("O-2", Some("k2")).await.expect("ok"); // idempotent replay
    orders.inject(Fault::status(503).id("down")).expect("valid");
    post("O-3", None).await.expect("503");
    orders.clear_fault("down");
    post("O-3", None).await.expect("ok"); // retry after an injected error: fine
    let ids = orders.counters().ids;
    let order_no = &ids["order_no"];
    assert_eq!(order_no.repeated, 3);
    assert_eq!(order_no.duplicate_effects, 1);
    assert_eq!(order_no.idempotent_replays, 1);
    assert_eq!(order_no.examples, vec!["O-1".to_string()]);
    // payment_no (P-<order_no>) repeats the same way.
    assert_eq!(ids["payment_no"].duplicate_effects, 1);
}

async fn run_with_log(seed: u64, dir: &std::path::Path) -> String {
    let path = dir.join(format!("seed-{seed}.tsv"));
    let risk = Injector::builder("risk-service")
        .seed(seed)
        .decision_log(&path)
        .faults(vec![
            Fault::status(503).rate(0.25),
            Fault::latency(Delay::Uniform {
                lo: Duration::ZERO,
                hi: Duration::from_millis(2),
            })
            .rate(0.5),
            Fault::reset().rate(0.05),
        ])
        .start()
        .await
        .expect("starts");
    let http = client(Duration::from_secs(5));
    for i in 0..200 {
        let _ = http
            .get(format!("{}/api/v1/risk/merchants/M{i}/summary", risk.url()))
            .send()
            .await;
    }
    risk.shutdown().await;
    std::fs::read_to_string(&path).expect("log written")
}

#[tokio::test]
async fn same_seed_same_decision_log_other_seed_other_log() {
    let dir = std::env::temp_dir().join(format!("fi-decisions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let a = run_with_log(11, &dir).await;
    let b = run_with_log(11, &dir).await;
    let c = run_with_log(12, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(a.lines().count(), 200);
    assert_eq!(a, b, "same seed, same arrivals: identical logs");
    assert_ne!(a, c);
    assert!(a.contains("status_503") && a.contains("served") && a.contains("reset"));
    let first = a.lines().next().expect("a line");
    let fields: Vec<&str> = first.split('\t').collect();
    assert_eq!(fields[..2], ["0", "arrival"], "{first}");
    assert!(fields[2].starts_with('f'), "the faults in force: {first}");
    assert_eq!(
        fields[3], "GET /api/v1/risk/merchants/M0/summary",
        "{first}"
    );
}

/// Posts orders `O0..O{n}` twice each (attempts 1 and 2), in the order
/// `ids` gives and `concurrency` at a time, to an injector drawing 503s and
/// latency; returns its decision log.
async fn orders_with_log(
    seed: u64,
    ids: &[usize],
    concurrency: usize,
    path: &std::path::Path,
) -> String {
    use futures::StreamExt;
    let orders = Injector::builder("order-service")
        .seed(seed)
        .decision_log(path)
        .faults(vec![
            Fault::status(503).rate(0.3),
            Fault::latency(Delay::Uniform {
                lo: Duration::ZERO,
                hi: Duration::from_millis(3),
            })
            .rate(0.5),
        ])
        .start()
        .await
        .expect("starts");
    let http = client(Duration::from_secs(5));
    let url = format!("{}/api/v1/orders", orders.url());
    for _attempt in 0..2 {
        futures::stream::iter(ids.iter().map(|i| {
            let request = http.post(&url).json(&order_body(&format!("O{i}")));
            async move {
                let _ = request.send().await;
            }
        }))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    }
    orders.shutdown().await;
    std::fs::read_to_string(path).expect("log written")
}

/// The log's decisions by identity key: `id:…#n` → what was decided.
fn by_identity(log: &str) -> std::collections::BTreeMap<String, String> {
    log.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let _seq = fields.next()?;
            let key = fields.next()?;
            key.starts_with("id:").then(|| {
                (
                    key.to_string(),
                    fields.next().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn identity_keyed_decisions_do_not_depend_on_arrival_order() {
    let dir = std::env::temp_dir().join(format!("fi-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let n = 300;
    let forward: Vec<usize> = (0..n).collect();
    let mut shuffled = forward.clone();
    // A fixed permutation, then 16 requests at a time: the interleaving
    // differs from the sequential run everywhere.
    shuffled.sort_by_key(|i| (i * 7919) % n);
    let a = orders_with_log(5, &forward, 1, &dir.join("a.tsv")).await;
    let b = orders_with_log(5, &shuffled, 16, &dir.join("b.tsv")).await;
    let c = orders_with_log(6, &forward, 1, &dir.join("c.tsv")).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (a, b, c) = (by_identity(&a), by_identity(&b), by_identity(&c));
    assert_eq!(
        a.len(),
        2 * n,
        "every request keyed by its order_no and attempt"
    );
    assert!(a.keys().any(|k| k.ends_with("#2")));
    assert_eq!(a, b, "same seed: the same decision for every identity");
    assert_ne!(a, c, "another seed draws other decisions");
    assert!(
        a.values().any(|v| v.contains("status_503")) && a.values().any(|v| v.contains("served"))
    );
}

#[tokio::test]
async fn every_arrival_is_recorded_with_its_id_timing_and_end() {
    let orders = Injector::builder("order-service")
        .start()
        .await
        .expect("starts");
    let http = client(Duration::from_secs(5));
    let post = |order_no: &'static str| {
        http.post(format!("{}/api/v1/orders", orders.url()))
            .json(&order_body(order_no))
            .send()
    };
    post("A1").await.expect("served");
    orders.inject(Fault::status(503)).expect("valid");
    post("A2").await.expect("answered");
    post("A2").await.expect("answered");
    orders.set_faults(vec![Fault::hang()]).expect("valid");
    // The caller gives up after 150 ms: the hung arrival ends then,
    // abandoned rather than answered.
    let impatient = client(Duration::from_millis(150));
    let gave_up = impatient
        .post(format!("{}/api/v1/orders", orders.url()))
        .json(&order_body("A3"))
        .send()
        .await;
    assert!(gave_up.is_err(), "the hang outlived the client's timeout");
    let page = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let page = orders.arrivals_since(0);
            if page.records.len() == 4 {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the abandoned request is logged once hyper sees the client gone");
    let r = &page.records;
    assert_eq!(
        r.iter().map(|r| r.id).collect::<Vec<_>>(),
        [
            fault_injectors::id_hash("A1"),
            fault_injectors::id_hash("A2"),
            fault_injectors::id_hash("A2"),
            fault_injectors::id_hash("A3"),
        ]
    );
    assert_eq!(
        r.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [0, 503, 503, 3]
    );
    assert!(r[..3].iter().all(|r| r.answered));
    assert!(!r[3].answered);
    assert!(
        (140_000..2_000_000).contains(&r[3].took_us),
        "ended when the caller left: {:?}",
        r[3]
    );
    assert!(r.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    assert_eq!(page.next, 4);
    assert!(orders.arrivals_since(page.next).records.is_empty());
}
