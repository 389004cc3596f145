//! `no_duplicates`: no business id (order_no, ...) reached the downstream
//! twice with effect — a retry without the same idempotency key.

use reference_stack::Downstream;

use crate::platform::injector_name;
use crate::verdict::{CheckResult, Context};

const KIND: &str = "no_duplicates";

pub(super) fn evaluate(
    ctx: &Context<'_>,
    name: &str,
    downstream: Downstream,
    field: &str,
) -> CheckResult {
    let target = injector_name(downstream);
    let expected = format!("no {field} served twice by {target} without its idempotency key");
    let Some(injector) = ctx.obs.injectors.get(&downstream) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no injector for {target}"),
        );
    };
    let Some(ids) = injector.counters.ids.get(field) else {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("{target} does not track `{field}`"),
        );
    };
    if !injector.has_ids() {
        return CheckResult::inconclusive(
            name,
            KIND,
            expected,
            format!("no request carrying `{field}` reached {target}"),
        );
    }
    let mut evidence = vec![format!(
        "{} repeated {field}s arrived; {} were idempotent replays (same Idempotency-Key)",
        ids.repeated, ids.idempotent_replays
    )];
    if !ids.examples.is_empty() {
        evidence.push(format!("duplicated: {}", ids.examples.join(", ")));
    }
    CheckResult::decided(
        name,
        KIND,
        ids.duplicate_effects == 0,
        expected,
        format!("{} duplicate effects", ids.duplicate_effects),
        evidence,
    )
}
