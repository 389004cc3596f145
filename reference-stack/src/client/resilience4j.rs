//! A circuit breaker with resilience4j semantics (COUNT_BASED sliding window), as a
//! pure state machine.
//!
//! Read from resilience4j 2.4.0 (commit `af9e7c9`, v2.4.0 + 16):
//! `resilience4j-circuitbreaker/.../internal/CircuitBreakerStateMachine.java`
//! (`ClosedState`, `OpenState`, `HalfOpenState`), `.../internal/CircuitBreakerMetrics.java`
//! (`checkIfThresholdsExceeded`, `forHalfOpen`), `resilience4j-core/.../metrics/
//! FixedSizeSlidingWindowMetrics.java` and `SnapshotImpl.java`, `CircuitBreaker.java`
//! (`decorateCheckedSupplier`), `CircuitBreakerConfig.java` (defaults).
//!
//! The rules, as resilience4j codes them:
//! - a call asks permission first (`acquirePermission`); when refused it throws
//!   `CallNotPermittedException` (in open, and in half-open once the permitted calls are
//!   taken) and nothing is recorded in the window;
//! - the outcome is recorded when the call ends, with its duration, into the window of
//!   whichever state is current *then* (there are no generations: a call admitted while
//!   closed that ends in half-open counts towards the half-open decision);
//! - the window holds the last `sliding_window_size` outcomes. After every outcome, once
//!   it holds at least `minimum_number_of_calls` (capped at the window size), the
//!   thresholds are checked: failure rate `failed × 100 / total ≥ failure_rate_threshold`
//!   or slow-call rate `slow × 100 / total ≥ slow_call_rate_threshold` (float percent);
//!   a success can thus trip the breaker as well as a failure;
//! - closed: a threshold exceeded opens it;
//! - open: rejects until `wait_duration_in_open_state` has passed (strictly after, as
//!   `clock.instant().isAfter(retryAfterWaitDuration)`), then the next permission request
//!   moves it to half-open (lazily: `automaticTransitionFromOpenToHalfOpenEnabled` is false
//!   by default, and `getState()` never moves it). The window of the closed state is
//!   carried into open, where late outcomes are still recorded but decide nothing;
//! - half-open: a fresh COUNT_BASED window of `permitted_number_of_calls_in_half_open_state`
//!   with `minimum_number_of_calls` capped at that size; that many permissions are handed
//!   out, later requests are rejected; once enough outcomes are in, a threshold exceeded
//!   reopens it, otherwise it closes (a fresh closed window).
//!
//! Not modelled (not enabled by default, not used by the platform): ignored or
//! not-recorded exceptions (`releasePermission`), result predicates, custom wait-interval
//! functions, `maxWaitDurationInHalfOpenState`, the TIME_BASED window, forced/disabled
//! states.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::breaker::{Counts, Rejection, State, Transition};

/// resilience4j's `CircuitBreakerConfig` fields that matter here.
#[derive(Debug, Clone, PartialEq)]
pub struct Resilience4jSettings {
    /// COUNT_BASED window size in calls (`slidingWindowSize`, default 100). The platform
    /// has no count window (gobreaker's is 60 s of calls): the library default is kept.
    pub sliding_window_size: u32,
    /// Outcomes needed before the rates are checked (`minimumNumberOfCalls`, default
    /// 100). Platform mapping: `min_requests` (5).
    pub minimum_number_of_calls: u32,
    /// Failure rate, in percent, at or above which the breaker opens
    /// (`failureRateThreshold`, default 50). Platform mapping: `failure_ratio × 100` (60).
    pub failure_rate_threshold: f32,
    /// Slow-call rate, in percent, at or above which the breaker opens
    /// (`slowCallRateThreshold`, default 100). Library default kept.
    pub slow_call_rate_threshold: f32,
    /// A call lasting longer than this is slow (`slowCallDurationThreshold`, default
    /// 60 s). Library default kept, scaled by `time_scale`.
    pub slow_call_duration_threshold: Duration,
    /// Open → half-open after this long (`waitDurationInOpenState`, default 60 s).
    /// Platform mapping: `open_timeout` (30 s).
    pub wait_duration_in_open_state: Duration,
    /// Calls admitted, and outcomes awaited, in half-open
    /// (`permittedNumberOfCallsInHalfOpenState`, default 10). Platform mapping:
    /// `max_requests` (3).
    pub permitted_number_of_calls_in_half_open_state: u32,
    /// Whether half-open refuses requests beyond the permitted number. `false` models the
    /// `unlimited_half_open` defect (the decision still waits for the permitted number
    /// of outcomes).
    pub limit_half_open: bool,
}

