//! `integrity`: every payment the SUT acknowledged is found afterwards, in a
//! status consistent with what it answered (failed payments kept as failed,
//! not missing).

use serde::Serialize;

use super::{Check, Field, Kind, params};
use crate::platform::JourneyKind;
use crate::scenario::schema::JourneyName;
use crate::scenario::{Fields, Series};
use crate::verdict::{CheckResult, Context};

/// The kind.
pub(super) static KIND: IntegrityKind = IntegrityKind;

/// `integrity`.
pub(super) struct IntegrityKind;

/// The fields it takes.
const FIELDS: &[Field] = &[Field::of::<JourneyName>(
    "journey",
    "The payment journey whose payments are looked up.",
)];

impl Kind for IntegrityKind {
    fn name(&self) -> &'static str {
        "integrity"
    }

    fn about(&self) -> &'static str {
        "Every acknowledged payment is found afterwards with a consistent status."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let journey = f.journey(Series::JourneysOnly)?;
        let other = f
            .scenario()
            .load
            .journeys
            .iter()
            .find(|j| j.name == journey && j.kind != JourneyKind::Payment)
            .map(|j| (j.name.clone(), j.kind));
        if let Some((name, kind)) = other {
            f.err("journey", format!("integrity checks payments: its journey must be a payment journey (`{name}` is a {kind} journey)"));
            return None;
        }
        Some(Box::new(Integrity { journey }))
    }
}

/// Acknowledged payments are kept.
#[derive(Debug, Serialize)]
pub(super) struct Integrity {
    journey: String,
}

impl Check for Integrity {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!("integrity:{}", self.journey)
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(ctx, name, &self.journey)
    }

    fn integrity_journey(&self) -> Option<&str> {
        Some(&self.journey)
    }
}

fn evaluate(ctx: &Context<'_>, name: &str, journey: &str) -> CheckResult {
    let expected =
        format!("every payment acknowledged to {journey} is found with a consistent status");
    let Some(result) = ctx.obs.integrity.iter().find(|r| r.journey == journey) else {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            "the payments were not looked up".into(),
        );
    };
    if result.checked == 0 {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            format!("{journey} got no acknowledged payment"),
        );
    }
    if result.unanswered == result.checked {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            "no lookup was answered".into(),
        );
    }
    let mut evidence = vec![format!(
        "{} acknowledged, {} looked up: {} missing, {} inconsistent, {} unanswered",
        result.acknowledged, result.checked, result.missing, result.inconsistent, result.unanswered
    )];
    if !result.missing_examples.is_empty() {
        evidence.push(format!("missing: {}", result.missing_examples.join(", ")));
    }
    for m in result.mismatch_examples.iter().take(5) {
        evidence.push(format!(
            "{}: expected {}, found {}",
            m.payment_no,
            m.expected.join(" or "),
            m.found
        ));
    }
    if result.skipped > 0 {
        evidence.push(format!(
            "{} not looked up: payment numbers longer than {} bytes",
            result.skipped,
            crate::load::acks::MAX_ID
        ));
    }
    if let Some(why) = &result.unreadable {
        evidence.push(format!("acknowledgements unreadable: {why}"));
    }
    let observed = format!(
        "{} missing, {} inconsistent of {} checked",
        result.missing, result.inconsistent, result.checked
    );
    let unknown = result.unanswered + result.skipped;
    if result.missing == 0
        && result.inconsistent == 0
        && (unknown > 0 || result.unreadable.is_some())
    {
        // Nothing lost among those seen, but not all were seen: "every
        // payment found" cannot be claimed.
        let mut inconclusive = CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            format!(
                "{observed}; {unknown} of {} acknowledged could not be looked up",
                result.acknowledged
            ),
        );
        inconclusive.evidence = evidence;
        return inconclusive;
    }
    let passed = result.missing == 0 && result.inconsistent == 0;
    CheckResult::decided(name, KIND.name(), passed, expected, observed, evidence)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Expect, Fixture, assert_outcome};
    use crate::observe::integrity::IntegrityResult;

    const CHECK: &str = "[[checks]]\nkind = \"integrity\"\njourney = \"payment\"\n";

    fn lookups(checked: u64, missing: u64, unanswered: u64) -> IntegrityResult {
        IntegrityResult {
            journey: "payment".into(),
            acknowledged: checked,
            checked,
            missing,
            unanswered,
            ..IntegrityResult::default()
        }
    }

    #[test]
    fn every_branch() {
        let cases = [
            (
                "every payment kept",
                Some(lookups(300, 0, 0)),
                Expect::Pass,
                "0 missing",
            ),
            (
                "two lost",
                Some(lookups(300, 2, 0)),
                Expect::Fail,
                "2 missing",
            ),
            (
                "nothing acknowledged",
                Some(lookups(0, 0, 0)),
                Expect::Inconclusive,
                "no acknowledged payment",
            ),
            (
                "no lookup answered",
                Some(lookups(300, 0, 300)),
                Expect::Inconclusive,
                "no lookup was answered",
            ),
            (
                "some lookups unanswered, none missing",
                Some(lookups(300, 0, 4)),
                Expect::Inconclusive,
                "4 of 300 acknowledged could not be looked up",
            ),
            (
                "some unanswered, one missing",
                Some(lookups(300, 1, 4)),
                Expect::Fail,
                "1 missing",
            ),
            (
                "ids too long to keep",
                Some(IntegrityResult {
                    acknowledged: 310,
                    skipped: 10,
                    ..lookups(300, 0, 0)
                }),
                Expect::Inconclusive,
                "10 of 310 acknowledged could not be looked up",
            ),
            ("not looked up", None, Expect::Inconclusive, "not looked up"),
        ];
        for (case, result, expect, words) in cases {
            let mut f = Fixture::new(CHECK);
            f.observations().integrity.extend(result);
            let judged = f.judge("integrity:payment");
            assert_outcome(case, &judged, expect, words);
        }
    }
}
