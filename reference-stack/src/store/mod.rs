//! The services' record stores, sized for long soaks.
//!
//! [`PaymentStore`] keeps each payment as a compact binary record (symbols for repeated
//! texts, milliseconds for times, varints) in an append-only log whose newest 4 MiB stay
//! in memory and whose older part is spilled to an unlinked temporary file. In memory a
//! payment costs its 8-byte log location plus two hashed index entries (about 75 bytes
//! with allocator slack), so millions of payments fit in a hundred-odd megabytes.
//! Nothing grows by copying everything at once: records sit in fixed-size chunks and
//! the indexes are spread over many small hash maps, so there is no stop-the-world
//! rehash under the store's lock.
//!
//! Every store keeps at most its capacity (`STORE_CAPACITY`, default 4,000,000: over
//! two hours at 500 payments/s) and evicts the oldest record first when full, so every
//! payment of a test run stays queryable for integrity checks. The spill file only
//! grows (evicted records' bytes are not reclaimed): about 150 bytes per payment.

mod codec;
pub(crate) mod index;
pub(crate) mod log;
pub(crate) mod slab;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

pub(crate) use codec::{Reader, Writer};
use codec::{Symbols, decode_payment, encode_payment};
use index::HashIndex;
use log::{Loc, Log};
use slab::Slab;

/// A map that keeps at most `capacity` entries, evicting the oldest insertion first.
///
/// Entries sit in fixed-size chunks and the key index is sharded, so neither growth
/// nor eviction moves many entries at once.
#[derive(Debug)]
pub struct BoundedMap<V> {
    capacity: usize,
    entries: Slab<(String, V)>,
    index: HashIndex,
}

impl<V> BoundedMap<V> {
    /// An empty map holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Slab::new(),
            index: HashIndex::new(),
        }
    }

    fn find(&self, key: &str) -> Option<u32> {
        self.index
            .candidates(key)
            .find(|id| self.entries.get(*id).is_some_and(|(k, _)| k == key))
    }

    /// Insert a new entry (replacing one with the same key, which keeps its place in
    /// the eviction order), returning what was evicted.
    pub fn insert(&mut self, key: String, value: V) -> Vec<(String, V)> {
        if let Some(id) = self.find(&key)
            && let Some(entry) = self.entries.get_mut(id)
        {
            entry.1 = value;
            return Vec::new();
        }
        let id = self.entries.push((key, value));
        if let Some((key, _)) = self.entries.get(id) {
            let key = key.clone();
            self.index.insert(&key, id);
        }
        let mut evicted = Vec::new();
        while self.entries.over(self.capacity) {
            let Some((id, (key, value))) = self.entries.pop_oldest() else {
                break;
            };
            self.index.remove(&key, id);
            evicted.push((key, value));
        }
        evicted
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        let id = self.find(key)?;
        self.entries.get(id).map(|(_, v)| v)
    }

    /// The entry under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let id = self.find(key)?;
        self.entries.get_mut(id).map(|(_, v)| v)
    }

    /// Remove the entry under `key`.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let id = self.find(key)?;
        let (key, value) = self.entries.take(id)?;
        self.index.remove(&key, id);
        Some(value)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }
}

/// A payment's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Recorded, downstream calls in progress.
    Pending,
    /// Channel accepted; waiting for the payer (has a payment URL).
    AwaitingPayment,
    /// The channel reported success.
    Succeeded,
    /// A downstream failed or the channel reported failure (see `error`).
    Failed,
    /// The risk check rejected it.
    Rejected,
}

impl PaymentStatus {
    /// The wire name (`awaiting_payment`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::AwaitingPayment => "awaiting_payment",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Rejected => "rejected",
        }
    }
}

