//! Breaker episodes inferred from outside.
//!
//! **From arrivals.** An open breaker is silence at the downstream while the
//! upstream load goes on. Calls are counted per injector bucket — only *new*
//! calls (a never-seen `order_no`) when the traffic carries ids, because the
//! retries of calls admitted just before the breaker opened keep arriving for
//! a retry loop's length after it opened. A silence of at least `silence`
//! during which the upstream journeys still sent requests is an open period:
//! it opened when the last call before it arrived; the next burst of calls is
//! a half-open probe; a burst with more calls than the probe limit means the
//! breaker closed again.
//!
//! **From fast failures.** When no request can reach the injector at all
//! (connections refused), arrivals say nothing. Then the upstream journey's
//! windows tell: requests that fail faster than `fast_fail_below` are
//! rejected by an open breaker without a single attempt (a retried call takes
//! at least one retry delay).

use serde::{Deserialize, Serialize};

use crate::load::recorder::WindowStats;
use crate::observe::InjectorObservation;

/// One breaker's history, as inferred or as reported by the SUT.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Episodes {
    /// Instants the breaker opened (seconds from the load start).
    pub opened_at_s: Vec<f64>,
    /// Instants it went half-open.
    pub half_open_at_s: Vec<f64>,
    /// Instants it closed.
    pub closed_at_s: Vec<f64>,
    /// Each half-open probe: when, how many calls, whether it closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
}

/// One half-open probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// When the first probe call arrived (seconds from the load start).
    pub at_s: f64,
    /// Calls let through before the breaker decided (None when not counted).
    pub calls: Option<u64>,
    /// Whether the breaker closed after it (else it opened again).
    pub closed: bool,
}

/// Upstream traffic: when requests of the journeys reaching the downstream
/// were meant to start (and were sent: dropped requests never left).
pub struct Upstream<'a> {
    /// Window width, seconds.
    pub window_s: f64,
    /// The journeys' windows (several journeys: all of them).
    pub windows: Vec<&'a WindowStats>,
}

impl Upstream<'_> {
    /// Whether the upstream kept sending through `[from, until)`: at least
    /// 3 requests, and some in every load window lying wholly inside it (a
    /// pause in the load, or requests dropped by the load generator, is no
    /// evidence of a breaker).
    pub fn sending_through(&self, from: f64, until: f64) -> bool {
        let inside: Vec<&&WindowStats> = self
            .windows
            .iter()
            .filter(|w| w.start_s >= from - 1e-9 && w.start_s + self.window_s <= until + 1e-9)
            .collect();
        // Windows k with k·w ≥ from and (k+1)·w ≤ until: a pause in the load
        // leaves no window at all, so they must all be there.
        let covered = ((until / self.window_s + 1e-9).floor()
            - (from / self.window_s - 1e-9).ceil())
        .max(0.0) as usize;
        self.requests(from, until) >= 3
            && inside.len() >= covered
            && inside.iter().all(|w| w.requests > 0)
    }

    /// Requests meant to start in `[from, until)`.
    pub fn requests(&self, from: f64, until: f64) -> u64 {
        self.windows
            .iter()
            .filter(|w| {
                let end = w.start_s + self.window_s;
                // Windows overlapping the interval, prorated.
                end > from && w.start_s < until
            })
            .map(|w| {
                let overlap = (until.min(w.start_s + self.window_s) - from.max(w.start_s)).max(0.0);
                let share = overlap / self.window_s;
                (w.requests as f64 * share).round() as u64
            })
            .sum()
    }
}

/// A run of buckets with calls, gaps shorter than the silence threshold
/// included.
#[derive(Clone, Copy, Debug)]
struct Burst {
    start: f64,
    end: f64,
    calls: u64,
    /// When the `(max_probes + 1)`-th call arrived, if it did.
    beyond_probes_at: Option<f64>,
}

