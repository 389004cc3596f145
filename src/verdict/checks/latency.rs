//! `latency`: a percentile of a journey's latency in a phase stays under a
//! bound, absolute or a multiple of the same percentile in baseline.

use super::ms;
use crate::load::recorder::PhaseRecord;
use crate::scenario::{LatencyBound, Percentile};
use crate::verdict::{CheckResult, Context};

const KIND: &str = "latency";

/// The percentile as written in scenario files.
fn label(p: Percentile) -> &'static str {
    match p {
        Percentile::P50 => "p50",
        Percentile::P90 => "p90",
        Percentile::P99 => "p99",
        Percentile::P999 => "p999",
        Percentile::Max => "max",
    }
}

/// The percentile's value in µs.
pub(crate) fn value(record: &PhaseRecord, p: Percentile) -> u64 {
    let h = &record.latency;
    match p {
        Percentile::P50 => h.value_at_quantile(0.5),
        Percentile::P90 => h.value_at_quantile(0.9),
        Percentile::P99 => h.value_at_quantile(0.99),
        Percentile::P999 => h.value_at_quantile(0.999),
        Percentile::Max => h.max(),
    }
}

pub(super) fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    journey: &str,
    phase: &str,
    p: Percentile,
    bound: LatencyBound,
) -> CheckResult {
    let label = label(p);
    let Some(series) = ctx.series(journey) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            format!("{journey} {label} in {phase}"),
            format!("no journey `{journey}` ran"),
        );
    };
    let limit_us = match bound {
        LatencyBound::Max(d) => d.as_micros() as u64,
        LatencyBound::Factor(f) => match ctx.baseline(series) {
            Some(b) => (value(b, p) as f64 * f) as u64,
            None => {
                return CheckResult::inconclusive(
                    name,
                    KIND,
                    format!("{journey} {label} in {phase} ≤ {f}× baseline"),
                    format!("{journey} sent nothing in baseline"),
                );
            }
        },
    };
    let expected = match bound {
        LatencyBound::Max(_) => format!("{journey} {label} in {phase} ≤ {}", ms(limit_us)),
        LatencyBound::Factor(f) => format!(
            "{journey} {label} in {phase} ≤ {f}× baseline = {}",
            ms(limit_us)
        ),
    };
    let Some(record) = series.phases.get(phase).filter(|r| r.requests > 0) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("{journey} sent nothing in {phase}"),
        );
    };
    let got = value(record, p);
    let evidence = vec![format!(
        "{} requests in {phase}: p50 {}, p99 {}, max {}",
        record.requests,
        ms(record.latency.value_at_quantile(0.5)),
        ms(record.latency.value_at_quantile(0.99)),
        ms(record.latency.max())
    )];
    CheckResult::decided(
        name,
        KIND,
        got <= limit_us,
        expected,
        format!("{label} {}", ms(got)),
        evidence,
    )
}