/// A payment as kept by the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    /// Generated, unique.
    pub payment_no: String,
    /// The merchant's order number (unique per merchant among non-failed payments).
    pub order_no: String,
    /// The merchant.
    pub merchant_id: String,
    /// Minor units.
    pub amount: i64,
    /// ISO code.
    pub currency: String,
    /// Payment channel.
    pub channel: String,
    /// Current status.
    pub status: PaymentStatus,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the payer pays, once the channel answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    /// The channel's reference, once it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_trade_no: Option<String>,
    /// The downstream order id, once created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// How many payments `GET /api/v1/payments?merchant_id=` returns at most.
pub const MERCHANT_PAGE: usize = 50;

#[derive(Debug, Default)]
struct MerchantIndex {
    /// Payments of the merchant in the store.
    total: u64,
    /// Ids of its latest payments, oldest first.
    latest: VecDeque<u32>,
}

/// The `by_order` key of a payment.
fn order_key(merchant_id: &str, order_no: &str) -> String {
    format!("{merchant_id}\u{0}{order_no}")
}

#[derive(Debug)]
struct PaymentsInner {
    capacity: usize,
    /// Id → where the payment's current record lies in `log`.
    records: Slab<Loc>,
    log: Log,
    symbols: Symbols,
    /// payment_no → id.
    by_no: HashIndex,
    /// (merchant_id, order_no) → id of the payment holding that order number.
    by_order: HashIndex,
    by_merchant: HashMap<String, MerchantIndex>,
    /// Encoding buffer, reused.
    scratch: Vec<u8>,
}

impl PaymentsInner {
    /// The payment under `id`, decoded.
    fn load(&mut self, id: u32) -> Option<Payment> {
        let loc = *self.records.get(id)?;
        let symbols = &self.symbols;
        let payment = self.log.with(loc, |bytes| decode_payment(bytes, symbols))?;
        if payment.is_none() {
            tracing::error!(id, "payment record does not decode");
        }
        payment
    }

    /// The payment numbered `payment_no`, with its id.
    fn find(&mut self, payment_no: &str) -> Option<(u32, Payment)> {
        let candidates: Vec<u32> = self.by_no.candidates(payment_no).collect();
        candidates.into_iter().find_map(|id| {
            self.load(id)
                .filter(|p| p.payment_no == payment_no)
                .map(|p| (id, p))
        })
    }

    /// The payment holding the order number `order_no` of `merchant_id`.
    fn find_order(&mut self, key: &str, merchant_id: &str, order_no: &str) -> Option<Payment> {
        let candidates: Vec<u32> = self.by_order.candidates(key).collect();
        candidates.into_iter().find_map(|id| {
            self.load(id)
                .filter(|p| p.merchant_id == merchant_id && p.order_no == order_no)
        })
    }

    /// Write `payment` as the record of `id` (in place when it fits) or as a new one.
    fn write(&mut self, payment: &Payment, id: Option<u32>) -> Loc {
        let mut scratch = std::mem::take(&mut self.scratch);
        encode_payment(payment, &mut self.symbols, &mut scratch);
        let old = id.and_then(|id| self.records.get(id).copied());
        let loc = old
            .and_then(|loc| self.log.overwrite(loc, &scratch))
            .unwrap_or_else(|| self.log.append(&scratch));
        self.scratch = scratch;
        loc
    }

    /// Drop `payment` (id `id`, already out of `records`) from the indexes.
    fn forget(&mut self, id: u32, payment: &Payment) {
        self.by_no.remove(&payment.payment_no, id);
        self.by_order
            .remove(&order_key(&payment.merchant_id, &payment.order_no), id);
        if let Some(index) = self.by_merchant.get_mut(&payment.merchant_id) {
            index.total = index.total.saturating_sub(1);
            index.latest.retain(|other| *other != id);
            if index.total == 0 {
                self.by_merchant.remove(&payment.merchant_id);
            }
        }
    }

    /// Take the payment `id` out of the store.
    fn drop_record(&mut self, id: u32) -> Option<Payment> {
        let payment = self.load(id);
        self.records.take(id)?;
        let payment = payment?;
        self.forget(id, &payment);
        Some(payment)
    }

