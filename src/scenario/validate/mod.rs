//! From the file as written to a plan that can run: defaults filled in,
//! every name resolved, every range checked. All problems are collected, each
//! at the location of the value that causes it. One file per part of the
//! scenario: [`stack`], [`sut`] (and the merchant), [`load`], [`faults`]
//! (and phases); [`checks`] is what a check kind may ask of its table (the
//! kinds themselves are the verdict's).

mod checks;
mod faults;
mod load;
mod stack;
mod sut;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use fault_injectors::Fault;
use fault_injectors::fault::{FAULT_KINDS, FaultSpec};
use reference_stack::{
    BreakerFlavour, ClientSettings, Defects, Downstream, ServiceKind, SignatureVersion,
};
use toml::Spanned;

use super::error::{Locator, ScenarioError, ScenarioErrors};
use super::file::{
    CheckTable, ClientFile, ContainerAction, JourneyFile, LoadFile, MerchantFile, Model,
    RampStepFile, ScenarioFile, StackFile, StackKind, StateValuesFile, SutBreakerFile, SutFile,
};
use super::{
    FaultWindow, GaugeUse, InjectorPlan, Journey, LoadPlan, Merchant, Phase, Scenario, StackPlan,
    SutBreaker, SutPlan,
};
use crate::platform::{JourneyKind, downstream_named, injector_name, injector_names};
pub use checks::{Fields, Series};

/// A scenario parsed and checked, its checks still as written: the verdict
/// plans them (each check kind owns its fields) with [`Parsed::fields`].
pub struct Parsed<'t> {
    /// The scenario, every part but the checks resolved.
    pub scenario: Scenario,
    /// Every `[[checks]]` table, at its header.
    pub checks: Vec<Spanned<CheckTable>>,
    validator: Validator<'t>,
}

impl<'t> Parsed<'t> {
    /// A check table's view for planning, errors collected here.
    pub fn fields<'a>(&'a mut self, at: usize, kind: &'static str) -> Fields<'a, 't> {
        let table = &self.checks[at];
        Fields::new(
            table.get_ref(),
            table.span(),
            kind,
            &self.scenario,
            &mut self.validator,
        )
    }

    /// Records a problem at `span`.
    pub fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.validator.err(span, message);
    }

    /// Where the key `key` of the value at `value` is written.
    pub fn key_span(&self, value: &Range<usize>, key: &str) -> Range<usize> {
        self.validator.locate.key_of(value, key)
    }

    /// The scenario, or every problem found, in file order.
    pub fn finish(mut self) -> Result<Scenario, ScenarioErrors> {
        // Checks run section by section; the user reads the file top to bottom.
        self.validator.errors.sort_by_key(|e| (e.line, e.column));
        match self.validator.errors.is_empty() {
            true => Ok(self.scenario),
            false => Err(ScenarioErrors(self.validator.errors)),
        }
    }
}

/// Parses and checks a scenario but for its checks.
pub(super) fn parse<'t>(
    path: &'t Path,
    text: &'t str,
    stack_override: Option<StackKind>,
) -> Result<Parsed<'t>, ScenarioErrors> {
    let locate = Locator::new(path, text);
    let file: ScenarioFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = explain_parse_error(e.message().trim(), text, span.start);
        ScenarioErrors(vec![locate.at(span, message)])
    })?;
    let mut validator = Validator {
        locate,
        errors: Vec::new(),
        unresolved_faults: false,
        derived_phases: false,
    };
    let mut file = file;
    let checks = std::mem::take(&mut file.checks);
    let scenario = validator.scenario(path, text, file, stack_override);
    Ok(Parsed {
        scenario,
        checks,
        validator,
    })
}

