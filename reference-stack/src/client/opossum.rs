//! A circuit breaker with nodeshift/opossum semantics, as a pure state machine.
//!
//! Read from opossum 10.0.0 (commit `59421c5`, v10.0.0 + 2): `lib/circuit.js`
//! (`constructor`, `call`, `open`, `close`, `_startTimer`, `_halfOpen`, `handleError`,
//! `fail`) and `lib/status.js` (the rolling window).
//!
//! The rules, as opossum codes them:
//! - statistics live in a rolling window of `rolling_count_buckets` buckets rotated by a
//!   `setInterval` of `rolling_count_timeout / rolling_count_buckets` started when the
//!   breaker is built; the stats are the sum of the buckets in the window. Closing the
//!   breaker does **not** reset them (`Status.close()` only flags the bucket);
//! - every call counts a `fire` when it starts, *before* the state is checked, so calls
//!   rejected while open or half-open count as fires;
//! - closed: only a failure evaluates the threshold (`fail()`): nothing happens while
//!   `fires < volume_threshold`; otherwise the breaker opens when
//!   `failures / fires × 100 > error_threshold_percentage` (strictly greater);
//! - open: every call is rejected (`EOPENBREAKER`). Opening starts a `setTimeout` of
//!   `reset_timeout`: when it fires the breaker becomes half-open by itself, with no call
//!   needed;
//! - half-open: the first call is let through (`pendingClose` is consumed) and every
//!   other call is rejected with the same `EOPENBREAKER` error; a success — of *any* call,
//!   including one started before the breaker opened — closes it, a failure reopens it
//!   (the volume threshold does not apply in half-open). A new timer starts on reopening.
//!
//! Timer-driven transitions are computed lazily: whenever the breaker is given a `now`
//! (a request, an outcome, [`Opossum::settle`]) it first applies the timers that would
//! have fired by then, and records each transition at the timer's own instant, not at
//! `now`. Bucket rotation is computed the same way (from the build instant).
//!
//! Configuration modelled: `timeout: false` (no breaker-level call timeout: the client's
//! own per-attempt timeouts end every call), no `capacity` limit, no `errorFilter`, no
//! `allowWarmUp`, no cache or coalescing, no fallback.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::breaker::{Counts, Rejection, State, Transition};

/// opossum's `options` that matter here.
#[derive(Debug, Clone, PartialEq)]
pub struct OpossumSettings {
    /// Error percentage above which the breaker opens (`errorThresholdPercentage`,
    /// default 50). Platform mapping: `failure_ratio × 100` (60; opossum compares with
    /// `>`, gobreaker with `>=`).
    pub error_threshold_percentage: f64,
    /// Fires needed in the window before the breaker may open (`volumeThreshold`,
    /// default 0). Platform mapping: `min_requests` (5).
    pub volume_threshold: u32,
    /// Length of the rolling statistics window (`rollingCountTimeout`, default 10 s).
    /// Platform mapping: `interval` (60 s); an interval of 0 gives opossum's own fallback
    /// for 0 (`Status` reads `rollingCountTimeout || 10000`), 10 s.
    pub rolling_count_timeout: Duration,
    /// Buckets the window is divided into (`rollingCountBuckets`, default 10).
    /// Library default kept.
    pub rolling_count_buckets: u32,
    /// Open → half-open by timer after this long (`resetTimeout`, default 30 s).
    /// Platform mapping: `open_timeout` (30 s).
    pub reset_timeout: Duration,
    /// Whether half-open lets only one trial through. `false` models the
    /// `unlimited_half_open` defect (every call is let through while half-open).
    pub limit_half_open: bool,
}

/// Counters of one bucket (those the breaker decides with; a rejected call is a fire).
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Rotation number since the breaker was built.
    index: u64,
    fires: u32,
    failures: u32,
    successes: u32,
}

/// Proof that a call was let through; opossum keeps no per-call state.
#[derive(Debug)]
#[must_use = "report the outcome with Opossum::after_request"]
pub struct OpossumTicket(());

/// The opossum `CircuitBreaker`.
#[derive(Debug)]
pub struct Opossum {
    settings: OpossumSettings,
    /// When the breaker (and its rotation interval) was built.
    built: Instant,
    /// Newest last; at most `rolling_count_buckets`.
    window: VecDeque<Bucket>,
    state: State,
    /// Open: when the reset timer was started.
    opened_at: Option<Instant>,
    /// Half-open: the trial call has not been let through yet (`pendingClose`).
    pending_close: bool,
    pending: Vec<Transition>,
}

impl Opossum {
    /// A closed breaker whose rotation interval starts at `now`.
    pub fn new(settings: OpossumSettings, now: Instant) -> Self {
        Self {
            settings,
            built: now,
            window: VecDeque::new(),
            state: State::Closed,
            opened_at: None,
            pending_close: false,
            pending: Vec::new(),
        }
    }

    /// The state after any reset timer due by `now` has fired.
    pub fn state(&mut self, now: Instant) -> State {
        self.settle(now);
        self.state
    }

    /// The state as last settled (no timer applied).
    pub fn peek_state(&self) -> State {
        self.state
    }