/// The calls at `injector` per bucket from `from` on: new calls when the
/// traffic carries ids, all arrivals otherwise.
fn calls(injector: &InjectorObservation, from: f64, until: f64) -> Vec<(f64, u64)> {
    let ids = injector.has_ids();
    injector
        .buckets
        .iter()
        .filter(|b| b.start_s >= from - injector.width_s && b.start_s < until)
        .map(|b| (b.start_s, if ids { u64::from(b.fresh) } else { b.total() }))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// How arrivals are read.
pub struct ArrivalParams {
    /// Shortest gap (seconds) that means "open". Without ids it must also
    /// span a retry loop, or a probe's retries would look like more probes.
    pub silence: f64,
    /// Calls a half-open breaker lets through.
    pub max_probes: u64,
    /// Attempts one call makes at most: without ids, a failed probe's
    /// arrivals are divided by it to estimate its calls (1 with ids).
    pub attempts_per_call: u64,
}

/// Episodes from arrivals in `window` (from the fault's start). A gap counts
/// as "open" only when the upstream sent at least 3 requests during it. A
/// burst of more than `max_probes` calls closed the breaker only if it could
/// close then (`can_close`: the downstream was not failing every call);
/// otherwise it is a probe that let too many calls through.
pub fn from_arrivals(
    injector: &InjectorObservation,
    upstream: &Upstream<'_>,
    window: (f64, f64),
    params: &ArrivalParams,
    can_close: &dyn Fn(f64) -> bool,
) -> Episodes {
    let (from, until) = window;
    let (silence, max_probes) = (params.silence, params.max_probes);
    let width = injector.width_s;
    let mut bursts: Vec<Burst> = Vec::new();
    for (start, n) in calls(injector, from, until) {
        match bursts.last_mut() {
            Some(b) if start - b.end < silence => {
                if b.beyond_probes_at.is_none() && b.calls + n > max_probes {
                    b.beyond_probes_at = Some(start);
                }
                b.end = start + width;
                b.calls += n;
            }
            _ => bursts.push(Burst {
                start,
                end: start + width,
                calls: n,
                beyond_probes_at: (n > max_probes).then_some(start),
            }),
        }
    }
    let mut episodes = Episodes::default();
    let mut previous_end = from;
    for (i, burst) in bursts.iter().enumerate() {
        let gap_from = if i == 0 { from } else { previous_end };
        // A gap right at the fault's start (i == 0) means no call got through
        // at all: nothing to infer from arrivals.
        let silent = i > 0
            && burst.start - gap_from >= silence
            && upstream.sending_through(gap_from, burst.start);
        if silent {
            // Opened (or, after a failed probe, reopened) when the calls stopped.
            episodes.opened_at_s.push(gap_from);
            episodes.half_open_at_s.push(burst.start);
            let closed = burst.beyond_probes_at.filter(|at| can_close(*at));
            if let Some(at) = closed {
                episodes.closed_at_s.push(at);
            }
            episodes.probes.push(Probe {
                at_s: burst.start,
                calls: closed
                    .is_none()
                    .then(|| burst.calls.div_ceil(params.attempts_per_call.max(1))),
                closed: closed.is_some(),
            });
        }
        previous_end = burst.end;
    }
    if let Some(last) = bursts.last()
        && until - last.end >= silence
        && upstream.sending_through(last.end, until)
    {
        episodes.opened_at_s.push(last.end);
    }
    episodes
}

/// Episodes from the upstream journeys' windows between `from` (the fault's
/// start) and `until`. A window is *slow* when its p90 is at least
/// `fast_below` seconds. After slow windows, the first fast one means the
/// breaker opened: inside the window before it, the share of fast requests
/// says how far in (arrivals are evenly spaced, the slow ones first). While
/// open, a window whose slowest request is slow holds a probe; for journeys
/// that fail while the breaker is open, the first window without errors
/// means it closed. Answers turning fast count as an opening only while the
/// downstream is still `failing` throughout the window starting at the given
/// instant (else the fault ended, e.g. flapped off).
pub fn from_fast_answers(
    windows: &[&WindowStats],
    window: (f64, f64),
    fast_below: f64,
    failing: &dyn Fn(f64) -> bool,
) -> Episodes {
    let (from, until) = window;
    let fast_us = (fast_below * 1e6) as u64;
    let mut episodes = Episodes::default();
    let (mut open, mut seen_slow, mut failing_while_open) = (false, false, false);
    let mut previous: Option<&WindowStats> = None;
    for w in windows
        .iter()
        .copied()
        .filter(|w| w.start_s >= from && w.start_s < until && w.requests > 0)
    {
        let slow = w.p90_us >= fast_us;
        if !open {
            if slow {
                seen_slow = true;
            } else if seen_slow && !failing(w.start_s) {
                // Fast again because the fault is gone: recovered, not opened.
                seen_slow = false;
            } else if seen_slow {
                let at = match previous {
                    Some(p) if w.start_s > p.start_s => {
                        let fast_share = p.faster_than(fast_us) as f64 / p.requests.max(1) as f64;
                        w.start_s - fast_share.min(1.0) * (w.start_s - p.start_s)
                    }
                    _ => w.start_s,
                };
                episodes.opened_at_s.push(at.max(from));
                (open, failing_while_open) = (true, false);
            }
        } else if w.max_us >= fast_us {
            episodes.half_open_at_s.push(w.start_s);
            episodes.probes.push(Probe {
                at_s: w.start_s,
                calls: None,
                closed: false,
            });
        } else if w.errors > 0 {
            failing_while_open = true;
        } else if failing_while_open {
            episodes.half_open_at_s.push(w.start_s);
            episodes.closed_at_s.push(w.start_s);
            episodes.probes.push(Probe {
                at_s: w.start_s,
                calls: None,
                closed: true,
            });
            (open, seen_slow) = (false, false);
        }
        previous = Some(w);
    }
    episodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use fault_injectors::observe::CellReport;
    use fault_injectors::{BucketReport, Counters};

    fn params(silence: f64) -> ArrivalParams {
        ArrivalParams {
            silence,
            max_probes: 3,
            attempts_per_call: 1,
        }
    }

    /// An injector with `n` new calls in the buckets starting at each time.
    fn injector(width: f64, calls: &[(f64, u32)]) -> InjectorObservation {
        InjectorObservation {
            name: "order-service".into(),
            width_s: width,
            buckets: calls
                .iter()
                .map(|&(t, n)| BucketReport {
                    index: (t / width).round() as u64,
                    start_s: t,
                    open: false,
                    counts: vec![CellReport {
                        route: "POST /api/v1/orders".into(),
                        outcome: "status_503".into(),
                        count: n * 2,
                    }],
                    delayed: 0,
                    with_ids: n * 2,
                    fresh: n,
                })
                .collect(),
            counters: Counters::default(),
        }
    }

    fn steady(from: f64, until: f64, window: f64, per_window: u64) -> Vec<WindowStats> {
        let mut out = Vec::new();
        let mut t = from;
        while t < until {
            out.push(WindowStats {
                index: (t / window) as u64,
                start_s: t,
                requests: per_window,
                errors: 0,
                dropped: 0,
                p50_us: 1000,
                p90_us: 1000,
                p99_us: 1000,
                max_us: 1000,
                latency_log2: [0; crate::load::recorder::LOG2_BUCKETS],
                histogram: String::new(),
            });
            t += window;
        }
        out
    }

    #[test]
    fn silence_under_load_is_an_open_period_and_probes_follow_it() {
        // New calls every 10 ms from 0 to 1 s; the breaker opens at 1.0 s,
        // probes at 1.3 s (3 calls, fail) and 1.6 s (3 calls succeed, then
        // traffic resumes: closed).
        let mut calls: Vec<(f64, u32)> = (0..100).map(|i| (i as f64 * 0.01, 1)).collect();
        calls.push((1.30, 3));
        calls.extend((0..40).map(|i| (1.60 + i as f64 * 0.01, 1)));
        let inj = injector(0.01, &calls);
        let windows = steady(0.0, 2.0, 0.1, 10);
        let upstream = Upstream {
            window_s: 0.1,
            windows: windows.iter().collect(),
        };
        let e = from_arrivals(&inj, &upstream, (0.5, 2.0), &params(0.1), &|t| t >= 1.5);
        // Opened at 1.0 s, reopened when the first probe failed (1.31 s).
        assert_eq!(e.opened_at_s.len(), 2);
        assert!((e.opened_at_s[0] - 1.0).abs() < 0.011, "{e:?}");
        assert!((e.opened_at_s[1] - 1.31).abs() < 0.011, "{e:?}");
        assert_eq!(e.half_open_at_s.len(), 2);
        assert!((e.half_open_at_s[0] - 1.3).abs() < 1e-9);
        assert_eq!(
            e.probes[0],
            Probe {
                at_s: 1.3,
                calls: Some(3),
                closed: false
            }
        );
        assert!(e.probes[1].closed);
        assert_eq!(e.closed_at_s.len(), 1);
        // Closed once a 4th call got through (3 probes succeeded first).
        assert!((e.closed_at_s[0] - 1.63).abs() < 0.011, "{e:?}");
    }

    #[test]
    fn a_big_burst_while_the_downstream_still_fails_is_an_overfull_probe() {
        // Calls until 1.0 s, then a 12-call burst at 1.3 s while every call
        // still fails (a half-open breaker without its limit), then silence.
        let mut calls: Vec<(f64, u32)> = (0..100).map(|i| (i as f64 * 0.01, 1)).collect();
        calls.extend((0..12).map(|i| (1.30 + i as f64 * 0.005, 1)));
        let inj = injector(0.005, &calls);
        let windows = steady(0.0, 2.0, 0.1, 10);
        let upstream = Upstream {
            window_s: 0.1,
            windows: windows.iter().collect(),
        };
        let e = from_arrivals(&inj, &upstream, (0.5, 2.0), &params(0.1), &|_| false);
        assert!(e.closed_at_s.is_empty(), "{e:?}");
        assert_eq!(e.probes.len(), 1);
        assert_eq!(e.probes[0].calls, Some(12));
        assert_eq!(e.opened_at_s.len(), 2, "reopened after the burst: {e:?}");
    }

    #[test]
    fn silence_without_upstream_load_is_not_an_open_breaker() {
        let calls: Vec<(f64, u32)> = (0..50)
            .map(|i| (i as f64 * 0.01, 1))
            .chain((0..50).map(|i| (2.0 + i as f64 * 0.01, 1)))
            .collect();
        let inj = injector(0.01, &calls);
        // The load paused between 0.5 s and 2 s.
        let windows: Vec<WindowStats> = steady(0.0, 0.5, 0.1, 10)
            .into_iter()
            .chain(steady(2.0, 2.5, 0.1, 10))
            .collect();
        let upstream = Upstream {
            window_s: 0.1,
            windows: windows.iter().collect(),
        };
        let e = from_arrivals(&inj, &upstream, (0.0, 2.5), &params(0.1), &|_| true);
        assert_eq!(e, Episodes::default());
    }

    #[test]
    fn dropped_requests_are_no_upstream_load() {
        let mut windows = steady(0.0, 3.0, 0.1, 10);
        for w in windows
            .iter_mut()
            .filter(|w| w.start_s >= 1.0 - 1e-9 && w.start_s < 2.0 - 1e-9)
        {
            w.dropped = w.requests;
            w.requests = 0;
        }
        let upstream = Upstream {
            window_s: 0.1,
            windows: windows.iter().collect(),
        };
        assert!(
            !upstream.sending_through(0.96, 2.04),
            "the load generator dropped them"
        );
        assert!(
            upstream.sending_through(0.25, 0.93),
            "an unaligned stretch of steady load"
        );
        assert!(upstream.sending_through(2.31, 2.64));
    }

    #[test]
    fn a_breaker_that_never_opens_has_no_episodes() {
        let calls: Vec<(f64, u32)> = (0..300).map(|i| (i as f64 * 0.01, 1)).collect();
        let windows = steady(0.0, 3.0, 0.1, 10);
        let upstream = Upstream {
            window_s: 0.1,
            windows: windows.iter().collect(),
        };
        let e = from_arrivals(
            &injector(0.01, &calls),
            &upstream,
            (0.0, 3.0),
            &params(0.1),
            &|_| true,
        );
        assert!(e.opened_at_s.is_empty());
    }

    #[test]
    fn fast_answers_after_slow_ones_mark_the_open_breaker() {
        let mut windows = steady(0.0, 3.0, 0.1, 10);
        for w in windows
            .iter_mut()
            .filter(|w| w.start_s >= 1.0 - 1e-9 && w.start_s < 2.0)
        {
            w.errors = w.requests;
            if w.start_s >= 1.4 - 1e-9 {
                w.p90_us = 300; // rejected at once
                w.max_us = 300;
                w.latency_log2[8] = 10;
            } else {
                w.p90_us = 60_000; // retried, then failed
                w.max_us = 60_000;
                w.latency_log2[15] = 10;
            }
        }
        // In the window from 1.3 s the breaker opened 0.07 s in: its last 3
        // of 10 requests were answered at once.
        let mixed = windows
            .iter_mut()
            .find(|w| (w.start_s - 1.3).abs() < 1e-9)
            .expect("window");
        mixed.latency_log2[15] = 7;
        mixed.latency_log2[8] = 3;
        let refs: Vec<&WindowStats> = windows.iter().collect();
        let e = from_fast_answers(&refs, (1.0, 3.0), 0.01, &|t| t < 2.5);
        assert_eq!(e.opened_at_s.len(), 1);
        assert!((e.opened_at_s[0] - 1.37).abs() < 1e-9, "{e:?}");
        // Requests succeed again from 2.0 s: closed.
        assert_eq!(e.closed_at_s.len(), 1);
        assert!((e.closed_at_s[0] - 2.0).abs() < 1e-9, "{e:?}");
    }

    /// Steady traffic, answered slowly (60 ms) from 1.0 s to 1.5 s.
    fn slow_from_1_to_1_5_s() -> Vec<WindowStats> {
        let mut windows = steady(0.0, 3.0, 0.1, 10);
        for w in windows
            .iter_mut()
            .filter(|w| w.start_s >= 1.0 - 1e-9 && w.start_s < 1.5 - 1e-9)
        {
            w.p90_us = 60_000;
            w.max_us = 60_000;
        }
        windows
    }

    #[test]
    fn a_degrading_journey_shows_the_open_breaker_as_fast_successes() {
        // No errors at all: slow while the breaker is closed (waiting for the
        // downstream's retries), fast once it opens.
        let windows = slow_from_1_to_1_5_s();
        let refs: Vec<&WindowStats> = windows.iter().collect();
        let e = from_fast_answers(&refs, (1.0, 3.0), 0.01, &|t| t < 2.5);
        assert_eq!(e.opened_at_s.len(), 1);
        assert!((e.opened_at_s[0] - 1.5).abs() < 1e-9, "{e:?}");
        assert!(
            e.closed_at_s.is_empty(),
            "a degrading journey cannot show the close"
        );
    }

    #[test]
    fn answers_turning_fast_because_the_fault_ended_are_no_opening() {
        // Slow while a flapping fault is on (1.0–1.5 s), fast once it is off.
        let windows = slow_from_1_to_1_5_s();
        let refs: Vec<&WindowStats> = windows.iter().collect();
        let e = from_fast_answers(&refs, (1.0, 3.0), 0.01, &|t| t < 1.5);
        assert_eq!(e, Episodes::default());
    }
}
