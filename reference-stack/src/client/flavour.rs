//! Breaker flavours: the state machines of several breaker libraries behind one API.
//!
//! faultline infers breaker behaviour black-box and must be right whatever library a team
//! uses, so the reference stack can run each client with the shape of another library:
//!
//! | flavour | library | trips on | half-open | open → half-open |
//! | --- | --- | --- | --- | --- |
//! | `gobreaker` (default) | sony/gobreaker v0.5 ([`super::breaker`]) | ≥ 5 requests, ≥ 60 % failed, per 60 s generation | 3 admitted, 3 successes close | lazy, next request after 30 s |
//! | `pybreaker` | danielfm/pybreaker 1.4 ([`super::pybreaker`]) | 5 consecutive failures | unlimited but serialised by the breaker's lock; 3 successes close | lazy, next call at 30 s |
//! | `resilience4j` | resilience4j 2.4 ([`super::resilience4j`]) | ≥ 60 % of the last 100 calls, once 5 are in | 3 permitted, decided by their failure rate | lazy, next call after 30 s |
//! | `opossum` | nodeshift/opossum 10 ([`super::opossum`]) | > 60 % of fires in a 60 s rolling window, ≥ 5 fires | one trial | timer at 30 s |
//! | `envoy` | Envoy outlier detection ([`super::envoy`]) | 5 consecutive 5xx attempts | none: un-ejected = closed | sweep every 10 s once 30 s × n have passed |
//!
//! Every flavour is a pure state machine (each method takes `now`) with gobreaker's
//! vocabulary: [`Rejection`] for refusals, [`Transition`]s between closed, half-open and
//! open, [`Counts`] for what it counts. [`BreakerConfig::from_settings`] maps the
//! platform's [`ClientSettings`] onto each library's parameters (see each module for
//! the mapping of its fields).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::breaker::{Breaker, BreakerSettings, Counts, Rejection, State, Ticket, Transition};
use super::envoy::{Envoy, EnvoySettings, EnvoyTicket};
use super::opossum::{Opossum, OpossumSettings, OpossumTicket};
use super::pybreaker::{Pybreaker, PybreakerSettings, PybreakerTicket};
use super::resilience4j::{Resilience4j, Resilience4jSettings, Resilience4jTicket};
use crate::config::ClientSettings;

/// Which library's breaker a client behaves like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BreakerFlavour {
    /// sony/gobreaker v0.5, the platform's library (the default).
    #[default]
    Gobreaker,
    /// danielfm/pybreaker: consecutive failures, calls serialised by the breaker's lock.
    Pybreaker,
    /// resilience4j CircuitBreaker with a COUNT_BASED sliding window.
    Resilience4j,
    /// nodeshift/opossum: rolling time window, timer to half-open, single trial.
    Opossum,
    /// Envoy outlier detection (consecutive 5xx) in front of a single host.
    Envoy,
}

impl BreakerFlavour {
    /// Every flavour.
    pub const ALL: [BreakerFlavour; 5] = [
        BreakerFlavour::Gobreaker,
        BreakerFlavour::Pybreaker,
        BreakerFlavour::Resilience4j,
        BreakerFlavour::Opossum,
        BreakerFlavour::Envoy,
    ];

    /// The name used in `BREAKER_FLAVOUR` and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            BreakerFlavour::Gobreaker => "gobreaker",
            BreakerFlavour::Pybreaker => "pybreaker",
            BreakerFlavour::Resilience4j => "resilience4j",
            BreakerFlavour::Opossum => "opossum",
            BreakerFlavour::Envoy => "envoy",
        }
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// Whether one breaker lets only one guarded call run at a time (pybreaker holds its
    /// lock for the whole call).
    pub fn serialises_calls(self) -> bool {
        self == BreakerFlavour::Pybreaker
    }

    /// Calls a half-open breaker of this flavour lets through before it decides, given
    /// the platform's `max_requests` mapping: None when it has no such limit (Envoy
    /// lets all traffic through once the host is un-ejected).
    pub fn half_open_calls(self, max_requests: u32) -> Option<u32> {
        match self {
            BreakerFlavour::Gobreaker
            | BreakerFlavour::Resilience4j
            | BreakerFlavour::Pybreaker => Some(max_requests),
            BreakerFlavour::Opossum => Some(1),
            BreakerFlavour::Envoy => None,
        }
    }

    /// Whether the breaker sees each attempt rather than the logical call (a proxy sees
    /// every request the retry loop sends).
    pub fn sees_each_attempt(self) -> bool {
        self == BreakerFlavour::Envoy
    }
}