/// One recorded outcome.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    failed: bool,
    slow: bool,
}

/// `FixedSizeSlidingWindowMetrics` (the last `size` outcomes) with the minimum number
/// of calls `CircuitBreakerMetrics` applies to it.
#[derive(Debug)]
struct Window {
    size: usize,
    minimum: usize,
    outcomes: VecDeque<Outcome>,
}

/// `CircuitBreakerMetrics.Result`, reduced to what the state machine acts on.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    BelowMinimumCalls,
    BelowThresholds,
    Exceeded,
}

impl Window {
    /// A COUNT_BASED window: `minimumNumberOfCalls` is capped at the window size.
    fn new(size: u32, minimum: u32) -> Self {
        let size = size.max(1) as usize;
        Self {
            size,
            minimum: (minimum as usize).min(size),
            outcomes: VecDeque::with_capacity(size),
        }
    }

    fn record(&mut self, outcome: Outcome) {
        if self.outcomes.len() == self.size {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(outcome);
    }

    fn verdict(&self, s: &Resilience4jSettings) -> Verdict {
        let total = self.outcomes.len();
        if total == 0 || total < self.minimum {
            return Verdict::BelowMinimumCalls;
        }
        let rate = |n: usize| n as f32 * 100.0 / total as f32;
        let failed = self.outcomes.iter().filter(|o| o.failed).count();
        let slow = self.outcomes.iter().filter(|o| o.slow).count();
        if rate(failed) >= s.failure_rate_threshold || rate(slow) >= s.slow_call_rate_threshold {
            Verdict::Exceeded
        } else {
            Verdict::BelowThresholds
        }
    }

    fn counts(&self) -> Counts {
        let failed = self.outcomes.iter().filter(|o| o.failed).count();
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Counts {
            requests: as_u32(self.outcomes.len()),
            total_failures: as_u32(failed),
            total_successes: as_u32(self.outcomes.len() - failed),
            ..Counts::default()
        }
    }
}

/// Proof that a call was permitted; it carries the start instant, since resilience4j
/// records each outcome with the call's duration.
#[derive(Debug)]
#[must_use = "report the outcome with Resilience4j::after_request"]
pub struct Resilience4jTicket {
    started: Instant,
}

/// The resilience4j `CircuitBreakerStateMachine`.
#[derive(Debug)]
pub struct Resilience4j {
    settings: Resilience4jSettings,
    state: State,
    window: Window,
    /// Open: when it was opened (`retryAfterWaitDuration` = this + wait duration).
    opened_at: Option<Instant>,
    /// Half-open: permissions not yet handed out.
    permits_left: u32,
    pending: Vec<Transition>,
}

impl Resilience4j {
    /// A closed breaker with an empty window.
    pub fn new(settings: Resilience4jSettings) -> Self {
        let window = Window::new(
            settings.sliding_window_size,
            settings.minimum_number_of_calls,
        );
        Self {
            settings,
            state: State::Closed,
            window,
            opened_at: None,
            permits_left: 0,
            pending: Vec::new(),
        }
    }

    /// The stored state: `getState()` never moves the breaker.
    pub fn state(&self) -> State {
        self.state
    }

    /// The current state's window: outcomes held, failed and successful ones.
    pub fn counts(&self) -> Counts {
        self.window.counts()
    }

