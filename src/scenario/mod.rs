//! Scenarios: one fault story each, read from TOML and checked before
//! anything starts.
//!
//! [`Scenario::load`] parses a file ([`file`]), checks every reference and
//! range ([`validate`]) and returns the resolved plan the rest of the
//! pipeline runs, or every problem found, each at `file:line:col`.

mod duration;
mod error;
pub mod file;
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
pub use file::{AmplificationPer, CheckKind, ContainerAction, Model, Percentile, StackKind};

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
    /// The verdict's rules.
    pub checks: Vec<CheckPlan>,
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

/// A check with its name.
#[derive(Clone, Debug)]
pub struct CheckPlan {
    /// Name in reports.
    pub name: String,
    /// The rule.
    pub check: Check,
}

/// A bound on a latency percentile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LatencyBound {
    /// At most this.
    Max(Duration),
    /// At most this multiple of the same percentile in baseline.
    Factor(f64),
}

/// The rules, resolved.
#[derive(Clone, Debug)]
pub enum Check {
    /// The downstream's breaker opens within `within` of its fault starting.
    BreakerOpens {
        /// The downstream.
        downstream: Downstream,
        /// Deadline from the fault's start.
        within: Duration,
    },
    /// While open, at most `max_probes` calls per probe, every `period`.
    HalfOpenProbes {
        /// The downstream.
        downstream: Downstream,
        /// Calls per probe burst.
        max_probes: u32,
        /// Open timeout.
        period: Duration,
        /// Slack on the period.
        tolerance: Duration,
    },
    /// Back to baseline within `within` after each fault clears.
    RecoversWithin {
        /// The journey.
        journey: String,
        /// Only clears of faults on this downstream (None: all).
        downstream: Option<Downstream>,
        /// Deadline from each clear.
        within: Duration,
        /// Window width.
        window: Duration,
        /// Windows in a row.
        hold: u32,
        /// Allowed drop in success rate.
        success_tolerance: f64,
        /// Allowed p99 growth (0: ignore latency).
        latency_factor: f64,
    },
    /// A latency percentile bound.
    Latency {
        /// The journey.
        journey: String,
        /// The phase.
        phase: String,
        /// Which percentile.
        percentile: Percentile,
        /// The bound.
        bound: LatencyBound,
    },
    /// No spread to a journey.
    NoCascade {
        /// The journey.
        journey: String,
        /// The phase.
        phase: String,
        /// Allowed drop in success rate.
        success_tolerance: f64,
        /// Allowed p99 growth (0: ignore latency).
        latency_factor: f64,
    },
    /// Retry amplification bound.
    Amplification {
        /// The downstream.
        downstream: Downstream,
        /// Upstream journey (None: every journey reaching the downstream).
        journey: Option<String>,
        /// The phase.
        phase: String,
        /// Most attempts per call or request.
        max_ratio: f64,
        /// What the ratio divides attempts by.
        per: AmplificationPer,
    },
    /// No duplicate side effects.
    NoDuplicates {
        /// The downstream.
        downstream: Downstream,
        /// Body field.
        field: String,
    },
    /// Acknowledged payments are kept.
    Integrity {
        /// The payment journey.
        journey: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file. `stack` overrides the file's stack
    /// kind (the `--stack` flag).
    pub fn load(path: &Path, stack: Option<StackKind>) -> Result<Self, ScenarioErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ScenarioErrors(vec![ScenarioError {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(path, &text, stack)
    }

    /// Parses and checks `text` (read from `path`).
    pub fn parse(
        path: &Path,
        text: &str,
        stack: Option<StackKind>,
    ) -> Result<Self, ScenarioErrors> {
        validate::build(path, text, stack)
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
