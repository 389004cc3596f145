//! A circuit breaker with sony/gobreaker v0.5 semantics, as a pure state machine.
//!
//! Nothing here reads a clock or does I/O: every call takes `now`, so tests drive the
//! breaker with synthetic [`Instant`]s and the client layer drives it with the real
//! clock. The method names follow gobreaker's source (`beforeRequest`, `afterRequest`,
//! `currentState`, `setState`; `toNewGeneration` is `start_generation`) so the two can
//! be read side by side.
//!
//! The rules, as gobreaker codes them:
//! - counts (`requests`, successes, failures, consecutive runs) belong to a *generation*;
//!   every state change and every `interval` expiry while closed starts a new one;
//! - a request is counted when it starts ([`Breaker::before_request`]) and its outcome when
//!   it ends ([`Breaker::after_request`]); an outcome from an older generation is ignored;
//! - closed: each failure evaluates ReadyToTrip (`requests >= min_requests` and
//!   `failures / requests >= failure_ratio`) and opens the breaker when it holds;
//! - open: rejects at once; once `timeout` has passed, the next request or state read
//!   moves it to half-open (lazily: no timer fires on its own);
//! - half-open: admits `max_requests` requests, closes after `max_requests` consecutive
//!   successes, reopens on any failure.

use std::fmt;
use std::time::{Duration, Instant};

/// A breaker state, numbered as gobreaker numbers them (closed 0, half-open 1, open 2):
/// the platform contract's [`BreakerState`](platform_contract::BreakerState).
pub use platform_contract::BreakerState as State;

/// The counts of one generation (gobreaker's `Counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests admitted in this generation.
    pub requests: u32,
    /// Successful outcomes in this generation.
    pub total_successes: u32,
    /// Failed outcomes in this generation.
    pub total_failures: u32,
    /// Successes since the last failure.
    pub consecutive_successes: u32,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

impl Counts {
    fn on_request(&mut self) {
        self.requests += 1;
    }

    fn on_success(&mut self) {
        self.total_successes += 1;
        self.consecutive_successes += 1;
        self.consecutive_failures = 0;
    }

    fn on_failure(&mut self) {
        self.total_failures += 1;
        self.consecutive_failures += 1;
        self.consecutive_successes = 0;
    }
}

/// The breaker's tunables (gobreaker's `Settings` plus the platform's ReadyToTrip).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Requests admitted while half-open, and consecutive successes needed to close.
    pub max_requests: u32,
    /// While closed, counts are cleared this often; zero never clears them (as gobreaker).
    pub interval: Duration,
    /// How long the breaker stays open before the next request or read moves it to half-open.
    pub timeout: Duration,
    /// ReadyToTrip needs at least this many requests in the generation.
    pub min_requests: u32,
    /// ReadyToTrip needs at least this share of failures among the generation's requests.
    pub failure_ratio: f64,
    /// Whether half-open rejects requests beyond `max_requests`. `false` models the
    /// `unlimited_half_open` defect: every request is let through while half-open.
    pub limit_half_open: bool,
}

impl BreakerSettings {
    /// The platform's settings: MaxRequests 3, Interval 60 s, Timeout 30 s,
    /// ReadyToTrip = requests >= 5 && failures/requests >= 0.6, half-open limited.
    pub fn platform() -> Self {
        Self {
            max_requests: 3,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            min_requests: 5,
            failure_ratio: 0.6,
            limit_half_open: true,
        }
    }

    fn ready_to_trip(&self, counts: &Counts) -> bool {
        counts.requests >= self.min_requests
            && counts.requests > 0
            && f64::from(counts.total_failures) / f64::from(counts.requests) >= self.failure_ratio
    }
}

/// Why a request was refused without being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The breaker is open (gobreaker's `ErrOpenState`).
    Open,
    /// Half-open and `max_requests` already admitted (gobreaker's `ErrTooManyRequests`).
    TooManyRequests,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Open => "circuit breaker is open",
            Rejection::TooManyRequests => "too many requests (circuit breaker is half-open)",
        })
    }
}

