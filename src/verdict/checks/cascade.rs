//! `no_cascade`: a journey keeps its baseline success rate and latency
//! during a phase — the failure did not spread to it.

use super::{ms, pct};
use crate::verdict::{CheckResult, Context};

const KIND: &str = "no_cascade";

pub(super) fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    journey: &str,
    phase: &str,
    tolerance: f64,
    latency_factor: f64,
) -> CheckResult {
    let expected = if latency_factor > 0.0 {
        format!(
            "{journey} in {phase}: success ≥ baseline − {} points, p99 ≤ {latency_factor}× baseline",
            tolerance * 100.0
        )
    } else {
        format!(
            "{journey} in {phase}: success ≥ baseline − {} points",
            tolerance * 100.0
        )
    };
    let (series, base) = match ctx.with_baseline(journey) {
        Ok(found) => found,
        Err(why) => return CheckResult::inconclusive(name, KIND, expected, why),
    };
    let Some(during) = series.phases.get(phase).filter(|r| r.requests > 0) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("{journey} sent nothing in {phase}"),
        );
    };
    let (b_ok, d_ok) = (
        base.success_rate().unwrap_or(0.0),
        during.success_rate().unwrap_or(0.0),
    );
    let (b_p99, d_p99) = (
        base.latency.value_at_quantile(0.99),
        during.latency.value_at_quantile(0.99),
    );
    let success_held = d_ok >= b_ok - tolerance;
    let latency_held = latency_factor == 0.0 || d_p99 as f64 <= b_p99 as f64 * latency_factor;
    let evidence = vec![
        format!(
            "baseline: {} requests, success {}, p99 {}",
            base.requests,
            pct(b_ok),
            ms(b_p99)
        ),
        format!(
            "{phase}: {} requests, success {}, p99 {}, outcomes {}",
            during.requests,
            pct(d_ok),
            ms(d_p99),
            during
                .outcomes
                .iter()
                .map(|(o, n)| format!("{}: {n}", o.label()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    let observed = format!(
        "success {} (baseline {}), p99 {} (baseline {})",
        pct(d_ok),
        pct(b_ok),
        ms(d_p99),
        ms(b_p99)
    );
    CheckResult::decided(
        name,
        KIND,
        success_held && latency_held,
        expected,
        observed,
        evidence,
    )
}
