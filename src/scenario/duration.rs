//! Durations as scenario files write them: `"30s"`, `"250ms"`, `"1m30s"`.
//!
//! Every duration a scenario can write is at most [`MAX_DURATION`] (30
//! days): beyond it the file is refused at the value, so no timing the run
//! adds up or waits for can overflow a clock.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration a scenario file may write: 30 days.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// A duration read from a string with a unit, at most [`MAX_DURATION`].
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
                let d = humantime::parse_duration(s.trim()).map_err(|e| {
                    E::custom(format!(
                        r#"`{s}` is not a duration ({e}); write e.g. "30s", "250ms" or "1m30s""#
                    ))
                })?;
                if d > MAX_DURATION {
                    return Err(E::custom(format!(
                        r#"`{s}` is too long: a duration is at most 30 days ("30d")"#
                    )));
                }
                Ok(Dur(d))
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
            "description": "A duration with a unit: \"30s\", \"250ms\", \"1m30s\"; at most 30 days.",
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

    #[test]
    fn durations_are_bounded_at_30_days() {
        let w: W = toml::from_str(r#"d = "30d""#).expect("the bound itself");
        assert_eq!(w.d.0, MAX_DURATION);
        for long in ["30d 1s", "1000000h", "584942417355y"] {
            let err = toml::from_str::<W>(&format!("d = \"{long}\""))
                .err()
                .map(|e| e.message().to_string());
            assert!(
                err.as_deref().is_some_and(
                    |m| m.contains("at most 30 days") || m.contains("is not a duration")
                ),
                "{long}: {err:?}"
            );
        }
    }
}