/// Proof that a request was admitted; hand it back to [`Breaker::after_request`].
///
/// It carries the generation the request was admitted in, so an outcome that arrives
/// after the generation moved on is ignored, as in gobreaker.
#[derive(Debug)]
#[must_use = "report the outcome with Breaker::after_request"]
pub struct Ticket {
    generation: u64,
}

/// One state change, stamped with the instant the breaker was given when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before the change.
    pub from: State,
    /// State after the change.
    pub to: State,
    /// The `now` of the call that caused the change.
    pub at: Instant,
}

/// The breaker state machine. Not thread-safe by itself: the client layer keeps it
/// behind a mutex, exactly as gobreaker keeps its fields behind one.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: State,
    generation: u64,
    counts: Counts,
    /// When the current generation ends: interval expiry while closed, end of the open
    /// timeout while open, `None` for "never" (closed with interval 0, or half-open).
    expiry: Option<Instant>,
    /// State changes not yet collected by [`Breaker::take_transitions`].
    pending: Vec<Transition>,
}

impl Breaker {
    /// A closed breaker whose first generation starts at `now`.
    pub fn new(settings: BreakerSettings, now: Instant) -> Self {
        let mut breaker = Self {
            settings,
            state: State::Closed,
            generation: 0,
            counts: Counts::default(),
            expiry: None,
            pending: Vec::new(),
        };
        breaker.start_generation(now);
        breaker
    }

    /// The current state, applying any due lazy change first (gobreaker's `State()`):
    /// an open breaker whose timeout has passed becomes half-open here.
    pub fn state(&mut self, now: Instant) -> State {
        self.current_state(now).0
    }

    /// The stored state without applying lazy changes. Observation endpoints use this so
    /// that scraping `/metrics` or `/health` never moves the breaker: the recorded
    /// transition instants are then those the request path causes.
    pub fn peek_state(&self) -> State {
        self.state
    }

    /// The counts of the current generation (as stored; no lazy change applied).
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The current generation number (as stored; no lazy change applied).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Ask to start a request (gobreaker's `beforeRequest`): counts it and returns a
    /// ticket, or says why it is rejected.
    pub fn before_request(&mut self, now: Instant) -> Result<Ticket, Rejection> {
        let (state, generation) = self.current_state(now);
        match state {
            State::Open => return Err(Rejection::Open),
            State::HalfOpen
                if self.settings.limit_half_open
                    && self.counts.requests >= self.settings.max_requests =>
            {
                return Err(Rejection::TooManyRequests);
            }
            State::Closed | State::HalfOpen => {}
        }
        self.counts.on_request();
        Ok(Ticket { generation })
    }

    /// Report how an admitted request ended (gobreaker's `afterRequest`).
    pub fn after_request(&mut self, ticket: Ticket, success: bool, now: Instant) {
        let (state, generation) = self.current_state(now);
        if generation != ticket.generation {
            return;
        }
        if success {
            self.on_success(state, now);
        } else {
            self.on_failure(state, now);
        }
    }

    /// Collect the state changes made since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    fn on_success(&mut self, state: State, now: Instant) {
        match state {
            State::Closed => self.counts.on_success(),
            State::HalfOpen => {
                self.counts.on_success();
                if self.counts.consecutive_successes >= self.settings.max_requests {
                    self.set_state(State::Closed, now);
                }
            }
            State::Open => {}
        }
    }

    fn on_failure(&mut self, state: State, now: Instant) {
        match state {
            State::Closed => {
                self.counts.on_failure();
                if self.settings.ready_to_trip(&self.counts) {
                    self.set_state(State::Open, now);
                }
            }
            State::HalfOpen => self.set_state(State::Open, now),
            State::Open => {}
        }
    }

