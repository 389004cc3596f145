//! What a check kind may ask of its `[[checks]]` table while it is planned:
//! typed fields, each error at the value that causes it, and the rest of the
//! scenario to resolve names against. The kinds themselves (their fields,
//! defaults and evaluation) are the verdict's, one file each.

use serde::de::DeserializeOwned;

use super::*;

/// Which names a check's `journey` may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// A journey or a journey's follow-up series (`payment.webhook`).
    Any,
    /// A journey only.
    JourneysOnly,
}

/// One `[[checks]]` table, seen by the kind planning it.
pub struct Fields<'a, 't> {
    table: &'a CheckTable,
    header: Range<usize>,
    kind: &'static str,
    scenario: &'a Scenario,
    validator: &'a mut Validator<'t>,
    failed: bool,
}

impl<'a, 't> Fields<'a, 't> {
    pub(super) fn new(
        table: &'a CheckTable,
        header: Range<usize>,
        kind: &'static str,
        scenario: &'a Scenario,
        validator: &'a mut Validator<'t>,
    ) -> Self {
        Self {
            table,
            header,
            kind,
            scenario,
            validator,
            failed: false,
        }
    }

    /// The rest of the scenario, resolved.
    pub fn scenario(&self) -> &Scenario {
        self.scenario
    }

    /// The check's kind, as written.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether a problem was found in this table.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The `name` the table gives, if any.
    pub fn name(&mut self) -> Option<String> {
        self.get("name")
    }

    /// Where `field` is written, or the table's `kind` when it is not.
    pub fn span(&self, field: &str) -> Range<usize> {
        self.table
            .get(field)
            .or_else(|| self.table.get("kind"))
            .map_or_else(|| self.header.clone(), |v| v.span())
    }

    /// Records a problem at `field` (at the `kind` when it is not written).
    pub fn err(&mut self, field: &str, message: impl Into<String>) {
        let at = self.span(field);
        self.validator.err(at, message);
        self.failed = true;
    }

    /// Whether `field` is written.
    pub fn has(&self, field: &str) -> bool {
        self.table.contains_key(field)
    }

