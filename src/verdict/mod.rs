//! The verdict: each check turns observations into pass or fail, with the
//! evidence that decided it. A check that cannot be evaluated (no traffic
//! where it looks, no baseline to compare with) fails as *inconclusive*; it
//! never passes silently.

mod checks;
pub mod infer;

use std::time::Duration;

use reference_stack::Downstream;
use serde::{Deserialize, Serialize};

use crate::load::recorder::{PhaseRecord, SeriesRecord, WindowStats};
use crate::observe::sut::BreakerState;
use crate::observe::{InjectorObservation, Observations};
use crate::platform::injector_name;
use crate::scenario::{Check, FaultWindow, Scenario};
use infer::{Episodes, Upstream};

/// One check's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Its kind (`breaker_opens`, ...).
    pub kind: String,
    /// Whether it passed.
    pub passed: bool,
    /// True when it could not be evaluated (and so failed).
    pub inconclusive: bool,
    /// What was required.
    pub expected: String,
    /// What was seen.
    pub observed: String,
    /// The observations that decided it.
    pub evidence: Vec<String>,
}

impl CheckResult {
    fn decided(
        name: &str,
        kind: &'static str,
        passed: bool,
        expected: String,
        observed: String,
        evidence: Vec<String>,
    ) -> Self {
        Self {
            name: name.to_string(),
            kind: kind.to_string(),
            passed,
            inconclusive: false,
            expected,
            observed,
            evidence,
        }
    }

    fn inconclusive(name: &str, kind: &'static str, expected: String, why: String) -> Self {
        Self {
            name: name.to_string(),
            kind: kind.to_string(),
            passed: false,
            inconclusive: true,
            expected,
            observed: format!("inconclusive: {why}"),
            evidence: Vec::new(),
        }
    }
}

/// A breaker's history for the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BreakerReport {
    /// Injector name of the downstream.
    pub downstream: String,
    /// `inferred` (black-box) or `metrics` (the SUT's gauge).
    pub source: String,
    /// How it was inferred (`arrivals`, `fast_failures`) or `gauge`.
    pub method: String,
    /// The episodes.
    #[serde(flatten)]
    pub episodes: Episodes,
}

/// One fault cycle's recovery.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Injector name of the downstream whose fault cleared.
    pub downstream: String,
    /// The journey measured.
    pub journey: String,
    /// When the fault cleared, seconds from the load start.
    pub cleared_at_s: f64,
    /// Seconds until the journey was back at baseline (None: it never was
    /// before the next fault or the end of the run).
    pub recovery_s: Option<f64>,
}

/// Attempts at a downstream per upstream request, in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AmplificationRow {
    /// Injector name.
    pub downstream: String,
    /// Phase name.
    pub phase: String,
    /// Requests that reached the injector in the phase.
    pub attempts: u64,
    /// Requests of the journeys reaching it, sent in the phase.
    pub upstream_requests: u64,
    /// attempts ÷ upstream requests (None without upstream requests).
    pub ratio: Option<f64>,
}

/// Everything the verdict decided.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// Every check.
    pub checks: Vec<CheckResult>,
    /// Breaker histories of the faulted downstreams.
    pub breakers: Vec<BreakerReport>,
    /// Recoveries per fault cycle.
    pub recoveries: Vec<RecoveryReport>,
    /// Retry amplification per downstream and phase.
    pub amplification: Vec<AmplificationRow>,
}

impl Analysis {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Evaluates every check and derives breaker and recovery histories.
pub fn evaluate(scenario: &Scenario, obs: &Observations) -> Analysis {
    let ctx = Context { scenario, obs };
    let checks = scenario
        .checks
        .iter()
        .map(|plan| checks::evaluate(&ctx, &plan.name, &plan.check))
        .collect();
    Analysis {
        checks,
        breakers: ctx.breaker_reports(),
        recoveries: ctx.recovery_reports(),
        amplification: ctx.amplification(),
    }
}

/// What checks read from.
pub(crate) struct Context<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) obs: &'a Observations,
}

/// A fault cycle's end: when the fault stopped hitting, and when it started
/// again (None: it did not).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cycle {
    pub(crate) downstream: Downstream,
    pub(crate) cleared_at: f64,
    pub(crate) next_fault_at: Option<f64>,
}