impl fmt::Display for BreakerFlavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BreakerFlavour {
    type Err = String;

    /// A flavour by name; the error names the known ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown breaker {s:?} (known: {})", Self::names()))
    }
}

/// resilience4j's default `slidingWindowSize` (the platform has no count window).
const R4J_SLIDING_WINDOW_SIZE: u32 = 100;
/// resilience4j's default `slowCallRateThreshold`, in percent.
const R4J_SLOW_CALL_RATE_THRESHOLD: f32 = 100.0;
/// resilience4j's default `slowCallDurationThreshold`.
const R4J_SLOW_CALL_DURATION: Duration = Duration::from_secs(60);
/// opossum's default `rollingCountBuckets`.
const OPOSSUM_BUCKETS: u32 = 10;
/// What opossum's `Status` uses for a `rollingCountTimeout` of 0 (`|| 10000`).
const OPOSSUM_ZERO_WINDOW_FALLBACK: Duration = Duration::from_secs(10);
/// Envoy's default outlier detection `interval`.
const ENVOY_INTERVAL: Duration = Duration::from_secs(10);
/// Envoy's default `max_ejection_time`.
const ENVOY_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// A flavour with its library's parameters, ready to build a breaker from.
#[derive(Debug, Clone, PartialEq)]
pub enum BreakerConfig {
    /// gobreaker.
    Gobreaker(BreakerSettings),
    /// pybreaker.
    Pybreaker(PybreakerSettings),
    /// resilience4j.
    Resilience4j(Resilience4jSettings),
    /// opossum.
    Opossum(OpossumSettings),
    /// Envoy outlier detection.
    Envoy(EnvoySettings),
}

impl BreakerConfig {
    /// Map the client's settings onto `settings.breaker`'s parameters.
    ///
    /// `settings` has the time scale applied already; `time_scale` scales the library
    /// defaults the platform has no setting for (resilience4j's slow-call duration,
    /// opossum's zero-window fallback, Envoy's sweep interval and maximum ejection time),
    /// so every duration of every flavour follows `time_scale`. `limit_half_open` is
    /// false under the `unlimited_half_open` defect.
    pub fn from_settings(
        settings: &ClientSettings,
        time_scale: f64,
        limit_half_open: bool,
    ) -> Self {
        let scale = |d: Duration| scale_duration(d, time_scale);
        let percent = (settings.failure_ratio * 100.0).clamp(0.0, 100.0);
        match settings.breaker {
            BreakerFlavour::Gobreaker => {
                BreakerConfig::Gobreaker(settings.breaker(limit_half_open))
            }
            BreakerFlavour::Pybreaker => BreakerConfig::Pybreaker(PybreakerSettings {
                fail_max: settings.min_requests,
                reset_timeout: settings.open_timeout,
                success_threshold: settings.max_requests,
            }),
            BreakerFlavour::Resilience4j => BreakerConfig::Resilience4j(Resilience4jSettings {
                sliding_window_size: R4J_SLIDING_WINDOW_SIZE,
                minimum_number_of_calls: settings.min_requests,
                failure_rate_threshold: percent as f32,
                slow_call_rate_threshold: R4J_SLOW_CALL_RATE_THRESHOLD,
                slow_call_duration_threshold: scale(R4J_SLOW_CALL_DURATION),
                wait_duration_in_open_state: settings.open_timeout,
                permitted_number_of_calls_in_half_open_state: settings.max_requests,
                limit_half_open,
            }),
            BreakerFlavour::Opossum => BreakerConfig::Opossum(OpossumSettings {
                error_threshold_percentage: percent,
                volume_threshold: settings.min_requests,
                rolling_count_timeout: if settings.interval.is_zero() {
                    scale(OPOSSUM_ZERO_WINDOW_FALLBACK)
                } else {
                    settings.interval
                },
                rolling_count_buckets: OPOSSUM_BUCKETS,
                reset_timeout: settings.open_timeout,
                limit_half_open,
            }),
            BreakerFlavour::Envoy => BreakerConfig::Envoy(EnvoySettings {
                consecutive_5xx: settings.min_requests,
                interval: scale(ENVOY_INTERVAL),
                base_ejection_time: settings.open_timeout,
                max_ejection_time: scale(ENVOY_MAX_EJECTION_TIME).max(settings.open_timeout),
            }),
        }
    }

