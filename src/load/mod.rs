//! Load: goose drives the scenario's journeys at their rates; every request
//! is measured from its intended start and recorded per series, phase and
//! window.

pub(crate) mod acks;
pub(crate) mod client;
pub mod driver;
pub mod journeys;
pub(crate) mod progress;
pub mod recorder;
pub mod requests;
pub mod schedule;

use std::sync::Arc;

use crate::load::acks::AckRecord;
use crate::load::requests::RequestRecord;
use crate::platform::JourneyKind;
use crate::scenario::{Journey, LoadPlan, Scenario};
use crate::spill::Spill;
use driver::{Lane, LoadSettings};
use recorder::{Recorder, SeriesSpec};
use schedule::Slice;

/// The series of a load plan: one per journey, plus `<name>.webhook` for a
/// payment journey with webhooks. Returns the specs and, per journey, its
/// series index and webhook series index.
pub fn series_of(plan: &LoadPlan) -> (Vec<SeriesSpec>, Vec<(usize, Option<usize>)>) {
    let mut specs: Vec<SeriesSpec> = plan
        .journeys
        .iter()
        .map(|j| SeriesSpec {
            name: j.name.clone(),
            journey: j.name.clone(),
            kind: j.kind,
        })
        .collect();
    let mut lanes = Vec::new();
    for (i, j) in plan.journeys.iter().enumerate() {
        let webhook = (j.kind == JourneyKind::Payment && j.webhook).then(|| {
            specs.push(SeriesSpec {
                name: format!("{}.webhook", j.name),
                journey: j.name.clone(),
                kind: j.kind,
            });
            specs.len() - 1
        });
        lanes.push((i, webhook));
    }
    (specs, lanes)
}

/// The lanes of `scenario`'s journeys, in order, each sending to the base
/// URL `target` gives it.
pub fn lanes(scenario: &Scenario, mut target: impl FnMut(&Journey) -> String) -> Vec<Lane> {
    let (_, lane_series) = series_of(&scenario.load);
    scenario
        .load
        .journeys
        .iter()
        .zip(lane_series)
        .map(|(journey, (index, webhook_series))| Lane {
            journey: journey.clone(),
            index,
            target: target(journey),
            series: index,
            webhook_series,
        })
        .collect()
}

/// The load settings of `scenario` for `slice`, spilling request records
/// to `requests` and acknowledgements to `acks`.
pub fn settings(
    scenario: &Scenario,
    slice: Slice,
    requests: Arc<Spill<RequestRecord>>,
    acks: Arc<Spill<AckRecord>>,
) -> LoadSettings {
    LoadSettings {
        model: scenario.load.model,
        duration: scenario.duration,
        timeout: scenario.load.timeout,
        max_lag: scenario.load.max_lag,
        requests: Some(requests),
        acks: Some(acks),
        slice,
    }
}

/// A recorder for `scenario`'s series: the run's own (`forwarding` false)
/// or a worker's, which hands what it records over raw.
pub fn recorder(scenario: &Scenario, forwarding: bool) -> Recorder {
    let (specs, _) = series_of(&scenario.load);
    let (phases, window, timeout) = (
        scenario.phases.clone(),
        scenario.load.window,
        scenario.load.timeout,
    );
    if forwarding {
        Recorder::forwarding(specs, phases, window, timeout)
    } else {
        Recorder::new(specs, phases, window, timeout)
    }
}