    /// Evict the oldest payments while over capacity.
    fn evict(&mut self) {
        while self.records.over(self.capacity) {
            let Some((id, loc)) = self.records.pop_oldest() else {
                break;
            };
            let symbols = &self.symbols;
            if let Some(Some(old)) = self.log.with(loc, |bytes| decode_payment(bytes, symbols)) {
                self.forget(id, &old);
            }
        }
    }
}

/// The order number is held by another payment.
#[derive(Debug)]
pub struct DuplicateOrder {
    /// The payment that holds it.
    pub payment_no: String,
}

/// The gateway's payments, with the indexes its API needs.
#[derive(Debug)]
pub struct PaymentStore {
    inner: Mutex<PaymentsInner>,
}

impl PaymentStore {
    /// An empty store keeping at most `capacity` payments.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(PaymentsInner {
                capacity: capacity.max(1),
                records: Slab::new(),
                log: Log::new("payments"),
                symbols: Symbols::default(),
                by_no: HashIndex::new(),
                by_order: HashIndex::new(),
                by_merchant: HashMap::new(),
                scratch: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaymentsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new payment unless its order number is taken (checked atomically).
    /// A payment with the `payment_no` of one already stored replaces it.
    pub fn insert(&self, payment: Payment) -> Result<(), DuplicateOrder> {
        let mut inner = self.lock();
        let order_key = order_key(&payment.merchant_id, &payment.order_no);
        if let Some(holder) = inner.find_order(&order_key, &payment.merchant_id, &payment.order_no)
        {
            return Err(DuplicateOrder {
                payment_no: holder.payment_no,
            });
        }
        if let Some((id, _)) = inner.find(&payment.payment_no) {
            inner.drop_record(id);
        }
        let loc = inner.write(&payment, None);
        let id = inner.records.push(loc);
        inner.by_no.insert(&payment.payment_no, id);
        inner.by_order.insert(&order_key, id);
        let index = inner
            .by_merchant
            .entry(payment.merchant_id.clone())
            .or_default();
        index.total += 1;
        index.latest.push_back(id);
        if index.latest.len() > MERCHANT_PAGE {
            index.latest.pop_front();
        }
        inner.evict();
        Ok(())
    }

    /// A copy of the payment.
    pub fn get(&self, payment_no: &str) -> Option<Payment> {
        self.lock().find(payment_no).map(|(_, p)| p)
    }

    /// Change a payment in place; returns the updated copy. A payment that becomes
    /// failed frees its order number, so the merchant can try the order again. The
    /// fields it is found by (`payment_no`, `merchant_id`, `order_no`) keep their values.
    pub fn update(&self, payment_no: &str, change: impl FnOnce(&mut Payment)) -> Option<Payment> {
        let mut inner = self.lock();
        let (id, mut payment) = inner.find(payment_no)?;
        let keys = (
            payment.payment_no.clone(),
            payment.merchant_id.clone(),
            payment.order_no.clone(),
        );
        change(&mut payment);
        (payment.payment_no, payment.merchant_id, payment.order_no) = keys;
        let loc = inner.write(&payment, Some(id));
        if let Some(slot) = inner.records.get_mut(id) {
            *slot = loc;
        }
        if payment.status == PaymentStatus::Failed {
            let key = order_key(&payment.merchant_id, &payment.order_no);
            inner.by_order.remove(&key, id);
        }
        Some(payment)
    }

    /// Delete a payment (only the `delete_failed_payments` defect does this).
    pub fn remove(&self, payment_no: &str) -> Option<Payment> {
        let mut inner = self.lock();
        let (id, _) = inner.find(payment_no)?;
        inner.drop_record(id)
    }

    /// The merchant's latest payments (newest first, at most [`MERCHANT_PAGE`]) and how
    /// many it has in the store.
    pub fn list(&self, merchant_id: &str) -> (Vec<Payment>, u64) {
        let mut inner = self.lock();
        let Some(index) = inner.by_merchant.get(merchant_id) else {
            return (Vec::new(), 0);
        };
        let total = index.total;
        let ids: Vec<u32> = index.latest.iter().rev().copied().collect();
        let payments = ids.into_iter().filter_map(|id| inner.load(id)).collect();
        (payments, total)
    }