    /// Window totals as last settled: fires as `requests`, failures, successes.
    pub fn counts(&self) -> Counts {
        let totals = self.totals();
        Counts {
            requests: totals.fires,
            total_failures: totals.failures,
            total_successes: totals.successes,
            ..Counts::default()
        }
    }

    /// Fire the reset timer if it is due by `now`, stamping the transition with the
    /// timer's instant.
    pub fn settle(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        let Some(opened_at) = self.opened_at else {
            return;
        };
        if now.saturating_duration_since(opened_at) >= self.settings.reset_timeout {
            // `_halfOpen`: state HALF_OPEN, pendingClose = true.
            let fired = opened_at + self.settings.reset_timeout;
            self.pending_close = true;
            self.set_state(State::HalfOpen, fired);
        }
    }

    /// `call()`: count the fire, then let it through or reject it.
    pub fn before_request(&mut self, now: Instant) -> Result<OpossumTicket, Rejection> {
        self.settle(now);
        self.record(now, |b| b.fires += 1);
        let admitted = match self.state {
            State::Closed => true,
            State::HalfOpen => self.pending_close || !self.settings.limit_half_open,
            State::Open => false,
        };
        if !admitted {
            return Err(match self.state {
                State::HalfOpen => Rejection::TooManyRequests,
                State::Closed | State::Open => Rejection::Open,
            });
        }
        self.pending_close = false;
        Ok(OpossumTicket(()))
    }

    /// The `success` event or `fail()` for the call's outcome.
    pub fn after_request(&mut self, _ticket: OpossumTicket, success: bool, now: Instant) {
        self.settle(now);
        if success {
            self.record(now, |b| b.successes += 1);
            if self.state == State::HalfOpen {
                self.set_state(State::Closed, now);
            }
            return;
        }
        self.record(now, |b| b.failures += 1);
        let half_open = self.state == State::HalfOpen;
        let totals = self.totals();
        if totals.fires < self.settings.volume_threshold && !half_open {
            return;
        }
        // JavaScript arithmetic: failures / 0 fires is Infinity, which is above any threshold.
        let error_rate = f64::from(totals.failures) / f64::from(totals.fires) * 100.0;
        if (error_rate > self.settings.error_threshold_percentage || half_open)
            && self.state != State::Open
        {
            self.opened_at = Some(now);
            self.set_state(State::Open, now);
        }
    }

