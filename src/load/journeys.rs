//! The requests each journey sends, built independently of how they are sent
//! (goose during the load, a plain client for preflight and integrity).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use http::Method;
use serde_json::{Value, json};

use super::acks::Ack;
use super::recorder::Outcome;
use crate::platform::JourneyKind;
use crate::scenario::Merchant;

/// One HTTP request of a journey.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body (shared, never copied to be sent).
    pub body: Option<Bytes>,
    /// `fault_injectors::id_hash` of the business id the SUT forwards to
    /// its downstreams (`order_no`, `payment_no`), 0 when it carries none.
    pub id: u64,
}

/// What came back.
#[derive(Clone, Debug)]
pub struct Answer {
    /// How it ended.
    pub outcome: Outcome,
    /// The body, when there was a response, as it came off the wire.
    pub body: Bytes,
}

/// Builds a run's requests: unique order numbers and nonces, signatures.
#[derive(Debug)]
pub struct Caller {
    merchant: Merchant,
    /// Makes order numbers unique across runs against the same SUT.
    tag: String,
    /// Prefixes nonces: the tag, and a worker's index in a distributed run
    /// (its nonces count from 0 like every other worker's).
    nonce_tag: String,
    nonce: AtomicU64,
    /// The dashboard's path, built once.
    dashboard: String,
}

impl Caller {
    /// A caller acting as `merchant`; `tag` prefixes every business id.
    pub fn new(merchant: Merchant, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        Self {
            dashboard: format!("/api/v1/merchants/{}/dashboard", merchant.id),
            merchant,
            nonce_tag: tag.clone(),
            tag,
            nonce: AtomicU64::new(0),
        }
    }

    /// The caller of worker `index` of a distributed run: the same business
    /// ids as one process would send (they come from the arrival number),
    /// nonces of its own.
    pub fn for_worker(mut self, index: usize) -> Self {
        self.nonce_tag = format!("{}-w{index}", self.tag);
        self
    }

    /// The journey's request for its `k`-th arrival; `journey` keeps the ids
    /// of different journeys of one kind apart.
    pub fn first(&self, kind: JourneyKind, journey: usize, k: u64) -> Call {
        match kind {
            JourneyKind::Payment => {
                self.payment(&format!("{}-{journey}-{k}", self.tag), 100 + k % 100_000)
            }
            JourneyKind::Dashboard => self.dashboard(),
            JourneyKind::Settlement => self.settlement(),
            JourneyKind::Login => self.login(),
        }
    }

    /// A signed payment creation (`Idempotency-Key` = the order number).
    pub fn payment(&self, order_no: &str, amount: u64) -> Call {
        let body = json!({
            "merchant_id": self.merchant.id,
            "order_no": order_no,
            "amount": amount,
            "currency": "USD",
            "customer_email": "shopper@example.com",
            "notify_url": "https://merchant.example/notify",
            "return_url": "https://merchant.example/return",
        })
        .to_string()
        .into_bytes();
        let path = "/api/v1/payments";
        let timestamp = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let nonce = format!(
            "{}-n{}",
            self.nonce_tag,
            self.nonce.fetch_add(1, Ordering::Relaxed)
        );
        let signature = reference_stack::sign(
            &self.merchant.api_secret,
            self.merchant.signature,
            "POST",
            path,
            &timestamp,
            &nonce,
            &body,
        );
        let mut headers = vec![
            ("X-API-Key", self.merchant.api_key.clone()),
            ("X-Timestamp", timestamp),
            ("X-Nonce", nonce),
            ("X-Signature", signature),
            ("Idempotency-Key", order_no.to_string()),
            ("Content-Type", "application/json".into()),
        ];
        if self.merchant.signature == reference_stack::SignatureVersion::V2 {
            headers.push(("X-Signature-Version", "v2".into()));
        }
        Call {
            method: Method::POST,
            path: path.into(),
            headers,
            body: Some(Bytes::from(body)),
            id: fault_injectors::id_hash(order_no),
        }
    }

    /// The channel's callback reporting a payment paid.
    pub fn webhook(&self, payment_no: &str, channel_trade_no: &str) -> Call {
        Call {
            id: fault_injectors::id_hash(payment_no),
            ..json_call(
                Method::POST,
                "/api/v1/webhooks/card".into(),
                &json!({"payment_no": payment_no, "status": "success", "channel_trade_no": channel_trade_no}),
            )
        }
    }

    /// Looking a payment up.
    pub fn lookup(&self, payment_no: &str) -> Call {
        Call {
            method: Method::GET,
            path: format!("/api/v1/payments/{payment_no}"),
            headers: Vec::new(),
            body: None,
            id: 0,
        }
    }