    /// Payments in the store.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether the store holds no payment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A simple keyed store of records (settlements, withdrawals).
#[derive(Debug)]
pub struct RecordStore<V> {
    inner: Mutex<BoundedMap<V>>,
}

impl<V: Clone> RecordStore<V> {
    /// An empty store keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(BoundedMap::new(capacity)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedMap<V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Insert or replace a record.
    pub fn put(&self, key: String, value: V) {
        self.lock().insert(key, value);
    }

    /// A copy of a record.
    pub fn get(&self, key: &str) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// Change a record in place; returns the updated copy.
    pub fn update(&self, key: &str, change: impl FnOnce(&mut V)) -> Option<V> {
        let mut inner = self.lock();
        let value = inner.get_mut(key)?;
        change(value);
        Some(value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(no: &str, order: &str) -> Payment {
        Payment {
            payment_no: no.into(),
            order_no: order.into(),
            merchant_id: "M001".into(),
            amount: 100,
            currency: "USD".into(),
            channel: "card".into(),
            status: PaymentStatus::Pending,
            error: None,
            payment_url: None,
            channel_trade_no: None,
            order_id: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn bounded_map_evicts_oldest_first() {
        let mut map = BoundedMap::new(2);
        assert!(map.insert("a".into(), 1).is_empty());
        assert!(map.insert("b".into(), 2).is_empty());
        assert_eq!(map.insert("c".into(), 3), vec![("a".to_string(), 1)]);
        map.remove("b");
        assert!(map.insert("d".into(), 4).is_empty());
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("c"), Some(&3));
    }

    #[test]
    fn duplicate_order_is_refused_until_the_holder_fails() {
        let store = PaymentStore::new(10);
        store.insert(payment("P1", "O1")).unwrap();
        assert_eq!(
            store.insert(payment("P2", "O1")).unwrap_err().payment_no,
            "P1"
        );
        store.update("P1", |p| p.status = PaymentStatus::Failed);
        store.insert(payment("P2", "O1")).unwrap();
        assert_eq!(store.get("P1").unwrap().status, PaymentStatus::Failed);
    }

    #[test]
    fn listing_is_newest_first_and_counts_all() {
        let store = PaymentStore::new(100);
        for i in 0..60 {
            store
                .insert(payment(&format!("P{i}"), &format!("O{i}")))
                .unwrap();
        }
        let (page, total) = store.list("M001");
        assert_eq!(total, 60);
        assert_eq!(page.len(), MERCHANT_PAGE);
        assert_eq!(page[0].payment_no, "P59");
        store.remove("P59");
        let (page, total) = store.list("M001");
        assert_eq!((page[0].payment_no.as_str(), total), ("P58", 59));
    }

    #[test]
    fn eviction_keeps_indexes_consistent() {
        let store = PaymentStore::new(2);
        for i in 0..3 {
            store
                .insert(payment(&format!("P{i}"), &format!("O{i}")))
                .unwrap();
        }
        assert!(store.get("P0").is_none());
        assert_eq!(store.list("M001").1, 2);
        store.insert(payment("P9", "O0")).unwrap();
    }

    #[test]
    fn bounded_map_replacing_keeps_the_eviction_place() {
        let mut map = BoundedMap::new(2);
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        assert!(map.insert("a".into(), 10).is_empty());
        assert_eq!(map.insert("c".into(), 3), vec![("a".to_string(), 10)]);
        assert_eq!(map.remove("b"), Some(2));
        *map.get_mut("c").unwrap() += 1;
        assert_eq!((map.get("c"), map.len()), (Some(&4), 1));
    }

    /// More payments than any old per-growth size (and enough to spill to disk) all
    /// stay queryable, updates included, by number and in the merchant's count.
    #[test]
    fn many_payments_survive_growth_and_spilling() {
        let n = 300_000;
        let store = PaymentStore::new(4_000_000);
        for i in 0..n {
            let mut p = payment(&format!("PAY{i:012}"), &format!("O{i}"));
            p.created_at = "2026-12-07T13:20:35.123Z".into();
            p.merchant_id = if i % 3 == 0 { "M001" } else { "M002" }.into();
            store.insert(p).unwrap();
            store.update(&format!("PAY{i:012}"), |p| {
                p.status = PaymentStatus::AwaitingPayment;
                p.channel_trade_no = Some(format!("CH{i}"));
                p.payment_url = Some(format!("https://pay.channel.example/checkout/CH{i}"));
                p.order_id = Some(format!("ORD{i}"));
            });
        }
        assert!(store.lock().log.hot_bytes() < 8 << 20);
        assert_eq!(store.len(), n);
        for i in [0, 1, 65_535, 65_536, 131_072, 150_001, n - 1] {
            let p = store.get(&format!("PAY{i:012}")).unwrap();
            assert_eq!(p.order_no, format!("O{i}"));
            assert_eq!(p.status, PaymentStatus::AwaitingPayment);
            assert_eq!(
                p.payment_url.unwrap(),
                format!("https://pay.channel.example/checkout/CH{i}")
            );
            assert_eq!(p.created_at, "2026-12-07T13:20:35.123Z");
        }
        // A late webhook on a spilled payment.
        store.update("PAY000000000003", |p| p.status = PaymentStatus::Succeeded);
        assert_eq!(
            store.get("PAY000000000003").unwrap().status,
            PaymentStatus::Succeeded
        );
        // Order numbers stay taken, for spilled payments too.
        let dup = store.insert(payment("PAYX", "O0")).unwrap_err();
        assert_eq!(dup.payment_no, "PAY000000000000");
        let (page, total) = store.list("M001");
        assert_eq!(total, n as u64 / 3);
        assert_eq!(page.len(), MERCHANT_PAGE);
        assert_eq!(page[0].payment_no, format!("PAY{:012}", n - 3));
        assert_eq!(store.list("M002").1, n as u64 - n as u64 / 3);
    }

    #[test]
    fn small_capacity_evicts_first_in_first_out() {
        let store = PaymentStore::new(3);
        for i in 0..5 {
            store
                .insert(payment(&format!("P{i}"), &format!("O{i}")))
                .unwrap();
        }
        let kept: Vec<bool> = (0..5)
            .map(|i| store.get(&format!("P{i}")).is_some())
            .collect();
        assert_eq!(kept, [false, false, true, true, true]);
        // Removing one frees a place: the next insert evicts nothing.
        store.remove("P3");
        store.insert(payment("P5", "O5")).unwrap();
        assert!(store.get("P2").is_some());
        store.insert(payment("P6", "O6")).unwrap();
        assert!(store.get("P2").is_none());
        assert_eq!(store.list("M001").1, 3);
        // Evicted payments free their order numbers.
        store.insert(payment("P7", "O1")).unwrap();
    }

    #[test]
    fn a_failed_payment_frees_its_order_number_and_keeps_its_error() {
        let store = PaymentStore::new(10);
        store.insert(payment("P1", "O1")).unwrap();
        let failed = store
            .update("P1", |p| {
                p.status = PaymentStatus::Failed;
                p.error = Some("order-service: HTTP 503".into());
                p.payment_no = "changed".into();
            })
            .unwrap();
        assert_eq!(failed.payment_no, "P1");
        store.insert(payment("P2", "O1")).unwrap();
        assert_eq!(
            store.insert(payment("P3", "O1")).unwrap_err().payment_no,
            "P2"
        );
        let kept = store.get("P1").unwrap();
        assert_eq!(kept.error.as_deref(), Some("order-service: HTTP 503"));
        assert_eq!(store.list("M001").1, 2);
    }
}
