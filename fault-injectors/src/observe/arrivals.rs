//! Every arrival, one compact record each, so a harness can correlate a
//! downstream's arrivals with the upstream requests that caused them: when
//! the request arrived, how long the injector took with it (or until the
//! client went away), the business id it carried, and how it ended.
//!
//! The request path only pushes onto a lock-free queue; a reader drains the
//! queue into a bounded store when it pages the records out. Nothing on the
//! request path takes a lock. Memory is bounded twice: the queue refuses
//! records beyond its capacity when nobody reads (counted as `dropped`), and
//! the store forgets what the reader has acknowledged by asking past it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crossbeam_queue::SegQueue;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::decide::Outcome;

/// One arrival at an injector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalRecord {
    /// Arrival number (the fault decision's sequence number).
    pub seq: u64,
    /// When the request arrived, µs from the clock's origin.
    pub at_us: u64,
    /// From arrival until the injector had the response head ready, or
    /// until the client went away (`answered` false), µs.
    pub took_us: u64,
    /// [`id_hash`] of the first configured business id the body carried
    /// (0: none).
    pub id: u64,
    /// How it ended ([`Outcome::code`]).
    pub outcome: u16,
    /// False when the client gave up (closed the connection) before the
    /// injector answered: a hang or delay outlived the caller's timeout.
    pub answered: bool,
}

impl ArrivalRecord {
    /// When the injector was done with the request, µs from the origin.
    pub fn end_us(&self) -> u64 {
        self.at_us.saturating_add(self.took_us)
    }
}

/// A page of arrival records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrivalPage {
    /// Ask from this cursor next time (records before it are forgotten).
    pub next: u64,
    /// Records lost because nobody read them in time, since the start.
    pub dropped: u64,
    /// Records from the cursor asked for (or the oldest kept), in the order
    /// the injector finished with them.
    pub records: Vec<ArrivalRecord>,
}

/// A stable, non-zero 64-bit hash of a business id's value (FNV-1a), the
/// same in every process and version, so a harness can compute the hash of
/// the ids it sent and find them among an injector's arrivals.
pub fn id_hash(value: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.max(1)
}

/// The records of one injector.
#[derive(Debug)]
pub(crate) struct ArrivalLog {
    clock: Clock,
    capacity: usize,
    queue: SegQueue<ArrivalRecord>,
    queued: AtomicUsize,
    dropped: AtomicU64,
    store: Mutex<Store>,
}

#[derive(Debug, Default)]
struct Store {
    /// Cursor of `records[0]`.
    base: u64,
    records: VecDeque<ArrivalRecord>,
}

impl ArrivalLog {
    pub(crate) fn new(clock: Clock, capacity: usize) -> Self {
        Self {
            clock,
            capacity: capacity.max(1),
            queue: SegQueue::new(),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            store: Mutex::new(Store::default()),
        }
    }

    /// Starts the record of a request that arrived at `at`; it is logged
    /// when the returned guard is dropped.
    pub(crate) fn begin(&self, seq: u64, at: Instant, id: u64, outcome: Outcome) -> Pending<'_> {
        Pending {
            log: self,
            at,
            record: ArrivalRecord {
                seq,
                at_us: micros(self.clock.since_origin(at)),
                took_us: 0,
                id,
                outcome: outcome.code(),
                answered: false,
            },
        }
    }

    fn push(&self, record: ArrivalRecord) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queue.push(record);
    }

    /// Records from `cursor` on; everything before `cursor` is forgotten.
    pub(crate) fn since(&self, cursor: u64) -> ArrivalPage {
        let mut store = lock(&self.store);
        while let Some(record) = self.queue.pop() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            store.records.push_back(record);
        }
        let acknowledged = cursor
            .saturating_sub(store.base)
            .min(store.records.len() as u64);
        store.records.drain(..acknowledged as usize);
        store.base += acknowledged;
        let excess = store.records.len().saturating_sub(self.capacity);
        if excess > 0 {
            store.records.drain(..excess);
            store.base += excess as u64;
            self.dropped.fetch_add(excess as u64, Ordering::Relaxed);
        }
        let skip = cursor.saturating_sub(store.base) as usize;
        ArrivalPage {
            next: store.base + store.records.len() as u64,
            dropped: self.dropped.load(Ordering::Relaxed),
            records: store.records.iter().skip(skip).copied().collect(),
        }
    }
}

/// An arrival the injector is still busy with; logged when dropped, which
/// also happens when the client goes away and the request is abandoned.
pub(crate) struct Pending<'a> {
    log: &'a ArrivalLog,
    at: Instant,
    record: ArrivalRecord,
}

impl Pending<'_> {
    /// How it ended after all (front mode: the upstream failed).
    pub(crate) fn outcome(&mut self, outcome: Outcome) {
        self.record.outcome = outcome.code();
    }

    /// The injector has its answer (response head) ready now.
    pub(crate) fn answered(mut self) {
        self.record.answered = true;
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.record.took_us = micros(self.at.elapsed());
        self.log.push(self.record);
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(capacity: usize) -> ArrivalLog {
        ArrivalLog::new(Clock::start(), capacity)
    }

    #[test]
    fn records_are_paged_and_forgotten_once_acknowledged() {
        let log = log(100);
        for seq in 0..5 {
            log.begin(seq, Instant::now(), id_hash("O1"), Outcome::Served)
                .answered();
        }
        let page = log.since(0);
        assert_eq!(page.records.len(), 5);
        assert_eq!(page.next, 5);
        assert!(
            page.records
                .iter()
                .all(|r| r.answered && r.id == id_hash("O1"))
        );
        log.begin(5, Instant::now(), 0, Outcome::Status(503));
        // Asking from 5 acknowledges the first five: only the new one is left.
        let page = log.since(5);
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].seq, 5);
        assert!(!page.records[0].answered, "dropped without an answer");
        assert_eq!(page.records[0].outcome, Outcome::Status(503).code());
        // Asking again from the same cursor repeats it (a retried read).
        assert_eq!(log.since(5).records.len(), 1);
        assert_eq!(log.since(6).records.len(), 0);
    }

    #[test]
    fn an_unread_log_stays_bounded_and_counts_what_it_lost() {
        let log = log(10);
        for seq in 0..25 {
            log.begin(seq, Instant::now(), 0, Outcome::Served)
                .answered();
        }
        let page = log.since(0);
        assert_eq!(page.records.len(), 10);
        assert_eq!(page.dropped, 15);
        assert_eq!(page.records[0].seq, 0, "the queue keeps the oldest");
    }

    #[test]
    fn times_are_on_the_clock_and_took_covers_the_work() {
        let clock = Clock::start();
        let log = ArrivalLog::new(clock, 10);
        let at = Instant::now();
        {
            let pending = log.begin(0, at, 0, Outcome::Served);
            std::thread::sleep(std::time::Duration::from_millis(3));
            pending.answered();
        }
        let r = log.since(0).records[0];
        assert_eq!(r.at_us, clock.since_origin(at).as_micros() as u64);
        assert!(r.took_us >= 3_000, "{r:?}");
        assert_eq!(r.end_us(), r.at_us + r.took_us);
    }

    #[test]
    fn id_hashes_are_stable_and_never_zero() {
        // FNV-1a 64 of "a" is a known constant.
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(id_hash("O1"), id_hash("O2"));
        assert_ne!(id_hash(""), 0);
    }
}