/// The parser's message, with what to write instead where the parser's own
/// words do not say it: a duplicate key, or a required field that is missing
/// (`at` is where the parser located it: the table that lacks the field).
fn explain_parse_error(message: &str, text: &str, at: usize) -> String {
    if message == "duplicate key" {
        return "duplicate key: a key is set once per table; remove one of them".to_string();
    }
    let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    else {
        return message.to_string();
    };
    let table = text.get(at..).unwrap_or_default();
    let before = text.get(..at).unwrap_or_default().trim_end();
    let example = match field {
        "duration" => r#"add `duration = "60s"` (how long the load runs) at the top of the file"#.to_string(),
        "load" => r#"add a [load] table with at least one [[load.journeys]] (e.g. `kind = "payment"`, `rate = 10`)"#.to_string(),
        "journeys" => r#"add at least one [[load.journeys]] table (e.g. `kind = "payment"`, `rate = 10`)"#.to_string(),
        "injector" => r#"add the injector the fault is set on, e.g. `injector = "order-service"`"#.to_string(),
        "from" => r#"add when it starts, e.g. `from = "20s"`"#.to_string(),
        "until" => r#"add when it ends, e.g. `until = "40s"`"#.to_string(),
        "fault" => r#"add what goes wrong, e.g. `fault = { kind = "status", code = 503 }`"#.to_string(),
        "name" => r#"add a name, e.g. `name = "baseline"`"#.to_string(),
        "at" => r#"add when the ramp reaches its rate, e.g. `{ at = "30s", rate = 50 }`"#.to_string(),
        "rate" => r#"add the requests/s of the ramp step, e.g. `{ at = "30s", rate = 50 }`"#.to_string(),
        "closed" | "half_open" | "open" => "give the gauge value of every state, e.g. `state_values = { closed = 0, half_open = 1, open = 2 }`".to_string(),
        "kind" if table.starts_with("[[load.journeys") => format!("add what the users do, one of: {}", JourneyKind::ALL.map(JourneyKind::name).join(", ")),
        "kind" if before.ends_with("fault =") => format!("add what goes wrong, one of: {}", FAULT_KINDS.join(", ")),
        _ => return message.to_string(),
    };
    format!("{message}; {example}")
}

/// Checks a parsed file and keeps every problem it finds.
struct Validator<'a> {
    locate: Locator<'a>,
    errors: Vec<ScenarioError>,
    /// A fault was refused (unknown injector, invalid fault) and dropped: a
    /// check finding no fault (or no derived `fault` phase) may be looking
    /// for that one, so it stays silent rather than add a misleading second
    /// error.
    unresolved_faults: bool,
    /// The phases were derived from the faults (no [[phases]]).
    derived_phases: bool,
}

/// Default client timeout per request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default series window.
const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// Default open-model lag before a request is dropped.
const DEFAULT_MAX_LAG: Duration = Duration::from_secs(1);
/// Default metrics sampling interval.
const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_millis(250);

