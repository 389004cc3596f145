//! Adding a check kind is one file and one registry line: a toy kind,
//! defined here, is parsed, validated with located errors, described by the
//! schema, evaluated on a real run and reported like the built-in ones.

mod support;

use std::path::Path;

use faultline::run::{RunOptions, run};
use faultline::scenario::schema::{Count, JourneyName};
use faultline::scenario::{Fields, Series};
use faultline::verdict::checks::{Check, Field, KINDS, Kind};
use faultline::verdict::{CheckResult, Context, Plan};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// `max_errors`: a journey fails at most `max` requests in the whole run.
struct MaxErrorsKind;

const FIELDS: &[Field] = &[
    Field::of::<JourneyName>("journey", "The journey counted."),
    Field::of::<Count>("max", "Most failed requests allowed."),
];

impl Kind for MaxErrorsKind {
    fn name(&self) -> &'static str {
        "max_errors"
    }

    fn about(&self) -> &'static str {
        "A journey fails at most `max` requests."
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn plan(&self, f: &mut Fields<'_, '_>) -> Option<Box<dyn Check>> {
        let journey = f.journey(Series::JourneysOnly)?;
        let max = f.count("max", "a bound")?;
        Some(Box::new(MaxErrors { journey, max }))
    }
}

#[derive(Debug, Serialize)]
struct MaxErrors {
    journey: String,
    max: u32,
}

impl Check for MaxErrors {
    fn kind(&self) -> &'static str {
        "max_errors"
    }

    fn default_name(&self) -> String {
        format!("max_errors:{}", self.journey)
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult {
        let expected = format!("at most {} failed {} requests", self.max, self.journey);
        let Some(series) = ctx.series(&self.journey) else {
            return CheckResult::inconclusive(
                name,
                "max_errors",
                expected,
                "no such journey".into(),
            );
        };
        let errors = series.total.errors;
        CheckResult::decided(
            name,
            "max_errors",
            errors <= u64::from(self.max),
            expected,
            format!("{errors} failed"),
            vec![format!("{} requests", series.total.requests)],
        )
    }
}

static TOY: MaxErrorsKind = MaxErrorsKind;

/// The standard kinds and the toy: the one registry line.
fn kinds() -> Vec<&'static dyn Kind> {
    KINDS.iter().copied().chain([&TOY as &dyn Kind]).collect()
}

fn scenario(max: &str) -> String {
    format!(
        r#"seed = 2
duration = "1s"

[stack]
time_scale = 0.01

[load]
window = "100ms"
timeout = "2s"
[[load.journeys]]
kind = "payment"
rate = 20

[[checks]]
kind = "max_errors"
journey = "payment"
max = {max}
"#
    )
}

#[test]
fn the_toy_kind_is_refused_where_its_field_is_wrong_and_unknown_without_its_line() {
    let path = Path::new("toy.toml");
    let errors = Plan::parse_with(path, &scenario("0"), None, &kinds())
        .expect_err("max = 0")
        .to_string();
    assert!(
        errors.starts_with("toy.toml:17:7: max must be at least 1"),
        "{errors}"
    );
    let unknown = Plan::parse(path, &scenario("5"), None)
        .expect_err("not registered")
        .to_string();
    assert!(
        unknown.contains("toy.toml:15:8: unknown variant `max_errors`"),
        "{unknown}"
    );
    let schema = Plan::json_schema_with(&kinds());
    assert!(schema.contains("\"max_errors\"") && schema.contains("Most failed requests allowed."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toy_kind_is_evaluated_and_reported_like_the_others() {
    let dir = support::scratch("toy");
    let path = dir.join("toy.toml");
    std::fs::write(&path, scenario("5")).expect("written");
    let plan = Plan::load_with(&path, None, &kinds()).expect("the toy kind plans");
    assert_eq!(plan.checks[0].name, "max_errors:payment");
    assert_eq!(plan.checks[0].check.params()["max"], 5);
    let options = RunOptions {
        out: dir.join("reports"),
        quiet: true,
        baseline: None,
        distribution: None,
    };
    let outcome = run(&plan, &options, CancellationToken::new())
        .await
        .expect("runs");
    let check = &outcome.report.checks[0];
    assert_eq!(check.kind, "max_errors");
    assert!(check.passed, "{check:?}");
    let junit = std::fs::read_to_string(outcome.dir.join("junit.xml")).expect("junit");
    assert!(junit.contains("max_errors:payment"), "{junit}");
    let json = std::fs::read_to_string(outcome.dir.join("report.json")).expect("json");
    assert!(json.contains("\"max_errors\""));
}
