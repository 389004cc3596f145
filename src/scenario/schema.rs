//! The JSON schema of scenario files, for editors.
//!
//! Generated from the types of [`super::file`], so it cannot drift from what
//! the parser accepts; `scenarios/schema.json` is this text, kept in step by
//! a test. Point an editor at it (e.g. taplo's `#:schema ./schema.json`
//! directive at the top of a scenario) to get completion and errors while
//! typing. The schema checks shapes, names and simple ranges; the
//! cross-references (a check naming a journey that exists, a fault window
//! inside the run) are checked only by `faultline validate`.

use std::borrow::Cow;

use reference_stack::{BreakerFlavour, ServiceKind};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::file::ScenarioFile;
use crate::platform::injector_names;

/// The JSON schema of a scenario file, pretty-printed, ending in a newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    // `{:#}` on a JSON value pretty-prints it (and cannot fail, unlike
    // `serde_json::to_string_pretty`).
    format!("{:#}\n", schema.as_value())
}

/// Schema of an injector name (`order-service`): one of the platform's.
pub(super) struct InjectorName;

impl JsonSchema for InjectorName {
    fn schema_name() -> Cow<'static, str> {
        "InjectorName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An injector, by the platform's name of the downstream it stands for.",
            "enum": injector_names(),
        })
    }
}

/// Schema of a service name (`payment-gateway`): one of the platform's.
pub(super) struct ServiceName;

impl JsonSchema for ServiceName {
    fn schema_name() -> Cow<'static, str> {
        "ServiceName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
        json_schema!({
            "type": "string",
            "description": "A service of the platform.",
            "enum": names,
        })
    }
}

/// Schema of a breaker flavour name (`pybreaker`): one the reference stack models.
pub(super) struct BreakerName;

impl JsonSchema for BreakerName {
    fn schema_name() -> Cow<'static, str> {
        "BreakerName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = BreakerFlavour::ALL.iter().map(|f| f.name()).collect();
        json_schema!({
            "type": "string",
            "description": "A breaker library the reference stack's clients can behave like.",
            "enum": names,
        })
    }
}

/// Schema of an HTTP status code.
pub(super) struct HttpStatus;

impl JsonSchema for HttpStatus {
    fn schema_name() -> Cow<'static, str> {
        "HttpStatus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "description": "An HTTP status code.",
            "minimum": 100,
            "maximum": 599,
        })
    }
}
