//! A circuit breaker with danielfm/pybreaker semantics, as a pure state machine.
//!
//! Read from pybreaker 1.4.1 (`src/pybreaker/__init__.py` at commit `3c436f2`, v1.4.1 + 3):
//! `CircuitBreaker.call`, `CircuitBreakerState._handle_error` / `_handle_success`,
//! `CircuitClosedState.on_failure`, `CircuitOpenState.before_call`,
//! `CircuitHalfOpenState.on_success` / `on_failure`.
//!
//! The rules, as pybreaker codes them:
//! - one failure counter (`fail_counter`), incremented by every failed call in any state
//!   and reset to zero by every successful call: it counts *consecutive* failures;
//! - closed: a failure that brings the counter to `fail_max` opens the breaker;
//! - open: a call before `reset_timeout` has elapsed since the opening raises
//!   `CircuitBreakerError` at once; the first call at or after it (pybreaker raises only
//!   while `now < opened_at + reset_timeout`) moves the breaker to half-open and *is* the
//!   trial call. Nothing else moves it: reading `current_state` does not;
//! - half-open: calls are not limited (there is no admission counter); a success counts
//!   towards `success_threshold` (1.4.0+; default 1) and closes the breaker when it is
//!   reached; any failure reopens it (a new `reset_timeout` from that instant);
//! - every exception counts as a failure unless listed in `exclude` (none here: the
//!   platform's client counts every error). An excluded exception counts as a success.
//!
//! What makes pybreaker's shape distinct is outside this state machine:
//! `CircuitBreaker.call` holds the breaker's `RLock` for the whole guarded call, so calls
//! through one breaker are serialised. The client layer models that with an async mutex
//! held across the guarded retry loop (see [`super::DownstreamClient`]); with it, a call
//! that arrives while open first waits for the lock, then is rejected at once.
//!
//! Not modelled: `throw_new_error_on_trip` (default true) makes the call whose failure
//! trips the breaker raise `CircuitBreakerError` instead of its own error; here that call
//! fails with the downstream's error, as with every other flavour.

use std::time::{Duration, Instant};

use super::breaker::{Counts, Rejection, State, Transition};

/// pybreaker's `CircuitBreaker(...)` arguments that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PybreakerSettings {
    /// Consecutive failures that open the breaker (`fail_max`, default 5).
    /// Platform mapping: `min_requests` (5).
    pub fail_max: u32,
    /// How long the breaker stays open before the next call is a trial (`reset_timeout`,
    /// default 60 s). Platform mapping: `open_timeout` (30 s).
    pub reset_timeout: Duration,
    /// Successes in half-open needed to close (`success_threshold`, default 1, since
    /// 1.4.0). Platform mapping: `max_requests` (3); set `max_requests = 1` for the
    /// single-trial shape of every pybreaker before 1.4.0.
    pub success_threshold: u32,
}

/// Proof that a call was admitted; hand it back to [`Pybreaker::after_request`].
/// pybreaker keeps no per-call state, so the ticket carries none.
#[derive(Debug)]
#[must_use = "report the outcome with Pybreaker::after_request"]
pub struct PybreakerTicket(());

/// The pybreaker state machine (one `CircuitBreaker` with `CircuitMemoryStorage`).
#[derive(Debug)]
pub struct Pybreaker {
    settings: PybreakerSettings,
    state: State,
    /// `_state_storage.counter`: consecutive failures.
    fail_counter: u32,
    /// `_state_storage.success_counter`: successes since entering half-open.
    success_counter: u32,
    /// `_state_storage.opened_at`.
    opened_at: Option<Instant>,
    pending: Vec<Transition>,
}

impl Pybreaker {
    /// A closed breaker.
    pub fn new(settings: PybreakerSettings) -> Self {
        Self {
            settings,
            state: State::Closed,
            fail_counter: 0,
            success_counter: 0,
            opened_at: None,
            pending: Vec::new(),
        }
    }

    /// The stored state; pybreaker's `current_state` never moves the breaker.
    pub fn state(&self) -> State {
        self.state
    }

    /// `fail_counter` as `consecutive_failures`, `success_counter` as
    /// `consecutive_successes`; pybreaker keeps no totals.
    pub fn counts(&self) -> Counts {
        Counts {
            consecutive_failures: self.fail_counter,
            consecutive_successes: self.success_counter,
            ..Counts::default()
        }
    }

    /// The state's `before_call`: open rejects until `reset_timeout` has elapsed, then
    /// the breaker goes half-open and this call is the trial.
    pub fn before_request(&mut self, now: Instant) -> Result<PybreakerTicket, Rejection> {
        if self.state == State::Open {
            let elapsed = self
                .opened_at
                .map_or(Duration::MAX, |at| now.saturating_duration_since(at));
            // `if opened_at and now < opened_at + timeout: raise CircuitBreakerError`
            if elapsed < self.settings.reset_timeout {
                return Err(Rejection::Open);
            }
            self.set_state(State::HalfOpen, now);
        }
        Ok(PybreakerTicket(()))
    }

    /// `_handle_success` / `_handle_error` for the call's outcome.
    pub fn after_request(&mut self, _ticket: PybreakerTicket, success: bool, now: Instant) {
        if success {
            self.fail_counter = 0;
            if self.state == State::HalfOpen {
                self.success_counter += 1;
                if self.success_counter >= self.settings.success_threshold {
                    self.set_state(State::Closed, now);
                }
            }
        } else {
            self.fail_counter += 1;
            match self.state {
                State::Closed if self.fail_counter >= self.settings.fail_max => {
                    self.set_state(State::Open, now);
                }
                State::HalfOpen => self.set_state(State::Open, now),
                State::Closed | State::Open => {}
            }
        }
    }