impl Context<'_> {
    pub(crate) fn series(&self, name: &str) -> Option<&SeriesRecord> {
        self.obs.load.series(name)
    }

    pub(crate) fn window_s(&self) -> f64 {
        self.obs.load.window.as_secs_f64()
    }

    pub(crate) fn run_end(&self) -> f64 {
        self.scenario.duration.as_secs_f64()
    }

    /// The series' record in its baseline phase (`baseline`, or the first).
    pub(crate) fn baseline<'s>(&self, series: &'s SeriesRecord) -> Option<&'s PhaseRecord> {
        series
            .phases
            .get("baseline")
            .or_else(|| {
                self.scenario
                    .phases
                    .first()
                    .and_then(|p| series.phases.get(&p.name))
            })
            .filter(|p| p.requests > 0)
    }

    /// The journey's series and its baseline record, or why a check that
    /// compares with baseline cannot be evaluated.
    pub(crate) fn with_baseline(
        &self,
        journey: &str,
    ) -> Result<(&SeriesRecord, &PhaseRecord), String> {
        let series = self
            .series(journey)
            .ok_or_else(|| format!("no journey `{journey}` ran"))?;
        let baseline = self
            .baseline(series)
            .ok_or_else(|| format!("{journey} sent no requests in the baseline phase"))?;
        Ok((series, baseline))
    }

    /// When a fault was first set on `downstream`.
    pub(crate) fn fault_start(&self, downstream: Downstream) -> Option<f64> {
        self.obs
            .faults
            .iter()
            .find(|e| e.injector == downstream && e.action == "set")
            .map(|e| e.t_s)
    }

    /// Series of the journeys whose requests reach `downstream` on their
    /// request path.
    pub(crate) fn reaching(&self, downstream: Downstream) -> Vec<&SeriesRecord> {
        self.scenario
            .load
            .journeys
            .iter()
            .filter(|j| {
                j.expects.contains(&downstream) || j.kind.downstreams().contains(&downstream)
            })
            .filter_map(|j| self.series(&j.name))
            .collect()
    }

    pub(crate) fn upstream(&self, downstream: Downstream) -> Upstream<'_> {
        Upstream {
            window_s: self.window_s(),
            windows: self
                .reaching(downstream)
                .into_iter()
                .flat_map(|s| s.windows.iter())
                .collect(),
        }
    }

    /// Whether no request could reach the downstream's injector during its
    /// fault (connections refused), so only fast failures can tell.
    pub(crate) fn refused(&self, downstream: Downstream) -> bool {
        self.scenario.faults.iter().any(|f| {
            f.injector == downstream && matches!(f.fault.kind, fault_injectors::FaultKind::Refuse)
        })
    }

    /// The shortest silence meaning "open": five buckets, or five calls'
    /// spacing at the baseline rate, whichever is longer.
    pub(crate) fn silence(&self, downstream: Downstream) -> f64 {
        let Some(injector) = self.obs.injectors.get(&downstream) else {
            return 1.0;
        };
        let baseline = self
            .scenario
            .phases
            .first()
            .map_or((0.0, self.run_end()), |p| {
                (p.from.as_secs_f64(), p.until.as_secs_f64())
            });
        let calls = injector.arrivals(baseline.0, baseline.1) as f64;
        let rate = calls / (baseline.1 - baseline.0).max(1e-9);
        let spacing = if rate > 0.0 { 5.0 / rate } else { 0.0 };
        (5.0 * injector.width_s).max(spacing)
    }

    /// Below this, an upstream request was answered without waiting for a
    /// retry: one retry delay of the downstream's client (embedded), else
    /// 100 ms.
    pub(crate) fn fast_below(&self, downstream: Downstream, given: Option<Duration>) -> f64 {
        given
            .map(|d| d.as_secs_f64())
            .or_else(|| {
                self.scenario.stack.kind.runs_reference_stack().then(|| {
                    self.scenario
                        .stack
                        .client_settings(downstream)
                        .retry_delay
                        .as_secs_f64()
                })
            })
            .unwrap_or(0.1)
    }

    /// The downstream's client retry loop: attempts per call and the sum of
    /// its sleeps (embedded: its settings; external: the platform's).
    fn retry_loop(&self, downstream: Downstream) -> (u64, f64) {
        let settings = if self.scenario.stack.kind.runs_reference_stack() {
            self.scenario.stack.client_settings(downstream)
        } else {
            reference_stack::ClientSettings::platform()
        };
        let n = u64::from(settings.max_attempts.max(1));
        let sleeps = settings.retry_delay.as_secs_f64() * ((n - 1) * n / 2) as f64;
        (n, sleeps)
    }

    /// The downstream's breaker episodes inferred from outside, and how:
    /// from arrivals when they carry ids (new calls can be told from
    /// retries), else from how fast the journeys reaching it are answered.
    /// None when neither can tell (no fault, or nothing on the request path).
    pub(crate) fn inferred(
        &self,
        downstream: Downstream,
        silence: Option<Duration>,
        fast_fail_below: Option<Duration>,
    ) -> Option<(Episodes, &'static str)> {
        let from = self.fault_start(downstream)?;
        let until = self.run_end();
        let with_ids = self
            .obs
            .injectors
            .get(&downstream)
            .is_some_and(InjectorObservation::has_ids);
        if !self.refused(downstream) && fast_fail_below.is_none() && with_ids {
            return self
                .arrival_episodes(downstream, silence)
                .map(|e| (e, "arrivals"));
        }
        let windows: Vec<&WindowStats> = self
            .reaching(downstream)
            .into_iter()
            .flat_map(|s| s.windows.iter())
            .collect();
        if windows.is_empty() {
            return None;
        }
        let fast = self.fast_below(downstream, fast_fail_below);
        let width = self.window_s();
        let failing = |t: f64| self.failing_throughout(downstream, t, t + width);
        Some((
            infer::from_fast_answers(&windows, (from, until), fast, &failing),
            "fast_answers",
        ))
    }

    /// Episodes read from arrivals at the downstream's injector (what probes
    /// are counted from). Without ids, the silence spans a retry loop and a
    /// failed probe's calls are estimated from its arrivals.
    pub(crate) fn arrival_episodes(
        &self,
        downstream: Downstream,
        silence: Option<Duration>,
    ) -> Option<Episodes> {
        let from = self.fault_start(downstream)?;
        let injector = self.obs.injectors.get(&downstream)?;
        let with_ids = injector.has_ids();
        let (attempts, sleeps) = self.retry_loop(downstream);
        let silence = silence.map_or_else(
            || {
                let base = self.silence(downstream);
                if with_ids {
                    base
                } else {
                    base.max(sleeps + 2.0 * injector.width_s)
                }
            },
            |d| d.as_secs_f64(),
        );
        let params = infer::ArrivalParams {
            silence,
            max_probes: self.max_probes(downstream),
            attempts_per_call: if with_ids { 1 } else { attempts },
        };
        let can_close = |t: f64| !self.hard_failing(downstream, t);
        Some(infer::from_arrivals(
            injector,
            &self.upstream(downstream),
            (from, self.run_end()),
            &params,
            &can_close,
        ))
    }

    /// Whether every call to `downstream` failed at `t`: a fault that is not
    /// a mere delay, hitting every request, was on. A breaker cannot close
    /// then (it needs consecutive successes).
    pub(crate) fn hard_failing(&self, downstream: Downstream, t: f64) -> bool {
        self.scenario.faults.iter().enumerate().any(|(i, w)| {
            if w.injector != downstream
                || w.fault.rate < 1.0
                || matches!(w.fault.kind, fault_injectors::FaultKind::Latency(_))
            {
                return false;
            }
            let set = self
                .obs
                .faults
                .iter()
                .find(|e| e.window == i && e.action == "set")
                .map(|e| e.t_s);
            let cleared = self
                .obs
                .faults
                .iter()
                .find(|e| e.window == i && e.action == "clear")
                .map(|e| e.t_s);
            let Some(set) = set else { return false };
            let on_now = t >= set && cleared.is_none_or(|c| t < c);
            on_now
                && w.fault
                    .flapping
                    .is_none_or(|f| f.is_on(Duration::from_secs_f64((t - set).max(0.0))))
        })
    }

    /// Whether every call to `downstream` failed from `from` to `to`: true
    /// at both ends. A fault flapping off a few ms into a window leaves the
    /// window's later requests unfaulted, so its fast answers are recovery.
    pub(crate) fn failing_throughout(&self, downstream: Downstream, from: f64, to: f64) -> bool {
        self.hard_failing(downstream, from) && self.hard_failing(downstream, to)
    }

    /// Calls a half-open breaker lets through.
    pub(crate) fn max_probes(&self, downstream: Downstream) -> u64 {
        self.scenario
            .checks
            .iter()
            .find_map(|c| match &c.check {
                Check::HalfOpenProbes {
                    downstream: d,
                    max_probes,
                    ..
                } if *d == downstream => Some(u64::from(*max_probes)),
                _ => None,
            })
            .unwrap_or_else(|| {
                if self.scenario.stack.kind.runs_reference_stack() {
                    u64::from(self.scenario.stack.client_settings(downstream).max_requests)
                } else {
                    3
                }
            })
    }

    /// The downstream's breaker as the SUT's gauge reported it, or None
    /// without readings. Several services may have a breaker for it; the one
    /// of a service a journey reaching it enters by is taken.
    pub(crate) fn gauge(&self, downstream: Downstream) -> Option<Episodes> {
        let on_path: Vec<&str> = self
            .scenario
            .load
            .journeys
            .iter()
            .filter(|j| {
                j.kind.downstreams().contains(&downstream)
                    || j.expects.contains(&downstream)
                    || j.kind.async_downstreams(j.webhook).contains(&downstream)
            })
            .map(|j| j.kind.entry().name())
            .collect();
        let readings = |service: &str| {
            let mut r: Vec<_> = self
                .obs
                .sut
                .breakers
                .iter()
                .filter(|s| s.downstream == downstream && s.service == service)
                .collect();
            r.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
            r
        };
        let mut services: Vec<&str> = self
            .obs
            .sut
            .breakers
            .iter()
            .filter(|s| s.downstream == downstream)
            .map(|s| s.service.as_str())
            .collect();
        services.sort();
        services.dedup();
        let service = services
            .iter()
            .copied()
            .find(|s| on_path.contains(s))
            .or_else(|| services.first().copied())?;
        let mut episodes = Episodes::default();
        let mut state = BreakerState::Closed;
        for s in readings(service) {
            if s.state == state {
                continue;
            }
            match s.state {
                BreakerState::Open => episodes.opened_at_s.push(s.t_s),
                BreakerState::HalfOpen => {
                    // Closed, then half-open: an open spell shorter than the
                    // sampling step was missed; it began by this reading.
                    if state == BreakerState::Closed {
                        episodes.opened_at_s.push(s.t_s);
                    }
                    episodes.half_open_at_s.push(s.t_s);
                }
                BreakerState::Closed => episodes.closed_at_s.push(s.t_s),
            }
            state = s.state;
        }
        Some(episodes)
    }

    /// Fault cycles of `downstream` (or of every injector): each clear, and
    /// each off-edge of a flapping fault, with when the fault came back.
    pub(crate) fn cycles(&self, downstream: Option<Downstream>) -> Vec<Cycle> {
        let events = &self.obs.faults;
        let mut cycles = Vec::new();
        for (i, window) in self.scenario.faults.iter().enumerate() {
            if downstream.is_some_and(|d| d != window.injector) {
                continue;
            }
            let Some(set) = events.iter().find(|e| e.window == i && e.action == "set") else {
                continue;
            };
            let cleared = events
                .iter()
                .find(|e| e.window == i && e.action == "clear")
                .map(|e| e.t_s);
            cycles.extend(window_cycles(window, set.t_s, cleared, self.run_end()));
        }
        // A cycle ends where the next fault on the same downstream begins.
        let starts: Vec<(Downstream, f64)> = events
            .iter()
            .filter(|e| e.action == "set")
            .map(|e| (e.injector, e.t_s))
            .collect();
        for c in &mut cycles {
            let next_set = starts
                .iter()
                .filter(|(d, t)| *d == c.downstream && *t > c.cleared_at)
                .map(|(_, t)| *t)
                .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))));
            c.next_fault_at = match (c.next_fault_at, next_set) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        cycles.sort_by(|a, b| a.cleared_at.total_cmp(&b.cleared_at));
        cycles
    }

    fn breaker_reports(&self) -> Vec<BreakerReport> {
        let mut downstreams: Vec<Downstream> =
            self.scenario.faults.iter().map(|f| f.injector).collect();
        downstreams.sort();
        downstreams.dedup();
        let mut out = Vec::new();
        for d in downstreams {
            let (silence, fast) = self
                .scenario
                .checks
                .iter()
                .find_map(|c| match &c.check {
                    Check::BreakerOpens {
                        downstream,
                        silence,
                        fast_fail_below,
                        ..
                    } if *downstream == d => Some((*silence, *fast_fail_below)),
                    _ => None,
                })
                .unwrap_or((None, None));
            if let Some((episodes, method)) = self.inferred(d, silence, fast) {
                out.push(BreakerReport {
                    downstream: injector_name(d).into(),
                    source: "inferred".into(),
                    method: method.into(),
                    episodes,
                });
            }
            if let Some(episodes) = self.gauge(d) {
                out.push(BreakerReport {
                    downstream: injector_name(d).into(),
                    source: "metrics".into(),
                    method: "gauge".into(),
                    episodes,
                });
            }
        }
        out
    }

    /// Attempts per upstream request for every downstream some journey
    /// reaches, in every phase.
    fn amplification(&self) -> Vec<AmplificationRow> {
        let mut rows = Vec::new();
        for (downstream, injector) in &self.obs.injectors {
            let series = self.reaching(*downstream);
            if series.is_empty() {
                continue;
            }
            for phase in &self.scenario.phases {
                let attempts =
                    injector.arrivals(phase.from.as_secs_f64(), phase.until.as_secs_f64());
                let upstream: u64 = series
                    .iter()
                    .filter_map(|s| s.phases.get(&phase.name))
                    .map(|r| r.requests)
                    .sum();
                rows.push(AmplificationRow {
                    downstream: injector.name.clone(),
                    phase: phase.name.clone(),
                    attempts,
                    upstream_requests: upstream,
                    ratio: (upstream > 0).then(|| attempts as f64 / upstream as f64),
                });
            }
        }
        rows
    }

    fn recovery_reports(&self) -> Vec<RecoveryReport> {
        let mut out = Vec::new();
        for check in &self.scenario.checks {
            if let Check::RecoversWithin {
                journey,
                downstream,
                window,
                hold,
                success_tolerance,
                latency_factor,
                ..
            } = &check.check
            {
                let Some(series) = self.series(journey) else {
                    continue;
                };
                for cycle in self.cycles(*downstream) {
                    let params = checks::RecoveryParams {
                        window: window.as_secs_f64(),
                        hold: *hold,
                        success_tolerance: *success_tolerance,
                        latency_factor: *latency_factor,
                    };
                    out.push(RecoveryReport {
                        downstream: injector_name(cycle.downstream).into(),
                        journey: journey.clone(),
                        cleared_at_s: cycle.cleared_at,
                        recovery_s: checks::recovery_time(self, series, &cycle, &params),
                    });
                }
            }
        }
        out
    }
}

