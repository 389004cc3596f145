//! Observation: everything a run saw, on one clock (seconds from the load
//! start) — the load's measurements, each injector's arrivals, the SUT's own
//! breaker and readiness readings, the fault timeline as applied, and (for
//! the embedded stack) the services' logged breaker transitions.

pub(crate) mod arrivals;
pub(crate) mod integrity;
pub mod sut;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fault_injectors::{BucketReport, Counters};
use reference_stack::Downstream;
use serde::{Deserialize, Serialize};

use crate::clock::RunClock;
use crate::faults::FaultEvent;
use crate::load::recorder::LoadRecord;
use crate::load::requests::RequestRecord;
use crate::load::series_of;
use crate::scenario::{Phase, Scenario};
use crate::stack::Stack;
use arrivals::{Arrival, ArrivalFiles};
use integrity::IntegrityResult;
use sut::SutSamples;

/// Arrivals at one injector.
#[derive(Clone, Debug, Serialize)]
pub struct InjectorObservation {
    /// Injector name.
    pub name: String,
    /// Bucket width, seconds.
    pub width_s: f64,
    /// Non-empty buckets, `start_s` on the run's clock.
    pub buckets: Vec<BucketReport>,
    /// Totals (arrival instants on the injectors' own clock).
    pub counters: Counters,
}

impl InjectorObservation {
    /// Arrivals in `[from, until)` seconds.
    pub fn arrivals(&self, from: f64, until: f64) -> u64 {
        self.buckets
            .iter()
            .filter(|b| b.start_s >= from - 1e-9 && b.start_s < until - 1e-9)
            .map(BucketReport::total)
            .sum()
    }

    /// Arrivals in `[from, until)` carrying an id never seen before: new
    /// calls, not retries.
    pub fn fresh(&self, from: f64, until: f64) -> u64 {
        self.buckets
            .iter()
            .filter(|b| b.start_s >= from - 1e-9 && b.start_s < until - 1e-9)
            .map(|b| u64::from(b.fresh))
            .sum()
    }

    /// Whether arrivals carry business ids, so new calls can be told from
    /// retries.
    pub fn has_ids(&self) -> bool {
        self.buckets.iter().any(|b| b.with_ids > 0)
    }
}

/// A breaker transition the SUT logged (embedded stack: ground truth).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedTransition {
    /// Seconds from the load start.
    pub t_s: f64,
    /// The service.
    pub service: String,
    /// The downstream.
    #[serde(with = "crate::platform::injector_serde")]
    pub downstream: Downstream,
    /// State before.
    pub from: sut::BreakerState,
    /// State after.
    pub to: sut::BreakerState,
}

/// Everything one run observed.
#[derive(Clone, Debug)]
pub struct Observations {
    /// The phases.
    pub phases: Vec<Phase>,
    /// The load's measurements.
    pub load: LoadRecord,
    /// Per-request and per-arrival records of the faulted downstreams.
    pub evidence: Evidence,
    /// Arrivals per injector.
    pub injectors: BTreeMap<Downstream, InjectorObservation>,
    /// The SUT's own readings.
    pub sut: SutSamples,
    /// The fault timeline as applied.
    pub faults: Vec<FaultEvent>,
    /// Breaker transitions logged by the SUT (embedded only).
    pub transitions: Vec<LoggedTransition>,
    /// Integrity lookups, per payment journey.
    pub integrity: Vec<IntegrityResult>,
}

/// The per-request and per-arrival records breaker inference correlates:
/// every arrival at a faulted downstream, and every request of the
/// journeys whose requests reach one.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// Arrivals per faulted (or amplification-checked) downstream, in
    /// arrival order.
    pub arrivals: BTreeMap<Downstream, Vec<Arrival>>,
    /// Arrival records an injector lost (not read in time).
    pub dropped: BTreeMap<Downstream, u64>,
    /// Requests of the journeys reaching a faulted downstream (series
    /// indices as in the load record), in completion order.
    pub requests: Vec<RequestRecord>,
    /// Records that could not be read, and why.
    pub unreadable: Vec<String>,
}

impl Evidence {
    /// Reads what `scenario`'s faults need from the run's files, and the
    /// arrivals at the `counted` downstreams (whose attempts a check counts).
    pub fn load(
        scenario: &Scenario,
        counted: &[Downstream],
        arrivals: &ArrivalFiles,
        requests: &Path,
    ) -> Self {
        let mut evidence = Evidence {
            dropped: arrivals.dropped.clone(),
            ..Evidence::default()
        };
        let faulted: BTreeSet<Downstream> = scenario.faults.iter().map(|f| f.injector).collect();
        // Amplification is counted per arrival too: buckets on the
        // injector's clock straddle phase edges.
        let read: BTreeSet<Downstream> = faulted.iter().chain(counted).copied().collect();
        for d in &read {
            match arrivals.read(*d, f64::NEG_INFINITY) {
                Ok(a) => {
                    evidence.arrivals.insert(*d, a);
                }
                Err(e) => evidence.unreadable.push(format!(
                    "arrivals at {}: {e}",
                    crate::platform::injector_name(*d)
                )),
            }
        }
        let (specs, _) = series_of(&scenario.load);
        let wanted: BTreeSet<u16> = specs
            .iter()
            .enumerate()
            .filter(|(_, spec)| {
                scenario.journey(&spec.journey).is_some_and(|j| {
                    faulted
                        .iter()
                        .any(|d| j.kind.downstreams().contains(d) || j.expects.contains(d))
                })
            })
            .filter_map(|(i, _)| u16::try_from(i).ok())
            .collect();
        match crate::spill::read::<RequestRecord>(requests, |r| wanted.contains(&r.series)) {
            Ok(r) => evidence.requests = r,
            Err(e) => evidence.unreadable.push(format!("request records: {e}")),
        }
        evidence
    }
}

/// Reads every injector's arrivals, converted to the run's clock.
pub async fn injectors(
    stack: &Stack,
    clock: &RunClock,
) -> BTreeMap<Downstream, InjectorObservation> {
    let mut seen = BTreeMap::new();
    for injector in &stack.injectors {
        let Some(downstream) = crate::platform::downstream_named(injector.name()) else {
            continue;
        };
        let Some(page) = injector.buckets().await else {
            continue;
        };
        let buckets = page
            .buckets
            .into_iter()
            .map(|mut b| {
                b.start_s = clock.injector_to_run(b.start_s);
                b
            })
            .collect();
        seen.insert(
            downstream,
            InjectorObservation {
                name: injector.name().to_string(),
                width_s: page.width_ms as f64 / 1000.0,
                buckets,
                counters: injector.counters().await,
            },
        );
    }
    seen
}

/// The SUT's logged transitions on the run's clock.
pub fn transitions(stack: &Stack, clock: &RunClock) -> Vec<LoggedTransition> {
    stack
        .transitions()
        .into_iter()
        .map(|t| LoggedTransition {
            t_s: clock.seconds(t.at),
            service: t.service.name().into(),
            downstream: t.downstream,
            from: t.from,
            to: t.to,
        })
        .collect()
}
