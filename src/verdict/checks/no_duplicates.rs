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

#[cfg(test)]
mod tests {
    use fault_injectors::Counters;
    use fault_injectors::observe::IdCounters;
    use reference_stack::Downstream;

    use super::super::fixture::{Expect, Fixture, Story, assert_outcome};
    use crate::observe::InjectorObservation;

    const CHECK: &str = "[[checks]]\nkind = \"no_duplicates\"\n";

    fn with_effects(f: &mut Fixture, duplicate_effects: u64) {
        let ids = IdCounters {
            repeated: 900,
            duplicate_effects,
            idempotent_replays: 3,
            examples: vec!["O42".into()],
        };
        f.observations().injectors.insert(
            Downstream::Order,
            InjectorObservation {
                name: "order-service".into(),
                width_s: 0.01,
                buckets: Vec::new(),
                counters: Counters {
                    ids: [("order_no".to_string(), ids)].into(),
                    ..Counters::default()
                },
            },
        );
    }

    #[test]
    fn every_branch() {
        for (case, effects, expect, words) in [
            ("retries only", 0, Expect::Pass, "0 duplicate effects"),
            ("two served twice", 2, Expect::Fail, "2 duplicate effects"),
        ] {
            let mut f = Fixture::new(CHECK);
            f.payments(&Story::default(), 4);
            with_effects(&mut f, effects);
            let result = f.judge("no_duplicates:order-service:order_no");
            assert_outcome(case, &result, expect, words);
        }
        let mut f = Fixture::new(CHECK);
        with_effects(&mut f, 0);
        let result = f.judge("no_duplicates:order-service:order_no");
        assert_outcome(
            "no id arrived",
            &result,
            Expect::Inconclusive,
            "no request carrying",
        );
    }
}
