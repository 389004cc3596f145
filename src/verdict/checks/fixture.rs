//! Synthetic runs for the checks' unit tests: a plan from a few lines of
//! scenario, and observations made with the recorder and record types a
//! real run uses — payments every 100 ms (each with its own `order_no`),
//! dashboards every 500 ms, order-service failing from 10 s to 20 s.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fault_injectors::observe::CellReport;
use fault_injectors::{BucketReport, Counters};
use reference_stack::Downstream;

use crate::faults::{FaultAction, FaultEvent};
use crate::load::recorder::{Outcome, Recorder};
use crate::load::requests::RequestRecord;
use crate::load::series_of;
use crate::observe::arrivals::Arrival;
use crate::observe::sut::{BreakerSample, BreakerState};
use crate::observe::{Evidence, InjectorObservation, Observations};
use crate::verdict::{CheckResult, Context, Plan};

/// Every fixture's scenario; checks are appended.
const BASE: &str = r#"
name = "fixture"
duration = "30s"

[stack]
time_scale = 0.01

[load]
window = "1s"
timeout = "5s"
[[load.journeys]]
kind = "payment"
rate = 10
[[load.journeys]]
kind = "dashboard"
rate = 2

[[faults]]
injector = "order-service"
from = "10s"
until = "20s"
fault = { kind = "status", code = 503 }
"#;

/// When the payments' breaker (at order-service) opened, probed and closed.
#[derive(Clone, Debug, Default)]
pub(super) struct Story {
    /// When it opened (None: never; calls fail until the fault clears).
    pub(super) opens: Option<f64>,
    /// Half-open probes: (instant, calls, succeeded); each probe call is
    /// one attempt lasting `probe_took`.
    pub(super) probes: Vec<(f64, u32, bool)>,
    /// How long a probe call takes.
    pub(super) probe_took: f64,
    /// When it closed again (requests reach it from then on).
    pub(super) closes: Option<f64>,
}

/// A run being made up.
pub(super) struct Fixture {
    plan: Plan,
    recorder: Recorder,
    requests: Vec<RequestRecord>,
    arrivals: Vec<Arrival>,
    obs: Observations,
}

impl Fixture {
    /// A run of the base scenario with these `[[checks]]`, the fault set at
    /// 10 s and cleared at 20 s.
    pub(super) fn new(checks: &str) -> Self {
        let text = format!("{BASE}\n{checks}");
        let plan = Plan::parse(Path::new("fixture.toml"), &text, None)
            .unwrap_or_else(|e| panic!("the fixture does not load:\n{e}"));
        let (specs, _) = series_of(&plan.scenario.load);
        let recorder = Recorder::new(
            specs,
            plan.scenario.phases.clone(),
            plan.scenario.load.window,
            plan.scenario.load.timeout,
        );
        let fault = &plan.scenario.faults[0];
        let event = |t_s: f64, action: FaultAction| FaultEvent {
            t_s,
            injector: fault.injector,
            window: 0,
            action,
            fault: fault.fault.clone().into(),
            container: None,
        };
        let obs = Observations {
            phases: plan.scenario.phases.clone(),
            load: Recorder::new(
                Vec::new(),
                Vec::new(),
                Duration::from_secs(1),
                Duration::ZERO,
            )
            .finish(),
            evidence: Evidence::default(),
            injectors: BTreeMap::new(),
            sut: Default::default(),
            faults: vec![
                event(10.0, FaultAction::Set),
                event(20.0, FaultAction::Clear),
            ],
            transitions: Vec::new(),
            integrity: Vec::new(),
        };
        Self {
            plan,
            recorder,
            requests: Vec::new(),
            arrivals: Vec::new(),
            obs,
        }
    }

    /// One request of series `series` sent at `at`, answered after `took`.
    pub(super) fn request(&mut self, series: usize, at: f64, took: f64, ok: bool, id: u64) {
        let outcome = if ok {
            Outcome::Ok(200)
        } else {
            Outcome::Status(503)
        };
        self.recorder.record(
            series,
            Duration::from_secs_f64(at),
            Duration::ZERO,
            Duration::from_secs_f64(took),
            &outcome,
        );
        let us = |s: f64| (s * 1e6).round() as i64;
        self.requests.push(RequestRecord {
            series: series as u16,
            intended_us: us(at),
            sent_us: us(at),
            done_us: us(at + took),
            outcome,
            id,
            answer_id: 0,
        });
    }

    /// One attempt at order-service.
    pub(super) fn arrival(&mut self, at: f64, took: f64, id: u64, failed: bool) {
        let us = |s: f64| (s * 1e6).round() as i64;
        self.arrivals.push(Arrival {
            seq: self.arrivals.len() as u64,
            at_us: us(at),
            end_us: us(at + took),
            id,
            outcome: if failed { 503 } else { 0 },
            answered: true,
        });
    }