    fn current_state(&mut self, now: Instant) -> (State, u64) {
        // gobreaker compares with `expiry.Before(now)`: strictly after the expiry.
        let expired = self.expiry.is_some_and(|expiry| expiry < now);
        match self.state {
            State::Closed if expired => self.start_generation(now),
            State::Open if expired => self.set_state(State::HalfOpen, now),
            State::Closed | State::Open | State::HalfOpen => {}
        }
        (self.state, self.generation)
    }

    fn set_state(&mut self, state: State, now: Instant) {
        if self.state == state {
            return;
        }
        let from = self.state;
        self.state = state;
        self.start_generation(now);
        self.pending.push(Transition {
            from,
            to: state,
            at: now,
        });
    }

    /// gobreaker's `toNewGeneration`.
    fn start_generation(&mut self, now: Instant) {
        self.generation += 1;
        self.counts = Counts::default();
        self.expiry = match self.state {
            State::Closed if self.settings.interval.is_zero() => None,
            State::Closed => Some(now + self.settings.interval),
            State::Open => Some(now + self.settings.timeout),
            State::HalfOpen => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn settings() -> BreakerSettings {
        BreakerSettings::platform()
    }

    /// Admit and immediately finish one request at `now`.
    fn call(b: &mut Breaker, now: Instant, success: bool) -> Result<(), Rejection> {
        let ticket = b.before_request(now)?;
        b.after_request(ticket, success, now);
        Ok(())
    }

    /// Trip a fresh breaker with five failures at `now`.
    fn tripped(now: Instant) -> Breaker {
        let mut b = Breaker::new(settings(), now);
        for _ in 0..5 {
            call(&mut b, now, false).expect("closed breaker admits");
        }
        assert_eq!(b.peek_state(), State::Open);
        b.take_transitions();
        b
    }

    #[test]
    fn starts_closed_with_empty_counts_and_first_generation() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        assert_eq!(b.state(t0), State::Closed);
        assert_eq!(b.counts(), Counts::default());
        assert_eq!(b.generation(), 1);
        assert!(b.take_transitions().is_empty());
    }

    #[test]
    fn request_is_counted_at_start_and_outcome_at_end() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        let ticket = b.before_request(t0).expect("admitted");
        assert_eq!(b.counts().requests, 1);
        assert_eq!(b.counts().total_failures, 0);
        b.after_request(ticket, false, t0);
        assert_eq!(b.counts().total_failures, 1);
        assert_eq!(b.counts().consecutive_failures, 1);
    }

