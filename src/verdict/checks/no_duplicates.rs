//! `no_duplicates`: no business id (order_no, ...) reached the downstream
//! twice with effect — a retry without the same idempotency key.

use reference_stack::Downstream;
use serde::Serialize;

use super::{Check, Field, Kind, params};
use crate::platform::injector_name;
use crate::scenario::Fields;
use crate::scenario::schema::InjectorName;
use crate::verdict::{CheckResult, Context};

/// The kind.
pub(super) static KIND: NoDuplicatesKind = NoDuplicatesKind;

/// `no_duplicates`.
pub(super) struct NoDuplicatesKind;

/// The fields it takes.
const FIELDS: &[Field] = &[
    Field::of::<InjectorName>("downstream", "The downstream (default `order-service`)."),
    Field::of::<String>(
        "field",
        "The body field whose repeats count (default `order_no`).",
    ),
];

impl Kind for NoDuplicatesKind {
    fn name(&self) -> &'static str {
        "no_duplicates"
    }

    fn about(&self) -> &'static str {
        "No business id reaches the downstream twice with effect."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let downstream = f.downstream(Some(Downstream::Order))?;
        let field = match f.has("field") {
            true => f.get("field")?,
            false => "order_no".to_string(),
        };
        Some(Box::new(NoDuplicates { downstream, field }))
    }
}

/// No id served twice without the same idempotency key.
#[derive(Debug, Serialize)]
pub(super) struct NoDuplicates {
    #[serde(with = "crate::platform::injector_serde")]
    downstream: Downstream,
    field: String,
}

impl Check for NoDuplicates {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn default_name(&self) -> String {
        format!(
            "no_duplicates:{}:{}",
            injector_name(self.downstream),
            self.field
        )
    }

    fn params(&self) -> serde_json::Value {
        params(self)
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        evaluate(ctx, name, self.downstream, &self.field)
    }
}

fn evaluate(ctx: &Context<'_>, name: &str, downstream: Downstream, field: &str) -> CheckResult {
    let target = injector_name(downstream);
    let expected = format!("no {field} served twice by {target} without its idempotency key");
    let Some(injector) = ctx.obs.injectors.get(&downstream) else {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            format!("no injector for {target}"),
        );
    };
    let Some(ids) = injector.counters.ids.get(field) else {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
            expected,
            format!("{target} does not track `{field}`"),
        );
    };
    if !injector.has_ids() {
        return CheckResult::inconclusive(
            name,
            KIND.name(),
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
        KIND.name(),
        ids.duplicate_effects == 0,
        expected,
        format!("{} duplicate effects", ids.duplicate_effects),
        evidence,
    )
}
