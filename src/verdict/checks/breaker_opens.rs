//! `breaker_opens`: the downstream's breaker opens within `within` of its
//! fault starting — inferred from outside, cross-checked with the SUT's
//! breaker gauge when it has one.

use std::time::Duration;

use reference_stack::Downstream;

use super::secs;
use crate::platform::injector_name;
use crate::verdict::{CheckResult, Context};

const KIND: &str = "breaker_opens";

pub(super) fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    downstream: Downstream,
    within: Duration,
    silence: Option<Duration>,
    fast_fail_below: Option<Duration>,
) -> CheckResult {
    let target = injector_name(downstream);
    let expected = format!(
        "{target}'s breaker opens within {} of its fault",
        secs(within.as_secs_f64())
    );
    let Some(fault_at) = ctx.fault_start(downstream) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no fault was applied to {target}"),
        );
    };
    let upstream_requests = ctx.upstream(downstream).requests(fault_at, ctx.run_end());
    if upstream_requests == 0 {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no journey reaching {target} sent requests after the fault"),
        );
    }
    let Some((episodes, method)) = ctx.inferred(downstream, silence, fast_fail_below) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no observations of {target}"),
        );
    };
    let mut evidence = vec![format!("fault set on {target} at {}", secs(fault_at))];
    let inferred = episodes.opened_at_s.first().copied();
    match (inferred, method) {
        (Some(t), "arrivals") => evidence.push(format!(
            "inferred from arrivals: the last new call reached {target} at {}, then silence while the upstream sent {} requests",
            secs(t),
            ctx.upstream(downstream).requests(t, t + ctx.silence(downstream))
        )),
        (Some(t), _) => evidence.push(format!(
            "inferred from the journeys' latency: from {} on requests were answered without waiting for {target}'s retries",
            secs(t)
        )),
        (None, _) => evidence.push(format!("inferred ({method}): calls to {target} never stopped while the upstream sent {upstream_requests} requests")),
    }
    let metrics = ctx.gauge(downstream);
    let gauge_open = metrics
        .as_ref()
        .and_then(|m| m.opened_at_s.iter().copied().find(|t| *t >= fault_at));
    let tolerance = ctx.scenario.sut.sample_every.as_secs_f64() * 2.0 + ctx.window_s().max(0.5);
    let mut agree = true;
    if let Some(m) = &metrics {
        match (inferred, gauge_open) {
            (Some(a), Some(b)) => {
                evidence.push(format!(
                    "SUT gauge: open at {} (inferred − gauge = {:+.3}s)",
                    secs(b),
                    a - b
                ));
                agree = (a - b).abs() <= tolerance;
            }
            (None, Some(b)) => {
                evidence.push(format!(
                    "SUT gauge: open at {} but no silence was inferred",
                    secs(b)
                ));
                agree = false;
            }
            (Some(_), None) => {
                evidence.push(format!(
                    "SUT gauge never showed open ({} readings)",
                    m.opened_at_s.len() + m.closed_at_s.len() + m.half_open_at_s.len()
                ));
                agree = false;
            }
            (None, None) => evidence.push("SUT gauge never showed open either".into()),
        }
    }
    let (passed, observed) = match inferred {
        Some(t) if t - fault_at <= within.as_secs_f64() && agree => (
            true,
            format!(
                "opened {} after the fault (at {})",
                secs(t - fault_at),
                secs(t)
            ),
        ),
        Some(t) if !agree => (
            false,
            format!(
                "inferred open at {} disagrees with the SUT's gauge by more than {}",
                secs(t),
                secs(tolerance)
            ),
        ),
        Some(t) => (
            false,
            format!(
                "opened only {} after the fault (at {})",
                secs(t - fault_at),
                secs(t)
            ),
        ),
        None => (false, "never opened".into()),
    };
    CheckResult::decided(name, KIND, passed, expected, observed, evidence)
}
