//! The fault catalogue: what can go wrong, for which requests, how often and
//! when.
//!
//! A [`Fault`] is built in Rust with a small builder
//! (`Fault::status(503).rate(0.3).method(Method::POST)`) or read from JSON/TOML
//! in the flat shape of [`FaultSpec`]:
//!
//! ```toml
//! kind = "status"
//! code = 503
//! rate = 0.3
//! path = "/api/v1/orders"
//! flapping = { period_ms = 2000, duty = 0.5 }
//! ```
//!
//! Every value is checked when it is read: a rate of 1.7, a negative delay or
//! an unknown kind is refused with a message that names the field.
//!
//! Bounds, stated once: a delay (`fixed_ms`, `uniform_ms`,
//! `lognormal.median_ms`) and a slow body's `duration_ms` are at most
//! [`MAX_DELAY`] (1 hour) — a lognormal draw beyond it is cut to it; a
//! flapping period is at most [`MAX_PERIOD`] (1 day); `lognormal.sigma` is at
//! most [`MAX_SIGMA`]; rates and duties are in [0, 1].

mod delay;
mod target;

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

pub use delay::Delay;
pub use target::{PathPattern, PatternError, Target};

/// One fault: a kind, the requests it targets, the share of them it hits and
/// an optional on/off schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FaultSpec", into = "FaultSpec")]
pub struct Fault {
    /// A name to change or clear this fault by; assigned when it is set if
    /// absent.
    pub id: Option<String>,
    /// What goes wrong.
    pub kind: FaultKind,
    /// Which requests it applies to.
    pub target: Target,
    /// Probability (0..=1) that a targeted request is hit, drawn per request
    /// from the seeded RNG.
    pub rate: f64,
    /// Toggles the fault on a period (flapping); `None` means always on.
    pub flapping: Option<Flapping>,
}

/// What goes wrong for a request the fault hits.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// The response is delayed; the request is otherwise served (or failed by
    /// another fault). Latencies of several faults add up.
    Latency(Delay),
    /// The injector answers this status itself; the downstream never sees the
    /// request.
    Status {
        /// HTTP status, 100..=599.
        code: u16,
        /// Response body; a small JSON error by default.
        body: Option<String>,
    },
    /// Connection refused: the injector stops listening (and drops open
    /// connections) while the fault is on. Connection-level, so it takes no
    /// method, path or rate.
    Refuse,
    /// The connection is reset (TCP RST): before any byte of the response, or
    /// after the headers and half of the body when `mid_response` is set.
    Reset {
        /// Cut the response in the middle of its body instead of before it.
        mid_response: bool,
    },
    /// The request is accepted and never answered while the fault stays on;
    /// when it is cleared (or flaps off) the held requests are served, like a
    /// paused process that resumes.
    Hang,
    /// The connection is closed without a single byte of response.
    EmptyResponse,
    /// The downstream's status and headers with an empty body.
    EmptyBody,
    /// The downstream's status with a body that is not valid JSON.
    MalformedBody,
    /// Headers at once, then the body dribbled out over this duration.
    SlowBody {
        /// Time from the first to the last byte of the body.
        duration: Duration,
    },
}

impl FaultKind {
    /// The name used in fault files, logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency(_) => "latency",
            FaultKind::Status { .. } => "status",
            FaultKind::Refuse => "refuse",
            FaultKind::Reset { .. } => "reset",
            FaultKind::Hang => "hang",
            FaultKind::EmptyResponse => "empty_response",
            FaultKind::EmptyBody => "empty_body",
            FaultKind::MalformedBody => "malformed_body",
            FaultKind::SlowBody { .. } => "slow_body",
        }
    }
}

/// All fault kinds, in the words fault files use.
pub const FAULT_KINDS: &[&str] = &[
    "latency",
    "status",
    "refuse",
    "reset",
    "hang",
    "empty_response",
    "empty_body",
    "malformed_body",
    "slow_body",
];

