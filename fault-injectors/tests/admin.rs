//! The HTTP admin API: list, set, change, clear, read; bad input refused with
//! nothing changed.

mod common;

use std::time::Duration;

use common::{client, stand_in};
use fault_injectors::{AdminClient, AdminError, Fault, InjectorSet, admin};
use serde_json::{Value, json};

const SUMMARY: &str = "/api/v1/risk/merchants/M001/summary";

async fn setup() -> (InjectorSet, admin::AdminServer, reqwest::Client) {
    let set = InjectorSet::new([
        stand_in("risk-service", 1).await,
        stand_in("order-service", 1).await,
    ])
    .expect("distinct names");
    let server = admin::serve(set.clone(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("admin binds");
    (set, server, client(Duration::from_secs(5)))
}

#[tokio::test]
async fn faults_are_set_listed_changed_and_cleared_live() {
    let (set, server, http) = setup().await;
    let api = format!("{}/injectors/risk-service", server.url());
    let target = format!("{}{SUMMARY}", set.get("risk-service").expect("risk").url());

    let list: Value = http
        .get(format!("{}/injectors", server.url()))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, vec!["order-service", "risk-service"]);

    let created = http
        .post(format!("{api}/faults"))
        .json(&json!({"id": "boom", "kind": "status", "code": 503}))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.expect("json")["id"], "boom");
    assert_eq!(http.get(&target).send().await.expect("sut").status(), 503);

    // Change by id: same id, other code.
    http.post(format!("{api}/faults"))
        .json(&json!({"id": "boom", "kind": "status", "code": 500}))
        .send()
        .await
        .expect("post");
    assert_eq!(http.get(&target).send().await.expect("sut").status(), 500);
    let faults: Value = http
        .get(format!("{api}/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(faults.as_array().map(Vec::len), Some(1));
    assert_eq!(faults[0]["code"], 500);

    // Replace the whole program.
    let replaced = http
        .put(format!("{api}/faults"))
        .json(&json!([{"kind": "status", "code": 429}, {"kind": "latency", "fixed_ms": 1}]))
        .send()
        .await
        .expect("put");
    assert_eq!(replaced.status(), 200);
    let ids = replaced.json::<Value>().await.expect("json")["ids"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(2));
    assert_eq!(http.get(&target).send().await.expect("sut").status(), 429);

    // Clear one, then all.
    let first = ids[0].as_str().expect("id");
    assert_eq!(
        http.delete(format!("{api}/faults/{first}"))
            .send()
            .await
            .expect("delete")
            .status(),
        200
    );
    assert_eq!(http.get(&target).send().await.expect("sut").status(), 200);
    assert_eq!(
        http.delete(format!("{api}/faults/{first}"))
            .send()
            .await
            .expect("delete")
            .status(),
        404
    );
    assert_eq!(
        http.delete(format!("{api}/faults"))
            .send()
            .await
            .expect("delete")
            .status(),
        200
    );
    assert!(set.get("risk-service").expect("risk").faults().is_empty());

    let counters: Value = http
        .get(format!("{api}/counters"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["attempts"], 4);
    assert_eq!(counters["by_outcome"]["status_503"], 1);
    let buckets: Value = http
        .get(format!("{api}/buckets?since=0"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let total: u64 = buckets["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .flat_map(|b| b["counts"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["count"].as_u64())
        .sum();
    assert_eq!(total, 4);
    let changes: Value = http
        .get(format!("{api}/changes"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(changes.as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn bad_admin_input_is_refused_and_changes_nothing() {
    let (set, server, http) = setup().await;
    let risk = set.get("risk-service").expect("risk");
    risk.inject(fault_injectors::Fault::status(503).id("keep"))
        .expect("valid");
    let base = server.url();
    let cases = [
        (
            "/injectors/nobody/faults",
            json!({"kind": "status", "code": 503}),
            "unknown injector `nobody`",
        ),
        (
            "/injectors/risk-service/faults",
            json!({"kind": "status", "code": 503, "rate": 1.7}),
            "rate must be between 0 and 1, got 1.7",
        ),
        (
            "/injectors/risk-service/faults",
            json!({"kind": "latency", "fixed_ms": -5}),
            "fixed_ms must be >= 0 ms, got -5",
        ),
        (
            "/injectors/risk-service/faults",
            json!({"kind": "meltdown"}),
            "unknown fault kind `meltdown`",
        ),
        (
            "/injectors/risk-service/faults",
            json!({"kind": "status"}),
            "needs `code`",
        ),
    ];
    for (path, body, expected) in cases {
        let response = http
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 400, "{body}");
        let message = response.json::<Value>().await.expect("json")["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(expected), "{body}: `{message}`");
    }
    let not_json = http
        .post(format!("{base}/injectors/risk-service/faults"))
        .body("{kind: status")
        .send()
        .await
        .expect("answered");
    assert_eq!(not_json.status(), 400);
    // A PUT with one bad fault among good ones changes nothing either.
    let put = http
        .put(format!("{base}/injectors/risk-service/faults"))
        .json(&json!([{"kind": "hang"}, {"kind": "status", "code": 5000}]))
        .send()
        .await
        .expect("answered");
    assert_eq!(put.status(), 400);
    let faults = risk.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].id.as_deref(), Some("keep"));
}

#[tokio::test]
async fn the_admin_client_drives_a_remote_injector_like_a_local_one() {
    let (set, server, http) = setup().await;
    let remote = AdminClient::new(server.url());
    let orders = set.get("order-service").expect("order-service");

    let id = remote
        .inject("order-service", &Fault::status(503).id("outage"))
        .await
        .expect("injected");
    assert_eq!(id, "outage");
    assert_eq!(
        orders.faults().len(),
        1,
        "the local injector sees the fault"
    );
    let status = http
        .post(format!("{}/api/v1/orders", orders.url()))
        .json(&common::order_body("A-1"))
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 503);
    let counters = remote.counters("order-service").await.expect("counters");
    assert_eq!(counters.attempts, 1);
    assert_eq!(counters.by_outcome.get("status_503"), Some(&1));
    let page = remote
        .buckets_since("order-service", 0)
        .await
        .expect("buckets");
    assert_eq!(page.buckets.iter().map(|b| b.total()).sum::<u64>(), 1);

    // The remote clock reads what the injector's own clock reads.
    let local = orders
        .clock()
        .since_origin(std::time::Instant::now())
        .as_secs_f64();
    let now = remote.now_s("order-service").await.expect("clock");
    assert!((now - local).abs() < 1.0, "remote {now} vs local {local}");
    assert!(now >= local);

    assert!(
        remote
            .clear_fault("order-service", "outage")
            .await
            .expect("cleared")
    );
    assert!(
        !remote
            .clear_fault("order-service", "outage")
            .await
            .expect("answered")
    );
    assert!(orders.faults().is_empty());
    match remote.inject("no-such-service", &Fault::status(503)).await {
        Err(AdminError::Refused {
            status: 400,
            message,
            ..
        }) => {
            assert!(message.contains("unknown injector"), "{message}")
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    match AdminClient::new("http://127.0.0.1:9").list().await {
        Err(AdminError::Unreachable { .. }) => {}
        other => panic!("expected unreachable, got {other:?}"),
    }
}
