//! The check kinds, one file each: a kind owns its scenario fields (their
//! validation, with locations, and their defaults), its default name and its
//! evaluation. Adding a kind is one new file implementing [`Kind`] and
//! [`Check`], and one line in [`KINDS`]; the schema of scenario files is
//! derived from the kinds' [`Field`]s.

mod amplification;
mod breaker_opens;
#[cfg(test)]
mod fixture;
mod half_open_probes;
mod integrity;
mod latency;
mod no_cascade;
mod no_duplicates;
mod recovers_within;

use std::fmt::Debug;

use reference_stack::Downstream;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::{CheckResult, Context, RecoveryReport};
use crate::scenario::Fields;

/// Every kind of check, in the order the docs list them.
pub static KINDS: &[&dyn Kind] = &[
    &breaker_opens::KIND,
    &half_open_probes::KIND,
    &recovers_within::KIND,
    &latency::KIND,
    &no_cascade::KIND,
    &amplification::KIND,
    &no_duplicates::KIND,
    &integrity::KIND,
];

/// A kind of check: the word scenario files use for it, the fields it takes
/// and how a `[[checks]]` table of it is resolved.
pub trait Kind: Sync {
    /// The word in scenario files (`breaker_opens`).
    fn name(&self) -> &'static str;
    /// What it decides, in one line (docs and schema).
    fn about(&self) -> &'static str;
    /// The fields it takes besides `kind` and `name`.
    fn fields(&self) -> &'static [Field];
    /// Resolves a table of this kind: every field read, checked and
    /// defaulted. None when something is wrong (recorded in `fields`).
    fn plan(&self, fields: &mut Fields<'_, '_>) -> Option<Box<dyn Check>>;
}

/// A field a kind takes.
#[derive(Clone, Copy)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// What it means, with its default.
    pub about: &'static str,
    /// Its JSON schema.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

impl Field {
    /// A field whose values a `T` describes.
    pub const fn of<T: JsonSchema>(name: &'static str, about: &'static str) -> Self {
        Self {
            name,
            about,
            schema: schema_of::<T>,
        }
    }
}

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A resolved check: one rule with every default filled in, ready to judge
/// a run.
pub trait Check: Debug + Send + Sync {
    /// Its kind's word.
    fn kind(&self) -> &'static str;
    /// Its name when the scenario gives none (`breaker_opens:order-service`).
    fn default_name(&self) -> String;
    /// Its resolved parameters, for the report and for tests.
    fn params(&self) -> serde_json::Value;
    /// Judges the run.
    fn evaluate(&self, ctx: &Context<'_>, name: &str) -> CheckResult;
    /// The payment journey whose acknowledged payments must be looked up
    /// after the load (integrity), if any.
    fn integrity_journey(&self) -> Option<&str> {
        None
    }
    /// A downstream whose attempts it counts per arrival (amplification).
    fn counts_attempts_at(&self) -> Option<Downstream> {
        None
    }
    /// Per-cycle recoveries it measures, for the report.
    fn recoveries(&self, _ctx: &Context<'_>) -> Vec<RecoveryReport> {
        Vec::new()
    }
}

/// Serialises a check's parameters (they all derive `Serialize`).
fn params(check: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(check).unwrap_or_default()
}

/// Seconds with millisecond precision, for messages.
pub(crate) fn secs(t: f64) -> String {
    format!("{t:.3}s")
}

/// A percentage with one decimal.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Microseconds as milliseconds.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.1}ms", us as f64 / 1000.0)
}

/// Durations as written in scenario files, for parameters.
mod as_text {
    use std::time::Duration;

    use serde::Serializer;

    /// Writes `d` as humantime text (`300ms`).
    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}