/// An on/off schedule: on for `duty × period` from the moment the fault is
/// set, then off for the rest of the period, repeating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flapping {
    /// Length of one on+off cycle.
    pub period: Duration,
    /// Share of the period the fault is on, in (0, 1].
    pub duty: f64,
}

impl Flapping {
    /// Whether the fault is on `elapsed` after it was set.
    pub fn is_on(&self, elapsed: Duration) -> bool {
        let period = self.period.as_nanos();
        let phase = elapsed.as_nanos() % period;
        (phase as f64) < self.duty * period as f64
    }

    /// Time from `elapsed` until the fault next switches on or off.
    pub fn until_toggle(&self, elapsed: Duration) -> Duration {
        let period = self.period.as_nanos();
        let phase = elapsed.as_nanos() % period;
        let on_len = (self.duty * period as f64).ceil() as u128;
        let next = if phase < on_len { on_len } else { period };
        Duration::from_nanos((next - phase).min(u64::MAX as u128) as u64)
    }
}

/// The longest delay a latency fault holds a request, and the longest a
/// slow body takes: one hour (far beyond any client's timeout). Lognormal
/// draws beyond it are cut to it.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The longest flapping period: one day.
pub const MAX_PERIOD: Duration = Duration::from_secs(86_400);

/// The largest lognormal `sigma` (already a tail of e^(2.3·10) ≈ 10^10 × the
/// median at p99, cut at [`MAX_DELAY`]).
pub const MAX_SIGMA: f64 = 10.0;

/// A fault that was refused, with the reason.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct FaultError(pub String);

impl Fault {
    fn of(kind: FaultKind) -> Self {
        Self {
            id: None,
            kind,
            target: Target::default(),
            rate: 1.0,
            flapping: None,
        }
    }

    /// Delays targeted requests.
    pub fn latency(delay: Delay) -> Self {
        Self::of(FaultKind::Latency(delay))
    }

    /// Answers targeted requests with `code` instead of the downstream.
    pub fn status(code: u16) -> Self {
        Self::of(FaultKind::Status { code, body: None })
    }

    /// Refuses connections while on.
    pub fn refuse() -> Self {
        Self::of(FaultKind::Refuse)
    }

    /// Resets the connection before any response byte.
    pub fn reset() -> Self {
        Self::of(FaultKind::Reset {
            mid_response: false,
        })
    }

    /// Resets the connection in the middle of the response body.
    pub fn reset_mid_response() -> Self {
        Self::of(FaultKind::Reset { mid_response: true })
    }

    /// Holds targeted requests without answering while on.
    pub fn hang() -> Self {
        Self::of(FaultKind::Hang)
    }

    /// Closes the connection without a response.
    pub fn empty_response() -> Self {
        Self::of(FaultKind::EmptyResponse)
    }

    /// Serves an empty body.
    pub fn empty_body() -> Self {
        Self::of(FaultKind::EmptyBody)
    }

    /// Serves a body that is not valid JSON.
    pub fn malformed_body() -> Self {
        Self::of(FaultKind::MalformedBody)
    }

    /// Dribbles the body out over `duration`.
    pub fn slow_body(duration: Duration) -> Self {
        Self::of(FaultKind::SlowBody { duration })
    }

    /// Names the fault so it can be changed or cleared by id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Hits only this share (0..=1) of targeted requests.
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Targets only requests with this method.
    pub fn method(mut self, method: Method) -> Self {
        self.target.method = Some(method);
        self
    }

    /// Targets only requests whose path matches `pattern` (see [`PathPattern`]).
    ///
    /// # Panics
    /// If the pattern is invalid; use [`PathPattern::parse`] and set
    /// `target.path` to handle that case yourself.
    pub fn path(mut self, pattern: &str) -> Self {
        match PathPattern::parse(pattern) {
            Ok(p) => self.target.path = Some(p),
            Err(e) => panic!("{e}"),
        }
        self
    }