    /// `field` as a `T`, None when it is not written or is not a `T` (then
    /// the error is recorded at its value).
    pub fn get<T: DeserializeOwned>(&mut self, field: &str) -> Option<T> {
        let value = self.table.get(field)?;
        match T::deserialize(value.get_ref().clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(field, e.message().to_string());
                None
            }
        }
    }

    /// A duration (`"5s"`) that must be more than zero.
    pub fn duration(&mut self, field: &str) -> Option<Duration> {
        let d: crate::scenario::Dur = self.get(field)?;
        if d.0.is_zero() {
            self.err(
                field,
                format!("{field} must be more than zero, e.g. {field} = \"5s\""),
            );
            return None;
        }
        Some(d.0)
    }

    /// A count from 1 to [`MAX_COUNT`]; `why` explains the lower bound.
    pub fn count(&mut self, field: &str, why: &str) -> Option<u32> {
        let n: u32 = self.get(field)?;
        match n {
            0 => {
                self.err(field, format!("{field} must be at least 1 ({why})"));
                None
            }
            n if n > MAX_COUNT => {
                self.err(
                    field,
                    format!("{field} must be at most {MAX_COUNT}, got {n}"),
                );
                None
            }
            n => Some(n),
        }
    }

    /// The check's `downstream` (an injector name), or `default` when it is
    /// not written; required without a default.
    pub fn downstream(&mut self, default: Option<Downstream>) -> Option<Downstream> {
        match (self.table.get("downstream"), default) {
            (Some(_), _) => {
                let name: String = self.get("downstream")?;
                let spanned = Spanned::new(self.span("downstream"), name);
                let found = self.validator.injector(&spanned, &self.scenario.stack);
                self.failed |= found.is_none();
                found
            }
            (None, Some(d)) => Some(d),
            (None, None) => {
                let message = format!(
                    "a {} check needs `downstream` (an injector name, e.g. downstream = \"order-service\")",
                    self.kind
                );
                self.err("kind", message);
                None
            }
        }
    }

    /// The check's `service`: a service of the platform.
    pub fn service(&mut self) -> Option<ServiceKind> {
        let name: String = self.get("service")?;
        match service_named(&name) {
            Some(s) => Some(s),
            None => {
                self.err(
                    "service",
                    format!("unknown service `{name}`; known: {}", service_names()),
                );
                None
            }
        }
    }

    /// The check's `journey`, which must name one of the load's journeys
    /// (or, where `series` allows, a journey's follow-up such as
    /// `payment.webhook`).
    pub fn journey(&mut self, series: Series) -> Option<String> {
        let load = &self.scenario.load;
        let mut known: Vec<String> = load.journeys.iter().map(|x| x.name.clone()).collect();
        if series == Series::Any {
            known.extend(
                load.journeys
                    .iter()
                    .filter(|j| j.webhook)
                    .map(|j| format!("{}.webhook", j.name)),
            );
        }
        if !self.has("journey") {
            let message = format!(
                "a {} check needs `journey` (one of: {})",
                self.kind,
                known.join(", ")
            );
            self.err("kind", message);
            return None;
        }
        let name: String = self.get("journey")?;
        if known.contains(&name) {
            return Some(name);
        }
        self.err(
            "journey",
            format!("unknown journey `{name}`; known: {}", known.join(", ")),
        );
        None
    }

    /// The check's `phase` (default `fault`), which must exist.
    pub fn phase(&mut self) -> Option<String> {
        let (name, default) = match self.has("phase") {
            true => (self.get::<String>("phase")?, ""),
            false => ("fault".to_string(), " (the default)"),
        };
        if self.scenario.phases.iter().any(|p| p.name == name) {
            return Some(name);
        }
        if !self.phases_incomplete() {
            let known: Vec<&str> = self
                .scenario
                .phases
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            let message = format!(
                "no phase `{name}`{default} in this scenario; set `phase` to one of: {}",
                known.join(", ")
            );
            self.err("phase", message);
        }
        self.failed = true;
        None
    }

    /// Checks that compare with baseline need a phase named `baseline`.
    pub fn baseline(&mut self) -> Option<()> {
        if self.scenario.phases.iter().any(|p| p.name == "baseline") {
            return Some(());
        }
        if !self.phases_incomplete() {
            let fix = if self.validator.derived_phases {
                "start the first fault after 0s so the run has a baseline before it"
            } else {
                "add a [[phases]] entry named `baseline`"
            };
            let message = format!(
                "a {} check compares with the `baseline` phase, which this scenario does not have; {fix}",
                self.kind
            );
            self.err("kind", message);
        }
        self.failed = true;
        None
    }

    /// The derived phases miss a fault that was refused: a missing phase is
    /// a consequence of that error, not another one.
    fn phases_incomplete(&self) -> bool {
        self.validator.derived_phases && self.validator.unresolved_faults
    }

    /// Whether a fault was refused (and dropped): a check finding no fault
    /// may be looking for that one, so it stays silent rather than add a
    /// misleading second error.
    pub fn faults_unresolved(&self) -> bool {
        self.validator.unresolved_faults
    }

    /// `success_tolerance` in [0, 1] (default 0.02) and `latency_factor`
    /// ≥ 0 (default 2, 0 ignores latency).
    pub fn tolerances(&mut self) -> (f64, f64) {
        let success = match self.get::<f64>("success_tolerance") {
            Some(x) if !(x.is_finite() && (0.0..=1.0).contains(&x)) => {
                self.err("success_tolerance", format!("success_tolerance must be between 0 and 1 (0.02 allows 2 points below baseline), got {x}"));
                0.02
            }
            Some(x) => x,
            None => 0.02,
        };
        let latency = match self.get::<f64>("latency_factor") {
            Some(x) if !(x.is_finite() && x >= 0.0) => {
                self.err("latency_factor", format!("latency_factor must be 0 (ignore latency) or more (2 allows p99 to double), got {x}"));
                2.0
            }
            Some(x) => x,
            None => 2.0,
        };
        (success, latency)
    }

    /// A breaker check needs a fault on its downstream to measure from.
    pub fn faulted(&mut self, d: Downstream) -> Option<()> {
        if self.scenario.faults.iter().any(|f| f.injector == d) {
            return Some(());
        }
        if !self.validator.unresolved_faults {
            let message = format!(
                "no [[faults]] entry targets `{}`, so its breaker has nothing to react to; add one or check another downstream",
                injector_name(d)
            );
            self.err("downstream", message);
        }
        self.failed = true;
        None
    }

    /// A ratio of downstream attempts to the requests of the journeys
    /// reaching it: `journey` (or some journey) must reach it.
    pub fn reached(&mut self, d: Downstream, journey: Option<&str>) -> Option<()> {
        let reaches = |j: &&Journey| {
            j.expects.contains(&d) || j.kind.async_downstreams(j.webhook).contains(&d)
        };
        let found = self
            .scenario
            .load
            .journeys
            .iter()
            .filter(|j| journey.is_none_or(|name| j.name == name))
            .any(|j| reaches(&j));
        if found {
            return Some(());
        }
        let name = injector_name(d);
        match journey {
            Some(j) => self.err("journey", format!("journey `{j}` does not reach `{name}`, so there is no ratio to bound; name a journey that calls it or leave `journey` out")),
            None => self.err("downstream", format!("no journey of this scenario reaches `{name}`, so there is no ratio to bound; add a journey that calls it")),
        }
        None
    }
}