    #[test]
    fn closed_trips_at_five_requests_with_sixty_percent_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        // 2 successes then 3 failures: 5 requests, 3/5 = 0.6 >= 0.6 → trips on the 5th.
        call(&mut b, t0, true).unwrap();
        call(&mut b, t0, true).unwrap();
        call(&mut b, t0, false).unwrap();
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.peek_state(), State::Closed);
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);
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
    fn closed_does_not_trip_below_min_requests_or_ratio() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(b.peek_state(), State::Closed, "4 requests < min 5");

        let mut b = Breaker::new(settings(), t0);
        // 3 successes, 2 failures: 2/5 = 0.4; then a failure: 3/6 = 0.5; still closed.
        for ok in [true, true, true, false, false, false] {
            call(&mut b, t0, ok).unwrap();
        }
        assert_eq!(b.peek_state(), State::Closed, "ratio 0.5 < 0.6");
        // 4/7 = 0.57, 5/8 = 0.625 → trips on the second of these failures.
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.peek_state(), State::Closed);
        call(&mut b, t0, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);
    }

    #[test]
    fn ready_to_trip_is_evaluated_only_on_failure() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        // Five requests in flight: requests is already 5 when the outcomes arrive, so the
        // third failure (3/5 = 0.6) trips it and the rest land in a newer generation.
        let tickets: Vec<Ticket> = (0..5).map(|_| b.before_request(t0).unwrap()).collect();
        let mut tickets = tickets.into_iter();
        for _ in 0..2 {
            b.after_request(tickets.next().unwrap(), false, t0);
        }
        assert_eq!(b.peek_state(), State::Closed, "2/5 failures");
        b.after_request(tickets.next().unwrap(), false, t0);
        assert_eq!(b.peek_state(), State::Open, "3/5 failures");
        // The remaining outcomes belong to the old generation and change nothing.
        let generation = b.generation();
        b.after_request(tickets.next().unwrap(), true, t0);
        b.after_request(tickets.next().unwrap(), false, t0);
        assert_eq!(b.generation(), generation);
        assert_eq!(b.counts(), Counts::default());
    }

    #[test]
    fn open_rejects_at_once_without_counting() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        assert_eq!(b.before_request(t0 + ms(1)).unwrap_err(), Rejection::Open);
        assert_eq!(b.counts().requests, 0);
        // Exactly at the timeout it is still open: gobreaker requires now > expiry.
        assert_eq!(
            b.before_request(t0 + Duration::from_secs(30)).unwrap_err(),
            Rejection::Open
        );
    }

    #[test]
    fn open_moves_to_half_open_lazily_on_request() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let later = t0 + Duration::from_secs(45);
        // Nothing happens while nobody asks, however much time has passed.
        assert_eq!(b.peek_state(), State::Open);
        assert!(b.take_transitions().is_empty());
        let ticket = b.before_request(later).expect("half-open admits");
        assert_eq!(b.peek_state(), State::HalfOpen);
        assert_eq!(
            b.take_transitions(),
            vec![Transition {
                from: State::Open,
                to: State::HalfOpen,
                at: later
            }]
        );
        assert_eq!(b.counts().requests, 1);
        b.after_request(ticket, true, later);
    }

    #[test]
    fn open_moves_to_half_open_lazily_on_state_read() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let due = t0 + Duration::from_secs(30) + ms(1);
        assert_eq!(b.state(t0 + ms(29_999)), State::Open);
        assert_eq!(b.state(due), State::HalfOpen);
        let transitions = b.take_transitions();
        assert_eq!(transitions.len(), 1);
        assert_eq!(transitions[0].at, due);
    }

    #[test]
    fn half_open_admits_max_requests_then_rejects() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + Duration::from_secs(31);
        let tickets: Vec<Ticket> = (0..3).map(|_| b.before_request(t).unwrap()).collect();
        assert_eq!(b.before_request(t).unwrap_err(), Rejection::TooManyRequests);
        assert_eq!(b.counts().requests, 3);
        drop(tickets);
    }

    #[test]
    fn half_open_closes_after_max_requests_consecutive_successes() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + Duration::from_secs(31);
        let tickets: Vec<Ticket> = (0..3).map(|_| b.before_request(t).unwrap()).collect();
        let mut tickets = tickets.into_iter();
        b.after_request(tickets.next().unwrap(), true, t);
        b.after_request(tickets.next().unwrap(), true, t);
        assert_eq!(b.peek_state(), State::HalfOpen);
        b.after_request(tickets.next().unwrap(), true, t + ms(5));
        assert_eq!(b.peek_state(), State::Closed);
        let transitions = b.take_transitions();
        assert_eq!(
            transitions.last().copied(),
            Some(Transition {
                from: State::HalfOpen,
                to: State::Closed,
                at: t + ms(5)
            })
        );
        assert_eq!(b.counts(), Counts::default(), "new generation on close");
    }

    #[test]
    fn half_open_reopens_on_any_failure() {
        let t0 = Instant::now();
        let mut b = tripped(t0);
        let t = t0 + Duration::from_secs(31);
        let first = b.before_request(t).unwrap();
        let second = b.before_request(t).unwrap();
        b.after_request(first, true, t);
        b.after_request(second, false, t + ms(2));
        assert_eq!(b.peek_state(), State::Open);
        let kinds: Vec<(State, State)> = b
            .take_transitions()
            .iter()
            .map(|tr| (tr.from, tr.to))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (State::Open, State::HalfOpen),
                (State::HalfOpen, State::Open)
            ]
        );
        // The new open period is measured from the reopening instant.
        let reopened = t + ms(2);
        assert_eq!(
            b.before_request(reopened + Duration::from_secs(30))
                .unwrap_err(),
            Rejection::Open
        );
        assert!(
            b.before_request(reopened + Duration::from_secs(30) + ms(1))
                .is_ok()
        );
    }

    #[test]
    fn unlimited_half_open_admits_everything_but_still_closes_after_max_requests() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerSettings {
                limit_half_open: false,
                ..settings()
            },
            t0,
        );
        for _ in 0..5 {
            call(&mut b, t0, false).unwrap();
        }
        let t = t0 + Duration::from_secs(31);
        let tickets: Vec<Ticket> = (0..10).map(|_| b.before_request(t).unwrap()).collect();
        assert_eq!(b.counts().requests, 10);
        let mut tickets = tickets.into_iter();
        for _ in 0..3 {
            b.after_request(tickets.next().unwrap(), true, t);
        }
        assert_eq!(b.peek_state(), State::Closed);
    }

    #[test]
    fn interval_resets_counts_while_closed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        let generation = b.generation();
        // Just past the 60 s interval: a new generation with cleared counts.
        let t = t0 + Duration::from_secs(60) + ms(1);
        assert_eq!(b.state(t), State::Closed);
        assert_eq!(b.generation(), generation + 1);
        assert_eq!(b.counts(), Counts::default());
        assert!(
            b.take_transitions().is_empty(),
            "a reset is not a transition"
        );
        // The four old failures no longer count: four more do not trip.
        for _ in 0..4 {
            call(&mut b, t, false).unwrap();
        }
        assert_eq!(b.peek_state(), State::Closed);
        call(&mut b, t, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);
    }

    #[test]
    fn interval_zero_never_resets() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerSettings {
                interval: Duration::ZERO,
                ..settings()
            },
            t0,
        );
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        let much_later = t0 + Duration::from_secs(3600);
        assert_eq!(b.state(much_later), State::Closed);
        assert_eq!(b.counts().total_failures, 4);
        call(&mut b, much_later, false).unwrap();
        assert_eq!(b.peek_state(), State::Open);
    }

    #[test]
    fn stale_generation_outcome_is_ignored() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        // A request starts in generation 1 and ends after the interval expired.
        let ticket = b.before_request(t0).unwrap();
        let t = t0 + Duration::from_secs(61);
        b.after_request(ticket, false, t);
        assert_eq!(b.counts(), Counts::default());

        // A slow success from before the trip does not count towards closing.
        let mut b = Breaker::new(settings(), t0);
        let slow = b.before_request(t0).unwrap();
        // With the slow request counted, four failures make 4/5 and trip.
        for _ in 0..4 {
            call(&mut b, t0, false).unwrap();
        }
        assert_eq!(b.peek_state(), State::Open);
        let t = t0 + Duration::from_secs(31);
        let probe = b.before_request(t).unwrap();
        b.after_request(slow, true, t);
        assert_eq!(b.counts().total_successes, 0);
        b.after_request(probe, true, t);
        assert_eq!(b.counts().total_successes, 1);
    }

    #[test]
    fn full_episode_closed_open_half_open_closed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        for i in 0..5 {
            call(&mut b, t0 + ms(i), false).unwrap();
        }
        let t1 = t0 + ms(4) + Duration::from_secs(30) + ms(1);
        for _ in 0..3 {
            call(&mut b, t1, true).unwrap();
        }
        let kinds: Vec<(State, State, Instant)> = b
            .take_transitions()
            .iter()
            .map(|tr| (tr.from, tr.to, tr.at))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (State::Closed, State::Open, t0 + ms(4)),
                (State::Open, State::HalfOpen, t1),
                (State::HalfOpen, State::Closed, t1),
            ]
        );
    }

    #[test]
    fn state_numbers_match_gobreaker() {
        assert_eq!(State::Closed.as_number(), 0);
        assert_eq!(State::HalfOpen.as_number(), 1);
        assert_eq!(State::Open.as_number(), 2);
    }
}
