//! In-memory stores with a fixed capacity: when full, the oldest record is evicted
//! (first in, first out). Capacity defaults to 1,000,000 records per store
//! (`STORE_CAPACITY`), far above what a test run creates, so every payment of a run
//! stays queryable for integrity checks while a week-long soak still has bounded memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// A map that keeps at most `capacity` entries, evicting the oldest insertion first.
#[derive(Debug)]
pub struct BoundedMap<V> {
    capacity: usize,
    entries: HashMap<String, V>,
    /// Insertion order; may hold keys already removed, skipped on eviction.
    order: VecDeque<String>,
}

impl<V> BoundedMap<V> {
    /// An empty map holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Insert a new entry (replacing one with the same key), returning what was evicted.
    pub fn insert(&mut self, key: String, value: V) -> Vec<(String, V)> {
        if self.entries.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        let mut evicted = Vec::new();
        while self.entries.len() > self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(value) = self.entries.remove(&oldest) {
                evicted.push((oldest, value));
            }
        }
        // Removed keys linger in `order`; drop them once they outnumber live ones.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
        evicted
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key)
    }

    /// The entry under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    /// Remove the entry under `key`.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.entries.remove(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
    total: u64,
    latest: VecDeque<String>,
}

#[derive(Debug)]
struct PaymentsInner {
    payments: BoundedMap<Payment>,
    /// (merchant_id, order_no) → payment_no of the payment holding that order number.
    by_order: HashMap<(String, String), String>,
    by_merchant: HashMap<String, MerchantIndex>,
}

impl PaymentsInner {
    fn forget(&mut self, payment: &Payment) {
        let order_key = (payment.merchant_id.clone(), payment.order_no.clone());
        if self.by_order.get(&order_key) == Some(&payment.payment_no) {
            self.by_order.remove(&order_key);
        }
        if let Some(index) = self.by_merchant.get_mut(&payment.merchant_id) {
            index.total = index.total.saturating_sub(1);
            index.latest.retain(|no| no != &payment.payment_no);
            if index.total == 0 {
                self.by_merchant.remove(&payment.merchant_id);
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
                payments: BoundedMap::new(capacity),
                by_order: HashMap::new(),
                by_merchant: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PaymentsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new payment unless its order number is taken (checked atomically).
    pub fn insert(&self, payment: Payment) -> Result<(), DuplicateOrder> {
        let mut inner = self.lock();
        let order_key = (payment.merchant_id.clone(), payment.order_no.clone());
        if let Some(existing) = inner.by_order.get(&order_key) {
            return Err(DuplicateOrder {
                payment_no: existing.clone(),
            });
        }
        inner.by_order.insert(order_key, payment.payment_no.clone());
        let index = inner
            .by_merchant
            .entry(payment.merchant_id.clone())
            .or_default();
        index.total += 1;
        index.latest.push_back(payment.payment_no.clone());
        if index.latest.len() > MERCHANT_PAGE {
            index.latest.pop_front();
        }
        let evicted = inner.payments.insert(payment.payment_no.clone(), payment);
        for (_, old) in evicted {
            inner.forget(&old);
        }
        Ok(())
    }

    /// A copy of the payment.
    pub fn get(&self, payment_no: &str) -> Option<Payment> {
        self.lock().payments.get(payment_no).cloned()
    }

    /// Change a payment in place; returns the updated copy. A payment that becomes
    /// failed frees its order number, so the merchant can try the order again.
    pub fn update(&self, payment_no: &str, change: impl FnOnce(&mut Payment)) -> Option<Payment> {
        let mut inner = self.lock();
        let payment = inner.payments.get_mut(payment_no)?;
        change(payment);
        let updated = payment.clone();
        if updated.status == PaymentStatus::Failed {
            let order_key = (updated.merchant_id.clone(), updated.order_no.clone());
            if inner.by_order.get(&order_key) == Some(&updated.payment_no) {
                inner.by_order.remove(&order_key);
            }
        }
        Some(updated)
    }

    /// Delete a payment (only the `delete_failed_payments` defect does this).
    pub fn remove(&self, payment_no: &str) -> Option<Payment> {
        let mut inner = self.lock();
        let removed = inner.payments.remove(payment_no)?;
        inner.forget(&removed);
        Some(removed)
    }

    /// The merchant's latest payments (newest first, at most [`MERCHANT_PAGE`]) and how
    /// many it has in the store.
    pub fn list(&self, merchant_id: &str) -> (Vec<Payment>, u64) {
        let inner = self.lock();
        let Some(index) = inner.by_merchant.get(merchant_id) else {
            return (Vec::new(), 0);
        };
        let payments = index
            .latest
            .iter()
            .rev()
            .filter_map(|no| inner.payments.get(no).cloned())
            .collect();
        (payments, index.total)
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
}
