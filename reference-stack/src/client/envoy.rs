//! Envoy's consecutive-5xx outlier detection for a single-host cluster, as a pure state
//! machine: ejected is "open", un-ejected is "closed", and there is no half-open.
//!
//! Read from envoyproxy/envoy `source/common/upstream/outlier_detection_impl.cc` (commit
//! `00c7146`: `DetectorHostMonitorImpl::putHttpResponseCode`, `putResultNoLocalExternalSplit`,
//! `resultToHttpCode`, `DetectorImpl::onConsecutiveErrorWorker`, `ejectHost`,
//! `checkHostForUneject`, `unejectHost`, `onIntervalTimer`, `armIntervalTimer`) and
//! `api/envoy/config/cluster/v3/outlier_detection.proto` (defaults).
//!
//! The rules, as Envoy codes them:
//! - the proxy sees every HTTP *attempt* the client sends, not the client's logical
//!   call: the client layer reports each attempt here (see [`super::DownstreamClient`]);
//! - a 5xx increments the host's `consecutive_5xx` counter, any other status (2xx, 4xx,
//!   429) resets it. Locally originated errors count as 5xx with the default
//!   `split_external_local_origin_errors: false`: a connect failure is reported as 503,
//!   an upstream timeout as 504;
//! - when the counter *reaches* `consecutive_5xx` (`==`, default 5), the host is ejected
//!   unless it already is, and the counter is reset. While ejected the counter is not
//!   reset by the ejection path, so responses still in flight can push it past the
//!   threshold, where `==` never matches again until a success or the un-ejection;
//! - on ejection the backoff multiplier grows by one while
//!   `multiplier × base_ejection_time < max_ejection_time + base_ejection_time`; the
//!   ejection lasts `min(base_ejection_time × multiplier, max_ejection_time)` (+ jitter,
//!   0 by default);
//! - ejections are lifted only by the interval timer: a sweep every `interval` (armed
//!   when the detector is built, re-armed after each sweep) un-ejects a host whose
//!   ejection time has passed (`<=`), resetting its counters. The same sweep, for a host
//!   that is not ejected and was un-ejected at least `interval` ago, decrements the
//!   multiplier by one (so it decays by one per interval of good health);
//! - once un-ejected, all traffic flows again: there is no half-open limit, and
//!   `consecutive_5xx` more 5xx eject the host again, for longer if the multiplier has
//!   not decayed.
//!
//! Sweeps are computed lazily: whenever the detector is given a `now` it first runs the
//! sweeps due by then, and records an un-ejection at its sweep's instant, not at `now`.
//!
//! Assumptions that make the ejected single host fail fast, as modelled (an ejected host
//! is answered by the proxy at once, without any upstream request):
//! - `max_ejection_percent: 100` or `always_eject_one_host: true`. With the default 10 %,
//!   `ejectHost` refuses to eject the only host (100 % > 10 %; the "at least one host
//!   regardless" wording of older docs is `always_eject_one_host`, off by default);
//! - `common_lb_config.healthy_panic_threshold: {value: 0}` (or `fail_traffic_on_panic`).
//!   With the default 50 %, a cluster whose only host is ejected is 0 % healthy, in panic,
//!   and Envoy load-balances over all hosts — the ejected one included — so nothing fails
//!   fast. With panic disabled, no host is available and Envoy answers `503 no healthy
//!   upstream` (flag `UH`) at once;
//! - the route timeout is at least the client's attempt timeout, so a hung attempt is
//!   ended by the client at the moment Envoy would report its own 504;
//! - the gateway-failure and success-rate detectors stay at their defaults: not enforced
//!   (`enforcing_consecutive_gateway_failure: 0`), needing 5 hosts (`*_minimum_hosts`);
//!   no active health checking.

use std::time::{Duration, Instant};

use super::breaker::{Counts, Rejection, State, Transition};

