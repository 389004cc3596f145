//! The verdict: each check turns observations into pass or fail, with the
//! evidence that decided it. A check that cannot be evaluated (no traffic
//! where it looks, no baseline to compare with) fails as *inconclusive*; it
//! never passes silently.

pub mod checks;
mod gauge;
pub(crate) mod infer;
pub(crate) mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use reference_stack::{Downstream, ServiceKind};
use serde::{Deserialize, Serialize};

use crate::faults::FaultAction;
use crate::load::recorder::{PhaseRecord, SeriesRecord};
use crate::observe::{InjectorObservation, Observations};
use crate::platform::injector_name;
use crate::scenario::{FaultWindow, Scenario};
pub use gauge::Gauge;
use infer::{Attempt, Episodes, Inference, Input, Request, Stated};
pub use plan::{CheckPlan, Plan};

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
    /// A check that could be evaluated: passed or failed, with its evidence.
    pub fn decided(
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

    /// A check that could not be evaluated, and why: it fails.
    pub fn inconclusive(name: &str, kind: &'static str, expected: String, why: String) -> Self {
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
    /// Inferred from outside, or the SUT's own gauge.
    pub source: Source,
    /// How.
    pub method: HistoryMethod,
    /// The episodes.
    #[serde(flatten)]
    pub episodes: Episodes,
}

/// Where a breaker history comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Inferred black-box from requests and arrivals.
    Inferred,
    /// The SUT's breaker gauge.
    Metrics,
}

/// How a breaker history was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryMethod {
    /// Requests matched to arrivals by their ids.
    #[serde(rename = "ids")]
    Ids,
    /// By ids, and by answer times during refuse outages.
    #[serde(rename = "ids+latency")]
    IdsLatency,
    /// Requests matched to arrivals by time.
    #[serde(rename = "timing")]
    Timing,
    /// By time, and by answer times during refuse outages.
    #[serde(rename = "timing+latency")]
    TimingLatency,
    /// The SUT's gauge readings.
    #[serde(rename = "gauge")]
    Gauge,
}

impl HistoryMethod {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ids => "ids",
            Self::IdsLatency => "ids+latency",
            Self::Timing => "timing",
            Self::TimingLatency => "timing+latency",
            Self::Gauge => "gauge",
        }
    }
}

impl Source {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inferred => "inferred",
            Self::Metrics => "metrics",
        }
    }
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

/// Attempts at a downstream per call and per upstream request, in one
/// phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AmplificationRow {
    /// Injector name.
    pub downstream: String,
    /// Phase name.
    pub phase: String,
    /// Requests that reached the injector in the phase (by arrival time).
    pub attempts: u64,
    /// Requests of the journeys reaching it, sent in the phase.
    pub upstream_requests: u64,
    /// attempts ÷ upstream requests (None without upstream requests).
    pub ratio: Option<f64>,
    /// Distinct calls the downstream saw in the phase (None when they
    /// cannot be told).
    #[serde(default)]
    pub calls: Option<u64>,
    /// attempts ÷ calls: what a retry storm shows in, even when a breaker
    /// rejects most upstream requests.
    #[serde(default)]
    pub per_call: Option<f64>,
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
pub fn evaluate(plan: &Plan, obs: &Observations) -> Analysis {
    let ctx = Context::new(plan, obs);
    let checks = plan
        .checks
        .iter()
        .map(|c| c.check.evaluate(&ctx, &c.name))
        .collect();
    Analysis {
        checks,
        breakers: ctx.breaker_reports(),
        recoveries: ctx.recovery_reports(),
        amplification: ctx.amplification(),
    }
}

/// What checks read from: the plan, the run's observations, and what is
/// derived from them once (each faulted downstream's inferred breaker).
pub struct Context<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) scenario: &'a Scenario,
    pub(crate) obs: &'a Observations,
    /// Each faulted downstream's breaker, inferred once.
    inferred: BTreeMap<Downstream, Result<Inference, String>>,
}

