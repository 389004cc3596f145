//! The JSON schema of scenario files, for editors.
//!
//! Generated from the types of `super::file`, so it cannot drift from what
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

/// The JSON schema of a scenario file but for its checks, whose tables are
/// described by the check kinds (the verdict module's `Plan::json_schema` fills
/// them in), and the generator the kinds' field schemas are made with.
pub fn base_schema() -> (Schema, SchemaGenerator) {
    let mut generator = SchemaGenerator::default();
    let schema = generator.root_schema_for::<ScenarioFile>();
    (schema, generator)
}

/// Declares a JSON schema for a marker type used only to describe a field.
macro_rules! field_schema {
    ($(#[$doc:meta])* $name:ident, $schema:tt) => {
        $(#[$doc])*
        pub struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

field_schema!(
    /// Schema of a count: 1 to `MAX_COUNT`.
    Count,
    {
        "type": "integer",
        "minimum": 1,
        "maximum": super::MAX_COUNT,
    }
);

field_schema!(
    /// Schema of a share between 0 and 1.
    Ratio,
    {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
    }
);

field_schema!(
    /// Schema of a number that may be 0.
    NonNegative,
    {
        "type": "number",
        "minimum": 0,
    }
);

field_schema!(
    /// Schema of a number more than 0.
    Positive,
    {
        "type": "number",
        "exclusiveMinimum": 0,
    }
);

field_schema!(
    /// Schema of a journey's name (or a follow-up series, `payment.webhook`).
    JourneyName,
    {
        "type": "string",
        "description": "A journey of this scenario, by name.",
    }
);

field_schema!(
    /// Schema of a phase's name.
    PhaseName,
    {
        "type": "string",
        "description": "A phase of this scenario: baseline, fault, recovery or one of [[phases]].",
    }
);

/// Schema of an injector name (`order-service`): one of the platform's.
pub struct InjectorName;

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
pub struct ServiceName;

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
pub struct BreakerName;

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
pub struct HttpStatus;

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
