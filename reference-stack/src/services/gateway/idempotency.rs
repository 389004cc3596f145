//! `Idempotency-Key` on payment creation: the same key with the same body replays the
//! first answer (no new payment); the same key with another body is a 409.
//!
//! Only answers below 500 are kept. After a 5xx the key is released, so the merchant
//! can retry with the same key once the platform recovers (the failed payment stays
//! queryable and its order number is free again).

use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::BoundedMap;

#[derive(Debug)]
struct Entry {
    body_hash: [u8; 32],
    answer: Option<(StatusCode, Value)>,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub(crate) enum Begin {
    /// First use: process it, then call [`Idempotency::finish`].
    Fresh,
    /// Seen with the same body: answer this again.
    Replay(StatusCode, Value),
    /// Seen with another body, or still being processed: 409 with this reason.
    Conflict(&'static str),
}

/// Keys seen per merchant, bounded like the stores.
#[derive(Debug)]
pub(crate) struct Idempotency {
    entries: Mutex<BoundedMap<Entry>>,
}

impl Idempotency {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(BoundedMap::new(capacity)),
        }
    }

    fn slot(merchant_id: &str, key: &str) -> String {
        format!("{merchant_id}\u{0}{key}")
    }

    pub fn begin(&self, merchant_id: &str, key: &str, body: &[u8]) -> Begin {
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        let slot = Self::slot(merchant_id, key);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&slot) {
            Some(entry) if entry.body_hash != body_hash => {
                Begin::Conflict("Idempotency-Key was already used with a different request body")
            }
            Some(Entry {
                answer: Some((status, body)),
                ..
            }) => Begin::Replay(*status, body.clone()),
            Some(_) => Begin::Conflict("a request with this Idempotency-Key is still in progress"),
            None => {
                entries.insert(
                    slot,
                    Entry {
                        body_hash,
                        answer: None,
                    },
                );
                Begin::Fresh
            }
        }
    }

    pub fn finish(&self, merchant_id: &str, key: &str, status: StatusCode, body: &Value) {
        let slot = Self::slot(merchant_id, key);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if status.is_server_error() {
            entries.remove(&slot);
        } else if let Some(entry) = entries.get_mut(&slot) {
            entry.answer = Some((status, body.clone()));
        }
    }
}