    /// Switches the fault on and off: on for `duty × period`, off for the rest.
    pub fn flapping(mut self, period: Duration, duty: f64) -> Self {
        self.flapping = Some(Flapping { period, duty });
        self
    }

    /// Checks every value; the builder does not, so this runs whenever a fault
    /// is set.
    pub fn validate(&self) -> Result<(), FaultError> {
        let err = |m: String| Err(FaultError(m));
        if let Some(id) = &self.id
            && (id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return err(format!(
                "id `{id}` must be non-empty and use only letters, digits, '.', '_' or '-'"
            ));
        }
        if !(0.0..=1.0).contains(&self.rate) {
            return err(format!("rate must be between 0 and 1, got {}", self.rate));
        }
        if let Some(f) = &self.flapping {
            if f.period.is_zero() {
                return err("flapping.period_ms must be > 0".into());
            }
            if f.period > MAX_PERIOD {
                return err(format!(
                    "flapping.period_ms must be at most {} ms (one day), got {}",
                    ms(MAX_PERIOD),
                    ms(f.period)
                ));
            }
            if !(f.duty > 0.0 && f.duty <= 1.0) {
                return err(format!("flapping.duty must be in (0, 1], got {}", f.duty));
            }
        }
        let longest = match &self.kind {
            FaultKind::Latency(Delay::Fixed(d)) => Some(("fixed_ms", *d)),
            FaultKind::Latency(Delay::Uniform { lo, hi }) => Some(("uniform_ms", *lo.max(hi))),
            FaultKind::Latency(Delay::LogNormal { median, .. }) => {
                Some(("lognormal.median_ms", *median))
            }
            FaultKind::SlowBody { duration } => Some(("duration_ms", *duration)),
            _ => None,
        };
        if let Some((field, d)) = longest.filter(|(_, d)| *d > MAX_DELAY) {
            return err(format!(
                "{field} must be at most {} ms (one hour), got {}",
                ms(MAX_DELAY),
                ms(d)
            ));
        }
        match &self.kind {
            FaultKind::Latency(Delay::Uniform { lo, hi }) if lo > hi => err(format!(
                "uniform_ms: low {} ms is above high {} ms",
                lo.as_secs_f64() * 1e3,
                hi.as_secs_f64() * 1e3
            )),
            FaultKind::Latency(Delay::LogNormal { median, sigma }) => {
                if median.is_zero() {
                    err("lognormal.median_ms must be > 0".into())
                } else if !(sigma.is_finite() && (0.0..=MAX_SIGMA).contains(sigma)) {
                    err(format!(
                        "lognormal.sigma must be between 0 and {MAX_SIGMA}, got {sigma}"
                    ))
                } else {
                    Ok(())
                }
            }
            FaultKind::Status { code, .. } if !(100..=599).contains(code) => err(format!(
                "code must be an HTTP status between 100 and 599, got {code}"
            )),
            FaultKind::SlowBody { duration } if duration.is_zero() => {
                err("slow_body.duration_ms must be > 0".into())
            }
            FaultKind::Refuse if !self.target.is_everything() || self.rate != 1.0 => err(
                "refuse acts on connections, not requests: it takes no method, path or rate".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// The flat, human-written shape of a fault in JSON and TOML.
///
/// Fields that do not belong to the kind are refused, so a typo never turns
/// into a silently ignored setting.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Optional name of the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// One of [`FAULT_KINDS`].
    #[schemars(extend("enum" = ["latency", "status", "refuse", "reset", "hang", "empty_response", "empty_body", "malformed_body", "slow_body"]))]
    pub kind: String,
    /// Only requests with this method (e.g. "POST").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Only requests whose path matches this pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Share of targeted requests hit, 0..=1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// On/off schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<FlappingSpec>,
    /// latency: a fixed delay in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_ms: Option<f64>,
    /// latency: `[low, high]` milliseconds, uniform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform_ms: Option<[f64; 2]>,
    /// latency: lognormal with a median and a sigma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lognormal: Option<LogNormalSpec>,
    /// status: the HTTP status to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// status: the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// reset: cut mid-body instead of before the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid_response: Option<bool>,
    /// slow_body: how long the body takes, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

/// `flapping = { period_ms, duty }`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlappingSpec {
    /// Length of one on+off cycle in milliseconds.
    pub period_ms: f64,
    /// Share of the period the fault is on, in (0, 1].
    pub duty: f64,
}

/// `lognormal = { median_ms, sigma }`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogNormalSpec {
    /// Median delay in milliseconds.
    pub median_ms: f64,
    /// Shape of the tail.
    pub sigma: f64,
}

/// Milliseconds from a file, refused when negative, not a number, or beyond
/// `max` (a [`MAX_DELAY`] or [`MAX_PERIOD`], named in the message).
fn millis(field: &str, ms: f64, max: Duration) -> Result<Duration, FaultError> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(FaultError(format!(
            "{field} must be >= 0 ms, got {}",
            shown(ms)
        )));
    }
    let limit = max.as_secs_f64() * 1000.0;
    if ms > limit {
        let what = if max == MAX_PERIOD {
            "one day"
        } else {
            "one hour"
        };
        return Err(FaultError(format!(
            "{field} must be at most {limit} ms ({what}), got {}: the value is too long",
            shown(ms)
        )));
    }
    Duration::try_from_secs_f64(ms / 1000.0)
        .map_err(|_| FaultError(format!("{field} = {ms} ms is too long")))
}

