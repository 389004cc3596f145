//! Front mode: the injector passes traffic to a real upstream and faults it.

mod common;

use std::time::Duration;

use common::client;
use fault_injectors::{Fault, Injector};
use http::Method;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/risk/check"))
        .and(header("x-trace", "t-1"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("x-upstream", "real")
                .set_body_json(serde_json::json!({"code": 0, "data": {"decision": "approve"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/things"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("page two"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn front_mode_passes_requests_and_answers_through() {
    let real = upstream().await;
    let front = Injector::builder("risk-service")
        .front(real.uri())
        .start()
        .await
        .expect("starts");
    let http = client(Duration::from_secs(5));
    let response = http
        .post(format!("{}/api/v1/risk/check", front.url()))
        .header("x-trace", "t-1")
        .json(&serde_json::json!({"payment_no": "P1"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-upstream"], "real");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"]["decision"], "approve");
    let page = http
        .get(format!("{}/api/v1/things?page=2", front.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(page.text().await.expect("text"), "page two");
    let received = real.received_requests().await.expect("recording on");
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].body_json::<serde_json::Value>().expect("json")["payment_no"],
        "P1"
    );
    assert_eq!(front.status().mode, "front");
}

#[tokio::test]
async fn front_mode_faults_stop_requests_before_the_upstream() {
    let real = upstream().await;
    let front = Injector::builder("risk-service")
        .front(real.uri())
        .start()
        .await
        .expect("starts");
    front
        .inject(
            Fault::status(503)
                .method(Method::POST)
                .path("/api/v1/risk/check"),
        )
        .expect("valid");
    let http = client(Duration::from_secs(5));
    let faulted = http
        .post(format!("{}/api/v1/risk/check", front.url()))
        .header("x-trace", "t-1")
        .send()
        .await
        .expect("answered");
    assert_eq!(faulted.status(), 503);
    let untouched = http
        .get(format!("{}/api/v1/things?page=2", front.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(untouched.status(), 200);
    let received = real.received_requests().await.expect("recording on");
    assert_eq!(
        received.len(),
        1,
        "the faulted request never reached the upstream"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_and_counted() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let front = Injector::builder("risk-service")
        .front(format!("http://127.0.0.1:{port}"))
        .start()
        .await
        .expect("starts");
    let response = client(Duration::from_secs(5))
        .get(format!("{}/anything", front.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 502);
    assert_eq!(front.counters().upstream_errors, 1);
}

#[tokio::test]
async fn bad_upstream_urls_are_refused_at_start() {
    for url in ["ftp://x:1", "not a url", "/relative"] {
        let err = Injector::builder("risk-service")
            .front(url)
            .start()
            .await
            .expect_err(url);
        assert!(
            err.to_string().contains("is not an http://host:port URL"),
            "{err}"
        );
    }
    let err = Injector::builder("no-such-service")
        .start()
        .await
        .expect_err("no backend");
    assert!(err.to_string().contains("no built-in stand-in"), "{err}");
}
