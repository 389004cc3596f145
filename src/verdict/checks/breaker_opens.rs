//! `breaker_opens`: the downstream's breaker opens within `within` of its
//! fault starting — inferred from outside, cross-checked with the SUT's
//! breaker gauge when it has one (decided by the gauge alone when the
//! black-box inference cannot tell).

use std::time::Duration;

use reference_stack::{Downstream, ServiceKind};
use serde::Serialize;

use super::{Check, Field, Kind, as_text, params, secs};
use crate::platform::injector_name;
use crate::scenario::Fields;
use crate::scenario::schema::{InjectorName, ServiceName};
use crate::verdict::infer::Inference;
use crate::verdict::{CheckResult, Context, Gauge};

/// The kind.
pub(super) static KIND: BreakerOpensKind = BreakerOpensKind;

/// How long a breaker may take to open when the check does not say.
const DEFAULT_WITHIN: Duration = Duration::from_secs(60);

/// `breaker_opens`.
pub(super) struct BreakerOpensKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<InjectorName>(
        "downstream",
        "The downstream whose breaker is judged (an injector with a fault).",
    ),
    Field::of::<crate::scenario::Dur>("within", "Deadline from the fault's start (default 60s)."),
    Field::of::<ServiceName>(
        "service",
        "The service whose breaker is judged, when several call the downstream (default: the one a journey reaching it enters by).",
    ),
];

impl Kind for BreakerOpensKind {
    fn name(&self) -> &'static str {
        "breaker_opens"
    }

    fn about(&self) -> &'static str {
        "The downstream's breaker opens within `within` of its fault."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let downstream = f.downstream(None)?;
        f.faulted(downstream)?;
        let within = match f.has("within") {
            true => f.duration("within")?,
            false => DEFAULT_WITHIN,
        };
        let service = match f.has("service") {
            true => Some(f.service()?),
            false => None,
        };
        Some(Box::new(BreakerOpens {
            downstream,
            within,
            service,
        }))
    }
}

/// The downstream's breaker opens within `within` of its fault starting.
#[derive(Debug, Serialize)]
pub(super) struct BreakerOpens {
    #[serde(with = "crate::platform::injector_serde")]
    downstream: Downstream,
    #[serde(with = "as_text")]
    within: Duration,
    #[serde(serialize_with = "service_name")]
    service: Option<ServiceKind>,
}

fn service_name<S: serde::Serializer>(s: &Option<ServiceKind>, out: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => out.serialize_some(s.name()),
        None => out.serialize_none(),
    }
}

impl Check for BreakerOpens {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        match self.service {
            Some(s) => format!(
                "breaker_opens:{}:{}",
                s.name(),
                injector_name(self.downstream)
            ),
            None => format!("breaker_opens:{}", injector_name(self.downstream)),
        }
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(ctx, name, self)
    }
}

