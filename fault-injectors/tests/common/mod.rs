//! Helpers shared by the injector integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::error::Error as _;
use std::io;
use std::time::Duration;

use fault_injectors::Injector;

/// A client that never uses a proxy and gives up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// A seeded built-in stand-in on an ephemeral port.
pub async fn stand_in(name: &str, seed: u64) -> Injector {
    Injector::builder(name)
        .seed(seed)
        .start()
        .await
        .expect("injector starts")
}

/// The first `io::ErrorKind` in an error's source chain.
pub fn io_kind(err: &reqwest::Error) -> Option<io::ErrorKind> {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

/// Whether hyper says the connection closed before a whole response.
pub fn incomplete_message(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// A payment-shaped order creation body.
pub fn order_body(order_no: &str) -> serde_json::Value {
    serde_json::json!({
        "merchant_id": "M001",
        "order_no": order_no,
        "payment_no": format!("P-{order_no}"),
        "amount": 1250,
        "currency": "USD",
        "customer_email": "a@example.com",
    })
}
