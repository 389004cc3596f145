//! `Idempotency-Key` on payment creation: the same key with the same body replays the
//! first answer (no new payment); the same key with another body is a 409.
//!
//! Only answers below 500 are kept. After a 5xx the key is released, so the merchant
//! can retry with the same key once the platform recovers (the failed payment stays
//! queryable and its order number is free again).
//!
//! Each key is one compact record (the key, a SHA-256 of the body, and once answered
//! the status and serialized answer) in a spilling [`Log`]; in memory a key costs its
//! 8-byte location and one hashed index entry. Bounded like the stores (oldest first).

use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::index::HashIndex;
use crate::store::log::{Loc, Log, MAX_RECORD};
use crate::store::slab::Slab;
use crate::store::{Reader, Writer};

/// A key's record, decoded.
#[derive(Debug)]
struct Entry {
    slot: String,
    body_hash: [u8; 32],
    /// The status and serialized answer, once finished.
    answer: Option<(StatusCode, Vec<u8>)>,
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        let mut w = Writer { out };
        w.text(&self.slot);
        w.out.extend_from_slice(&self.body_hash);
        match &self.answer {
            None => w.byte(0),
            Some((status, body)) => {
                w.byte(1);
                w.varint(u64::from(status.as_u16()));
                w.out.extend_from_slice(body);
            }
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let slot = r.text()?;
        let body_hash = r.bytes(32)?.try_into().ok()?;
        let answer = match r.byte()? {
            0 => None,
            _ => {
                let status = u16::try_from(r.varint()?).ok()?;
                let status = StatusCode::from_u16(status).ok()?;
                Some((status, r.rest().to_vec()))
            }
        };
        Some(Self {
            slot,
            body_hash,
            answer,
        })
    }
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

#[derive(Debug)]
struct Inner {
    capacity: usize,
    records: Slab<Loc>,
    log: Log,
    index: HashIndex,
    scratch: Vec<u8>,
}

impl Inner {
    fn find(&mut self, slot: &str) -> Option<(u32, Entry)> {
        let candidates: Vec<u32> = self.index.candidates(slot).collect();
        candidates.into_iter().find_map(|id| {
            let loc = *self.records.get(id)?;
            let entry = self.log.with(loc, Entry::decode)??;
            (entry.slot == slot).then_some((id, entry))
        })
    }

    fn write(&mut self, entry: &Entry) -> Option<Loc> {
        let mut scratch = std::mem::take(&mut self.scratch);
        entry.encode(&mut scratch);
        let loc = (scratch.len() <= MAX_RECORD).then(|| self.log.append(&scratch));
        self.scratch = scratch;
        loc
    }