fn evaluate(ctx: &Context<'_>, name: &str, check: &BreakerOpens) -> CheckResult {
    let BreakerOpens {
        downstream,
        within,
        service,
    } = *check;
    let target = injector_name(downstream);
    let expected = format!(
        "{target}'s breaker opens within {} of its fault",
        secs(within.as_secs_f64())
    );
    let inconclusive =
        |why: String| CheckResult::inconclusive(name, KIND.name(), expected.clone(), why);
    let Some(fault_at) = ctx.fault_start(downstream) else {
        return inconclusive(format!("no fault was applied to {target}"));
    };
    let gauge = ctx.gauge_of(downstream, service);
    if let Gauge::Unmatched(why) = &gauge {
        return inconclusive(why.clone());
    }
    let mut evidence = vec![format!("fault set on {target} at {}", secs(fault_at))];
    let inferred = match ctx.inferred_via(downstream, service) {
        Ok(i) => {
            evidence.extend(describe(&i, target));
            i.episodes.opened_at_s.first().copied()
        }
        Err(why) => {
            let Gauge::Read {
                episodes, readings, ..
            } = &gauge
            else {
                return inconclusive(why);
            };
            evidence.push(format!("black-box inference cannot tell: {why}"));
            evidence.push(format!(
                "decided by the SUT's gauge alone ({readings} readings)"
            ));
            let opened = episodes
                .opened_at_s
                .iter()
                .copied()
                .find(|t| *t >= fault_at);
            // A breaker that saw none of its own calls fail stays closed:
            // a closed gauge is evidence only where the service's calls to
            // the downstream were seen failing (another breaker upstream
            // may have kept them from being made).
            if opened.is_none()
                && let Some(unseen) = ctx.unobserved(downstream, service)
            {
                return inconclusive(format!(
                    "{unseen}; its gauge never showed open ({readings} readings), but whether its calls to {target} failed during the fault is not known"
                ));
            }
            return decide(name, expected, fault_at, within, opened, evidence);
        }
    };
    match &gauge {
        Gauge::Read {
            episodes,
            service,
            readings,
        } => {
            let tolerance = ctx.scenario.sut.sample_every.as_secs_f64() * 2.0 + 0.25;
            let gauge_open = episodes
                .opened_at_s
                .iter()
                .copied()
                .find(|t| *t >= fault_at);
            let agree = match (inferred, gauge_open) {
                (Some(a), Some(b)) => {
                    evidence.push(format!(
                        "{service}'s gauge: open at {} (inferred − gauge = {:+.3}s, {readings} readings)",
                        secs(b),
                        a - b
                    ));
                    (a - b).abs() <= tolerance
                }
                (None, Some(b)) => {
                    evidence.push(format!(
                        "{service}'s gauge: open at {} but no request was short-circuited",
                        secs(b)
                    ));
                    false
                }
                (Some(_), None) => {
                    evidence.push(format!(
                        "{service}'s gauge never showed open ({readings} readings)"
                    ));
                    false
                }
                (None, None) => {
                    evidence.push(format!(
                        "{service}'s gauge never showed open either ({readings} readings)"
                    ));
                    true
                }
            };
            if !agree {
                return CheckResult::decided(
                    name,
                    KIND.name(),
                    false,
                    expected,
                    format!(
                        "the inferred breaker and the SUT's gauge disagree by more than {}",
                        secs(tolerance)
                    ),
                    evidence,
                );
            }
        }
        Gauge::Absent(why) => evidence.push(format!("no gauge: {why}; black-box only")),
        Gauge::Off => evidence.push("gauge not read ([sut] metrics = false)".into()),
        Gauge::Unmatched(_) => {}
    }
    decide(name, expected, fault_at, within, inferred, evidence)
}

