//! `integrity`: every payment the SUT acknowledged is found afterwards, in a
//! status consistent with what it answered (failed payments kept as failed,
//! not missing).

use crate::verdict::{CheckResult, Context};

const KIND: &str = "integrity";

pub(super) fn evaluate(ctx: &Context<'_>, name: &str, journey: &str) -> CheckResult {
    let expected =
        format!("every payment acknowledged to {journey} is found with a consistent status");
    let Some(result) = ctx.obs.integrity.iter().find(|r| r.journey == journey) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            "the payments were not looked up".into(),
        );
    };
    if result.checked == 0 {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("{journey} got no acknowledged payment"),
        );
    }
    if result.unanswered == result.checked {
        return CheckResult::inconclusive(name, KIND, expected, "no lookup was answered".into());
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
    let passed = result.missing == 0 && result.inconsistent == 0;
    let observed = format!(
        "{} missing, {} inconsistent of {} checked",
        result.missing, result.inconsistent, result.checked
    );
    CheckResult::decided(name, KIND, passed, expected, observed, evidence)
}
