//! Attempt numbers per request identity at one injector: the second
//! request carrying `order_no` O1 is O1's attempt 2, whoever else arrives
//! in between. A lock-free map (papaya) keeps one small counter per
//! identity seen recently; identities idle longer than the window are
//! forgotten by a sweep off the request path, so memory follows the ids in
//! flight, not every id of the run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::clock::Clock;

/// How long an identity is remembered after its last attempt: a retry that
/// comes later counts as a first attempt again.
pub const WINDOW: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Counter {
    attempts: AtomicU32,
    /// Seconds on the injector clock of the last attempt.
    last_s: AtomicU32,
}

/// Attempts by identity hash.
pub(crate) struct Attempts {
    clock: Clock,
    counters: papaya::HashMap<u64, Counter>,
}

impl Attempts {
    /// An empty tracker on `clock`.
    pub(crate) fn new(clock: Clock) -> Self {
        Self {
            clock,
            counters: papaya::HashMap::new(),
        }
    }

    /// Counts one more attempt of identity `hash`; returns its number (1
    /// for the first).
    pub(crate) fn next(&self, hash: u64) -> u32 {
        let counters = self.counters.pin();
        let counter = counters.get_or_insert_with(hash, Counter::default);
        counter.last_s.store(self.now_s(), Ordering::Relaxed);
        counter.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Forgets identities idle longer than `window`; returns how many are
    /// remembered.
    pub(crate) fn forget_idle(&self, window: Duration) -> usize {
        let now = self.now_s();
        let window = u32::try_from(window.as_secs()).unwrap_or(u32::MAX);
        let counters = self.counters.pin();
        counters.retain(|_, c| now.saturating_sub(c.last_s.load(Ordering::Relaxed)) <= window);
        counters.len()
    }

    fn now_s(&self) -> u32 {
        u32::try_from(self.clock.since_origin(std::time::Instant::now()).as_secs())
            .unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_per_identity() {
        let attempts = Attempts::new(Clock::start());
        assert_eq!(attempts.next(7), 1);
        assert_eq!(attempts.next(9), 1);
        assert_eq!(attempts.next(7), 2);
        assert_eq!(attempts.next(7), 3);
        assert_eq!(attempts.forget_idle(WINDOW), 2);
        // Nothing is idle for a zero window only after a second passes;
        // an identity forgotten starts again at 1.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(attempts.forget_idle(Duration::ZERO), 0);
        assert_eq!(attempts.next(7), 1);
    }

    #[test]
    fn concurrent_attempts_get_distinct_numbers() {
        let attempts = std::sync::Arc::new(Attempts::new(Clock::start()));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let attempts = std::sync::Arc::clone(&attempts);
                std::thread::spawn(move || (0..1000).map(|_| attempts.next(1)).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u32> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=4000).collect::<Vec<_>>());
    }
}
