//! Durations as scenario files write them: `"30s"`, `"250ms"`, `"1m30s"`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from a string with a unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration with a unit, like "30s", "250ms" or "1m30s""#)
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
                    E::custom(format!(
                        r#"`{s}` is not a duration ({e}); write e.g. "30s", "250ms" or "1m30s""#
                    ))
                })
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit: \"30s\", \"250ms\", \"1m30s\".",
            "pattern": r"^\s*\d+(\.\d+)?\s*[A-Za-zµ]+(\s*\d+(\.\d+)?\s*[A-Za-zµ]+)*\s*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct W {
        d: Dur,
    }

    #[test]
    fn units_parse_and_bad_ones_explain() {
        let w: W = toml::from_str(r#"d = "1m30s""#).expect("valid");
        assert_eq!(w.d.0, Duration::from_secs(90));
        let w: W = toml::from_str(r#"d = "250ms""#).expect("valid");
        assert_eq!(w.d.0, Duration::from_millis(250));
        let err = toml::from_str::<W>(r#"d = "30""#)
            .err()
            .map(|e| e.message().to_string());
        assert!(err.is_some_and(|m| m.contains("`30` is not a duration")));
        let err = toml::from_str::<W>("d = 30")
            .err()
            .map(|e| e.message().to_string());
        assert!(
            err.is_some_and(|m| m.contains("a duration with a unit")),
            "numbers need a unit"
        );
    }
}