    /// Collect the state changes made since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    /// `open()`, `half_open()`, `close()` with the resets their state objects make.
    fn set_state(&mut self, state: State, now: Instant) {
        match state {
            // `open()` stamps `opened_at`; `CircuitOpenState` resets the success counter.
            State::Open => {
                self.opened_at = Some(now);
                self.success_counter = 0;
            }
            // `CircuitHalfOpenState` resets the success counter.
            State::HalfOpen => self.success_counter = 0,
            // `close()` resets the success counter, `CircuitClosedState` the failures.
            State::Closed => {
                self.success_counter = 0;
                self.fail_counter = 0;
            }
        }
        self.pending.push(Transition {
            from: self.state,
            to: state,
            at: now,
        });
        self.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESET: Duration = Duration::from_secs(30);

    fn settings(success_threshold: u32) -> PybreakerSettings {
        PybreakerSettings {
            fail_max: 5,
            reset_timeout: RESET,
            success_threshold,
        }
    }

    fn call(b: &mut Pybreaker, now: Instant, success: bool) -> Result<(), Rejection> {
        let ticket = b.before_request(now)?;
        b.after_request(ticket, success, now);
        Ok(())
    }

    fn tripped(now: Instant, success_threshold: u32) -> Pybreaker {
        let mut b = Pybreaker::new(settings(success_threshold));
        for _ in 0..5 {
            call(&mut b, now, false).expect("closed admits");
        }
        assert_eq!(b.state(), State::Open);
        b.take_transitions();
        b
    }

    #[test]
    fn fail_max_consecutive_failures_open_it() {
        let t0 = Instant::now();
        let mut b = Pybreaker::new(settings(1));
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(b.state(), State::Closed, "4 < fail_max");
        assert_eq!(b.counts().consecutive_failures, 4);
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.state(), State::Open);
        assert_eq!(
            b.take_transitions(),
            vec![Transition {
                from: State::Closed,
                to: State::Open,
                at: t0
            }]
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = Pybreaker::new(settings(1));
        // 4 failures, a success, 4 failures: never 5 in a row, whatever the share.
        for ok in [false, false, false, false, true, false, false, false, false] {
            call(&mut b, t0, ok).unwrap();
        }
        assert_eq!(b.state(), State::Closed);
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn open_rejects_until_reset_timeout_then_the_next_call_is_the_trial() {
        let t0 = Instant::now();
        let mut b = tripped(t0, 1);
        let just_before = t0 + RESET - Duration::from_millis(1);
        assert_eq!(b.before_request(just_before).unwrap_err(), Rejection::Open);
        // Reading the state never moves it, however late.
        assert_eq!(b.state(), State::Open);
        // Exactly at opened_at + reset_timeout pybreaker no longer raises.
        let due = t0 + RESET;
        let ticket = b.before_request(due).expect("the trial is admitted");
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(
            b.take_transitions(),
            vec![Transition {
                from: State::Open,
                to: State::HalfOpen,
                at: due
            }]
        );
        b.after_request(ticket, true, due);
        assert_eq!(
            b.state(),
            State::Closed,
            "success_threshold 1: one success closes"
        );
    }

    #[test]
    fn half_open_failure_reopens_for_a_new_reset_timeout() {
        let t0 = Instant::now();
        let mut b = tripped(t0, 1);
        let trial = t0 + RESET;
        call(&mut b, trial, false).unwrap();
        assert_eq!(b.state(), State::Open);
        let kinds: Vec<(State, State)> = b
            .take_transitions()
            .iter()
            .map(|t| (t.from, t.to))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (State::Open, State::HalfOpen),
                (State::HalfOpen, State::Open)
            ]
        );
        assert_eq!(
            b.before_request(trial + RESET - Duration::from_millis(1))
                .unwrap_err(),
            Rejection::Open
        );
        assert!(b.before_request(trial + RESET).is_ok());
    }

    #[test]
    fn half_open_admits_every_call_and_closes_after_success_threshold() {
        let t0 = Instant::now();
        let mut b = tripped(t0, 3);
        let t = t0 + RESET;
        // No admission limit: the lock in the client is what serialises calls.
        let tickets: Vec<PybreakerTicket> = (0..5).map(|_| b.before_request(t).unwrap()).collect();
        let mut tickets = tickets.into_iter();
        for _ in 0..2 {
            b.after_request(tickets.next().unwrap(), true, t);
        }
        assert_eq!(b.state(), State::HalfOpen, "2 of 3 successes");
        b.after_request(tickets.next().unwrap(), true, t);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.counts(), Counts::default(), "close resets both counters");
    }

    #[test]
    fn half_open_success_count_restarts_after_a_reopen() {
        let t0 = Instant::now();
        let mut b = tripped(t0, 2);
        let t1 = t0 + RESET;
        call(&mut b, t1, true).unwrap();
        call(&mut b, t1, false).unwrap();
        assert_eq!(b.state(), State::Open);
        let t2 = t1 + RESET;
        call(&mut b, t2, true).unwrap();
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "the earlier success does not carry over"
        );
        call(&mut b, t2, true).unwrap();
        assert_eq!(b.state(), State::Closed);
    }
}
