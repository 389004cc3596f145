//! The SUT's own breaker gauge for one downstream. A gauge that was asked
//! for but matches nothing never disappears silently: the breaker checks
//! say so, naming what the metrics held.

use reference_stack::{Downstream, ServiceKind};

use super::Context;
use super::infer::Episodes;
use crate::observe::sut::BreakerState;
use crate::platform::injector_name;
use crate::scenario::GaugeUse;

/// What the gauge says of one downstream's breaker.
#[derive(Clone, Debug, PartialEq)]
pub enum Gauge {
    /// Not read (`[sut] metrics = false`).
    Off,
    /// The SUT exposes no breaker gauge for it: black-box only (why).
    Absent(String),
    /// The gauge's history.
    Read {
        /// Its episodes.
        episodes: Episodes,
        /// The service whose breaker it is.
        service: String,
        /// Readings taken.
        readings: usize,
    },
    /// Asked for (or present) but no sample names the downstream: the
    /// breaker checks cannot be trusted to what it says (why).
    Unmatched(String),
}

/// Reads the gauge of `downstream`'s breaker in `service` — or, when none
/// is named, in a service a journey reaching it enters by (several services
/// may call it).
pub(super) fn read(
    ctx: &Context<'_>,
    downstream: Downstream,
    service: Option<ServiceKind>,
) -> Gauge {
    let plan = &ctx.scenario.sut;
    if plan.gauge == GaugeUse::Off {
        return Gauge::Off;
    }
    let samples = &ctx.obs.sut.breakers;
    let mut services: Vec<&str> = samples
        .iter()
        .filter(|s| s.downstream == downstream)
        .filter(|s| service.is_none_or(|k| s.service == k.name()))
        .map(|s| s.service.as_str())
        .collect();
    services.sort_unstable();
    services.dedup();
    let on_path: Vec<&str> = ctx
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
    let Some(service) = services
        .iter()
        .copied()
        .find(|s| on_path.contains(s))
        .or_else(|| services.first().copied())
    else {
        return missing(ctx, downstream);
    };
    let mut readings: Vec<_> = samples
        .iter()
        .filter(|s| s.downstream == downstream && s.service == service)
        .collect();
    readings.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let mut episodes = Episodes::default();
    let mut state = BreakerState::Closed;
    for s in &readings {
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
    Gauge::Read {
        episodes,
        service: service.to_string(),
        readings: readings.len(),
    }
}

/// No sample for the downstream: why, and whether that is a gap in the
/// evidence or just a SUT without the gauge.
fn missing(ctx: &Context<'_>, downstream: Downstream) -> Gauge {
    let plan = &ctx.scenario.sut;
    let seen = &ctx.obs.sut.gauge_seen;
    let target = injector_name(downstream);
    let list = |names: &std::collections::BTreeSet<String>| -> String {
        if names.is_empty() {
            "none".into()
        } else {
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    };
    if seen.with_gauge > 0 && !seen.unmatched.is_empty() {
        return Gauge::Unmatched(format!(
            "the gauge `{}` has no sample for {target}: its label `{}` took the values {} (labels seen: {}); name the injector with [sut] downstream_names, e.g. downstream_names = {{ \"{}\" = \"{target}\" }}",
            plan.breaker_metric,
            plan.downstream_label,
            list(&seen.unmatched),
            list(&seen.labels),
            seen.unmatched.iter().next().map_or("…", String::as_str),
        ));
    }
    if seen.with_gauge > 0 && !seen.labels.contains(&plan.downstream_label) {
        return Gauge::Unmatched(format!(
            "the gauge `{}` has no label `{}` (labels seen: {}); set [sut] downstream_label",
            plan.breaker_metric,
            plan.downstream_label,
            list(&seen.labels)
        ));
    }
    let why = if seen.with_gauge > 0 {
        format!(
            "the gauge `{}` has no breaker for {target}",
            plan.breaker_metric
        )
    } else {
        format!(
            "no `{}` in {} scrapes of {} (metrics seen: {})",
            plan.breaker_metric,
            seen.scrapes,
            plan.metrics_path,
            list(&seen.metrics)
        )
    };
    match plan.gauge {
        GaugeUse::Required => Gauge::Unmatched(format!("[sut] metrics = true, but {why}")),
        GaugeUse::IfPresent | GaugeUse::Off => Gauge::Absent(why),
    }
}
