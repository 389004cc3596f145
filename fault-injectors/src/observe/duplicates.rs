//! Duplicate side effects: requests that carry a business id (order_no,
//! payment_no, ...) already seen.
//!
//! Exact, not probabilistic (a false duplicate would fail a verdict), and
//! bounded: ids are kept for a sliding window (two generations of hashes), so
//! memory follows the id rate × window, not the length of the run.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What is remembered of one id, packed into one word so a million ids
/// cost ~16 MB: whether a request with it reached the downstream, and a
/// 32-bit fingerprint of that request's idempotency key (0: none).
#[derive(Clone, Copy, Debug, Default)]
struct Seen(u64);

const SERVED: u64 = 1 << 63;

impl Seen {
    fn served(idempotency: Option<u32>) -> Self {
        Seen(SERVED | u64::from(idempotency.unwrap_or(0)))
    }

    fn is_served(self) -> bool {
        self.0 & SERVED != 0
    }

    fn idempotency(self) -> Option<u32> {
        Some(self.0 as u32).filter(|f| *f != 0)
    }
}

/// Counters for one id field.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IdCounters {
    /// Arrivals whose id had been seen before (any outcome).
    pub repeated: u64,
    /// Served arrivals whose id had already been served without the same
    /// idempotency key: the downstream did the work twice.
    pub duplicate_effects: u64,
    /// Served repeats carrying the idempotency key of the earlier served
    /// request: safe retries a real downstream would deduplicate.
    pub idempotent_replays: u64,
    /// The first few ids that caused a duplicate effect (evidence).
    pub examples: Vec<String>,
}

const EXAMPLES: usize = 16;

/// Tracks ids of one injector.
#[derive(Debug)]
pub(crate) struct IdTracker {
    fields: Vec<String>,
    half_window: Duration,
    current: HashMap<u64, Seen>,
    previous: HashMap<u64, Seen>,
    rotated_at: Instant,
    counters: Vec<IdCounters>,
}

impl IdTracker {
    pub(crate) fn new(fields: Vec<String>, window: Duration) -> Self {
        let counters = vec![IdCounters::default(); fields.len()];
        Self {
            fields,
            half_window: window / 2,
            current: HashMap::new(),
            previous: HashMap::new(),
            rotated_at: Instant::now(),
            counters,
        }
    }

    /// Records one request's ids (field index, value); true when any of
    /// them had not been seen before (a new call rather than a retry).
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        ids: &[(usize, String)],
        idempotency_key: Option<&str>,
        reaches_downstream: bool,
    ) -> bool {
        let elapsed = now.duration_since(self.rotated_at);
        if elapsed >= self.half_window {
            // After a whole window of silence even the newer generation is
            // stale; otherwise the newer one becomes the older one.
            self.previous = match elapsed >= self.half_window * 2 {
                true => HashMap::new(),
                false => std::mem::take(&mut self.current),
            };
            self.current.clear();
            self.rotated_at = now;
        }
        let idempotency = idempotency_key.map(fingerprint);
        let mut fresh = false;
        for (field, value) in ids {
            let key = hash_id(*field, value);
            let earlier = self
                .current
                .get(&key)
                .or_else(|| self.previous.get(&key))
                .copied();
            let counters = &mut self.counters[*field];
            match earlier {
                Some(_) => counters.repeated += 1,
                None => fresh = true,
            }
            let mut seen = earlier.unwrap_or_default();
            if reaches_downstream {
                if seen.is_served() {
                    if idempotency.is_some() && idempotency == seen.idempotency() {
                        counters.idempotent_replays += 1;
                    } else {
                        counters.duplicate_effects += 1;
                        if counters.examples.len() < EXAMPLES {
                            counters.examples.push(value.clone());
                        }
                    }
                } else {
                    seen = Seen::served(idempotency);
                }
            }
            self.current.insert(key, seen);
        }
        fresh
    }

    /// Counters by field name.
    pub(crate) fn report(&self) -> BTreeMap<String, IdCounters> {
        self.fields
            .iter()
            .cloned()
            .zip(self.counters.iter().cloned())
            .collect()
    }
}

