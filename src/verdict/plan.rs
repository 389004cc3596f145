//! The run plan: a scenario with its checks resolved by their kinds. Loading
//! one reports every problem of the file together — the scenario's and the
//! checks' — each at `file:line:col`, in file order.

use std::collections::BTreeSet;
use std::path::Path;

use reference_stack::Downstream;
use schemars::Schema;
use serde_json::{Value, json};

use super::checks::{Check, KINDS, Kind};
use crate::scenario::schema::base_schema;
use crate::scenario::{Parsed, Scenario, ScenarioErrors, StackKind};

/// A check with its name.
#[derive(Clone, Debug)]
pub struct CheckPlan {
    /// Name in reports.
    pub name: String,
    /// The rule.
    pub check: std::sync::Arc<dyn Check>,
}

/// What a run carries out and judges.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Its checks.
    pub checks: Vec<CheckPlan>,
}

impl Plan {
    /// Reads and checks a scenario file with the standard check kinds;
    /// `stack` overrides the file's stack kind (the `--stack` flag).
    pub fn load(path: &Path, stack: Option<StackKind>) -> Result<Self, ScenarioErrors> {
        Self::load_with(path, stack, KINDS)
    }

    /// Reads and checks a scenario file with these check kinds.
    pub fn load_with(
        path: &Path,
        stack: Option<StackKind>,
        kinds: &[&dyn Kind],
    ) -> Result<Self, ScenarioErrors> {
        let text = Scenario::read(path)?;
        Self::parse_with(path, &text, stack, kinds)
    }

    /// Parses and checks `text` (read from `path`) with the standard kinds.
    pub fn parse(
        path: &Path,
        text: &str,
        stack: Option<StackKind>,
    ) -> Result<Self, ScenarioErrors> {
        Self::parse_with(path, text, stack, KINDS)
    }

    /// Parses and checks `text` (read from `path`) with these check kinds.
    pub fn parse_with(
        path: &Path,
        text: &str,
        stack: Option<StackKind>,
        kinds: &[&dyn Kind],
    ) -> Result<Self, ScenarioErrors> {
        let mut parsed = Scenario::parse(path, text, stack)?;
        let checks = plan_checks(&mut parsed, kinds);
        Ok(Plan {
            scenario: parsed.finish()?,
            checks,
        })
    }

    /// Downstreams whose attempts a check counts per arrival.
    pub fn counted_downstreams(&self) -> Vec<Downstream> {
        self.checks
            .iter()
            .filter_map(|c| c.check.counts_attempts_at())
            .collect()
    }

    /// The JSON schema of scenario files, for editors: the scenario's types
    /// and, for `[[checks]]`, one shape per kind from its fields.
    pub fn json_schema() -> String {
        Self::json_schema_with(KINDS)
    }

    /// The JSON schema of scenario files with these check kinds.
    pub fn json_schema_with(kinds: &[&dyn Kind]) -> String {
        let (mut schema, mut generator) = base_schema();
        let shapes: Vec<Value> = kinds
            .iter()
            .map(|kind| {
                let mut properties = serde_json::Map::new();
                properties.insert(
                    "kind".into(),
                    json!({ "const": kind.name(), "description": kind.about() }),
                );
                properties.insert(
                    "name".into(),
                    json!({ "type": "string", "description": "Name in reports (default: kind and subject)." }),
                );
                for field in kind.fields() {
                    let mut s: Schema = (field.schema)(&mut generator);
                    s.insert("description".into(), field.about.into());
                    properties.insert(field.name.into(), s.to_value());
                }
                json!({
                    "type": "object",
                    "description": kind.about(),
                    "properties": properties,
                    "required": ["kind"],
                    "additionalProperties": false,
                })
            })
            .collect();
        if let Some(checks) = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut("checks"))
            .and_then(Value::as_object_mut)
        {
            checks.insert("items".into(), json!({ "oneOf": shapes }));
        }
        let definitions = generator.take_definitions(true);
        if let Some(defs) = schema
            .ensure_object()
            .get_mut("$defs")
            .and_then(Value::as_object_mut)
        {
            for (name, def) in definitions {
                defs.entry(name).or_insert(def);
            }
        }
        // `{:#}` on a JSON value pretty-prints it (and cannot fail, unlike
        // `serde_json::to_string_pretty`).
        format!("{:#}\n", schema.as_value())
    }
}

/// Resolves every `[[checks]]` table with the kind it names; problems are
/// recorded in `parsed`.
fn plan_checks(parsed: &mut Parsed<'_>, kinds: &[&dyn Kind]) -> Vec<CheckPlan> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    let known = || kinds.iter().map(|k| k.name()).collect::<Vec<_>>();
    for i in 0..parsed.checks.len() {
        let header = parsed.checks[i].span();
        let table = parsed.checks[i].get_ref();
        let Some(kind_value) = table.get("kind") else {
            parsed.err(
                header,
                format!(
                    "missing field `kind`; add the rule, one of: {}",
                    known().join(", ")
                ),
            );
            continue;
        };
        let written = kind_value
            .get_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(kind) = kinds.iter().copied().find(|k| k.name() == written) else {
            let names: Vec<String> = known().iter().map(|k| format!("`{k}`")).collect();
            parsed.err(
                kind_value.span(),
                format!(
                    "unknown variant `{written}`, expected one of {}",
                    names.join(", ")
                ),
            );
            continue;
        };
        let takes: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
        let strangers: Vec<(String, std::ops::Range<usize>)> = table
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "kind" | "name") && !takes.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.span()))
            .collect();
        for (field, span) in &strangers {
            // A field of another kind is misplaced; one of none is a typo.
            let elsewhere = kinds
                .iter()
                .any(|k| k.fields().iter().any(|f| f.name == field));
            if elsewhere {
                parsed.err(
                    span.clone(),
                    format!(
                        "field `{field}` does not apply to a {} check (it takes: name, kind, {})",
                        kind.name(),
                        takes.join(", ")
                    ),
                );
            } else {
                let expected: Vec<String> = ["name", "kind"]
                    .iter()
                    .chain(&takes)
                    .map(|f| format!("`{f}`"))
                    .collect();
                let at = parsed.key_span(span, field);
                parsed.err(
                    at,
                    format!(
                        "unknown field `{field}`, expected one of {}",
                        expected.join(", ")
                    ),
                );
            }
        }
        if !strangers.is_empty() {
            continue;
        }
        let mut fields = parsed.fields(i, kind.name());
        let given = fields.name();
        let Some(check) = kind.plan(&mut fields) else {
            continue;
        };
        if fields.failed() {
            continue;
        }
        let name = given.unwrap_or_else(|| check.default_name());
        if !names.insert(name.clone()) {
            parsed.err(
                header,
                format!("two checks are named `{name}`; give one a `name`"),
            );
        }
        out.push(CheckPlan {
            name,
            check: check.into(),
        });
    }
    out
}
