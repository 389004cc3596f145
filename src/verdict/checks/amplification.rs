//! `amplification`: downstream attempts per call (by default) or per
//! upstream request in a phase stay under `max_ratio` — retries do not
//! turn a fault into a storm. Per upstream request alone hides a storm once
//! a breaker rejects most requests, so calls are what attempts are divided
//! by unless the scenario asks otherwise.

use reference_stack::Downstream;

use crate::platform::injector_name;
use crate::scenario::AmplificationPer;
use crate::verdict::{CheckResult, Context};

const KIND: &str = "amplification";

/// What the check bounds.
pub(super) struct Bound<'a> {
    pub(super) downstream: Downstream,
    pub(super) journey: Option<&'a str>,
    pub(super) phase: &'a str,
    pub(super) max_ratio: f64,
    pub(super) per: AmplificationPer,
}

pub(super) fn evaluate(ctx: &Context<'_>, name: &str, bound: &Bound<'_>) -> CheckResult {
    let Bound {
        downstream,
        journey,
        phase,
        max_ratio,
        per,
    } = *bound;
    let target = injector_name(downstream);
    let unit = match per {
        AmplificationPer::Call => "call",
        AmplificationPer::Request => "upstream request",
    };
    let expected = format!("≤ {max_ratio} attempts at {target} per {unit} in {phase}");
    let inconclusive = |why: String| CheckResult::inconclusive(name, KIND, expected.clone(), why);
    let Some(p) = ctx.scenario.phase(phase) else {
        return inconclusive(format!("no phase `{phase}`"));
    };
    let Some(injector) = ctx.obs.injectors.get(&downstream) else {
        return inconclusive(format!("no injector for {target}"));
    };
    let series: Vec<_> = match journey {
        Some(j) => ctx.series(j).into_iter().collect(),
        None => ctx.reaching(downstream),
    };
    let upstream: u64 = series
        .iter()
        .filter_map(|s| s.phases.get(phase))
        .map(|r| r.requests)
        .sum();
    if upstream == 0 {
        return inconclusive(format!(
            "no upstream request reaching {target} was sent in {phase}"
        ));
    }
    let span = (p.from.as_secs_f64(), p.until.as_secs_f64());
    let (attempts, calls) = ctx.attempts_and_calls(downstream, injector, span, upstream);
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let mut evidence = vec![format!(
        "{attempts} attempts reached {target} in {phase} ({:.1}s–{:.1}s) for {upstream} requests of {} ({:.2} per request)",
        span.0,
        span.1,
        names.join(", "),
        attempts as f64 / upstream as f64
    )];
    if let Some((n, how)) = calls {
        evidence.push(format!(
            "{n} calls ({how}){}",
            if n > 0 {
                format!(": {:.2} attempts per call", attempts as f64 / n as f64)
            } else {
                String::new()
            }
        ));
    }
    let ratio = match per {
        AmplificationPer::Request => attempts as f64 / upstream as f64,
        AmplificationPer::Call => match calls {
            Some((n, _)) if n > 0 => attempts as f64 / n as f64,
            Some(_) if attempts == 0 => 0.0,
            Some(_) => {
                return inconclusive(format!(
                    "{attempts} attempts reached {target} in {phase} but no distinct call could be counted"
                ));
            }
            None => {
                return inconclusive(format!(
                    "{target}'s arrivals carry no ids and its breaker could not be inferred, so its calls cannot be counted; use per = \"request\""
                ));
            }
        },
    };
    CheckResult::decided(
        name,
        KIND,
        ratio <= max_ratio,
        expected,
        format!("{ratio:.2} attempts per {unit}"),
        evidence,
    )
}