    /// `tryAcquirePermission` of the current state.
    pub fn before_request(&mut self, now: Instant) -> Result<Resilience4jTicket, Rejection> {
        if self.state == State::Open {
            let waited = self.opened_at.is_none_or(|at| {
                now.saturating_duration_since(at) > self.settings.wait_duration_in_open_state
            });
            if !waited {
                return Err(Rejection::Open);
            }
            self.set_state(State::HalfOpen, now);
        }
        if self.state == State::HalfOpen && self.settings.limit_half_open {
            if self.permits_left == 0 {
                return Err(Rejection::TooManyRequests);
            }
            self.permits_left -= 1;
        }
        Ok(Resilience4jTicket { started: now })
    }

    /// `onSuccess` / `onError` of the state current now, with the call's duration.
    pub fn after_request(&mut self, ticket: Resilience4jTicket, success: bool, now: Instant) {
        let duration = now.saturating_duration_since(ticket.started);
        self.window.record(Outcome {
            failed: !success,
            slow: duration > self.settings.slow_call_duration_threshold,
        });
        let verdict = self.window.verdict(&self.settings);
        match (self.state, verdict) {
            (State::Closed | State::HalfOpen, Verdict::Exceeded) => {
                self.set_state(State::Open, now);
            }
            (State::HalfOpen, Verdict::BelowThresholds) => self.set_state(State::Closed, now),
            _ => {}
        }
    }

