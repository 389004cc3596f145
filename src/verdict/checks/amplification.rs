//! `amplification`: downstream attempts per call (by default) or per
//! upstream request in a phase stay under `max_ratio` — retries do not
//! turn a fault into a storm. Per upstream request alone hides a storm once
//! a breaker rejects most requests, so calls are what attempts are divided
//! by unless the scenario asks otherwise.

use reference_stack::Downstream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Field, Kind, params};
use crate::platform::injector_name;
use crate::scenario::schema::{InjectorName, JourneyName, PhaseName, Positive};
use crate::scenario::{Fields, Series};
use crate::verdict::{CheckResult, Context};

/// The kind.
pub(super) static KIND: AmplificationKind = AmplificationKind;

/// `amplification`.
pub(super) struct AmplificationKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<InjectorName>("downstream", "The downstream whose attempts are counted."),
    Field::of::<JourneyName>(
        "journey",
        "Only this journey's requests (default: every journey reaching the downstream).",
    ),
    Field::of::<PhaseName>("phase", "The phase (default `fault`)."),
    Field::of::<Positive>(
        "max_ratio",
        "Most attempts per call (or per upstream request with `per = \"request\"`).",
    ),
    Field::of::<AmplificationPer>(
        "per",
        "What `max_ratio` divides attempts by (default `call`).",
    ),
];

impl Kind for AmplificationKind {
    fn name(&self) -> &'static str {
        "amplification"
    }

    fn about(&self) -> &'static str {
        "Downstream attempts per call (or per upstream request) stay under `max_ratio`."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let downstream = f.downstream(None)?;
        let journey = match f.has("journey") {
            true => Some(f.journey(Series::JourneysOnly)?),
            false => None,
        };
        f.reached(downstream, journey.as_deref())?;
        let max_ratio = match f.get::<f64>("max_ratio") {
            Some(r) if r > 0.0 && r.is_finite() => r,
            Some(r) => {
                f.err("max_ratio", format!("max_ratio must be more than 0 (4 allows the platform's 4 attempts per call), got {r}"));
                return None;
            }
            None if f.failed() => return None,
            None => {
                f.err("kind", "an amplification check needs `max_ratio` (downstream attempts per call, e.g. max_ratio = 4)");
                return None;
            }
        };
        let phase = f.phase()?;
        let per = match f.has("per") {
            true => f.get("per")?,
            false => AmplificationPer::Call,
        };
        Some(Box::new(Amplification {
            downstream,
            journey,
            phase,
            max_ratio,
            per,
        }))
    }
}

/// What an amplification ratio divides downstream attempts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AmplificationPer {
    /// Each distinct call the downstream saw (by its business id where it
    /// carries one): a retry storm shows even when the breaker rejects most
    /// requests.
    Call,
    /// Each upstream request of the journeys reaching the downstream.
    Request,
}

/// Downstream attempts per call or request in a phase under `max_ratio`.
#[derive(Debug, Serialize)]
pub(super) struct Amplification {
    #[serde(with = "crate::platform::injector_serde")]
    downstream: Downstream,
    journey: Option<String>,
    phase: String,
    max_ratio: f64,
    per: AmplificationPer,
}

impl Check for Amplification {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!(
            "amplification:{}:{}",
            injector_name(self.downstream),
            self.phase
        )
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(ctx, name, self)
    }

    fn counts_attempts_at(&self) -> Option<Downstream> {
        Some(self.downstream)
    }
}

fn evaluate(ctx: &Context<'_>, name: &str, check: &Amplification) -> CheckResult {
    let Amplification {
        downstream,
        ref journey,
        ref phase,
        max_ratio,
        per,
    } = *check;
    let journey = journey.as_deref();
    let phase = phase.as_str();
    let target = injector_name(downstream);
    let unit = match per {
        AmplificationPer::Call => "call",
        AmplificationPer::Request => "upstream request",
    };
    let expected = format!("≤ {max_ratio} attempts at {target} per {unit} in {phase}");
    let inconclusive =
        |why: String| CheckResult::inconclusive(name, KIND.name(), expected.clone(), why);
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
    let span = (p.from.as_secs_f64(), p.until.as_secs_f64());
    let (attempts, calls) = ctx.attempts_and_calls(downstream, injector, span, upstream);
    // Calls counted by their ids need no upstream request to divide by (a
    // background client's calls are made after its requests were answered).
    let counted = calls.is_some_and(|(n, how)| n > 0 && how == "distinct ids");
    if upstream == 0 && !(per == AmplificationPer::Call && counted) {
        return inconclusive(format!(
            "no upstream request reaching {target} was sent in {phase}"
        ));
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let mut evidence = vec![format!(
        "{attempts} attempts reached {target} in {phase} ({:.1}s–{:.1}s) for {upstream} requests of {}{}",
        span.0,
        span.1,
        if names.is_empty() {
            "no journey on its request path".to_string()
        } else {
            names.join(", ")
        },
        if upstream > 0 {
            format!(" ({:.2} per request)", attempts as f64 / upstream as f64)
        } else {
            String::new()
        }
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
        KIND.name(),
        ratio <= max_ratio,
        expected,
        format!("{ratio:.2} attempts per {unit}"),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};

    const CHECKS: &str = r#"[[checks]]
kind = "amplification"
downstream = "order-service"
max_ratio = 4.5
[[checks]]
name = "per request"
kind = "amplification"
downstream = "order-service"
max_ratio = 1
per = "request"
"#;

    fn open_early() -> Story {
        Story {
            opens: Some(10.3),
            closes: Some(20.5),
            ..Story::default()
        }
    }

    #[test]
    fn every_branch() {
        let cases = [
            (
                "4 attempts per call",
                "amplification:order-service:fault",
                4,
                Story::default(),
                Expect::Pass,
                "4.00 attempts per call",
            ),
            (
                "a retry storm",
                "amplification:order-service:fault",
                11,
                Story::default(),
                Expect::Fail,
                "10.99 attempts per call",
            ),
            (
                "a storm the breaker dilutes per request",
                "amplification:order-service:fault",
                11,
                open_early(),
                Expect::Fail,
                "11.00 attempts per call",
            ),
            (
                "per request, diluted",
                "per request",
                11,
                open_early(),
                Expect::Pass,
                "0.33 attempts per upstream request",
            ),
            (
                "per request, no breaker",
                "per request",
                4,
                Story::default(),
                Expect::Fail,
                "4.00 attempts per upstream request",
            ),
        ];
        for (case, name, attempts, story, expect, words) in cases {
            let mut f = Fixture::new(CHECKS);
            f.payments(&story, attempts);
            let result = f.judge(name);
            assert_outcome(case, &result, expect, words);
        }
        let silent = Fixture::new(CHECKS).judge("amplification:order-service:fault");
        assert_outcome(
            "no requests",
            &silent,
            Expect::Inconclusive,
            "no upstream request",
        );
    }
}