    fn release(&mut self, id: u32, slot: &str) {
        self.records.take(id);
        self.index.remove(slot, id);
    }
}

/// Keys seen per merchant, bounded like the stores.
#[derive(Debug)]
pub(crate) struct Idempotency {
    inner: Mutex<Inner>,
}

impl Idempotency {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                capacity: capacity.max(1),
                records: Slab::new(),
                log: Log::new("idempotency"),
                index: HashIndex::new(),
                scratch: Vec::new(),
            }),
        }
    }

    fn slot(merchant_id: &str, key: &str) -> String {
        format!("{merchant_id}\u{0}{key}")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn begin(&self, merchant_id: &str, key: &str, body: &[u8]) -> Begin {
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        let slot = Self::slot(merchant_id, key);
        let mut inner = self.lock();
        match inner.find(&slot) {
            Some((_, entry)) if entry.body_hash != body_hash => {
                Begin::Conflict("Idempotency-Key was already used with a different request body")
            }
            Some((
                id,
                Entry {
                    answer: Some((status, answer)),
                    ..
                },
            )) => match serde_json::from_slice(&answer) {
                Ok(answer) => Begin::Replay(status, answer),
                Err(err) => {
                    tracing::error!(%err, "kept idempotent answer unreadable; key released");
                    inner.release(id, &slot);
                    Self::start(&mut inner, slot, body_hash)
                }
            },
            Some(_) => Begin::Conflict("a request with this Idempotency-Key is still in progress"),
            None => Self::start(&mut inner, slot, body_hash),
        }
    }

    /// Record `slot` as in progress.
    fn start(inner: &mut Inner, slot: String, body_hash: [u8; 32]) -> Begin {
        let entry = Entry {
            slot,
            body_hash,
            answer: None,
        };
        // A key too long to keep is simply not remembered.
        let Some(loc) = inner.write(&entry) else {
            return Begin::Fresh;
        };
        let id = inner.records.push(loc);
        inner.index.insert(&entry.slot, id);
        while inner.records.over(inner.capacity) {
            let Some((id, loc)) = inner.records.pop_oldest() else {
                break;
            };
            if let Some(Some(old)) = inner.log.with(loc, Entry::decode) {
                inner.index.remove(&old.slot, id);
            }
        }
        Begin::Fresh
    }

    pub fn finish(&self, merchant_id: &str, key: &str, status: StatusCode, body: &Value) {
        let slot = Self::slot(merchant_id, key);
        let mut inner = self.lock();
        let Some((id, mut entry)) = inner.find(&slot) else {
            return;
        };
        let answer = serde_json::to_vec(body);
        let (false, Ok(answer)) = (status.is_server_error(), answer) else {
            inner.release(id, &slot);
            return;
        };
        entry.answer = Some((status, answer));
        match inner.write(&entry) {
            Some(loc) => {
                if let Some(slot) = inner.records.get_mut(id) {
                    *slot = loc;
                }
            }
            // Too large to keep: released, like an answer that is not kept.
            None => inner.release(id, &slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replay_conflict_and_release_after_5xx() {
        let idem = Idempotency::new(100);
        assert!(matches!(idem.begin("M1", "k", b"a"), Begin::Fresh));
        assert!(matches!(
            idem.begin("M1", "k", b"a"),
            Begin::Conflict(reason) if reason.contains("in progress")
        ));
        assert!(matches!(
            idem.begin("M1", "k", b"b"),
            Begin::Conflict(reason) if reason.contains("different request body")
        ));
        let answer = json!({"code": 0, "data": {"payment_no": "P1"}});
        idem.finish("M1", "k", StatusCode::OK, &answer);
        match idem.begin("M1", "k", b"a") {
            Begin::Replay(status, body) => assert_eq!((status, body), (StatusCode::OK, answer)),
            other => panic!("{other:?}"),
        }
        // The same key of another merchant is another key.
        assert!(matches!(idem.begin("M2", "k", b"b"), Begin::Fresh));
        // A 5xx releases the key; a 4xx is kept.
        assert!(matches!(idem.begin("M1", "k2", b"a"), Begin::Fresh));
        idem.finish("M1", "k2", StatusCode::BAD_GATEWAY, &json!({"code": 502}));
        assert!(matches!(idem.begin("M1", "k2", b"other"), Begin::Fresh));
        idem.finish("M1", "k2", StatusCode::CONFLICT, &json!({"code": 409}));
        assert!(matches!(
            idem.begin("M1", "k2", b"other"),
            Begin::Replay(StatusCode::CONFLICT, _)
        ));
    }

    #[test]
    fn many_keys_survive_and_the_oldest_goes_at_capacity() {
        let idem = Idempotency::new(300_000);
        for i in 0..300_000 {
            let key = format!("order-{i}");
            assert!(matches!(
                idem.begin("M1", &key, key.as_bytes()),
                Begin::Fresh
            ));
            idem.finish("M1", &key, StatusCode::OK, &json!({"payment_no": i}));
        }
        for i in [0, 150_000, 299_999] {
            let key = format!("order-{i}");
            match idem.begin("M1", &key, key.as_bytes()) {
                Begin::Replay(_, body) => assert_eq!(body, json!({"payment_no": i})),
                other => panic!("key {i}: {other:?}"),
            }
        }
        assert!(matches!(idem.begin("M1", "new", b"x"), Begin::Fresh));
        // Over capacity now: order-0 was evicted, order-1 is still there.
        assert!(matches!(idem.begin("M1", "order-0", b"y"), Begin::Fresh));
        assert!(matches!(
            idem.begin("M1", "order-2", b"y"),
            Begin::Conflict(_)
        ));
    }
}