/// A non-zero 32-bit fingerprint (0 means "no key").
fn fingerprint(s: &str) -> u32 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    (h.finish() as u32).max(1)
}

fn hash_id(field: usize, value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    field.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// Pulls the configured id fields out of a JSON object body (top level only).
pub(crate) fn extract_ids(fields: &[String], body: &[u8]) -> Vec<(usize, String)> {
    if fields.is_empty() || body.first() != Some(&b'{') {
        return Vec::new();
    }
    let Ok(object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
    else {
        return Vec::new();
    };
    fields
        .iter()
        .enumerate()
        .filter_map(|(i, name)| match object.get(name) {
            Some(serde_json::Value::String(s)) => Some((i, s.clone())),
            Some(serde_json::Value::Number(n)) => Some((i, n.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> IdTracker {
        IdTracker::new(vec!["order_no".into()], Duration::from_secs(600))
    }

    fn ids(v: &str) -> Vec<(usize, String)> {
        vec![(0, v.to_string())]
    }

    #[test]
    fn a_second_served_request_is_a_duplicate_effect() {
        let mut t = tracker();
        let now = Instant::now();
        assert!(t.observe(now, &ids("A"), None, true));
        assert!(t.observe(now, &ids("B"), None, true));
        assert!(
            !t.observe(now, &ids("A"), None, true),
            "a repeat is not fresh"
        );
        let c = &t.report()["order_no"];
        assert_eq!((c.repeated, c.duplicate_effects), (1, 1));
        assert_eq!(c.examples, vec!["A".to_string()]);
    }

    #[test]
    fn a_retry_after_an_injected_error_is_not_a_duplicate_effect() {
        let mut t = tracker();
        let now = Instant::now();
        t.observe(now, &ids("A"), None, false); // 503 from the injector
        t.observe(now, &ids("A"), None, true); // retry served
        let c = &t.report()["order_no"];
        assert_eq!((c.repeated, c.duplicate_effects), (1, 0));
    }

    #[test]
    fn same_idempotency_key_is_a_replay_not_a_duplicate() {
        let mut t = tracker();
        let now = Instant::now();
        t.observe(now, &ids("A"), Some("k1"), true);
        t.observe(now, &ids("A"), Some("k1"), true);
        t.observe(now, &ids("A"), Some("k2"), true);
        let c = &t.report()["order_no"];
        assert_eq!((c.idempotent_replays, c.duplicate_effects), (1, 1));
    }

    #[test]
    fn ids_older_than_the_window_are_forgotten() {
        let mut t = IdTracker::new(vec!["order_no".into()], Duration::from_secs(10));
        let start = Instant::now();
        t.observe(start, &ids("A"), None, true);
        t.observe(start + Duration::from_secs(6), &ids("B"), None, true);
        // Still within the window: remembered from the previous generation.
        t.observe(start + Duration::from_secs(7), &ids("A"), None, true);
        t.observe(start + Duration::from_secs(30), &ids("C"), None, true);
        t.observe(start + Duration::from_secs(31), &ids("B"), None, true);
        let c = &t.report()["order_no"];
        assert_eq!(c.duplicate_effects, 1);
        assert!(t.current.len() + t.previous.len() <= 2);
    }

    #[test]
    fn ids_are_read_from_top_level_json_fields() {
        let fields = vec!["order_no".to_string(), "payment_no".to_string()];
        let got = extract_ids(&fields, br#"{"order_no":"O1","amount":5,"payment_no":7}"#);
        assert_eq!(got, vec![(0, "O1".to_string()), (1, "7".to_string())]);
        assert!(extract_ids(&fields, b"not json").is_empty());
    }
}