impl<'a> Context<'a> {
    /// Reads the run, inferring every faulted downstream's breaker once.
    pub fn new(plan: &'a Plan, obs: &'a Observations) -> Self {
        let scenario = &plan.scenario;
        let mut ctx = Self {
            plan,
            scenario,
            obs,
            inferred: BTreeMap::new(),
        };
        let faulted: std::collections::BTreeSet<Downstream> =
            scenario.faults.iter().map(|f| f.injector).collect();
        ctx.inferred = faulted
            .into_iter()
            .map(|d| (d, ctx.infer(d, None)))
            .collect();
        ctx
    }
}

/// A fault cycle's end: when the fault stopped hitting, and when it started
/// again (None: it did not).
#[derive(Clone, Copy, Debug)]
pub struct Cycle {
    /// The downstream whose fault it is.
    pub downstream: Downstream,
    /// When the fault stopped hitting, seconds from the load start.
    pub cleared_at: f64,
    /// When it came back (None: it did not).
    pub next_fault_at: Option<f64>,
}

impl Context<'_> {
    /// The scenario judged.
    pub fn scenario(&self) -> &Scenario {
        self.scenario
    }

    /// What the run observed.
    pub fn observations(&self) -> &Observations {
        self.obs
    }

    /// The series named `name` (a journey, or `payment.webhook`).
    pub fn series(&self, name: &str) -> Option<&SeriesRecord> {
        self.obs.load.series(name)
    }

    /// Width of the load's windows, seconds.
    pub fn window_s(&self) -> f64 {
        self.obs.load.window.as_secs_f64()
    }

    /// End of the run, seconds from the load start.
    pub fn run_end(&self) -> f64 {
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
    pub fn with_baseline(&self, journey: &str) -> Result<(&SeriesRecord, &PhaseRecord), String> {
        let series = self
            .series(journey)
            .ok_or_else(|| format!("no journey `{journey}` ran"))?;
        let baseline = self
            .baseline(series)
            .ok_or_else(|| format!("{journey} sent no requests in the baseline phase"))?;
        Ok((series, baseline))
    }

    /// When a fault was first set on `downstream`.
    pub fn fault_start(&self, downstream: Downstream) -> Option<f64> {
        self.obs
            .faults
            .iter()
            .find(|e| e.injector == downstream && e.action == FaultAction::Set)
            .map(|e| e.t_s)
    }

    /// Whether a journey's requests enter the stack by `service`.
    fn enters_by(&self, journey: &str, service: ServiceKind) -> bool {
        self.scenario
            .journey(journey)
            .is_some_and(|j| j.kind.entry() == service)
    }

    /// Whether a journey's requests need `downstream` on their request path.
    fn needs(&self, journey: &str, downstream: Downstream) -> bool {
        self.scenario.journey(journey).is_some_and(|j| {
            j.expects.contains(&downstream) || j.kind.downstreams().contains(&downstream)
        })
    }

    /// Series of the journeys whose requests reach `downstream` on their
    /// request path.
    pub fn reaching(&self, downstream: Downstream) -> Vec<&SeriesRecord> {
        self.scenario
            .load
            .journeys
            .iter()
            .filter(|j| self.needs(&j.name, downstream))
            .filter_map(|j| self.series(&j.name))
            .collect()
    }

    /// The on-spells of fault window `i`: from its set to its clear (or the
    /// end), or each on-period of its flapping schedule.
    fn spells(&self, i: usize) -> Vec<(f64, f64)> {
        let event = |action: FaultAction| {
            self.obs
                .faults
                .iter()
                .find(|e| e.window == i && e.action == action)
                .map(|e| e.t_s)
        };
        let Some(set) = event(FaultAction::Set) else {
            return Vec::new();
        };
        let until = event(FaultAction::Clear).unwrap_or(self.run_end());
        match self.scenario.faults[i].fault.flapping {
            Some(f) if f.period > Duration::ZERO => {
                let period = f.period.as_secs_f64();
                let mut spells = Vec::new();
                let mut start = set;
                while start < until {
                    spells.push((start, (start + f.duty * period).min(until)));
                    start += period;
                }
                spells
            }
            _ => vec![(set, until)],
        }
    }

    /// Spells during which `downstream` refused connections.
    pub fn refusing(&self, downstream: Downstream) -> Vec<(f64, f64)> {
        self.scenario
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.injector == downstream
                    && matches!(f.fault.kind, fault_injectors::FaultKind::Refuse)
            })
            .flat_map(|(i, _)| self.spells(i))
            .collect()
    }

    /// The downstream's breaker inferred from outside (once per run, for
    /// every faulted downstream), or why it cannot be.
    pub fn inferred(&self, downstream: Downstream) -> Result<&Inference, String> {
        match self.inferred.get(&downstream) {
            Some(Ok(i)) => Ok(i),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!(
                "no fault was applied to {}",
                injector_name(downstream)
            )),
        }
    }

    /// `service`'s breaker for `downstream` inferred from the requests of
    /// the journeys entering by `service` (None: as [`Self::inferred`]).
    pub fn inferred_via(
        &self,
        downstream: Downstream,
        service: Option<ServiceKind>,
    ) -> Result<std::borrow::Cow<'_, Inference>, String> {
        match service {
            None => self.inferred(downstream).map(std::borrow::Cow::Borrowed),
            Some(s) => self.infer(downstream, Some(s)).map(std::borrow::Cow::Owned),
        }
    }

    /// The upstream requests of the journeys that need `downstream` (and
    /// enter by `service` when one is named).
    fn requests_via(&self, downstream: Downstream, service: Option<ServiceKind>) -> Vec<Request> {
        self.obs
            .evidence
            .requests
            .iter()
            .filter(|r| {
                self.obs
                    .load
                    .series
                    .get(usize::from(r.series))
                    .is_some_and(|s| {
                        s.name == s.journey
                            && self.needs(&s.journey, downstream)
                            && service.is_none_or(|k| self.enters_by(&s.journey, k))
                    })
            })
            .map(|r| Request {
                sent: r.sent_us as f64 / 1e6,
                done: r.done_us as f64 / 1e6,
                answered: r.answered(),
                ok: r.outcome.is_ok(),
                ids: [r.id, r.answer_id],
            })
            .collect()
    }

    /// Why no request of a journey through `service` crossed `downstream`
    /// after its fault, if none did: black-box, its breaker was never seen
    /// under the fault.
    pub fn unobserved(
        &self,
        downstream: Downstream,
        service: Option<ServiceKind>,
    ) -> Option<String> {
        let fault_start = self.fault_start(downstream)?;
        unobserved(
            &self.requests_via(downstream, service),
            fault_start,
            injector_name(downstream),
            service,
        )
    }

    fn infer(
        &self,
        downstream: Downstream,
        service: Option<ServiceKind>,
    ) -> Result<Inference, String> {
        let target = injector_name(downstream);
        let fault_start = self
            .fault_start(downstream)
            .ok_or_else(|| format!("no fault was applied to {target}"))?;
        if let Some(why) = self.obs.evidence.unreadable.first() {
            return Err(format!("the run's records could not be read: {why}"));
        }
        if let Some(lost) = self
            .obs
            .evidence
            .dropped
            .get(&downstream)
            .filter(|n| **n > 0)
        {
            return Err(format!(
                "{target} lost {lost} arrival records before they were read"
            ));
        }
        let requests = self.requests_via(downstream, service);
        if let Some(why) = unobserved(&requests, fault_start, target, service) {
            return Err(why);
        }
        let attempts: Vec<Attempt> = self
            .obs
            .evidence
            .arrivals
            .get(&downstream)
            .map(|a| {
                a.iter()
                    .map(|a| Attempt {
                        at: a.at_s(),
                        end: a.end_s(),
                        id: a.id,
                        failed: a.failed(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stated = self
            .scenario
            .sut
            .breakers
            .get(&downstream)
            .copied()
            .unwrap_or_default();
        let refusing = self.refusing(downstream);
        infer::infer(&Input {
            requests: &requests,
            attempts: &attempts,
            fault_start,
            refusing: &refusing,
            stated: Stated {
                half_open_calls: stated.half_open_calls,
                fast_below: stated.fast_below.map(|d| d.as_secs_f64()),
            },
        })
    }

    /// The downstream's breaker as the SUT's gauge reported it.
    pub fn gauge(&self, downstream: Downstream) -> Gauge {
        gauge::read(self, downstream, None)
    }

    /// The gauge of `service`'s breaker for `downstream` (None: as
    /// [`Self::gauge`]).
    pub fn gauge_of(&self, downstream: Downstream, service: Option<ServiceKind>) -> Gauge {
        gauge::read(self, downstream, service)
    }

    /// Fault cycles of `downstream` (or of every injector): each clear, and
    /// each off-edge of a flapping fault, with when the fault came back.
    pub fn cycles(&self, downstream: Option<Downstream>) -> Vec<Cycle> {
        let events = &self.obs.faults;
        let mut cycles = Vec::new();
        for (i, window) in self.scenario.faults.iter().enumerate() {
            if downstream.is_some_and(|d| d != window.injector) {
                continue;
            }
            let Some(set) = events
                .iter()
                .find(|e| e.window == i && e.action == FaultAction::Set)
            else {
                continue;
            };
            let cleared = events
                .iter()
                .find(|e| e.window == i && e.action == FaultAction::Clear)
                .map(|e| e.t_s);
            cycles.extend(window_cycles(window, set.t_s, cleared, self.run_end()));
        }
        // A cycle ends where the next fault on the same downstream begins.
        let starts: Vec<(Downstream, f64)> = events
            .iter()
            .filter(|e| e.action == FaultAction::Set)
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
        let mut out = Vec::new();
        for (d, inferred) in &self.inferred {
            if let Ok(i) = inferred {
                out.push(BreakerReport {
                    downstream: injector_name(*d).into(),
                    source: Source::Inferred,
                    method: match (i.method, i.fast_below) {
                        (infer::Method::Ids, None) => HistoryMethod::Ids,
                        (infer::Method::Ids, Some(_)) => HistoryMethod::IdsLatency,
                        (infer::Method::Timing, None) => HistoryMethod::Timing,
                        (infer::Method::Timing, Some(_)) => HistoryMethod::TimingLatency,
                    },
                    episodes: i.episodes.clone(),
                });
            }
            if let Gauge::Read { episodes, .. } = self.gauge(*d) {
                out.push(BreakerReport {
                    downstream: injector_name(*d).into(),
                    source: Source::Metrics,
                    method: HistoryMethod::Gauge,
                    episodes,
                });
            }
        }
        out
    }

    /// Attempts at the downstream in `[from, until)` by arrival instant,
    /// and the calls among them: distinct ids first seen then where its
    /// arrivals carry ids, else the upstream requests minus those the
    /// inference found short-circuited (None when neither can tell).
    pub fn attempts_and_calls(
        &self,
        downstream: Downstream,
        injector: &InjectorObservation,
        (from, until): (f64, f64),
        upstream: u64,
    ) -> (u64, Option<(u64, &'static str)>) {
        let records = self.obs.evidence.arrivals.get(&downstream);
        let attempts = match records {
            Some(r) => r
                .iter()
                .filter(|a| a.at_s() >= from && a.at_s() < until)
                .count() as u64,
            None => injector.arrivals(from, until),
        };
        let with_ids = records.map_or_else(|| injector.has_ids(), |r| r.iter().any(|a| a.id != 0));
        if with_ids {
            let calls = match records {
                Some(r) => {
                    let mut seen = std::collections::HashSet::new();
                    r.iter()
                        .filter(|a| a.id != 0 && seen.insert(a.id))
                        .filter(|a| a.at_s() >= from && a.at_s() < until)
                        .count() as u64
                }
                None => injector.fresh(from, until),
            };
            return (attempts, Some((calls, "distinct ids")));
        }
        let calls = match self.inferred(downstream) {
            Ok(i) => {
                let short = i
                    .short_at
                    .iter()
                    .filter(|t| **t >= from && **t < until)
                    .count() as u64;
                Some((
                    upstream.saturating_sub(short),
                    "requests not short-circuited",
                ))
            }
            Err(_) if self.fault_start(downstream).is_none() => Some((
                upstream,
                "upstream requests (no fault, no breaker activity)",
            )),
            Err(_) => None,
        };
        (attempts, calls)
    }

    /// Attempts per call and per upstream request for every downstream
    /// some journey reaches, in every phase.
    fn amplification(&self) -> Vec<AmplificationRow> {
        let mut rows = Vec::new();
        for (downstream, injector) in &self.obs.injectors {
            let series = self.reaching(*downstream);
            if series.is_empty() {
                continue;
            }
            for phase in &self.scenario.phases {
                let span = (phase.from.as_secs_f64(), phase.until.as_secs_f64());
                let upstream: u64 = series
                    .iter()
                    .filter_map(|s| s.phases.get(&phase.name))
                    .map(|r| r.requests)
                    .sum();
                let (attempts, calls) =
                    self.attempts_and_calls(*downstream, injector, span, upstream);
                rows.push(AmplificationRow {
                    downstream: injector.name.clone(),
                    phase: phase.name.clone(),
                    attempts,
                    upstream_requests: upstream,
                    ratio: (upstream > 0).then(|| attempts as f64 / upstream as f64),
                    calls: calls.map(|(n, _)| n),
                    per_call: calls
                        .filter(|(n, _)| *n > 0)
                        .map(|(n, _)| attempts as f64 / n as f64),
                })
            }
        }
        rows
    }

    fn recovery_reports(&self) -> Vec<RecoveryReport> {
        self.plan
            .checks
            .iter()
            .flat_map(|c| c.check.recoveries(self))
            .collect()
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

/// Why `requests` say nothing about `target`'s breaker under a fault that
/// started at `fault_start`, if none was sent after it.
fn unobserved(
    requests: &[Request],
    fault_start: f64,
    target: &str,
    service: Option<ServiceKind>,
) -> Option<String> {
    if requests.iter().any(|r| r.sent >= fault_start) {
        return None;
    }
    Some(match service {
        Some(s) => format!(
            "no journey enters by {} with {target} on its request path after the fault, so that breaker cannot be inferred from outside",
            s.name()
        ),
        None => format!("no journey reaching {target} sent requests after its fault"),
    })
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
    fn flapping(lag: f64) -> (Plan, Observations) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/settlement-accounting-flapping.toml");
        let plan = Plan::load(&path, None).expect("shipped scenario");
        let w = &plan.scenario.faults[0];
        let event = |t_s: f64, action: FaultAction| FaultEvent {
            t_s,
            injector: w.injector,
            window: 0,
            action,
            fault: w.fault.clone().into(),
            container: None,
        };
        let obs = Observations {
            phases: Vec::new(),
            load: LoadRecord {
                window: Duration::from_secs(1),
                series: Vec::new(),
            },
            evidence: Default::default(),
            injectors: BTreeMap::new(),
            sut: Default::default(),
            faults: vec![
                event(30.0 + lag, FaultAction::Set),
                event(110.0 + lag, FaultAction::Clear),
            ],
            transitions: Vec::new(),
            integrity: Vec::new(),
        };
        (plan, obs)
    }

    #[test]
    fn a_flapping_fault_is_on_in_spells_until_its_clear() {
        let (plan, obs) = flapping(0.002);
        let ctx = Context::new(&plan, &obs);
        // On 10 s of every 20 s from 30.002 s; cleared at 110.002 s.
        let spells = ctx.spells(0);
        assert_eq!(spells.len(), 4, "{spells:?}");
        for (k, (from, until)) in spells.iter().enumerate() {
            assert!(
                (from - (30.002 + 20.0 * k as f64)).abs() < 1e-9,
                "{spells:?}"
            );
            assert!((until - from - 10.0).abs() < 1e-9, "{spells:?}");
        }
    }

    #[test]
    fn flapping_cycles_end_at_each_off_edge_and_at_a_clear_while_on() {
        let (plan, _) = flapping(0.0);
        let window = &plan.scenario.faults[0];
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
        use crate::observe::sut::{BreakerSample, BreakerState};
        let (plan, mut obs) = flapping(0.0);
        let d = plan.scenario.faults[0].injector;
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
        let ctx = Context::new(&plan, &obs);
        let Gauge::Read {
            episodes: gauge, ..
        } = ctx.gauge(d)
        else {
            panic!("readings");
        };
        assert_eq!(gauge.opened_at_s, [1.25, 1.5]);
        assert_eq!(gauge.half_open_at_s, [1.25]);
        assert_eq!(gauge.closed_at_s, [1.75]);
    }

    /// The flapping scenario with gauge readings of `labels` seen.
    fn seen(labels: &[&str], gauge: crate::scenario::GaugeUse) -> (Plan, Observations) {
        let (mut plan, mut obs) = flapping(0.0);
        plan.scenario.sut.gauge = gauge;
        obs.sut.gauge_seen = crate::observe::sut::GaugeSeen {
            scrapes: 12,
            with_gauge: u64::from(!labels.is_empty()),
            metrics: ["circuit_breaker_state", "http_requests_total"]
                .map(String::from)
                .into(),
            labels: ["downstream"].map(String::from).into(),
            unmatched: labels.iter().map(|l| l.to_string()).collect(),
        };
        (plan, obs)
    }

    #[test]
    fn a_gauge_whose_labels_name_no_injector_makes_breaker_checks_inconclusive() {
        let (plan, obs) = seen(&["accounts"], crate::scenario::GaugeUse::IfPresent);
        let ctx = Context::new(&plan, &obs);
        let d = Downstream::Accounting;
        let Gauge::Unmatched(why) = ctx.gauge(d) else {
            panic!("{:?}", ctx.gauge(d));
        };
        assert!(why.contains("accounts"), "{why}");
        assert!(why.contains("downstream_names"), "{why}");
        let check = plan
            .checks
            .iter()
            .find(|c| c.check.kind() == "breaker_opens")
            .expect("the flapping scenario judges its breaker");
        let result = check.check.evaluate(&ctx, &check.name);
        assert!(result.inconclusive && !result.passed, "{result:?}");
        assert!(result.observed.contains("accounts"), "{result:?}");
    }

    #[test]
    fn a_required_gauge_that_never_appeared_is_inconclusive_and_an_optional_one_is_not() {
        let d = Downstream::Accounting;
        let (plan, obs) = seen(&[], crate::scenario::GaugeUse::Required);
        let ctx = Context::new(&plan, &obs);
        let Gauge::Unmatched(why) = ctx.gauge(d) else {
            panic!("{:?}", ctx.gauge(d));
        };
        assert!(why.contains("12 scrapes"), "{why}");
        assert!(why.contains("http_requests_total"), "{why}");
        let (plan, obs) = seen(&[], crate::scenario::GaugeUse::IfPresent);
        let ctx = Context::new(&plan, &obs);
        assert!(
            matches!(ctx.gauge(d), Gauge::Absent(_)),
            "{:?}",
            ctx.gauge(d)
        );
        let (plan, obs) = seen(&["accounts"], crate::scenario::GaugeUse::Off);
        let ctx = Context::new(&plan, &obs);
        assert_eq!(ctx.gauge(d), Gauge::Off);
    }

    #[test]
    fn gauge_readings_count_readings_not_state_changes() {
        use crate::observe::sut::{BreakerSample, BreakerState};
        let (plan, mut obs) = flapping(0.0);
        let d = plan.scenario.faults[0].injector;
        let service = crate::platform::JourneyKind::Settlement
            .entry()
            .name()
            .to_string();
        obs.sut.breakers = (0..40)
            .map(|i| BreakerSample {
                t_s: f64::from(i) * 0.25,
                service: service.clone(),
                downstream: d,
                state: if (10..20).contains(&i) {
                    BreakerState::Open
                } else {
                    BreakerState::Closed
                },
            })
            .collect();
        let ctx = Context::new(&plan, &obs);
        let Gauge::Read {
            episodes, readings, ..
        } = ctx.gauge(d)
        else {
            panic!("readings");
        };
        assert_eq!(readings, 40);
        assert_eq!(episodes.opened_at_s, [2.5]);
        assert_eq!(episodes.closed_at_s, [5.0]);
    }
}