    /// Collect the state changes made since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    fn set_state(&mut self, state: State, at: Instant) {
        if state != State::HalfOpen {
            self.pending_close = false;
        }
        self.pending.push(Transition {
            from: self.state,
            to: state,
            at,
        });
        self.state = state;
    }

    fn bucket_len(&self) -> Duration {
        (self.settings.rolling_count_timeout / self.settings.rolling_count_buckets.max(1))
            .max(Duration::from_nanos(1))
    }

    /// Count into the bucket current at `now`, first rotating out the buckets that
    /// have left the window (what the rotation interval would have done by then).
    fn record(&mut self, now: Instant, count: impl FnOnce(&mut Bucket)) {
        let elapsed = now.saturating_duration_since(self.built).as_nanos();
        let index = u64::try_from(elapsed / self.bucket_len().as_nanos()).unwrap_or(u64::MAX);
        let kept = u64::from(self.settings.rolling_count_buckets.max(1));
        let oldest = index.saturating_sub(kept - 1);
        while self.window.front().is_some_and(|b| b.index < oldest) {
            self.window.pop_front();
        }
        match self.window.back_mut() {
            Some(current) if current.index == index => count(current),
            _ => {
                let mut fresh = Bucket {
                    index,
                    ..Bucket::default()
                };
                count(&mut fresh);
                self.window.push_back(fresh);
            }
        }
    }

    /// The window's sums (`Status.stats`); the index is meaningless here.
    fn totals(&self) -> Bucket {
        self.window.iter().fold(Bucket::default(), |acc, b| Bucket {
            fires: acc.fires + b.fires,
            failures: acc.failures + b.failures,
            successes: acc.successes + b.successes,
            ..acc
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESET: Duration = Duration::from_secs(30);

    /// The platform's mapping: 60 %, volume 5, 60 s window in 10 buckets, 30 s reset.
    fn settings() -> OpossumSettings {
        OpossumSettings {
            error_threshold_percentage: 60.0,
            volume_threshold: 5,
            rolling_count_timeout: Duration::from_secs(60),
            rolling_count_buckets: 10,
            reset_timeout: RESET,
            limit_half_open: true,
        }
    }

    fn call(b: &mut Opossum, now: Instant, success: bool) -> Result<(), Rejection> {
        let ticket = b.before_request(now)?;
        b.after_request(ticket, success, now);
        Ok(())
    }

    fn tripped(t0: Instant) -> Opossum {
        let mut b = Opossum::new(settings(), t0);
        for _ in 0..5 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(b.peek_state(), State::Open);
        b.take_transitions();
        b
    }

    #[test]
    fn opens_when_the_error_rate_is_strictly_above_the_threshold_with_volume() {
        let t0 = Instant::now();
        let mut b = Opossum::new(settings(), t0);
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(b.peek_state(), State::Closed, "4 fires < volumeThreshold 5");
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);

        // 2 successes then 3 failures: 3 / 5 = 60 %, not above 60 %: stays closed.
        let mut b = Opossum::new(settings(), t0);
        for ok in [true, true, false, false, false] {
            call(&mut b, t0, ok).unwrap();
        }
        assert_eq!(b.peek_state(), State::Closed, "60 % is not > 60 %");
        // 4 / 6 = 67 %.
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);
    }

    #[test]
    fn fires_count_at_the_start_so_calls_in_flight_dilute_the_rate() {
        let t0 = Instant::now();
        let mut b = Opossum::new(settings(), t0);
        let in_flight: Vec<OpossumTicket> = (0..5).map(|_| b.before_request(t0).unwrap()).collect();
        for _ in 0..3 {
            call(&mut b, t0, false).unwrap();
        }
        // 3 failures of 8 fires = 37.5 %.
        assert_eq!(b.peek_state(), State::Closed);
        assert_eq!(b.counts().requests, 8);
        drop(in_flight);
    }

    #[test]
    fn open_rejects_and_the_rejections_count_as_fires() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        for _ in 0..10 {
            assert_eq!(b.before_request(t0).unwrap_err(), Rejection::Open);
        }
        assert_eq!(b.counts().requests, 15, "5 calls + 10 rejected fires");
    }

    #[test]
    fn the_reset_timer_makes_it_half_open_without_a_call_stamped_at_the_timer() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        assert_eq!(b.state(t0 + RESET - Duration::from_millis(1)), State::Open);
        // Read long after the timer: the transition carries the timer's instant.
        let much_later = t0 + RESET * 3;
        assert_eq!(b.state(much_later), State::HalfOpen);
        assert_eq!(
            b.take_transitions(),
            vec![Transition {
                from: State::Open,
                to: State::HalfOpen,
                at: t0 + RESET
            }]
        );
    }

    #[test]
    fn half_open_lets_one_trial_through_and_rejects_the_rest() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + RESET;
        let trial = b.before_request(t).expect("the single trial");
        assert_eq!(b.before_request(t).unwrap_err(), Rejection::TooManyRequests);
        assert_eq!(b.before_request(t).unwrap_err(), Rejection::TooManyRequests);
        b.after_request(trial, true, t + Duration::from_millis(5));
        assert_eq!(b.peek_state(), State::Closed);
        assert_eq!(
            b.take_transitions().last().copied(),
            Some(Transition {
                from: State::HalfOpen,
                to: State::Closed,
                at: t + Duration::from_millis(5)
            })
        );
    }

    #[test]
    fn a_failed_trial_reopens_and_restarts_the_timer() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + RESET + Duration::from_secs(1);
        call(&mut b, t, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);
        assert_eq!(b.state(t + RESET - Duration::from_millis(1)), State::Open);
        assert_eq!(b.state(t + RESET), State::HalfOpen);
        let stamps: Vec<(State, Instant)> = b
            .take_transitions()
            .iter()
            .map(|tr| (tr.to, tr.at))
            .collect();
        assert_eq!(
            stamps,
            vec![
                (State::HalfOpen, t0 + RESET),
                (State::Open, t),
                (State::HalfOpen, t + RESET)
            ]
        );
    }

    #[test]
    fn any_success_closes_a_half_open_breaker_even_one_started_before_it_opened() {
        let t0 = Instant::now();
        let mut b = Opossum::new(settings(), t0);
        let early = b.before_request(t0).unwrap();
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(b.peek_state(), State::Open, "4 failures of 5 fires");
        let t = t0 + RESET + Duration::from_secs(1);
        b.after_request(early, true, t);
        assert_eq!(b.peek_state(), State::Closed);
    }

    #[test]
    fn closing_keeps_the_window_and_old_buckets_roll_out() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + RESET;
        call(&mut b, t, true).unwrap();
        assert_eq!(b.peek_state(), State::Closed);
        // Still in the 60 s window: 5 failures of 6 fires; one more failure (5+1 of 7,
        // 86 %) reopens at once, although the breaker just closed.
        call(&mut b, t, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);

        // Once the old buckets have rolled out, a failure alone is under the volume.
        let mut b = tripped(t0);
        let t = t0 + RESET;
        call(&mut b, t, true).unwrap();
        let later = t0 + Duration::from_secs(61);
        call(&mut b, later, false).unwrap();
        assert_eq!(b.peek_state(), State::Closed, "t0's bucket left the window");
        assert_eq!(b.counts().requests, 2);
    }

    #[test]
    fn unlimited_half_open_lets_every_call_through() {
        let t0 = Instant::now();
        let mut b = Opossum::new(
            OpossumSettings {
                limit_half_open: false,
                ..settings()
            },
            t0,
        );
        for _ in 0..5 {
            call(&mut b, t0, false).unwrap();
        }
        let t = t0 + RESET;
        let tickets: Vec<OpossumTicket> = (0..4).map(|_| b.before_request(t).unwrap()).collect();
        assert_eq!(tickets.len(), 4);
    }
}
