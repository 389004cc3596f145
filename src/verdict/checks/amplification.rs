//! `amplification`: downstream attempts per upstream request in a phase stay
//! under `max_ratio` — retries do not turn a fault into a storm.

use reference_stack::Downstream;

use crate::platform::injector_name;
use crate::verdict::{CheckResult, Context};

const KIND: &str = "amplification";

pub(super) fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    downstream: Downstream,
    journey: Option<&str>,
    phase: &str,
    max_ratio: f64,
) -> CheckResult {
    let target = injector_name(downstream);
    let expected = format!("≤ {max_ratio} attempts at {target} per upstream request in {phase}");
    let Some(p) = ctx.scenario.phase(phase) else {
        return CheckResult::inconclusive(name, KIND, expected, format!("no phase `{phase}`"));
    };
    let Some(injector) = ctx.obs.injectors.get(&downstream) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no injector for {target}"),
        );
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
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no upstream request reaching {target} was sent in {phase}"),
        );
    }
    let attempts = injector.arrivals(p.from.as_secs_f64(), p.until.as_secs_f64());
    let ratio = attempts as f64 / upstream as f64;
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let evidence = vec![format!(
        "{attempts} attempts reached {target} in {phase} ({:.1}s–{:.1}s) for {upstream} requests of {}",
        p.from.as_secs_f64(),
        p.until.as_secs_f64(),
        names.join(", ")
    )];
    CheckResult::decided(
        name,
        KIND,
        ratio <= max_ratio,
        expected,
        format!("{ratio:.2} attempts per request"),
        evidence,
    )
}
