//! `recovers_within`: after each fault cycle ends, the journey is back at its
//! baseline success rate (and latency) within `within`, and stays there for
//! `hold` windows in a row.

use std::time::Duration;

use reference_stack::Downstream;
use serde::Serialize;

use super::{Check, Field, Kind, as_text, ms, params, pct, secs};
use crate::load::recorder::{SeriesRecord, WindowStats};
use crate::platform::injector_name;
use crate::scenario::schema::{Count, InjectorName, JourneyName, NonNegative, Ratio};
use crate::scenario::{Dur, FaultWindow, Fields, Series};
use crate::verdict::{CheckResult, Context, Cycle, RecoveryReport};

/// The kind.
pub(super) static KIND: RecoversWithinKind = RecoversWithinKind;

/// The mission's recovery goal.
const DEFAULT_WITHIN: Duration = Duration::from_secs(30);

/// `recovers_within`.
pub(super) struct RecoversWithinKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<JourneyName>(
        "journey",
        "The journey measured (or a follow-up series such as `payment.webhook`).",
    ),
    Field::of::<InjectorName>(
        "downstream",
        "Only the clears of faults on this injector (default: every fault).",
    ),
    Field::of::<Dur>("within", "Deadline from each clear (default 30s)."),
    Field::of::<Dur>(
        "window",
        "Width of the windows compared with baseline (default the load's window).",
    ),
    Field::of::<Count>(
        "hold",
        "Windows in a row that must look like baseline (default 3).",
    ),
    Field::of::<Ratio>(
        "success_tolerance",
        "Success rate may fall this much below baseline (default 0.02).",
    ),
    Field::of::<NonNegative>(
        "latency_factor",
        "p99 may grow to this multiple of baseline; 0 ignores latency (default 2).",
    ),
];

impl Kind for RecoversWithinKind {
    fn name(&self) -> &'static str {
        "recovers_within"
    }

    fn about(&self) -> &'static str {
        "After each fault clears, the journey is back to baseline within `within`."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let journey = f.journey(Series::Any)?;
        let downstream = match f.has("downstream") {
            true => Some(f.downstream(None)?),
            false => None,
        };
        let cleared =
            |w: &FaultWindow| w.until.is_some() && downstream.is_none_or(|d| d == w.injector);
        if !f.scenario().faults.iter().any(cleared) {
            if !f.faults_unresolved() {
                let on =
                    downstream.map_or(String::new(), |d| format!(" on `{}`", injector_name(d)));
                f.err("kind", format!("recovers_within needs a fault{on} that is cleared (a [[faults]] entry with `until`) to measure recovery from"));
            }
            return None;
        }
        f.baseline()?;
        let hold = match f.has("hold") {
            true => f.count("hold", "one window back at baseline")?,
            false => 3,
        };
        let (success_tolerance, latency_factor) = f.tolerances();
        let within = match f.has("within") {
            true => f.duration("within")?,
            false => DEFAULT_WITHIN,
        };
        let window = match f.has("window") {
            true => f.duration("window")?,
            false => f.scenario().load.window,
        };
        (!f.failed()).then(|| {
            Box::new(RecoversWithin {
                journey,
                downstream,
                within,
                params: RecoveryParams {
                    window: window.as_secs_f64(),
                    hold,
                    success_tolerance,
                    latency_factor,
                },
            }) as Box<dyn Check>
        })
    }
}

/// Back at baseline within `within` after each fault clears.
#[derive(Debug, Serialize)]
pub(super) struct RecoversWithin {
    journey: String,
    #[serde(with = "optional_injector")]
    downstream: Option<Downstream>,
    #[serde(with = "as_text")]
    within: Duration,
    #[serde(flatten)]
    params: RecoveryParams,
}

/// An optional injector name.
mod optional_injector {
    use reference_stack::Downstream;
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(
        d: &Option<Downstream>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(crate::platform::injector_name(*d)),
            None => s.serialize_none(),
        }
    }
}

impl Check for RecoversWithin {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!("recovers_within:{}", self.journey)
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(
            ctx,
            name,
            &self.journey,
            self.downstream,
            self.within,
            &self.params,
        )
    }

    fn recoveries(&self, ctx: &Context<'_>) -> Vec<RecoveryReport> {
        let Some(series) = ctx.series(&self.journey) else {
            return Vec::new();
        };
        ctx.cycles(self.downstream)
            .iter()
            .map(|cycle| RecoveryReport {
                downstream: injector_name(cycle.downstream).into(),
                journey: self.journey.clone(),
                cleared_at_s: cycle.cleared_at,
                recovery_s: recovery_time(ctx, series, cycle, &self.params),
            })
            .collect()
    }
}

/// How "back at baseline" is judged.
#[derive(Debug, Serialize)]
pub(crate) struct RecoveryParams {
    /// Window width, seconds (a multiple of the load's windows).
    pub(crate) window: f64,
    /// Healthy windows in a row needed.
    pub(crate) hold: u32,
    /// Allowed drop in success rate.
    pub(crate) success_tolerance: f64,
    /// Allowed p99 growth (0: latency ignored).
    pub(crate) latency_factor: f64,
}

/// One judged window: requests, errors, p99 (the worst of its load windows).
#[derive(Clone, Copy, Debug)]
struct Judged {
    start: f64,
    requests: u64,
    errors: u64,
    p99_us: u64,
}

/// The series' windows regrouped into windows of `width` aligned on `from`.
fn regroup(windows: &[WindowStats], from: f64, width: f64) -> Vec<Judged> {
    let mut out: Vec<Judged> = Vec::new();
    for w in windows.iter().filter(|w| w.start_s + 1e-9 >= from) {
        let slot = ((w.start_s - from) / width + 1e-9).floor();
        let start = from + slot * width;
        match out.last_mut() {
            Some(j) if (j.start - start).abs() < 1e-9 => {
                j.requests += w.requests;
                j.errors += w.errors;
                j.p99_us = j.p99_us.max(w.p99_us);
            }
            _ => out.push(Judged {
                start,
                requests: w.requests,
                errors: w.errors,
                p99_us: w.p99_us,
            }),
        }
    }
    out
}

