//! Observation: everything a run saw, on one clock (seconds from the load
//! start) — the load's measurements, each injector's arrivals, the SUT's own
//! breaker and readiness readings, the fault timeline as applied, and (for
//! the embedded stack) the services' logged breaker transitions.

pub mod integrity;
pub mod sut;

use std::collections::BTreeMap;

use fault_injectors::{BucketReport, Counters};
use reference_stack::Downstream;
use serde::{Deserialize, Serialize};

use crate::clock::RunClock;
use crate::faults::FaultEvent;
use crate::load::recorder::LoadRecord;
use crate::scenario::Phase;
use crate::stack::Stack;
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
    pub from: String,
    /// State after.
    pub to: String,
}

/// Everything one run observed.
#[derive(Clone, Debug)]
pub struct Observations {
    /// The phases.
    pub phases: Vec<Phase>,
    /// The load's measurements.
    pub load: LoadRecord,
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
                b.start_s = clock.from_injector(b.start_s);
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
            from: t.from.as_str().into(),
            to: t.to.as_str().into(),
        })
        .collect()
}