    /// The merchant dashboard.
    pub fn dashboard(&self) -> Call {
        Call {
            method: Method::GET,
            path: self.dashboard.clone(),
            headers: Vec::new(),
            body: None,
            id: 0,
        }
    }

    /// A settlement of the merchant's last day.
    pub fn settlement(&self) -> Call {
        let end = Utc::now();
        let start = end - chrono::Duration::days(1);
        json_call(
            Method::POST,
            "/api/v1/settlements".into(),
            &json!({
                "merchant_id": self.merchant.id,
                "start": start.to_rfc3339_opts(SecondsFormat::Secs, true),
                "end": end.to_rfc3339_opts(SecondsFormat::Secs, true),
            }),
        )
    }

    /// A login.
    pub fn login(&self) -> Call {
        json_call(
            Method::POST,
            "/api/v1/auth/login".into(),
            &json!({"merchant_id": self.merchant.id, "password": self.merchant.password}),
        )
    }
}

fn json_call(method: Method, path: String, body: &Value) -> Call {
    Call {
        method,
        path,
        headers: vec![("Content-Type", "application/json".into())],
        body: Some(Bytes::from(body.to_string())),
        id: 0,
    }
}

/// What a payment answer says, for the integrity check and the webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentAnswer {
    /// The payment as acknowledged, with the statuses it may later be found in.
    pub ack: Ack,
    /// Created and awaiting payment: the channel's trade number to call back with.
    pub trade_no: Option<String>,
}

/// Reads a payment creation answer: any answer naming a payment number is
/// an acknowledgement (a failed payment must be kept as failed).
pub fn read_payment(answer: &Answer) -> Option<PaymentAnswer> {
    let body: Value = serde_json::from_slice(&answer.body).ok()?;
    let data = &body["data"];
    let payment_no = data["payment_no"].as_str()?.to_string();
    let status = data["status"].as_str().unwrap_or_default();
    let (expect, trade_no): (&[&str], _) = match (answer.outcome.is_ok(), status) {
        (true, _) => (
            &["awaiting_payment", "succeeded"],
            data["channel_trade_no"].as_str().map(str::to_string),
        ),
        (false, "rejected") => (&["rejected"], None),
        (false, _) => (&["failed"], None),
    };
    Some(PaymentAnswer {
        ack: Ack {
            payment_no,
            expect: expect.iter().map(|s| s.to_string()).collect(),
        },
        trade_no,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reference_stack::SignatureVersion;

    fn caller() -> Caller {
        Caller::new(
            Merchant {
                id: "M001".into(),
                api_key: "k".into(),
                api_secret: "s".into(),
                signature: SignatureVersion::V1,
                password: "pw".into(),
            },
            "T",
        )
    }

    #[test]
    fn payments_are_signed_and_idempotent_by_order_number() {
        let call = caller().payment("T-0-1", 250);
        let header = |name: &str| {
            call.headers
                .iter()
                .find(|(h, _)| *h == name)
                .map(|(_, v)| v.clone())
        };
        let body = call.body.clone().expect("body");
        let expected = reference_stack::sign(
            "s",
            SignatureVersion::V1,
            "POST",
            "/api/v1/payments",
            &header("X-Timestamp").expect("timestamp"),
            &header("X-Nonce").expect("nonce"),
            &body,
        );
        assert_eq!(header("X-Signature"), Some(expected));
        assert_eq!(header("Idempotency-Key").as_deref(), Some("T-0-1"));
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["order_no"], "T-0-1");
        assert_eq!(json["amount"], 250);
        assert_ne!(
            caller().payment("a", 1).headers,
            call.headers,
            "nonces differ"
        );
    }

    #[test]
    fn acknowledged_failures_must_be_found_failed() {
        let failed = Answer {
            outcome: Outcome::Status(502),
            body: Bytes::from_static(
                br#"{"code":502,"message":"x","data":{"payment_no":"P1","status":"failed"}}"#,
            ),
        };
        let read = read_payment(&failed).expect("an acknowledgement");
        assert_eq!(read.ack.expect, vec!["failed".to_string()]);
        let created = Answer {
            outcome: Outcome::Ok(200),
            body: Bytes::from_static(br#"{"code":0,"data":{"payment_no":"P2","status":"awaiting_payment","channel_trade_no":"CH1"}}"#),
        };
        let read = read_payment(&created).expect("an acknowledgement");
        assert_eq!(read.trade_no.as_deref(), Some("CH1"));
        let timeout = Answer {
            outcome: Outcome::Timeout,
            body: Bytes::new(),
        };
        assert_eq!(read_payment(&timeout), None);
    }
}