/// Seconds from the cycle's end until the journey was back at baseline, or
/// None if it was not before the fault came back or the run ended.
pub(crate) fn recovery_time(
    ctx: &Context<'_>,
    series: &SeriesRecord,
    cycle: &Cycle,
    p: &RecoveryParams,
) -> Option<f64> {
    let baseline = ctx.baseline(series)?;
    let base_success = baseline.success_rate()?;
    let base_p99 = baseline.latency.value_at_quantile(0.99);
    let load_window = ctx.window_s();
    // Judge from the first whole load window after the clear.
    let first = (cycle.cleared_at / load_window).ceil() * load_window;
    let limit = cycle.next_fault_at.unwrap_or(ctx.run_end());
    let judged = regroup(&series.windows, first, p.window.max(load_window));
    let healthy = |j: &Judged| {
        j.requests > 0
            && (j.requests - j.errors) as f64 / j.requests as f64
                >= base_success - p.success_tolerance
            && (p.latency_factor == 0.0 || j.p99_us as f64 <= base_p99 as f64 * p.latency_factor)
    };
    let mut run = 0;
    for (i, j) in judged.iter().enumerate() {
        if j.start + p.window > limit + 1e-9 {
            break;
        }
        if healthy(j) {
            run += 1;
            if run >= p.hold {
                let start = judged[i + 1 - p.hold as usize].start;
                return Some((start - cycle.cleared_at).max(0.0));
            }
        } else {
            run = 0;
        }
    }
    None
}

fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    journey: &str,
    downstream: Option<Downstream>,
    within: Duration,
    p: &RecoveryParams,
) -> CheckResult {
    let within_s = within.as_secs_f64();
    let expected = format!(
        "{journey} back at baseline (success within {} points, p99 ≤ {}× baseline) within {} of each fault clearing, for {} windows of {}",
        p.success_tolerance * 100.0,
        p.latency_factor,
        secs(within_s),
        p.hold,
        secs(p.window)
    );
    let (series, baseline) = match ctx.with_baseline(journey) {
        Ok(found) => found,
        Err(why) => return CheckResult::inconclusive(name, KIND.name(), expected, why),
    };
    let cycles = ctx.cycles(downstream);
    if cycles.is_empty() {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            "no fault was cleared during the run".into(),
        );
    }
    let mut evidence = vec![format!(
        "baseline: success {}, p99 {}",
        pct(baseline.success_rate().unwrap_or(0.0)),
        ms(baseline.latency.value_at_quantile(0.99))
    )];
    let mut worst: Option<f64> = Some(0.0);
    for cycle in &cycles {
        let took = recovery_time(ctx, series, cycle, p);
        evidence.push(format!(
            "{} cleared at {}: {}",
            injector_name(cycle.downstream),
            secs(cycle.cleared_at),
            took.map_or_else(
                || format!(
                    "not back at baseline before {}",
                    cycle
                        .next_fault_at
                        .map_or("the end of the run".into(), |t| format!(
                            "the fault returned at {}",
                            secs(t)
                        ))
                ),
                |t| format!("back at baseline after {}", secs(t))
            )
        ));
        worst = match (worst, took) {
            (Some(w), Some(t)) => Some(w.max(t)),
            _ => None,
        };
    }
    let (passed, observed) = match worst {
        Some(w) if w <= within_s => (
            true,
            format!("slowest recovery {} over {} cycles", secs(w), cycles.len()),
        ),
        Some(w) => (
            false,
            format!("slowest recovery {} (limit {})", secs(w), secs(within_s)),
        ),
        None => (false, "did not recover in at least one cycle".into()),
    };
    CheckResult::decided(name, KIND.name(), passed, expected, observed, evidence)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};
    use crate::faults::FaultAction;

    const CHECK: &str = r#"[[checks]]
kind = "recovers_within"
journey = "payment"
within = "2s"
"#;

    fn closes(at: Option<f64>) -> Story {
        Story {
            opens: Some(10.5),
            closes: at,
            ..Story::default()
        }
    }

    #[test]
    fn every_branch() {
        type Setup = fn(&mut Fixture);
        let none: Setup = |_| {};
        let cases: [(&str, Story, Setup, Expect, &str); 4] = [
            (
                "back half a second after the clear",
                closes(Some(20.5)),
                none,
                Expect::Pass,
                "slowest recovery 1.000s",
            ),
            (
                "back five seconds after",
                closes(Some(25.0)),
                none,
                Expect::Fail,
                "slowest recovery 5.000s (limit 2.000s)",
            ),
            (
                "never back",
                closes(None),
                none,
                Expect::Fail,
                "did not recover",
            ),
            (
                "the fault was never cleared",
                closes(Some(20.5)),
                |f| {
                    f.observations()
                        .faults
                        .retain(|e| e.action == FaultAction::Set)
                },
                Expect::Inconclusive,
                "no fault was cleared",
            ),
        ];
        for (case, story, setup, expect, words) in cases {
            let mut f = Fixture::new(CHECK);
            f.payments(&story, 4);
            setup(&mut f);
            let result = f.judge("recovers_within:payment");
            assert_outcome(case, &result, expect, words);
        }
    }

    #[test]
    fn without_baseline_requests_it_is_inconclusive() {
        let result = Fixture::new(CHECK).judge("recovers_within:payment");
        assert_outcome("no traffic", &result, Expect::Inconclusive, "baseline");
    }
}