/// The `OutlierDetection` fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoySettings {
    /// Consecutive 5xx that eject the host (`consecutive_5xx`, default 5).
    /// Platform mapping: `min_requests` (5).
    pub consecutive_5xx: u32,
    /// Time between sweeps (`interval`, default 10 s). The platform's closed-state
    /// interval is another thing: the library default is kept, scaled by `time_scale`.
    pub interval: Duration,
    /// First ejection time, and the unit of later ones (`base_ejection_time`, default
    /// 30 s). Platform mapping: `open_timeout` (30 s).
    pub base_ejection_time: Duration,
    /// Cap on the ejection time (`max_ejection_time`, default the larger of 300 s and
    /// `base_ejection_time`). Library default kept, scaled by `time_scale`.
    pub max_ejection_time: Duration,
}

/// Proof that the proxy forwarded the attempt (the host was not ejected).
#[derive(Debug)]
#[must_use = "report the outcome with Envoy::after_request"]
pub struct EnvoyTicket(());

/// One host's outlier monitor together with the detector's sweep timer.
#[derive(Debug)]
pub struct Envoy {
    settings: EnvoySettings,
    /// When the detector was built: sweeps fall at `built + k × interval`, k ≥ 1.
    built: Instant,
    /// Sweeps already run.
    sweeps_done: u64,
    consecutive_5xx: u32,
    /// `lastEjectionTime` while the host is ejected.
    ejected_at: Option<Instant>,
    /// `ejectTimeBackoff`.
    multiplier: u32,
    /// `lastUnejectionTime`.
    unejected_at: Option<Instant>,
    pending: Vec<Transition>,
}

impl Envoy {
    /// A healthy host; the sweep timer is armed at `now`.
    pub fn new(settings: EnvoySettings, now: Instant) -> Self {
        Self {
            settings,
            built: now,
            sweeps_done: 0,
            consecutive_5xx: 0,
            ejected_at: None,
            multiplier: 0,
            unejected_at: None,
            pending: Vec::new(),
        }
    }

    /// Open while ejected, closed otherwise, after the sweeps due by `now`.
    pub fn state(&mut self, now: Instant) -> State {
        self.settle(now);
        self.peek_state()
    }

    /// The state as last settled (no sweep run).
    pub fn peek_state(&self) -> State {
        if self.ejected_at.is_some() {
            State::Open
        } else {
            State::Closed
        }
    }

    /// The consecutive-5xx counter as `consecutive_failures`; Envoy keeps no other
    /// count this detector uses.
    pub fn counts(&self) -> Counts {
        Counts {
            consecutive_failures: self.consecutive_5xx,
            ..Counts::default()
        }
    }

    /// The ejection-time multiplier (`ejectTimeBackoff`) as last settled.
    pub fn multiplier(&self) -> u32 {
        self.multiplier
    }

    /// Run the sweeps due by `now` (`onIntervalTimer`), each at its own instant.
    pub fn settle(&mut self, now: Instant) {
        let due = self.sweeps_until(now);
        while self.sweeps_done < due {
            let next = self.sweeps_done + 1;
            // The next sweep that can change anything; the ones before it are no-ops.
            let k = match self.ejected_at {
                None if self.multiplier == 0 || self.unejected_at.is_none() => due + 1,
                None => next,
                Some(ejected_at) => {
                    let lifted =
                        ejected_at.saturating_duration_since(self.built) + self.ejection_time();
                    let first = lifted.as_nanos().div_ceil(self.interval().as_nanos());
                    u64::try_from(first).unwrap_or(u64::MAX).max(next)
                }
            };
            if k > due {
                break;
            }
            self.sweep(self.sweep_instant(k, now));
            self.sweeps_done = k;
        }
        self.sweeps_done = due;
    }

    /// Ask the proxy to forward an attempt: refused at once while the host is ejected.
    pub fn before_request(&mut self, now: Instant) -> Result<EnvoyTicket, Rejection> {
        self.settle(now);
        if self.ejected_at.is_some() {
            return Err(Rejection::Open);
        }
        Ok(EnvoyTicket(()))
    }

    /// `putHttpResponseCode` for the attempt: `failed` means a 5xx, a connect failure
    /// (503) or a timeout (504).
    pub fn after_request(&mut self, _ticket: EnvoyTicket, failed: bool, now: Instant) {
        self.settle(now);
        if !failed {
            self.consecutive_5xx = 0;
            return;
        }
        self.consecutive_5xx = self.consecutive_5xx.saturating_add(1);
        if self.consecutive_5xx == self.settings.consecutive_5xx && self.ejected_at.is_none() {
            self.eject(now);
        }
    }