fn decide(
    name: &str,
    expected: String,
    fault_at: f64,
    within: Duration,
    opened: Option<f64>,
    evidence: Vec<String>,
) -> CheckResult {
    let (passed, observed) = match opened {
        Some(t) if t - fault_at <= within.as_secs_f64() => (
            true,
            format!(
                "opened {} after the fault (at {})",
                secs(t - fault_at),
                secs(t)
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
    CheckResult::decided(name, KIND.name(), passed, expected, observed, evidence)
}

/// The inference's evidence, for the report.
pub(super) fn describe(i: &Inference, target: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "inferred ({}): {} calls admitted at {target}, {} requests answered without reaching it (open needs {} in a row)",
        match i.method {
            crate::verdict::infer::Method::Ids => "requests matched to arrivals by id",
            crate::verdict::infer::Method::Timing => "requests matched to arrivals by time",
        },
        i.admitted,
        i.short_circuited,
        i.min_run
    )];
    if let Some((t, stated)) = i.fast_below {
        lines.push(format!(
            "refused connections: answers under {} read as rejected ({})",
            secs(t),
            if stated {
                "stated"
            } else {
                "read off a gap in the answer times"
            }
        ));
    }
    lines.extend(i.evidence.iter().cloned());
    lines.extend(i.assumptions.iter().map(|a| format!("assumed: {a}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};
    use crate::observe::sut::BreakerState::{Closed, Open};

    const CHECK: &str = r#"[[checks]]
kind = "breaker_opens"
downstream = "order-service"
within = "1s"
"#;

    fn opens(at: f64) -> Story {
        Story {
            opens: Some(at),
            closes: Some(20.5),
            ..Story::default()
        }
    }

    #[test]
    fn every_branch() {
        type Setup = fn(&mut Fixture);
        let none: Setup = |_| {};
        let cases: [(&str, Story, Setup, Expect, &str); 9] = [
            (
                "opens in time",
                opens(10.5),
                none,
                Expect::Pass,
                "opened 0.432s after",
            ),
            (
                "opens late",
                opens(11.5),
                none,
                Expect::Fail,
                "opened only 1.432s",
            ),
            (
                "never opens",
                Story::default(),
                none,
                Expect::Fail,
                "never opened",
            ),
            (
                "no call ever reaches it",
                opens(10.5),
                |f| f.arrivals().clear(),
                Expect::Inconclusive,
                "never reached the downstream",
            ),
            (
                "the gauge agrees",
                opens(10.5),
                |f| f.gauge(&[(10.5, Open), (20.5, Closed)]),
                Expect::Pass,
                "opened 0.432s after",
            ),
            (
                "the gauge opens 4.5 s later",
                opens(10.5),
                |f| f.gauge(&[(15.0, Open), (20.5, Closed)]),
                Expect::Fail,
                "disagree",
            ),
            (
                "the gauge never opens",
                opens(10.5),
                |f| f.gauge(&[]),
                Expect::Fail,
                "disagree",
            ),
            (
                "black-box cannot tell: the gauge decides",
                opens(10.5),
                |f| {
                    f.arrivals().clear();
                    f.gauge(&[(10.5, Open), (20.5, Closed)]);
                },
                Expect::Pass,
                "opened 0.500s after",
            ),
            (
                "the gauge's labels name no injector",
                opens(10.5),
                |f| {
                    let seen = &mut f.observations().sut.gauge_seen;
                    seen.with_gauge = 1;
                    seen.labels.insert("downstream".into());
                    seen.unmatched.insert("orders".into());
                },
                Expect::Inconclusive,
                "orders",
            ),
        ];
        for (case, story, setup, expect, words) in cases {
            let mut f = Fixture::new(CHECK);
            f.payments(&story, 4);
            setup(&mut f);
            let result = f.judge("breaker_opens:order-service");
            assert_outcome(case, &result, expect, words);
        }
    }

    #[test]
    fn a_named_service_judges_that_services_breaker() {
        let check =
            |service: &str| format!("{CHECK}service = \"{service}\"\nname = \"of {service}\"\n");
        let mut f = Fixture::new(&check("payment-gateway"));
        f.payments(&opens(10.5), 4);
        let result = f.judge("of payment-gateway");
        assert_outcome("the payments' own breaker", &result, Expect::Pass, "opened");
        // No journey calls order-service from merchant-service: its breaker
        // cannot be told black-box, and there is no gauge to read.
        let mut f = Fixture::new(&check("merchant-service"));
        f.payments(&opens(10.5), 4);
        let result = f.judge("of merchant-service");
        assert_outcome(
            "another service's breaker",
            &result,
            Expect::Inconclusive,
            "no journey enters by merchant-service",
        );
        // With its gauge: an opening is read off it, a gauge that stayed
        // closed proves nothing (its calls may never have been made).
        let mut f = Fixture::new(&check("merchant-service"));
        f.payments(&opens(10.5), 4);
        f.gauge_of("merchant-service", &[(10.5, Open), (20.5, Closed)]);
        let result = f.judge("of merchant-service");
        assert_outcome("its gauge opened", &result, Expect::Pass, "opened");
        let mut f = Fixture::new(&check("merchant-service"));
        f.payments(&opens(10.5), 4);
        f.gauge_of("merchant-service", &[]);
        let result = f.judge("of merchant-service");
        assert_outcome(
            "its gauge stayed closed",
            &result,
            Expect::Inconclusive,
            "never showed open",
        );
    }
}
