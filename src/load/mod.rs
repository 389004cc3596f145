//! Load: goose drives the scenario's journeys at their rates; every request
//! is measured from its intended start and recorded per series, phase and
//! window.

pub mod client;
pub mod driver;
pub mod journeys;
pub mod progress;
pub mod recorder;
pub mod requests;
pub mod schedule;

use crate::platform::JourneyKind;
use crate::scenario::LoadPlan;
use recorder::SeriesSpec;

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