    /// Collect the state changes made since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    /// `ejectHost` + the counter reset of `onConsecutiveErrorWorker`.
    fn eject(&mut self, now: Instant) {
        let base = self.settings.base_ejection_time;
        let limit = self.settings.max_ejection_time.saturating_add(base);
        if base.saturating_mul(self.multiplier) < limit {
            self.multiplier += 1;
        }
        self.ejected_at = Some(now);
        self.consecutive_5xx = 0;
        self.pending.push(Transition {
            from: State::Closed,
            to: State::Open,
            at: now,
        });
    }

    /// `min(base × multiplier, max)`.
    fn ejection_time(&self) -> Duration {
        self.settings
            .base_ejection_time
            .saturating_mul(self.multiplier)
            .min(self.settings.max_ejection_time)
    }

    /// One `onIntervalTimer` at `at`: un-eject if due, then decay the multiplier.
    fn sweep(&mut self, at: Instant) {
        if let Some(ejected_at) = self.ejected_at
            && self.ejection_time() <= at.saturating_duration_since(ejected_at)
        {
            self.ejected_at = None;
            self.consecutive_5xx = 0;
            self.unejected_at = Some(at);
            self.pending.push(Transition {
                from: State::Open,
                to: State::Closed,
                at,
            });
        }
        if self.ejected_at.is_none()
            && let Some(unejected_at) = self.unejected_at
            && at.saturating_duration_since(unejected_at) >= self.settings.interval
        {
            self.multiplier = self.multiplier.saturating_sub(1);
        }
    }

    fn interval(&self) -> Duration {
        self.settings.interval.max(Duration::from_nanos(1))
    }