    /// Collect the state changes made since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    /// `transitionTo*State`: open keeps the current window (`currentState.getMetrics()`),
    /// half-open and closed start fresh ones.
    fn set_state(&mut self, state: State, now: Instant) {
        let s = &self.settings;
        match state {
            State::Open => self.opened_at = Some(now),
            State::HalfOpen => {
                let permitted = s.permitted_number_of_calls_in_half_open_state;
                self.window = Window::new(permitted, s.minimum_number_of_calls);
                self.permits_left = permitted;
            }
            State::Closed => {
                self.window = Window::new(s.sliding_window_size, s.minimum_number_of_calls);
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

    const WAIT: Duration = Duration::from_secs(30);

    /// The platform's mapping: window 100, 5 calls minimum, 60 %, 3 half-open calls.
    fn settings() -> Resilience4jSettings {
        Resilience4jSettings {
            sliding_window_size: 100,
            minimum_number_of_calls: 5,
            failure_rate_threshold: 60.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            wait_duration_in_open_state: WAIT,
            permitted_number_of_calls_in_half_open_state: 3,
            limit_half_open: true,
        }
    }

    fn call(b: &mut Resilience4j, now: Instant, success: bool) -> Result<(), Rejection> {
        let ticket = b.before_request(now)?;
        b.after_request(ticket, success, now);
        Ok(())
    }

    fn tripped(now: Instant) -> Resilience4j {
        let mut b = Resilience4j::new(settings());
        for _ in 0..5 {
            call(&mut b, now, false).unwrap();
        }
        assert_eq!(b.state(), State::Open);
        b.take_transitions();
        b
    }

    #[test]
    fn nothing_is_decided_below_minimum_number_of_calls() {
        let t0 = Instant::now();
        let mut b = Resilience4j::new(settings());
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(
            b.state(),
            State::Closed,
            "4 outcomes < minimumNumberOfCalls 5"
        );
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn rate_at_the_threshold_trips_and_a_success_can_be_the_trigger() {
        let t0 = Instant::now();
        // 3 failures of 5 = 60 % ≥ 60 %: trips on the 5th outcome, here a success.
        let mut b = Resilience4j::new(settings());
        for ok in [false, false, false, true] {
            call(&mut b, t0, ok).unwrap();
        }
        assert_eq!(b.state(), State::Closed);
        call(&mut b, t0, true).unwrap();
        assert_eq!(
            b.state(),
            State::Open,
            "the rate is checked after successes too"
        );

        // 2 of 5 = 40 %, then 2 of 6 = 33 %: stays closed.
        let mut b = Resilience4j::new(settings());
        for ok in [false, false, true, true, true, true] {
            call(&mut b, t0, ok).unwrap();
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn the_window_keeps_only_the_last_calls() {
        let t0 = Instant::now();
        let mut b = Resilience4j::new(Resilience4jSettings {
            sliding_window_size: 5,
            ..settings()
        });
        // 2 failures then 3 successes: 40 %; two more failures push the old failures out
        // of a 5-call window: [s, s, s, f, f] = 40 %, still closed; a third makes 60 %.
        for ok in [false, false, true, true, true, false, false] {
            call(&mut b, t0, ok).unwrap();
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.counts().requests, 5);
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn slow_calls_trip_it_at_the_slow_call_rate() {
        let t0 = Instant::now();
        let mut b = Resilience4j::new(settings());
        let slow = Duration::from_secs(61);
        for i in 0..5 {
            let start = t0 + Duration::from_secs(i);
            let ticket = b.before_request(start).unwrap();
            b.after_request(ticket, true, start + slow);
        }
        assert_eq!(b.state(), State::Open, "5 of 5 slow successes = 100 %");
    }

    #[test]
    fn open_rejects_then_moves_lazily_strictly_after_the_wait() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        assert_eq!(
            b.before_request(t0 + WAIT).unwrap_err(),
            Rejection::Open,
            "not after"
        );
        assert_eq!(b.state(), State::Open, "getState does not move it");
        let later = t0 + WAIT + Duration::from_millis(1);
        let ticket = b.before_request(later).expect("half-open permits");
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(
            b.take_transitions(),
            vec![Transition {
                from: State::Open,
                to: State::HalfOpen,
                at: later
            }]
        );
        b.after_request(ticket, true, later);
    }

    #[test]
    fn half_open_permits_the_configured_calls_then_rejects() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + WAIT + Duration::from_millis(1);
        let tickets: Vec<Resilience4jTicket> =
            (0..3).map(|_| b.before_request(t).unwrap()).collect();
        assert_eq!(b.before_request(t).unwrap_err(), Rejection::TooManyRequests);
        drop(tickets);
    }

    #[test]
    fn half_open_decides_after_the_permitted_outcomes_by_rate() {
        let t0 = Instant::now();
        let t = t0 + WAIT + Duration::from_millis(1);

        // 1 failure of 3 = 33 % < 60 %: closes, but only once the third outcome is in.
        let mut b = tripped(t0);
        let tickets: Vec<Resilience4jTicket> =
            (0..3).map(|_| b.before_request(t).unwrap()).collect();
        let mut tickets = tickets.into_iter();
        b.after_request(tickets.next().unwrap(), false, t);
        b.after_request(tickets.next().unwrap(), true, t);
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "a failure alone does not reopen"
        );
        b.after_request(tickets.next().unwrap(), true, t);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.counts().requests, 0, "closed starts a fresh window");

        // 2 failures of 3 = 67 % ≥ 60 %: reopens.
        let mut b = tripped(t0);
        for ok in [true, false, false] {
            call(&mut b, t, ok).unwrap();
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(
            b.before_request(t + WAIT).unwrap_err(),
            Rejection::Open,
            "a new wait from the reopening"
        );
    }

    #[test]
    fn a_late_outcome_counts_in_the_state_current_when_it_ends() {
        let t0 = Instant::now();
        let mut b = Resilience4j::new(settings());
        let slow = b.before_request(t0).unwrap();
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        // 4 outcomes only: the slow call is still in flight.
        assert_eq!(b.state(), State::Closed);
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.state(), State::Open);
        let t = t0 + WAIT + Duration::from_millis(1);
        let first = b.before_request(t).unwrap();
        let second = b.before_request(t).unwrap();
        // The call admitted while closed ends now, in half-open, and counts there.
        b.after_request(slow, true, t);
        b.after_request(first, true, t);
        assert_eq!(b.state(), State::HalfOpen);
        b.after_request(second, true, t);
        assert_eq!(
            b.state(),
            State::Closed,
            "3 outcomes, the late one included"
        );
    }

    #[test]
    fn unlimited_half_open_admits_every_call() {
        let t0 = Instant::now();
        let mut b = Resilience4j::new(Resilience4jSettings {
            limit_half_open: false,
            ..settings()
        });
        for _ in 0..5 {
            call(&mut b, t0, false).unwrap();
        }
        let t = t0 + WAIT + Duration::from_millis(1);
        let tickets: Vec<Resilience4jTicket> =
            (0..10).map(|_| b.before_request(t).unwrap()).collect();
        assert_eq!(tickets.len(), 10);
    }
}
