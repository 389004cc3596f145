//! Scenarios: one fault story each, read from TOML and checked before
//! anything starts.
//!
//! [`Scenario::parse`] parses a file ([`file`]), checks every reference and
//! range (`validate`) of every part but the checks, and returns the
//! resolved scenario with its `[[checks]]` tables as written; the verdict
//! plans those (`Plan::load` in the verdict module, which depends on this one), so every problem of a file is
//! reported together, each at `file:line:col`.

mod duration;
mod error;
pub(crate) mod file;
pub mod schema;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fault_injectors::Fault;
use reference_stack::{ClientSettings, Defects, Downstream, ServiceKind, SignatureVersion};

pub use duration::{Dur, MAX_DURATION};
pub use error::{ScenarioError, ScenarioErrors};
pub use file::{CheckTable, ContainerAction, Model, StackKind};
pub use validate::{Fields, MAX_COUNT, Parsed, Series};

use crate::platform::JourneyKind;

/// A checked scenario, ready to run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// The story it tells.
    pub description: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// Length of the load, from the first request.
    pub duration: Duration,
    /// The file's text, kept for the report.
    pub source: String,
    /// The stack to run.
    pub stack: StackPlan,
    /// How to read the SUT.
    pub sut: SutPlan,
    /// Who the load acts as.
    pub merchant: Merchant,
    /// The traffic.
    pub load: LoadPlan,
    /// The fault timeline.
    pub faults: Vec<FaultWindow>,
    /// Named windows of the timeline.
    pub phases: Vec<Phase>,
}

/// The stack, resolved.
#[derive(Clone, Debug)]
pub struct StackPlan {
    /// Which kind.
    pub kind: StackKind,
    /// Embedded: factor on every client timing.
    pub time_scale: f64,
    /// Embedded: defects per service.
    pub defects: BTreeMap<ServiceKind, Defects>,
    /// Embedded: settings of every client (before `time_scale`).
    pub clients: ClientSettings,
    /// Embedded: settings of one downstream's clients (before `time_scale`).
    pub client_overrides: BTreeMap<Downstream, ClientSettings>,
    /// Embedded: downstreams the SUT is pointed at instead of their injector.
    pub wiring: BTreeMap<Downstream, String>,
    /// External: base URL of each service under test.
    pub services: BTreeMap<ServiceKind, String>,
    /// Injector placements (listen address, front-mode upstream).
    pub injectors: BTreeMap<Downstream, InjectorPlan>,
}

impl StackPlan {
    /// The client settings the SUT's clients of `downstream` run with,
    /// `time_scale` applied.
    pub fn client_settings(&self, downstream: Downstream) -> ClientSettings {
        self.client_overrides
            .get(&downstream)
            .unwrap_or(&self.clients)
            .scaled(self.time_scale)
    }
}

/// Where an injector listens and what it fronts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InjectorPlan {
    /// Fixed listen address (default: an ephemeral loopback port).
    pub listen: Option<SocketAddr>,
    /// Front mode: the real service behind it.
    pub upstream: Option<String>,
}

/// How the SUT is read.
#[derive(Clone, Debug)]
pub struct SutPlan {
    /// Default success statuses.
    pub success_statuses: Vec<u16>,
    /// Whether the breaker gauge is read.
    pub gauge: GaugeUse,
    /// Metrics path.
    pub metrics_path: String,
    /// Readiness path.
    pub ready_path: String,
    /// Breaker state gauge name.
    pub breaker_metric: String,
    /// Label naming the downstream.
    pub downstream_label: String,
    /// Gauge values of closed, half-open, open.
    pub state_values: [f64; 3],
    /// Sampling interval.
    pub sample_every: Duration,
    /// Gauge label values mapped to the downstream they name.
    pub downstream_names: BTreeMap<String, Downstream>,
    /// What the scenario states about the SUT's breakers.
    pub breakers: BTreeMap<Downstream, SutBreaker>,
}

/// Whether the SUT's breaker gauge is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaugeUse {
    /// Never.
    Off,
    /// When the SUT exposes it (the default).
    IfPresent,
    /// Always: a downstream without a matching sample is inconclusive.
    Required,
}

impl GaugeUse {
    /// Whether the SUT's metrics are scraped at all.
    pub fn scraped(self) -> bool {
        self != Self::Off
    }
}

/// What the scenario states about the SUT's breaker for one downstream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SutBreaker {
    /// Calls let through while half-open.
    pub half_open_calls: Option<u32>,
    /// Refuse outages: answers faster than this were rejected.
    pub fast_below: Option<Duration>,
}

/// Merchant credentials.
#[derive(Clone, Debug)]
pub struct Merchant {
    /// Merchant id.
    pub id: String,
    /// API key.
    pub api_key: String,
    /// API secret.
    pub api_secret: String,
    /// Signature version.
    pub signature: SignatureVersion,
    /// Login password.
    pub password: String,
}

/// The traffic, resolved.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Open or closed.
    pub model: Model,
    /// The journeys.
    pub journeys: Vec<Journey>,
    /// Client timeout per request.
    pub timeout: Duration,
    /// Width of series windows.
    pub window: Duration,
    /// Open model: drop a request this late.
    pub max_lag: Duration,
}

/// One journey, resolved.
#[derive(Clone, Debug)]
pub struct Journey {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: JourneyKind,
    /// Open model: (instant, requests/s) steps, linear between them.
    pub rate: Vec<(Duration, f64)>,
    /// Closed model: users.
    pub users: u32,
    /// Closed model: think time.
    pub think: Duration,
    /// Payment: follow with the webhook.
    pub webhook: bool,
    /// Success statuses.
    pub success_statuses: Vec<u16>,
    /// Downstreams each request must reach (preflight).
    pub expects: Vec<Downstream>,
}

/// A fault set on an injector for a window.
#[derive(Clone, Debug)]
pub struct FaultWindow {
    /// The injector's downstream.
    pub injector: Downstream,
    /// Set at.
    pub from: Duration,
    /// Cleared at (None: never).
    pub until: Option<Duration>,
    /// The fault (for a container action: what the service's callers see
    /// through its front injector, for the verdict).
    pub fault: Fault,
    /// Docker stacks: the action on the container behind the injector.
    pub container: Option<ContainerAction>,
}

/// A named window of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Name.
    pub name: String,
    /// Start.
    pub from: Duration,
    /// End.
    pub until: Duration,
}

impl Scenario {
    /// Reads a scenario file's text (an error located at its first line).
    pub fn read(path: &Path) -> Result<String, ScenarioErrors> {
        std::fs::read_to_string(path).map_err(|e| {
            ScenarioErrors(vec![ScenarioError {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }])
        })
    }

    /// Parses and checks `text` (read from `path`) but for its checks;
    /// `stack` overrides the file's stack kind (the `--stack` flag).
    pub fn parse<'t>(
        path: &'t Path,
        text: &'t str,
        stack: Option<StackKind>,
    ) -> Result<Parsed<'t>, ScenarioErrors> {
        validate::parse(path, text, stack)
    }

    /// The journey named `name`.
    pub fn journey(&self, name: &str) -> Option<&Journey> {
        self.load.journeys.iter().find(|j| j.name == name)
    }

    /// The phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}