    /// The flavour these parameters belong to.
    pub fn flavour(&self) -> BreakerFlavour {
        match self {
            BreakerConfig::Gobreaker(_) => BreakerFlavour::Gobreaker,
            BreakerConfig::Pybreaker(_) => BreakerFlavour::Pybreaker,
            BreakerConfig::Resilience4j(_) => BreakerFlavour::Resilience4j,
            BreakerConfig::Opossum(_) => BreakerFlavour::Opossum,
            BreakerConfig::Envoy(_) => BreakerFlavour::Envoy,
        }
    }
}

/// `d × factor`, saturating instead of panicking on overflow.
fn scale_duration(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Proof that a request was admitted by a [`FlavouredBreaker`]; hand it back to
/// [`FlavouredBreaker::after_request`].
#[derive(Debug)]
#[must_use = "report the outcome with FlavouredBreaker::after_request"]
pub struct FlavourTicket(AnyTicket);

#[derive(Debug)]
enum AnyTicket {
    Gobreaker(Ticket),
    Pybreaker(PybreakerTicket),
    Resilience4j(Resilience4jTicket),
    Opossum(OpossumTicket),
    Envoy(EnvoyTicket),
}

/// One breaker of any flavour. Not thread-safe by itself: the client keeps it behind a
/// mutex, as every library keeps its state behind one.
#[derive(Debug)]
pub enum FlavouredBreaker {
    /// gobreaker.
    Gobreaker(Breaker),
    /// pybreaker.
    Pybreaker(Pybreaker),
    /// resilience4j.
    Resilience4j(Resilience4j),
    /// opossum.
    Opossum(Opossum),
    /// Envoy outlier detection.
    Envoy(Envoy),
}

impl FlavouredBreaker {
    /// A closed breaker built at `now` (opossum's rotation and Envoy's sweeps start then).
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        match config {
            BreakerConfig::Gobreaker(s) => Self::Gobreaker(Breaker::new(s, now)),
            BreakerConfig::Pybreaker(s) => Self::Pybreaker(Pybreaker::new(s)),
            BreakerConfig::Resilience4j(s) => Self::Resilience4j(Resilience4j::new(s)),
            BreakerConfig::Opossum(s) => Self::Opossum(Opossum::new(s, now)),
            BreakerConfig::Envoy(s) => Self::Envoy(Envoy::new(s, now)),
        }
    }

    /// Which flavour this is.
    pub fn flavour(&self) -> BreakerFlavour {
        match self {
            Self::Gobreaker(_) => BreakerFlavour::Gobreaker,
            Self::Pybreaker(_) => BreakerFlavour::Pybreaker,
            Self::Resilience4j(_) => BreakerFlavour::Resilience4j,
            Self::Opossum(_) => BreakerFlavour::Opossum,
            Self::Envoy(_) => BreakerFlavour::Envoy,
        }
    }

    /// Ask to start a request: admitted with a ticket, or refused.
    pub fn before_request(&mut self, now: Instant) -> Result<FlavourTicket, Rejection> {
        let ticket = match self {
            Self::Gobreaker(b) => AnyTicket::Gobreaker(b.before_request(now)?),
            Self::Pybreaker(b) => AnyTicket::Pybreaker(b.before_request(now)?),
            Self::Resilience4j(b) => AnyTicket::Resilience4j(b.before_request(now)?),
            Self::Opossum(b) => AnyTicket::Opossum(b.before_request(now)?),
            Self::Envoy(b) => AnyTicket::Envoy(b.before_request(now)?),
        };
        Ok(FlavourTicket(ticket))
    }

    /// Report how an admitted request ended. For Envoy, `success` is false for a 5xx,
    /// a connect failure or a timeout (the client decides; see
    /// [`BreakerFlavour::sees_each_attempt`]).
    pub fn after_request(&mut self, ticket: FlavourTicket, success: bool, now: Instant) {
        match (self, ticket.0) {
            (Self::Gobreaker(b), AnyTicket::Gobreaker(t)) => b.after_request(t, success, now),
            (Self::Pybreaker(b), AnyTicket::Pybreaker(t)) => b.after_request(t, success, now),
            (Self::Resilience4j(b), AnyTicket::Resilience4j(t)) => b.after_request(t, success, now),
            (Self::Opossum(b), AnyTicket::Opossum(t)) => b.after_request(t, success, now),
            (Self::Envoy(b), AnyTicket::Envoy(t)) => b.after_request(t, !success, now),
            // A ticket from a breaker of another flavour is not a request of this one:
            // there is nothing to count (as gobreaker ignores another generation's).
            _ => {}
        }
    }

    /// The state as the library's own state read reports it: gobreaker's `State()` moves
    /// an expired open breaker to half-open; opossum's and Envoy's timers fire; pybreaker's
    /// and resilience4j's reads move nothing.
    pub fn state(&mut self, now: Instant) -> State {
        match self {
            Self::Gobreaker(b) => b.state(now),
            Self::Pybreaker(b) => b.state(),
            Self::Resilience4j(b) => b.state(),
            Self::Opossum(b) => b.state(now),
            Self::Envoy(b) => b.state(now),
        }
    }

    /// Apply the timer-driven changes due by `now` — opossum's reset timer, Envoy's
    /// sweeps — each recorded at its timer's instant. Lazy changes (gobreaker's,
    /// pybreaker's and resilience4j's move to half-open, which only a request makes) are
    /// not applied: observing a breaker never does what only a request would.
    pub fn settle(&mut self, now: Instant) {
        match self {
            Self::Opossum(b) => b.settle(now),
            Self::Envoy(b) => b.settle(now),
            Self::Gobreaker(_) | Self::Pybreaker(_) | Self::Resilience4j(_) => {}
        }
    }

    /// The stored state, as last moved or settled.
    pub fn peek_state(&self) -> State {
        match self {
            Self::Gobreaker(b) => b.peek_state(),
            Self::Pybreaker(b) => b.state(),
            Self::Resilience4j(b) => b.state(),
            Self::Opossum(b) => b.peek_state(),
            Self::Envoy(b) => b.peek_state(),
        }
    }

    /// What the flavour counts, in gobreaker's [`Counts`] shape; fields the library does
    /// not keep are zero (see each flavour's `counts`).
    pub fn counts(&self) -> Counts {
        match self {
            Self::Gobreaker(b) => b.counts(),
            Self::Pybreaker(b) => b.counts(),
            Self::Resilience4j(b) => b.counts(),
            Self::Opossum(b) => b.counts(),
            Self::Envoy(b) => b.counts(),
        }
    }

    /// Collect the state changes made since the last call, oldest first.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        match self {
            Self::Gobreaker(b) => b.take_transitions(),
            Self::Pybreaker(b) => b.take_transitions(),
            Self::Resilience4j(b) => b.take_transitions(),
            Self::Opossum(b) => b.take_transitions(),
            Self::Envoy(b) => b.take_transitions(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flavour: BreakerFlavour, time_scale: f64) -> BreakerConfig {
        let settings = ClientSettings {
            breaker: flavour,
            ..ClientSettings::platform()
        };
        BreakerConfig::from_settings(&settings.scaled(time_scale), time_scale, true)
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for flavour in BreakerFlavour::ALL {
            assert_eq!(flavour.name().parse::<BreakerFlavour>(), Ok(flavour));
        }
        let err = "hystrix".parse::<BreakerFlavour>().unwrap_err();
        assert!(
            err.contains("hystrix")
                && err.contains("gobreaker, pybreaker, resilience4j, opossum, envoy"),
            "{err}"
        );
        assert_eq!(BreakerFlavour::default(), BreakerFlavour::Gobreaker);
    }

    #[test]
    fn the_platform_numbers_map_onto_each_library() {
        assert_eq!(
            config(BreakerFlavour::Gobreaker, 1.0),
            BreakerConfig::Gobreaker(BreakerSettings::platform())
        );
        assert_eq!(
            config(BreakerFlavour::Pybreaker, 1.0),
            BreakerConfig::Pybreaker(PybreakerSettings {
                fail_max: 5,
                reset_timeout: Duration::from_secs(30),
                success_threshold: 3,
            })
        );
        assert_eq!(
            config(BreakerFlavour::Resilience4j, 1.0),
            BreakerConfig::Resilience4j(Resilience4jSettings {
                sliding_window_size: 100,
                minimum_number_of_calls: 5,
                failure_rate_threshold: 60.0,
                slow_call_rate_threshold: 100.0,
                slow_call_duration_threshold: Duration::from_secs(60),
                wait_duration_in_open_state: Duration::from_secs(30),
                permitted_number_of_calls_in_half_open_state: 3,
                limit_half_open: true,
            })
        );
        assert_eq!(
            config(BreakerFlavour::Opossum, 1.0),
            BreakerConfig::Opossum(OpossumSettings {
                error_threshold_percentage: 60.0,
                volume_threshold: 5,
                rolling_count_timeout: Duration::from_secs(60),
                rolling_count_buckets: 10,
                reset_timeout: Duration::from_secs(30),
                limit_half_open: true,
            })
        );
        assert_eq!(
            config(BreakerFlavour::Envoy, 1.0),
            BreakerConfig::Envoy(EnvoySettings {
                consecutive_5xx: 5,
                interval: Duration::from_secs(10),
                base_ejection_time: Duration::from_secs(30),
                max_ejection_time: Duration::from_secs(300),
            })
        );
    }

    #[test]
    fn time_scale_scales_every_duration_of_every_flavour() {
        let ms = Duration::from_millis;
        let BreakerConfig::Gobreaker(g) = config(BreakerFlavour::Gobreaker, 0.01) else {
            panic!("gobreaker");
        };
        assert_eq!((g.interval, g.timeout), (ms(600), ms(300)));
        let BreakerConfig::Pybreaker(p) = config(BreakerFlavour::Pybreaker, 0.01) else {
            panic!("pybreaker");
        };
        assert_eq!(p.reset_timeout, ms(300));
        let BreakerConfig::Resilience4j(r) = config(BreakerFlavour::Resilience4j, 0.01) else {
            panic!("resilience4j");
        };
        assert_eq!(
            (
                r.wait_duration_in_open_state,
                r.slow_call_duration_threshold
            ),
            (ms(300), ms(600))
        );
        let BreakerConfig::Opossum(o) = config(BreakerFlavour::Opossum, 0.01) else {
            panic!("opossum");
        };
        assert_eq!(
            (o.rolling_count_timeout, o.reset_timeout),
            (ms(600), ms(300))
        );
        let BreakerConfig::Envoy(e) = config(BreakerFlavour::Envoy, 0.01) else {
            panic!("envoy");
        };
        assert_eq!(
            (e.interval, e.base_ejection_time, e.max_ejection_time),
            (ms(100), ms(300), ms(3000))
        );

        // opossum's fallback for a zero window is scaled too.
        let zero = ClientSettings {
            breaker: BreakerFlavour::Opossum,
            interval: Duration::ZERO,
            ..ClientSettings::platform()
        };
        let BreakerConfig::Opossum(o) =
            BreakerConfig::from_settings(&zero.scaled(0.01), 0.01, true)
        else {
            panic!("opossum");
        };
        assert_eq!(o.rolling_count_timeout, ms(100));
    }

    #[test]
    fn every_flavour_goes_through_the_common_api() {
        let t0 = Instant::now();
        for flavour in BreakerFlavour::ALL {
            let mut b = FlavouredBreaker::new(config(flavour, 1.0), t0);
            assert_eq!(b.flavour(), flavour);
            for _ in 0..5 {
                let ticket = b.before_request(t0).expect("closed admits");
                b.after_request(ticket, false, t0);
            }
            assert_eq!(
                b.peek_state(),
                State::Open,
                "{flavour}: five failures open it"
            );
            assert_eq!(
                b.before_request(t0).unwrap_err(),
                Rejection::Open,
                "{flavour}"
            );
            let transitions = b.take_transitions();
            assert_eq!(
                transitions
                    .iter()
                    .map(|t| (t.from, t.to))
                    .collect::<Vec<_>>(),
                vec![(State::Closed, State::Open)],
                "{flavour}"
            );
        }
    }

    #[test]
    fn settle_fires_timers_but_never_a_lazy_change() {
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(3600);
        for flavour in BreakerFlavour::ALL {
            let mut b = FlavouredBreaker::new(config(flavour, 1.0), t0);
            for _ in 0..5 {
                let ticket = b.before_request(t0).expect("closed admits");
                b.after_request(ticket, false, t0);
            }
            b.take_transitions();
            b.settle(late);
            let expected = match flavour {
                BreakerFlavour::Opossum => State::HalfOpen,
                BreakerFlavour::Envoy => State::Closed,
                _ => State::Open,
            };
            assert_eq!(b.peek_state(), expected, "{flavour}");
            for t in b.take_transitions() {
                assert!(
                    t.at < late,
                    "{flavour}: stamped at the timer, not at the read"
                );
            }
        }
    }
}