    /// Payments every 100 ms for the whole run, each one call of
    /// `attempts` attempts 10 ms apart while the fault fails them,
    /// short-circuited while the breaker is open as `story` tells; and
    /// dashboards every 500 ms, always fine.
    pub(super) fn payments(&mut self, story: &Story, attempts: u32) {
        for k in 0..300u64 {
            let t = k as f64 * 0.1;
            let id = k + 1;
            let probe = story
                .probes
                .iter()
                .find(|(at, calls, _)| t + 1e-9 >= *at && t < at + 0.1 * f64::from(*calls) - 1e-9);
            let open = story.opens.is_some_and(|o| t >= o) && story.closes.is_none_or(|c| t < c);
            let failing = (10.0..20.0).contains(&t);
            match (open, probe) {
                (true, None) => self.request(0, t, 0.001, false, id),
                (_, Some(&(_, _, ok))) => {
                    let took = story.probe_took.max(0.001);
                    self.arrival(t + 0.001, took, id, !ok);
                    self.request(0, t, took + 0.002, ok, id);
                }
                (false, None) => self.call(t, id, if failing { attempts } else { 1 }, failing),
            }
        }
        for k in 0..60u64 {
            self.request(1, k as f64 * 0.5, 0.005, true, 0);
        }
    }

    /// A payment sent at `t` that reached order-service in `attempts`
    /// attempts 10 ms apart, failing or not.
    fn call(&mut self, t: f64, id: u64, attempts: u32, failed: bool) {
        for a in 0..attempts {
            self.arrival(t + 0.001 + 0.01 * f64::from(a), 0.001, id, failed);
        }
        let took = 0.002 + 0.01 * f64::from(attempts.saturating_sub(1));
        self.request(0, t, took, !failed, id);
    }

    /// The SUT's gauge for order-service at payment-gateway: `states`
    /// readings every 250 ms, each state holding from its instant on.
    pub(super) fn gauge(&mut self, states: &[(f64, BreakerState)]) {
        self.gauge_of("payment-gateway", states);
    }

    /// The gauge of `service`'s breaker on order-service, as [`Self::gauge`].
    pub(super) fn gauge_of(&mut self, service: &str, states: &[(f64, BreakerState)]) {
        let mut t = 0.0;
        while t < 30.0 {
            let state = states
                .iter()
                .rev()
                .find(|(at, _)| *at <= t)
                .map_or(BreakerState::Closed, |(_, s)| *s);
            self.obs.sut.breakers.push(BreakerSample {
                t_s: t,
                service: service.into(),
                downstream: Downstream::Order,
                state,
            });
            t += 0.25;
        }
        self.obs.sut.gauge_seen.scrapes = 120;
        self.obs.sut.gauge_seen.with_gauge = 120;
    }

    /// What the injectors and the SUT reported besides arrivals.
    pub(super) fn observations(&mut self) -> &mut Observations {
        &mut self.obs
    }

    /// The arrivals so far, to take some away.
    pub(super) fn arrivals(&mut self) -> &mut Vec<Arrival> {
        &mut self.arrivals
    }

    /// Judges the run with the check named `name`.
    pub(super) fn judge(mut self, name: &str) -> CheckResult {
        self.obs.load = self.recorder.finish();
        self.requests.sort_by_key(|r| r.done_us);
        self.arrivals.sort_by_key(|a| a.at_us);
        let mut seen = std::collections::BTreeSet::new();
        let buckets = self
            .arrivals
            .iter()
            .map(|a| BucketReport {
                index: (a.at_us / 10_000) as u64,
                start_s: (a.at_us / 10_000) as f64 * 0.01,
                open: false,
                counts: vec![CellReport {
                    route: "POST /api/v1/orders".into(),
                    outcome: if a.failed() { "status_503" } else { "served" }.into(),
                    count: 1,
                }],
                delayed: 0,
                with_ids: u32::from(a.id != 0),
                fresh: u32::from(a.id != 0 && seen.insert(a.id)),
            })
            .collect();
        let counters = self
            .obs
            .injectors
            .remove(&Downstream::Order)
            .map(|i| i.counters)
            .unwrap_or_default();
        self.obs.injectors.insert(
            Downstream::Order,
            InjectorObservation {
                name: "order-service".into(),
                width_s: 0.01,
                buckets,
                counters: Counters {
                    attempts: self.arrivals.len() as u64,
                    ..counters
                },
            },
        );
        self.obs
            .evidence
            .arrivals
            .insert(Downstream::Order, self.arrivals);
        self.obs.evidence.requests = self.requests;
        let ctx = Context::new(&self.plan, &self.obs);
        let check = self
            .plan
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}"));
        check.check.evaluate(&ctx, &check.name)
    }
}

/// How a judged check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// Passed.
    Pass,
    /// Failed, decided.
    Fail,
    /// Could not be evaluated.
    Inconclusive,
}

/// Whether `result` came out as `expect`, with `words` in what it observed.
pub(super) fn assert_outcome(case: &str, result: &CheckResult, expect: Expect, words: &str) {
    let got = match (result.passed, result.inconclusive) {
        (true, _) => Expect::Pass,
        (false, false) => Expect::Fail,
        (false, true) => Expect::Inconclusive,
    };
    assert_eq!(got, expect, "{case}: {result:#?}");
    assert!(
        result.observed.contains(words),
        "{case}: `{words}` not in `{}`\n{result:#?}",
        result.observed
    );
}