    /// How many sweeps have fallen by `now` (sweep `k` at `built + k × interval`, k ≥ 1).
    fn sweeps_until(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.built).as_nanos();
        u64::try_from(elapsed / self.interval().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant of sweep `k`, which is not after `now`.
    fn sweep_instant(&self, k: u64, now: Instant) -> Instant {
        let nanos = self.interval().as_nanos().saturating_mul(u128::from(k));
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.built.checked_add(offset).unwrap_or(now).min(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// Envoy's defaults with the platform's 5 and 30 s: sweeps every 10 s, cap 300 s.
    fn settings() -> EnvoySettings {
        EnvoySettings {
            consecutive_5xx: 5,
            interval: SEC * 10,
            base_ejection_time: SEC * 30,
            max_ejection_time: SEC * 300,
        }
    }

    fn attempt(e: &mut Envoy, now: Instant, failed: bool) -> Result<(), Rejection> {
        let ticket = e.before_request(now)?;
        e.after_request(ticket, failed, now);
        Ok(())
    }

    fn eject_at(e: &mut Envoy, now: Instant) {
        for _ in 0..5 {
            attempt(e, now, true).expect("not ejected yet");
        }
        assert_eq!(e.peek_state(), State::Open);
    }

    #[test]
    fn five_consecutive_5xx_eject_and_any_other_answer_resets_the_count() {
        let t0 = Instant::now();
        let mut e = Envoy::new(settings(), t0);
        for failed in [true, true, true, true, false, true, true, true, true] {
            attempt(&mut e, t0, failed).unwrap();
        }
        assert_eq!(e.peek_state(), State::Closed, "never 5 in a row");
        attempt(&mut e, t0, true).unwrap();
        assert_eq!(e.peek_state(), State::Open);
        assert_eq!(
            e.take_transitions(),
            vec![Transition {
                from: State::Closed,
                to: State::Open,
                at: t0
            }]
        );
        assert_eq!(e.before_request(t0 + SEC).unwrap_err(), Rejection::Open);
    }

    #[test]
    fn the_ejection_is_lifted_by_the_first_sweep_after_it_expires_stamped_at_that_sweep() {
        let t0 = Instant::now();
        let mut e = Envoy::new(settings(), t0);
        let ejected = t0 + SEC * 3;
        eject_at(&mut e, ejected);
        e.take_transitions();
        // Expires at 33 s; sweeps fall at 10, 20, 30, 40 s: the one at 40 s lifts it.
        assert_eq!(e.state(t0 + SEC * 39), State::Open);
        assert_eq!(e.state(t0 + SEC * 95), State::Closed);
        assert_eq!(
            e.take_transitions(),
            vec![Transition {
                from: State::Open,
                to: State::Closed,
                at: t0 + SEC * 40
            }]
        );
    }

    #[test]
    fn after_un_ejection_all_traffic_flows_and_five_more_5xx_eject_again() {
        let t0 = Instant::now();
        let mut e = Envoy::new(settings(), t0);
        eject_at(&mut e, t0);
        let back = t0 + SEC * 30;
        // No half-open limit: any number of attempts go through.
        for _ in 0..20 {
            attempt(&mut e, back, false).unwrap();
        }
        for _ in 0..4 {
            attempt(&mut e, back, true).unwrap();
        }
        assert_eq!(e.peek_state(), State::Closed);
        attempt(&mut e, back, true).unwrap();
        assert_eq!(e.peek_state(), State::Open);
    }

    #[test]
    fn repeated_ejections_last_longer_up_to_the_cap() {
        let t0 = Instant::now();
        let mut e = Envoy::new(settings(), t0);
        let mut ejected = t0;
        let mut lengths = Vec::new();
        for _ in 0..12 {
            eject_at(&mut e, ejected);
            e.take_transitions();
            // Find the sweep that lifts it, then re-eject at once.
            let mut t = ejected;
            while e.state(t) == State::Open {
                t += SEC * 10;
            }
            let lifted = e.take_transitions()[0].at;
            lengths.push((lifted - ejected).as_secs());
            ejected = lifted;
        }
        // 30, 60, 90 … 300 s, then capped at 300 s (ejections start on a sweep instant).
        assert_eq!(&lengths[..4], &[30, 60, 90, 120]);
        assert_eq!(lengths[9], 300);
        assert_eq!(lengths[11], 300, "capped by max_ejection_time");
        // The multiplier itself stops growing once m × 30 s ≥ 300 s + 30 s: at 11, so
        // it decays back to 0 in 11 intervals, not 12.
        assert_eq!(e.multiplier(), 11);
    }

    #[test]
    fn the_multiplier_decays_by_one_per_interval_of_good_health() {
        let t0 = Instant::now();
        let mut e = Envoy::new(settings(), t0);
        eject_at(&mut e, t0);
        e.state(t0 + SEC * 30);
        let second = t0 + SEC * 30;
        eject_at(&mut e, second);
        assert_eq!(e.multiplier(), 2, "re-ejected before any decay: 60 s");
        // Lifted by the sweep at 90 s; the sweep at 100 s (10 s later) decrements to 1,
        // the one at 110 s to 0.
        assert_eq!(e.state(t0 + SEC * 90), State::Closed);
        assert_eq!(e.multiplier(), 2);
        e.state(t0 + SEC * 100);
        assert_eq!(e.multiplier(), 1);
        e.state(t0 + SEC * 200);
        assert_eq!(e.multiplier(), 0);
        // A fresh ejection is back to the base time.
        let third = t0 + SEC * 200;
        eject_at(&mut e, third);
        assert_eq!(e.multiplier(), 1);
        assert_eq!(e.state(third + SEC * 29), State::Open);
        assert_eq!(e.state(third + SEC * 30), State::Closed);
    }

    #[test]
    fn answers_in_flight_while_ejected_push_the_count_past_the_threshold() {
        let t0 = Instant::now();
        let mut e = Envoy::new(settings(), t0);
        let in_flight: Vec<EnvoyTicket> = (0..7).map(|_| e.before_request(t0).unwrap()).collect();
        let mut in_flight = in_flight.into_iter();
        for _ in 0..5 {
            e.after_request(in_flight.next().unwrap(), true, t0);
        }
        assert_eq!(e.peek_state(), State::Open);
        // Two more 5xx land while ejected: counted, no second ejection.
        for ticket in in_flight {
            e.after_request(ticket, true, t0);
        }
        assert_eq!(e.counts().consecutive_failures, 2);
        assert_eq!(e.take_transitions().len(), 1);
    }
}