/// The cycles of one fault window: its clear, or each off-edge of its
/// flapping schedule.
fn window_cycles(
    window: &FaultWindow,
    set_at: f64,
    cleared_at: Option<f64>,
    end: f64,
) -> Vec<Cycle> {
    let mut cycles = Vec::new();
    match window.fault.flapping {
        Some(f) if f.period > Duration::ZERO => {
            let period = f.period.as_secs_f64();
            let on = f.duty * period;
            // How long the schedule ran, from the scenario's offsets rather
            // than the applied instants: their few ms of lag could otherwise
            // turn a clear on an on-edge into a spell of zero length, or
            // count an off-edge twice.
            let span = match (cleared_at, window.until) {
                (Some(_), Some(until)) => until.saturating_sub(window.from).as_secs_f64(),
                _ => end - set_at,
            };
            let mut start = 0.0;
            while f.duty < 1.0 && start + on < span - 1e-6 {
                cycles.push(Cycle {
                    downstream: window.injector,
                    cleared_at: set_at + start + on,
                    next_fault_at: Some(set_at + start + period)
                        .filter(|_| start + period < span - 1e-6),
                });
                start += period;
            }
            if let Some(c) = cleared_at {
                // Cleared while on: one more cycle ends at the clear.
                let phase = span % period;
                if phase > 1e-6 && phase <= on + 1e-6 {
                    cycles.push(Cycle {
                        downstream: window.injector,
                        cleared_at: c,
                        next_fault_at: None,
                    });
                }
            }
        }
        _ => {
            if let Some(c) = cleared_at {
                cycles.push(Cycle {
                    downstream: window.injector,
                    cleared_at: c,
                    next_fault_at: None,
                });
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultEvent;
    use crate::load::recorder::LoadRecord;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The shipped flapping scenario with its fault set `lag` seconds late,
    /// as the timeline really applies it.
    fn flapping(lag: f64) -> (Scenario, Observations) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/settlement-accounting-flapping.toml");
        let scenario = Scenario::load(&path, None).expect("shipped scenario");
        let w = &scenario.faults[0];
        let event = |t_s: f64, action: &str| FaultEvent {
            t_s,
            injector: w.injector,
            window: 0,
            action: action.into(),
            fault: w.fault.clone().into(),
            container: None,
        };
        let obs = Observations {
            phases: Vec::new(),
            load: LoadRecord {
                window: Duration::from_secs(1),
                series: Vec::new(),
            },
            injectors: BTreeMap::new(),
            sut: Default::default(),
            faults: vec![event(30.0 + lag, "set"), event(110.0 + lag, "clear")],
            transitions: Vec::new(),
            integrity: Vec::new(),
        };
        (scenario, obs)
    }

    #[test]
    fn a_window_the_fault_flaps_off_in_is_not_failing_throughout() {
        let (scenario, obs) = flapping(0.002);
        let ctx = Context {
            scenario: &scenario,
            obs: &obs,
        };
        let d = Downstream::Accounting;
        // On for 10 s from 30.002 s: the window starting at 40 s still sees
        // the fault at its start, but not for its remaining 998 ms.
        assert!(ctx.hard_failing(d, 40.0));
        assert!(!ctx.failing_throughout(d, 40.0, 41.0));
        assert!(ctx.failing_throughout(d, 39.0, 40.0));
        // Off spell, then on again from 50.002 s.
        assert!(!ctx.failing_throughout(d, 45.0, 46.0));
        assert!(ctx.failing_throughout(d, 51.0, 52.0));
        // An on spell by the schedule, but the window was cleared at 110.002 s.
        assert!(!ctx.failing_throughout(d, 111.0, 112.0));
    }

    #[test]
    fn flapping_cycles_end_at_each_off_edge_and_at_a_clear_while_on() {
        let (scenario, _) = flapping(0.0);
        let window = &scenario.faults[0];
        let cleared = |w: &FaultWindow, set: f64, clear: f64| -> Vec<f64> {
            window_cycles(w, set, Some(clear), 150.0)
                .iter()
                .map(|c| (c.cleared_at * 1000.0).round() / 1000.0)
                .collect()
        };
        // 30 s → 110 s, 10 s on / 10 s off: cleared on an on-edge, so the
        // clear ends no spell, whichever of set and clear lagged more.
        assert_eq!(
            cleared(window, 30.003, 110.001),
            [40.003, 60.003, 80.003, 100.003]
        );
        assert_eq!(
            cleared(window, 30.001, 110.003),
            [40.001, 60.001, 80.001, 100.001]
        );
        // Cleared on an off-edge: that spell ends at the clear, counted once.
        let mut early = window.clone();
        early.until = Some(Duration::from_secs(100));
        assert_eq!(
            cleared(&early, 30.001, 100.003),
            [40.001, 60.001, 80.001, 100.003]
        );
        assert_eq!(
            cleared(&early, 30.003, 100.001),
            [40.003, 60.003, 80.003, 100.001]
        );
        // Cleared mid-spell.
        early.until = Some(Duration::from_secs(95));
        assert_eq!(cleared(&early, 30.0, 95.0), [40.0, 60.0, 80.0, 95.0]);
    }

    #[test]
    fn a_gauge_that_jumps_from_closed_to_half_open_opened_by_then() {
        use crate::observe::sut::BreakerSample;
        let (scenario, mut obs) = flapping(0.0);
        let d = scenario.faults[0].injector;
        let service = crate::platform::JourneyKind::Settlement
            .entry()
            .name()
            .to_string();
        let sample = |t_s: f64, state: BreakerState| BreakerSample {
            t_s,
            service: service.clone(),
            downstream: d,
            state,
        };
        obs.sut.breakers = vec![
            sample(1.0, BreakerState::Closed),
            sample(1.25, BreakerState::HalfOpen),
            sample(1.5, BreakerState::Open),
            sample(1.75, BreakerState::Closed),
        ];
        let ctx = Context {
            scenario: &scenario,
            obs: &obs,
        };
        let gauge = ctx.gauge(d).expect("readings");
        assert_eq!(gauge.opened_at_s, [1.25, 1.5]);
        assert_eq!(gauge.half_open_at_s, [1.25]);
        assert_eq!(gauge.closed_at_s, [1.75]);
    }
}
