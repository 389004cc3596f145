//! `half_open_probes`: while the breaker is open, calls come through only in
//! probes of at most `max_probes`, one probe per open timeout (`period`).

use std::time::Duration;

use reference_stack::Downstream;

use super::secs;
use crate::platform::injector_name;
use crate::verdict::{CheckResult, Context};

const KIND: &str = "half_open_probes";

pub(super) fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    downstream: Downstream,
    max_probes: u32,
    period: Duration,
    tolerance: Duration,
) -> CheckResult {
    let target = injector_name(downstream);
    let (period, tolerance) = (period.as_secs_f64(), tolerance.as_secs_f64());
    let expected = format!(
        "at most {max_probes} calls per probe, probes every {} ± {}",
        secs(period),
        secs(tolerance)
    );
    let episodes = match ctx.inferred(downstream) {
        Ok(i) => &i.episodes,
        Err(why) => return CheckResult::inconclusive(name, KIND, expected, why),
    };
    if episodes.opened_at_s.is_empty() {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("{target}'s breaker never opened"),
        );
    }
    if episodes.half_open_at_s.is_empty() {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("{target}'s breaker opened but no probe came before the run ended"),
        );
    }
    let ends: Vec<f64> = ctx
        .cycles(Some(downstream))
        .iter()
        .map(|c| c.cleared_at)
        .collect();
    let mut evidence = Vec::new();
    let mut worst_calls = 0;
    let mut bad_periods = Vec::new();
    for (i, probe) in episodes.probes.iter().enumerate() {
        // Each probe follows the open instant just before it.
        let Some(opened) = episodes
            .opened_at_s
            .iter()
            .copied()
            .rfind(|o| *o < probe.at_s)
        else {
            continue;
        };
        let waited = probe.at_s - opened;
        // The fault ended while the breaker waited: a probe's retry may have
        // met the healed downstream and closed it early, or the "reopening"
        // seen from outside was that retry loop. Its spacing is not the open
        // timeout's to answer for.
        let healed = ends.iter().any(|c| *c > opened && *c <= probe.at_s);
        evidence.push(format!(
            "probe {}: open at {}, half-open at {} (after {}), {}{}",
            i + 1,
            secs(opened),
            secs(probe.at_s),
            secs(waited),
            match (probe.closed, probe.calls) {
                (true, _) => "then closed".to_string(),
                (false, Some(c)) => format!("{c} calls, then open again"),
                (false, None) => "then open again".to_string(),
            },
            if healed {
                " (the fault ended meanwhile: spacing not judged)"
            } else {
                ""
            }
        ));
        worst_calls = worst_calls.max(probe.calls.unwrap_or(0));
        if !healed && (waited - period).abs() > tolerance {
            bad_periods.push(secs(waited));
        }
    }
    let too_many = worst_calls > u64::from(max_probes);
    let passed = !too_many && bad_periods.is_empty();
    let observed = match (too_many, bad_periods.is_empty()) {
        (false, true) => format!(
            "{} probes, at most {worst_calls} calls each",
            episodes.half_open_at_s.len()
        ),
        (true, _) => format!("a probe let {worst_calls} calls through (limit {max_probes})"),
        (false, false) => format!("probe spacing off the period: {}", bad_periods.join(", ")),
    };
    CheckResult::decided(name, KIND, passed, expected, observed, evidence)
}
