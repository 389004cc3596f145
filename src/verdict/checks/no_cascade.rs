//! `no_cascade`: a journey keeps its baseline success rate and latency
//! during a phase — the failure did not spread to it.

use serde::Serialize;

use super::{Check, Field, Kind, ms, params, pct};
use crate::scenario::schema::{JourneyName, NonNegative, PhaseName, Ratio};
use crate::scenario::{Fields, Series};
use crate::verdict::{CheckResult, Context};

/// The kind.
pub(super) static KIND: NoCascadeKind = NoCascadeKind;

/// `no_cascade`.
pub(super) struct NoCascadeKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<JourneyName>(
        "journey",
        "The journey that must not be hurt (or a follow-up series such as `payment.webhook`).",
    ),
    Field::of::<PhaseName>("phase", "The phase (default `fault`)."),
    Field::of::<Ratio>(
        "success_tolerance",
        "Success rate may fall this much below baseline (default 0.02).",
    ),
    Field::of::<NonNegative>(
        "latency_factor",
        "p99 may grow to this multiple of baseline; 0 ignores latency (default 2).",
    ),
    Field::of::<crate::scenario::Dur>(
        "latency_slack",
        "p99 may also grow by this much on top of the factor, for baselines of a few milliseconds whose p99 a scheduling hiccup triples (default 0s).",
    ),
];

impl Kind for NoCascadeKind {
    fn name(&self) -> &'static str {
        "no_cascade"
    }

    fn about(&self) -> &'static str {
        "A journey keeps its baseline success rate and latency during a phase."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let journey = f.journey(Series::Any)?;
        let phase = f.phase()?;
        f.baseline()?;
        let (success_tolerance, latency_factor) = f.tolerances();
        let latency_slack = match f.has("latency_slack") {
            true => f.duration("latency_slack")?,
            false => std::time::Duration::ZERO,
        };
        (!f.failed()).then(|| {
            Box::new(NoCascade {
                journey,
                phase,
                success_tolerance,
                latency_factor,
                latency_slack,
            }) as Box<dyn Check>
        })
    }
}

/// A journey keeps its baseline success rate and p99 during a phase.
#[derive(Debug, Serialize)]
pub(super) struct NoCascade {
    journey: String,
    phase: String,
    success_tolerance: f64,
    latency_factor: f64,
    #[serde(with = "super::as_text")]
    latency_slack: std::time::Duration,
}

impl Check for NoCascade {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!("no_cascade:{}:{}", self.journey, self.phase)
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(ctx, name, self)
    }
}

fn evaluate(ctx: &Context<'_>, name: &str, check: &NoCascade) -> CheckResult {
    let NoCascade {
        ref journey,
        ref phase,
        success_tolerance: tolerance,
        latency_factor,
        latency_slack,
    } = *check;
    let (journey, phase) = (journey.as_str(), phase.as_str());
    let slack_us = latency_slack.as_micros() as f64;
    let expected = if latency_factor > 0.0 {
        format!(
            "{journey} in {phase}: success ≥ baseline − {} points, p99 ≤ {latency_factor}× baseline{}",
            tolerance * 100.0,
            if slack_us > 0.0 {
                format!(" + {}", ms(slack_us as u64))
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "{journey} in {phase}: success ≥ baseline − {} points",
            tolerance * 100.0
        )
    };
    let (series, base) = match ctx.with_baseline(journey) {
        Ok(found) => found,
        Err(why) => return CheckResult::inconclusive(name, KIND.name(), expected, why),
    };
    let Some(during) = series.phases.get(phase).filter(|r| r.requests > 0) else {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
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
    let latency_held =
        latency_factor == 0.0 || d_p99 as f64 <= b_p99 as f64 * latency_factor + slack_us;
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
        KIND.name(),
        success_held && latency_held,
        expected,
        observed,
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};

    const CHECK: &str = r#"[[checks]]
kind = "no_cascade"
journey = "dashboard"
"#;

    #[test]
    fn every_branch() {
        let mut f = Fixture::new(CHECK);
        f.payments(&Story::default(), 4);
        let result = f.judge("no_cascade:dashboard:fault");
        assert_outcome(
            "dashboards unaffected",
            &result,
            Expect::Pass,
            "success 100.0%",
        );

        let mut f = Fixture::new(CHECK);
        f.payments(&Story::default(), 4);
        // Half the dashboards fail during the fault.
        for k in 0..20u64 {
            f.request(1, 10.25 + k as f64 * 0.5, 0.005, false, 0);
        }
        let result = f.judge("no_cascade:dashboard:fault");
        assert_outcome("dashboards failing", &result, Expect::Fail, "success 50.0%");

        let mut f = Fixture::new(CHECK);
        f.payments(&Story::default(), 4);
        // Slower by 100×: the p99 bound (2× baseline) catches it.
        for k in 0..20u64 {
            f.request(1, 10.25 + k as f64 * 0.5, 0.5, true, 0);
        }
        let result = f.judge("no_cascade:dashboard:fault");
        assert_outcome("dashboards slow", &result, Expect::Fail, "p99 50");

        // Slower by a few milliseconds on a baseline of a few: the factor
        // alone fails it, the slack absorbs it.
        let slower = |check: &str| {
            let mut f = Fixture::new(check);
            f.payments(&Story::default(), 4);
            for k in 0..20u64 {
                f.request(1, 10.25 + k as f64 * 0.5, 0.02, true, 0);
            }
            f.judge("no_cascade:dashboard:fault")
        };
        assert_outcome("a few ms slower", &slower(CHECK), Expect::Fail, "p99 20");
        let with_slack = format!("{CHECK}latency_slack = \"25ms\"\n");
        assert_outcome(
            "a few ms slower, with slack",
            &slower(&with_slack),
            Expect::Pass,
            "p99 20",
        );

        let result = Fixture::new(CHECK).judge("no_cascade:dashboard:fault");
        assert_outcome("no traffic", &result, Expect::Inconclusive, "baseline");
    }
}