// Bounds of what a user can write (durations: `MAX_DURATION`, 30 days, when
// they are read). Beyond them a file is refused at the value, so nothing a
// run adds up, multiplies or waits for can overflow.
/// `time_scale`: from 0.001 (30 s → 30 ms) to 100.
const TIME_SCALE: std::ops::RangeInclusive<f64> = 0.001..=100.0;
/// Requests/s of a journey's `rate` or a ramp step.
const MAX_RATE: f64 = 100_000.0;
/// Closed-model users of one journey.
const MAX_USERS: u32 = 10_000;
/// A client's attempts per call (the platform's: 4).
const MAX_ATTEMPTS: u32 = 100;
/// A breaker's half-open admissions, a check's probes or held windows.
pub const MAX_COUNT: u32 = 10_000;
/// A breaker's minimum requests before it may trip.
const MAX_MIN_REQUESTS: u32 = 1_000_000;
/// The shortest series window.
const MIN_WINDOW: Duration = Duration::from_millis(1);
/// Windows of one run's series (`duration` / `window`).
const MAX_WINDOWS: u128 = 1_000_000;

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let e = self.locate.at(span, message);
        self.errors.push(e);
    }

    fn scenario(
        &mut self,
        path: &Path,
        text: &str,
        file: ScenarioFile,
        stack_override: Option<StackKind>,
    ) -> Scenario {
        let duration = file.duration.get_ref().0;
        if duration.is_zero() {
            self.err(
                file.duration.span(),
                "duration must be more than zero, e.g. duration = \"60s\"",
            );
        }
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
        });
        let stack = self.stack(file.stack, stack_override);
        let sut = self.sut(file.sut, &stack);
        let merchant = self.merchant(file.merchant);
        let load = self.load(file.load, duration, &sut, &stack);
        let faults = self.faults(file.faults, duration, &stack);
        let phases = self.phases(file.phases, &faults, duration);
        Scenario {
            path: path.to_path_buf(),
            name,
            description: file.description.unwrap_or_default().trim().to_string(),
            seed: file.seed.unwrap_or(0),
            duration,
            source: text.to_string(),
            stack,
            sut,
            merchant,
            load,
            faults,
            phases,
        }
    }

    /// An injector name, resolved; the error lists the names there are.
    fn injector(&mut self, name: &Spanned<String>, stack: &StackPlan) -> Option<Downstream> {
        match downstream_named(name.get_ref()) {
            Some(d) if stack.kind == StackKind::External && !stack.injectors.contains_key(&d) => {
                self.err(
                    name.span(),
                    format!(
                        "no injector `{}` in [stack.injectors]; an external stack has only the injectors listed there",
                        name.get_ref()
                    ),
                );
                None
            }
            Some(d) => Some(d),
            None => {
                self.err(
                    name.span(),
                    format!(
                        "unknown injector `{}`; known: {}",
                        name.get_ref(),
                        injector_names().join(", ")
                    ),
                );
                None
            }
        }
    }

    fn url(&mut self, url: &Spanned<String>) -> bool {
        match url::Url::parse(url.get_ref()) {
            Ok(u) if u.scheme() == "http" && u.host().is_some() => true,
            _ => {
                self.err(
                    url.span(),
                    format!(
                        "`{}` is not an http://host:port URL; write e.g. \"http://127.0.0.1:40004\"",
                        url.get_ref()
                    ),
                );
                false
            }
        }
    }

    /// A count from 1 to `max` (`why` says what 1 means); 1 replaces a
    /// value out of range.
    fn count(&mut self, v: &Spanned<u32>, what: &str, why: &str, max: u32) -> u32 {
        match *v.get_ref() {
            0 => {
                self.err(v.span(), format!("{what} must be at least 1 ({why})"));
                1
            }
            n if n > max => {
                self.err(v.span(), format!("{what} must be at most {max}, got {n}"));
                1
            }
            n => n,
        }
    }

    /// A duration that must be more than zero; `default` replaces a zero.
    fn nonzero(&mut self, v: &Spanned<super::Dur>, what: &str, default: Duration) -> Duration {
        if v.get_ref().0.is_zero() {
            self.err(
                v.span(),
                format!(
                    "{what} must be more than zero, e.g. \"{}\"",
                    super::Dur(default)
                ),
            );
            return default;
        }
        v.get_ref().0
    }

    fn statuses(&mut self, statuses: &Spanned<Vec<u16>>) -> Vec<u16> {
        let list = statuses.get_ref();
        let bad: Vec<String> = list
            .iter()
            .filter(|s| !(100..=599).contains(*s))
            .map(u16::to_string)
            .collect();
        if list.is_empty() || !bad.is_empty() {
            self.err(statuses.span(), format!(
                "success_statuses must list HTTP statuses between 100 and 599, e.g. [200, 201]{}",
                if bad.is_empty() { String::new() } else { format!("; not statuses: {}", bad.join(", ")) }
            ));
        }
        list.clone()
    }
}

/// A number as a reader wrote it: `1e300`, not three hundred digits.
fn shown(x: f64) -> String {
    if x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

fn service_named(name: &str) -> Option<ServiceKind> {
    ServiceKind::ALL.into_iter().find(|k| k.name() == name)
}

fn service_names() -> String {
    ServiceKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}
