//! The checks, one module each; [`evaluate`] dispatches.

mod amplification;
mod breaker_opens;
mod cascade;
mod duplicates;
mod half_open;
mod integrity;
mod latency;
mod recovery;

pub(crate) use recovery::{RecoveryParams, recovery_time};

use super::{CheckResult, Context};
use crate::scenario::Check;

/// Evaluates one check.
pub(crate) fn evaluate(ctx: &Context<'_>, name: &str, check: &Check) -> CheckResult {
    match check {
        Check::BreakerOpens { downstream, within } => {
            breaker_opens::evaluate(ctx, name, *downstream, *within)
        }
        Check::HalfOpenProbes {
            downstream,
            max_probes,
            period,
            tolerance,
        } => half_open::evaluate(ctx, name, *downstream, *max_probes, *period, *tolerance),
        Check::RecoversWithin {
            journey,
            downstream,
            within,
            window,
            hold,
            success_tolerance,
            latency_factor,
        } => {
            let params = RecoveryParams {
                window: window.as_secs_f64(),
                hold: *hold,
                success_tolerance: *success_tolerance,
                latency_factor: *latency_factor,
            };
            recovery::evaluate(ctx, name, journey, *downstream, *within, &params)
        }
        Check::Latency {
            journey,
            phase,
            percentile,
            bound,
        } => latency::evaluate(ctx, name, journey, phase, *percentile, *bound),
        Check::NoCascade {
            journey,
            phase,
            success_tolerance,
            latency_factor,
        } => cascade::evaluate(
            ctx,
            name,
            journey,
            phase,
            *success_tolerance,
            *latency_factor,
        ),
        Check::Amplification {
            downstream,
            journey,
            phase,
            max_ratio,
            per,
        } => amplification::evaluate(
            ctx,
            name,
            &amplification::Bound {
                downstream: *downstream,
                journey: journey.as_deref(),
                phase,
                max_ratio: *max_ratio,
                per: *per,
            },
        ),
        Check::NoDuplicates { downstream, field } => {
            duplicates::evaluate(ctx, name, *downstream, field)
        }
        Check::Integrity { journey } => integrity::evaluate(ctx, name, journey),
    }
}

/// Seconds with millisecond precision, for messages.
pub(crate) fn secs(t: f64) -> String {
    format!("{t:.3}s")
}

/// A percentage with one decimal.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Microseconds as milliseconds.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.1}ms", us as f64 / 1000.0)
}