/// A number as a reader wrote it: `1.8e22`, not twenty-three digits.
fn shown(x: f64) -> String {
    if x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl TryFrom<FaultSpec> for Fault {
    type Error = FaultError;

    fn try_from(spec: FaultSpec) -> Result<Self, FaultError> {
        let extra = |allowed: &[&str]| -> Result<(), FaultError> {
            let present = [
                ("fixed_ms", spec.fixed_ms.is_some()),
                ("uniform_ms", spec.uniform_ms.is_some()),
                ("lognormal", spec.lognormal.is_some()),
                ("code", spec.code.is_some()),
                ("body", spec.body.is_some()),
                ("mid_response", spec.mid_response.is_some()),
                ("duration_ms", spec.duration_ms.is_some()),
            ];
            match present
                .iter()
                .find(|(name, set)| *set && !allowed.contains(name))
            {
                Some((name, _)) => Err(FaultError(format!(
                    "field `{name}` does not apply to a {} fault",
                    spec.kind
                ))),
                None => Ok(()),
            }
        };
        let kind = match spec.kind.as_str() {
            "latency" => {
                extra(&["fixed_ms", "uniform_ms", "lognormal"])?;
                let delay = match (spec.fixed_ms, spec.uniform_ms, spec.lognormal) {
                    (Some(f), None, None) => Delay::Fixed(millis("fixed_ms", f, MAX_DELAY)?),
                    (None, Some([lo, hi]), None) => Delay::Uniform {
                        lo: millis("uniform_ms low", lo, MAX_DELAY)?,
                        hi: millis("uniform_ms high", hi, MAX_DELAY)?,
                    },
                    (None, None, Some(l)) => Delay::LogNormal {
                        median: millis("lognormal.median_ms", l.median_ms, MAX_DELAY)?,
                        sigma: l.sigma,
                    },
                    _ => {
                        return Err(FaultError(
                            "a latency fault needs exactly one of fixed_ms, uniform_ms, lognormal"
                                .into(),
                        ));
                    }
                };
                FaultKind::Latency(delay)
            }
            "status" => {
                extra(&["code", "body"])?;
                let code = spec
                    .code
                    .ok_or_else(|| FaultError("a status fault needs `code`".into()))?;
                let code = u16::try_from(code)
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| {
                        FaultError(format!(
                            "code must be an HTTP status between 100 and 599, got {code}"
                        ))
                    })?;
                FaultKind::Status {
                    code,
                    body: spec.body.clone(),
                }
            }
            "refuse" => {
                extra(&[])?;
                FaultKind::Refuse
            }
            "reset" => {
                extra(&["mid_response"])?;
                FaultKind::Reset {
                    mid_response: spec.mid_response.unwrap_or(false),
                }
            }
            "hang" => {
                extra(&[])?;
                FaultKind::Hang
            }
            "empty_response" => {
                extra(&[])?;
                FaultKind::EmptyResponse
            }
            "empty_body" => {
                extra(&[])?;
                FaultKind::EmptyBody
            }
            "malformed_body" => {
                extra(&[])?;
                FaultKind::MalformedBody
            }
            "slow_body" => {
                extra(&["duration_ms"])?;
                let d = spec
                    .duration_ms
                    .ok_or_else(|| FaultError("a slow_body fault needs `duration_ms`".into()))?;
                FaultKind::SlowBody {
                    duration: millis("duration_ms", d, MAX_DELAY)?,
                }
            }
            other => {
                return Err(FaultError(format!(
                    "unknown fault kind `{other}`; expected one of {}",
                    FAULT_KINDS.join(", ")
                )));
            }
        };
        let method = match &spec.method {
            Some(m) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| FaultError(format!("method `{m}` is not an HTTP method")))?,
            ),
            None => None,
        };
        let path = match &spec.path {
            Some(p) => Some(PathPattern::parse(p).map_err(|e| FaultError(e.to_string()))?),
            None => None,
        };
        let flapping = match spec.flapping {
            Some(f) => Some(Flapping {
                period: millis("flapping.period_ms", f.period_ms, MAX_PERIOD)?,
                duty: f.duty,
            }),
            None => None,
        };
        let fault = Fault {
            id: spec.id,
            kind,
            target: Target { method, path },
            rate: spec.rate.unwrap_or(1.0),
            flapping,
        };
        fault.validate()?;
        Ok(fault)
    }
}

