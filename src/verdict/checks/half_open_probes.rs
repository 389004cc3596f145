//! `half_open_probes`: while the breaker is open, calls come through only in
//! probes of at most `max_probes`, one probe per open timeout (`period`).

use std::time::Duration;

use reference_stack::Downstream;
use serde::Serialize;

use super::{Check, Field, Kind, as_text, params, secs};
use crate::platform::injector_name;
use crate::scenario::schema::{Count, InjectorName};
use crate::scenario::{Dur, Fields};
use crate::verdict::{CheckResult, Context};

/// The kind.
pub(super) static KIND: HalfOpenProbesKind = HalfOpenProbesKind;

/// `half_open_probes`.
pub(super) struct HalfOpenProbesKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<InjectorName>(
        "downstream",
        "The downstream whose breaker is judged (an injector with a fault).",
    ),
    Field::of::<Count>(
        "max_probes",
        "Most calls let through per probe (default: the embedded clients' half-open limit; 3 for an external SUT).",
    ),
    Field::of::<Dur>(
        "period",
        "Open timeout between probes (default: the embedded clients'; required for an external SUT).",
    ),
    Field::of::<Dur>("tolerance", "Slack on the period (default a fifth of it)."),
];

impl Kind for HalfOpenProbesKind {
    fn name(&self) -> &'static str {
        "half_open_probes"
    }

    fn about(&self) -> &'static str {
        "While open, probes come at most `max_probes` at a time, every `period`."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    /// Probes come every open timeout: the embedded stack's is known (scaled
    /// by `time_scale`); an external SUT's must be given.
    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let downstream = f.downstream(None)?;
        f.faulted(downstream)?;
        let stack = &f.scenario().stack;
        let (embedded, settings) = (
            stack.kind.runs_reference_stack(),
            stack.client_settings(downstream),
        );
        let period = match (f.has("period"), embedded) {
            (true, _) => f.duration("period")?,
            (false, true) => settings.open_timeout,
            (false, false) => {
                f.err("kind", "half_open_probes on an external stack needs `period` (the SUT's breaker open timeout, e.g. period = \"30s\")");
                return None;
            }
        };
        let max_probes = match (f.has("max_probes"), embedded) {
            (true, _) => f.count("max_probes", "a probe is one call")?,
            (false, true) => match settings.breaker.half_open_calls(settings.max_requests) {
                Some(n) => n,
                None => {
                    f.err(
                        "kind",
                        format!(
                            "the {} breaker has no half-open limit; give `max_probes`",
                            settings.breaker
                        ),
                    );
                    return None;
                }
            },
            (false, false) => 3,
        };
        let tolerance = match f.has("tolerance") {
            true => f.duration("tolerance")?,
            false => period / 5,
        };
        Some(Box::new(HalfOpenProbes {
            downstream,
            max_probes,
            period,
            tolerance,
        }))
    }
}

/// While open, at most `max_probes` calls per probe, one every `period`.
#[derive(Debug, Serialize)]
pub(super) struct HalfOpenProbes {
    #[serde(with = "crate::platform::injector_serde")]
    downstream: Downstream,
    max_probes: u32,
    #[serde(with = "as_text")]
    period: Duration,
    #[serde(with = "as_text")]
    tolerance: Duration,
}

impl Check for HalfOpenProbes {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!("half_open_probes:{}", injector_name(self.downstream))
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(
            ctx,
            name,
            self.downstream,
            self.max_probes,
            self.period,
            self.tolerance,
        )
    }
}

fn evaluate(
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
        Err(why) => return CheckResult::inconclusive(name, KIND.name(), expected, why),
    };
    if episodes.opened_at_s.is_empty() {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            format!("{target}'s breaker never opened"),
        );
    }
    if episodes.half_open_at_s.is_empty() {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
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
    CheckResult::decided(name, KIND.name(), passed, expected, observed, evidence)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};

    const CHECK: &str = r#"[[checks]]
kind = "half_open_probes"
downstream = "order-service"
max_probes = 3
period = "1s"
tolerance = "200ms"
"#;

    fn story(probes: &[(f64, u32, bool)], probe_took: f64, closes: Option<f64>) -> Story {
        Story {
            opens: Some(10.5),
            probes: probes.to_vec(),
            probe_took,
            closes,
        }
    }

    #[test]
    fn every_branch() {
        let one_a_second = [(11.5, 1, false), (12.6, 1, false), (13.7, 1, false)];
        let cases = [
            (
                "one call a second, then healed",
                story(&one_a_second, 0.03, Some(20.5)),
                Expect::Pass,
                "4 probes, at most 1 calls each",
            ),
            (
                "a probe lets five slow calls through",
                story(&[(11.5, 5, false)], 0.6, Some(20.5)),
                Expect::Fail,
                "a probe let 5 calls through (limit 3)",
            ),
            (
                "probes three seconds apart",
                story(&[(13.5, 1, false)], 0.03, Some(20.5)),
                Expect::Fail,
                "probe spacing off the period",
            ),
            (
                "never opened",
                Story::default(),
                Expect::Inconclusive,
                "never opened",
            ),
            (
                "opened, and no probe before the end",
                story(&[], 0.03, None),
                Expect::Inconclusive,
                "no probe came",
            ),
        ];
        for (case, story, expect, words) in cases {
            let mut f = Fixture::new(CHECK);
            f.payments(&story, 4);
            let result = f.judge("half_open_probes:order-service");
            assert_outcome(case, &result, expect, words);
        }
    }
}
