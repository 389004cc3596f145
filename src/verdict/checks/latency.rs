//! `latency`: a percentile of a journey's latency in a phase stays under a
//! bound, absolute or a multiple of the same percentile in baseline.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Field, Kind, ms, params};
use crate::load::recorder::PhaseRecord;
use crate::scenario::schema::{JourneyName, PhaseName, Positive};
use crate::scenario::{Dur, Fields, Series};
use crate::verdict::{CheckResult, Context};

/// The kind.
pub(super) static KIND: LatencyKind = LatencyKind;

/// `latency`.
pub(super) struct LatencyKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<JourneyName>(
        "journey",
        "The journey measured (or a follow-up series such as `payment.webhook`).",
    ),
    Field::of::<PhaseName>("phase", "The phase (default `fault`)."),
    Field::of::<Percentile>("percentile", "Which percentile (default p99)."),
    Field::of::<Dur>("max", "Absolute bound."),
    Field::of::<Positive>(
        "max_factor",
        "Bound as a multiple of the same percentile in baseline.",
    ),
];

impl Kind for LatencyKind {
    fn name(&self) -> &'static str {
        "latency"
    }

    fn about(&self) -> &'static str {
        "A percentile of a journey's latency in a phase stays under a bound."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let journey = f.journey(Series::Any)?;
        let phase = f.phase()?;
        let bound = match (f.has("max"), f.has("max_factor")) {
            (true, false) => LatencyBound::Max(f.duration("max")?),
            (false, true) => {
                let factor: f64 = f.get("max_factor")?;
                if !(factor > 0.0 && factor.is_finite()) {
                    f.err("max_factor", format!("max_factor must be more than 0 (2 allows the percentile to double), got {factor}"));
                    return None;
                }
                f.baseline()?;
                LatencyBound::Factor(factor)
            }
            (true, true) => {
                f.err("max_factor", "give either `max` or `max_factor`, not both");
                return None;
            }
            (false, false) => {
                f.err("kind", "a latency check needs `max` (e.g. \"500ms\") or `max_factor` (a multiple of baseline)");
                return None;
            }
        };
        let percentile = match f.has("percentile") {
            true => f.get("percentile")?,
            false => Percentile::P99,
        };
        Some(Box::new(Latency {
            journey,
            phase,
            percentile,
            bound,
        }))
    }
}

/// Latency percentiles a check can bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Percentile {
    /// Median.
    P50,
    /// 90th.
    P90,
    /// 99th.
    P99,
    /// 99.9th.
    P999,
    /// Maximum.
    Max,
}

/// A bound on a latency percentile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
enum LatencyBound {
    /// At most this.
    Max(#[serde(with = "super::as_text")] Duration),
    /// At most this multiple of the same percentile in baseline.
    Factor(f64),
}

/// A percentile of a journey's latency in a phase under a bound.
#[derive(Debug, Serialize)]
pub(super) struct Latency {
    journey: String,
    phase: String,
    percentile: Percentile,
    bound: LatencyBound,
}

impl Check for Latency {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!(
            "latency:{}:{}:{}",
            self.journey,
            self.phase,
            label(self.percentile)
        )
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(
            ctx,
            name,
            &self.journey,
            &self.phase,
            self.percentile,
            self.bound,
        )
    }
}

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
fn value(record: &PhaseRecord, p: Percentile) -> u64 {
    let h = &record.latency;
    match p {
        Percentile::P50 => h.value_at_quantile(0.5),
        Percentile::P90 => h.value_at_quantile(0.9),
        Percentile::P99 => h.value_at_quantile(0.99),
        Percentile::P999 => h.value_at_quantile(0.999),
        Percentile::Max => h.max(),
    }
}

fn evaluate(
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
            KIND.name(),
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
                    KIND.name(),
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
            KIND.name(),
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
        KIND.name(),
        got <= limit_us,
        expected,
        format!("{label} {}", ms(got)),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};

    const CHECKS: &str = r#"[[checks]]
kind = "latency"
journey = "payment"
max = "100ms"
[[checks]]
name = "relative"
kind = "latency"
journey = "payment"
percentile = "max"
max_factor = 10
"#;

    #[test]
    fn every_branch() {
        let cases = [
            (
                "4 quick attempts",
                "latency:payment:fault:p99",
                4,
                Expect::Pass,
                "p99 32",
            ),
            (
                "20 attempts",
                "latency:payment:fault:p99",
                20,
                Expect::Fail,
                "p99 192",
            ),
            (
                "4 attempts, against 10× baseline",
                "relative",
                4,
                Expect::Fail,
                "max 32",
            ),
            (
                "1 attempt, against 10× baseline",
                "relative",
                1,
                Expect::Pass,
                "max 2",
            ),
        ];
        for (case, name, attempts, expect, words) in cases {
            let mut f = Fixture::new(CHECKS);
            f.payments(&Story::default(), attempts);
            let result = f.judge(name);
            assert_outcome(case, &result, expect, words);
        }
        let silent = Fixture::new(CHECKS).judge("latency:payment:fault:p99");
        assert_outcome("no requests", &silent, Expect::Inconclusive, "sent nothing");
    }
}