impl From<Fault> for FaultSpec {
    fn from(f: Fault) -> Self {
        let mut spec = FaultSpec {
            id: f.id,
            kind: f.kind.name().to_string(),
            method: f.target.method.map(|m| m.to_string()),
            path: f.target.path.map(|p| p.as_str().to_string()),
            rate: (f.rate != 1.0).then_some(f.rate),
            flapping: f.flapping.map(|fl| FlappingSpec {
                period_ms: ms(fl.period),
                duty: fl.duty,
            }),
            ..FaultSpec::default()
        };
        match f.kind {
            FaultKind::Latency(Delay::Fixed(d)) => spec.fixed_ms = Some(ms(d)),
            FaultKind::Latency(Delay::Uniform { lo, hi }) => {
                spec.uniform_ms = Some([ms(lo), ms(hi)])
            }
            FaultKind::Latency(Delay::LogNormal { median, sigma }) => {
                spec.lognormal = Some(LogNormalSpec {
                    median_ms: ms(median),
                    sigma,
                })
            }
            FaultKind::Status { code, body } => {
                spec.code = Some(i64::from(code));
                spec.body = body;
            }
            FaultKind::Reset { mid_response } => spec.mid_response = Some(mid_response),
            FaultKind::SlowBody { duration } => spec.duration_ms = Some(ms(duration)),
            FaultKind::Refuse
            | FaultKind::Hang
            | FaultKind::EmptyResponse
            | FaultKind::EmptyBody
            | FaultKind::MalformedBody => {}
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Fault, String> {
        serde_json::from_str::<Fault>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_round_trips_through_json() {
        let faults = [
            Fault::latency(Delay::Fixed(Duration::from_millis(25))),
            Fault::latency(Delay::Uniform {
                lo: Duration::from_millis(1),
                hi: Duration::from_millis(9),
            }),
            Fault::latency(Delay::LogNormal {
                median: Duration::from_millis(100),
                sigma: 0.5,
            }),
            Fault::status(503)
                .rate(0.3)
                .method(Method::POST)
                .path("/api/v1/orders"),
            Fault::refuse().flapping(Duration::from_secs(2), 0.5),
            Fault::reset_mid_response(),
            Fault::hang().id("h1"),
            Fault::empty_response(),
            Fault::empty_body(),
            Fault::malformed_body(),
            Fault::slow_body(Duration::from_millis(300)),
        ];
        for fault in faults {
            let json = serde_json::to_string(&fault).expect("serializes");
            assert_eq!(parse(&json).as_ref(), Ok(&fault), "{json}");
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let cases = [
            (
                r#"{"kind":"status","code":503,"rate":1.7}"#,
                "rate must be between 0 and 1, got 1.7",
            ),
            (
                r#"{"kind":"latency","fixed_ms":-5}"#,
                "fixed_ms must be >= 0 ms, got -5",
            ),
            (r#"{"kind":"explode"}"#, "unknown fault kind `explode`"),
            (
                r#"{"kind":"status","code":999}"#,
                "between 100 and 599, got 999",
            ),
            (
                r#"{"kind":"status","code":70000}"#,
                "between 100 and 599, got 70000",
            ),
            (r#"{"kind":"status"}"#, "needs `code`"),
            (
                r#"{"kind":"latency","fixed_ms":5,"code":503}"#,
                "field `code` does not apply",
            ),
            (r#"{"kind":"latency"}"#, "exactly one of fixed_ms"),
            (r#"{"kind":"latency","uniform_ms":[9,1]}"#, "above high"),
            (
                r#"{"kind":"refuse","rate":0.5}"#,
                "refuse acts on connections",
            ),
            (
                r#"{"kind":"hang","flapping":{"period_ms":100,"duty":0}}"#,
                "flapping.duty",
            ),
            (r#"{"kind":"hang","rat":0.5}"#, "unknown field `rat`"),
            (r#"{"kind":"hang","path":"orders"}"#, "must start with `/`"),
            (r#"{"kind":"hang","method":"GE T"}"#, "not an HTTP method"),
            (r#"{"kind":"latency","fixed_ms":1e30}"#, "is too long"),
            (
                r#"{"kind":"latency","fixed_ms":1.8e22}"#,
                "fixed_ms must be at most 3600000 ms (one hour)",
            ),
            (
                r#"{"kind":"latency","fixed_ms":3600001}"#,
                "fixed_ms must be at most 3600000 ms",
            ),
            (
                r#"{"kind":"latency","lognormal":{"median_ms":3600001,"sigma":1}}"#,
                "lognormal.median_ms must be at most",
            ),
            (
                r#"{"kind":"latency","lognormal":{"median_ms":5,"sigma":11}}"#,
                "lognormal.sigma must be between 0 and 10",
            ),
            (
                r#"{"kind":"slow_body","duration_ms":1e9}"#,
                "duration_ms must be at most",
            ),
            (
                r#"{"kind":"hang","flapping":{"period_ms":1e12,"duty":0.5}}"#,
                "flapping.period_ms must be at most 86400000 ms (one day)",
            ),
        ];
        for (json, expected) in cases {
            let err = parse(json).expect_err(json);
            assert!(err.contains(expected), "{json}: got `{err}`");
        }
    }

    #[test]
    fn flapping_schedule_and_next_toggle() {
        let f = Flapping {
            period: Duration::from_millis(100),
            duty: 0.3,
        };
        assert!(f.is_on(Duration::ZERO));
        assert!(f.is_on(Duration::from_millis(29)));
        assert!(!f.is_on(Duration::from_millis(30)));
        assert!(!f.is_on(Duration::from_millis(99)));
        assert!(f.is_on(Duration::from_millis(100)));
        assert_eq!(
            f.until_toggle(Duration::from_millis(10)),
            Duration::from_millis(20)
        );
        assert_eq!(
            f.until_toggle(Duration::from_millis(40)),
            Duration::from_millis(60)
        );
        assert_eq!(
            f.until_toggle(Duration::from_millis(130)),
            Duration::from_millis(70)
        );
    }
}
