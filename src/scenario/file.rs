//! The scenario file as written: TOML tables mapped one to one, every field a
//! user can get wrong kept with its location (`Spanned`) so that checks made
//! after parsing still point at `file:line:col`.
//!
//! Unknown keys are refused everywhere. The JSON schema shipped for editors
//! (`scenarios/schema.json`, see [`super::schema`]) is generated from these
//! types.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fault_injectors::fault::FaultSpec;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::duration::Dur;
use super::schema::{BreakerName, HttpStatus, InjectorName, ServiceName};
use crate::platform::JourneyKind;

/// A whole scenario file: one fault story.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "faultline scenario")]
pub struct ScenarioFile {
    /// Name shown in reports (default: the file name without `.toml`).
    #[serde(default)]
    pub name: Option<String>,
    /// The story this scenario tells.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed of every random choice (fault decisions, ids); `--seed` overrides.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Length of the run, from the first request.
    #[schemars(with = "Dur")]
    pub duration: Spanned<Dur>,
    /// The system under test and its injectors.
    #[serde(default)]
    pub stack: StackFile,
    /// How to read the system under test.
    #[serde(default)]
    pub sut: SutFile,
    /// The merchant the load acts as.
    #[serde(default)]
    pub merchant: MerchantFile,
    /// The traffic.
    pub load: LoadFile,
    /// The fault timeline: each entry sets a fault on an injector for a window.
    #[serde(default)]
    #[schemars(with = "Vec<FaultWindowFile>")]
    pub faults: Vec<Spanned<FaultWindowFile>>,
    /// Named windows of the timeline (default: baseline, fault, recovery,
    /// from the fault windows).
    #[serde(default)]
    #[schemars(with = "Vec<PhaseFile>")]
    pub phases: Vec<Spanned<PhaseFile>>,
    /// The verdict's rules (their schema is derived from the check kinds).
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub checks: Vec<Spanned<CheckTable>>,
}

/// Which stack runs the services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StackKind {
    /// The reference stack and injectors in this process (no Docker).
    Embedded,
    /// A system under test started by you; injectors listen on the fixed
    /// ports it was configured with.
    External,
    /// The reference stack and the injectors in Docker containers on a
    /// private network, started by testcontainers.
    Containers,
    /// The same topology from the root `docker-compose.yml`, driven through
    /// testcontainers' compose support.
    Compose,
}

impl StackKind {
    /// Whether faultline starts the reference stack itself (so the
    /// scenario's client settings and defects are the SUT's).
    pub fn runs_reference_stack(self) -> bool {
        self != Self::External
    }

    /// The name scenario files and `--stack` use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::External => "external",
            Self::Containers => "containers",
            Self::Compose => "compose",
        }
    }

    /// Whether the stack runs in Docker.
    pub fn in_docker(self) -> bool {
        matches!(self, Self::Containers | Self::Compose)
    }
}

/// `[stack]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// `embedded` (default), `external`, `containers` or `compose`;
    /// `--stack` overrides.
    #[serde(default)]
    #[schemars(with = "Option<StackKind>")]
    pub kind: Option<Spanned<StackKind>>,
    /// Embedded: multiplies every client timing of the reference stack
    /// (0.01 turns 30 s into 300 ms), between 0.001 and 100.
    #[serde(default)]
    #[schemars(with = "Option<f64>", extend("minimum" = 0.001, "maximum" = 100))]
    pub time_scale: Option<Spanned<f64>>,
    /// Embedded: defect switches per service, in the reference stack's
    /// `DEFECTS` syntax, e.g. `payment-gateway = "no_breaker@order"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<ServiceName, String>")]
    pub defects: BTreeMap<String, Spanned<String>>,
    /// Embedded: client settings for every client (the platform's by default).
    #[serde(default)]
    #[schemars(with = "Option<ClientFile>")]
    pub clients: Option<Spanned<ClientFile>>,
    /// Embedded: client settings for the clients of one downstream, by
    /// injector name (`order-service`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<InjectorName, ClientFile>")]
    pub client: BTreeMap<String, Spanned<ClientFile>>,
    /// Embedded: point the SUT at this URL instead of the injector, by
    /// injector name — reproduces a wrong-port deployment.
    #[serde(default)]
    #[schemars(with = "BTreeMap<InjectorName, String>")]
    pub wiring: BTreeMap<String, Spanned<String>>,
    /// External: base URL of each service under test, by service name
    /// (`payment-gateway = "http://127.0.0.1:40003"`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<ServiceName, String>")]
    pub services: BTreeMap<String, Spanned<String>>,
    /// Where injectors listen (required for external: the ports the SUT was
    /// configured with), and optionally a real service to front.
    #[serde(default)]
    #[schemars(with = "BTreeMap<InjectorName, InjectorFile>")]
    pub injectors: BTreeMap<String, Spanned<InjectorFile>>,
}

/// One `[stack.injectors.<name>]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectorFile {
    /// Listen address (`127.0.0.1:40004`).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Front mode: pass served requests to this real service.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub upstream: Option<Spanned<String>>,
}

/// Client settings (breaker, retry, timeouts); unset fields keep the
/// platform's numbers.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// Breaker library the client behaves like (gobreaker); the numbers below
    /// are mapped onto its parameters (see the reference stack's README).
    #[serde(default)]
    #[schemars(with = "Option<BreakerName>")]
    pub breaker: Option<Spanned<String>>,
    /// Half-open admission limit (3), 1 to 10000.
    #[serde(default)]
    #[schemars(with = "Option<u32>", extend("minimum" = 1, "maximum" = 10000))]
    pub max_requests: Option<Spanned<u32>>,
    /// Closed-state count reset period (60s).
    #[serde(default)]
    pub interval: Option<Dur>,
    /// Open → half-open after (30s).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub open_timeout: Option<Spanned<Dur>>,
    /// ReadyToTrip minimum requests (5), at most 1000000.
    #[serde(default)]
    #[schemars(with = "Option<u32>", extend("maximum" = 1000000))]
    pub min_requests: Option<Spanned<u32>>,
    /// ReadyToTrip minimum failure share, in (0, 1] (0.6).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub failure_ratio: Option<Spanned<f64>>,
    /// Attempts per call, first included (4), 1 to 100.
    #[serde(default)]
    #[schemars(with = "Option<u32>", extend("minimum" = 1, "maximum" = 100))]
    pub max_attempts: Option<Spanned<u32>>,
    /// Retry delay base (1s): sleeps 1×, 2×, 3×.
    #[serde(default)]
    pub retry_delay: Option<Dur>,
    /// Per-attempt timeout (30s).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub attempt_timeout: Option<Spanned<Dur>>,
    /// Timeout of fire-and-forget calls (10s).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub async_timeout: Option<Spanned<Dur>>,
}

/// `[sut]`: how the system under test is read.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SutFile {
    /// Statuses that count as success for every journey (default [200, 201]).
    #[serde(default)]
    #[schemars(with = "Option<Vec<HttpStatus>>")]
    pub success_statuses: Option<Spanned<Vec<u16>>>,
    /// Read breaker states from the SUT's metrics: `true` requires the
    /// gauge (a downstream without a matching sample makes the breaker
    /// checks inconclusive), `false` never reads it; unset: used when the
    /// SUT exposes it, black-box otherwise.
    #[serde(default)]
    pub metrics: Option<bool>,
    /// Path of the metrics endpoint (default `/metrics`).
    #[serde(default)]
    pub metrics_path: Option<String>,
    /// Path of the readiness endpoint (default `/health/ready`).
    #[serde(default)]
    pub ready_path: Option<String>,
    /// Breaker state gauge (default `circuit_breaker_state`).
    #[serde(default)]
    pub breaker_metric: Option<String>,
    /// Label naming the downstream (default `downstream`).
    #[serde(default)]
    pub downstream_label: Option<String>,
    /// Gauge values of the states, all different (default gobreaker's:
    /// 0, 1, 2).
    #[serde(default)]
    #[schemars(with = "Option<StateValuesFile>")]
    pub state_values: Option<Spanned<StateValuesFile>>,
    /// How often metrics and readiness are sampled (default 250ms).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub sample_every: Option<Spanned<Dur>>,
    /// Gauge label values that are not injector names, mapped to the
    /// injector they stand for (`orders = "order-service"`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, InjectorName>")]
    pub downstream_names: BTreeMap<String, Spanned<String>>,
    /// What you know of the SUT's breaker for a downstream, by injector name:
    /// the inference uses it and the report says so.
    #[serde(default)]
    #[schemars(with = "BTreeMap<InjectorName, SutBreakerFile>")]
    pub breakers: BTreeMap<String, Spanned<SutBreakerFile>>,
}

/// One `[sut.breakers.<injector>]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SutBreakerFile {
    /// Calls the breaker lets through while half-open before it decides
    /// (gobreaker's MaxRequests, resilience4j's
    /// permittedNumberOfCallsInHalfOpenState, 1 for pybreaker and opossum).
    #[serde(default)]
    #[schemars(with = "Option<u32>", extend("minimum" = 1))]
    pub half_open_calls: Option<Spanned<u32>>,
    /// During a refuse outage nothing arrives at the injector: answers
    /// faster than this were rejected by the breaker, slower ones were
    /// attempted (default: read off a gap in the answers' times).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub fast_below: Option<Spanned<Dur>>,
}

/// `[sut.state_values]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateValuesFile {
    /// Value of the closed state.
    pub closed: f64,
    /// Value of the half-open state.
    pub half_open: f64,
    /// Value of the open state.
    pub open: f64,
}

/// `[merchant]`: credentials the load signs with.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantFile {
    /// Merchant id (default `M001`).
    #[serde(default)]
    pub id: Option<String>,
    /// API key (default the reference stack's).
    #[serde(default)]
    pub api_key: Option<String>,
    /// API secret (default the reference stack's).
    #[serde(default)]
    pub api_secret: Option<String>,
    /// Signature version, `v1` (default) or `v2`.
    #[serde(default)]
    #[schemars(with = "Option<String>", extend("enum" = ["v1", "v2", null]))]
    pub signature: Option<Spanned<String>>,
    /// Password for the login journey (default `password123`).
    #[serde(default)]
    pub password: Option<String>,
}

/// Open or closed load model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Requests start at a target arrival rate whatever the SUT does;
    /// latency is measured from the intended start.
    Open,
    /// A fixed number of users loop: request, think, request.
    Closed,
}

/// `[load]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadFile {
    /// `open` (default) or `closed`.
    #[serde(default)]
    #[schemars(with = "Option<Model>")]
    pub model: Option<Spanned<Model>>,
    /// The journeys (at least one).
    #[schemars(with = "Vec<JourneyFile>")]
    pub journeys: Spanned<Vec<Spanned<JourneyFile>>>,
    /// Client timeout per request (default 60s).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub timeout: Option<Spanned<Dur>>,
    /// Width of the time windows of the series (default 1s).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub window: Option<Spanned<Dur>>,
    /// Open model: a request that cannot start within this of its intended
    /// time is dropped (default 1s).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub max_lag: Option<Spanned<Dur>>,
}

/// One `[[load.journeys]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyFile {
    /// Name in reports and checks (default: the kind).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// What the users do.
    #[schemars(with = "JourneyKind")]
    pub kind: Spanned<JourneyKind>,
    /// Open model: requests per second, at most 100000.
    #[serde(default)]
    #[schemars(with = "Option<f64>", extend("exclusiveMinimum" = 0, "maximum" = 100000))]
    pub rate: Option<Spanned<f64>>,
    /// Open model: rate over time, linear between steps.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RampStepFile>>")]
    pub ramp: Option<Vec<Spanned<RampStepFile>>>,
    /// Closed model: concurrent users, 1 to 10000.
    #[serde(default)]
    #[schemars(with = "Option<u32>", extend("minimum" = 1, "maximum" = 10000))]
    pub users: Option<Spanned<u32>>,
    /// Closed model: pause between a user's requests.
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub think: Option<Spanned<Dur>>,
    /// Payment: follow each created payment with the channel's webhook.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub webhook: Option<Spanned<bool>>,
    /// Statuses that count as success (default `[sut] success_statuses`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<HttpStatus>>")]
    pub success_statuses: Option<Spanned<Vec<u16>>>,
    /// Injectors every request must reach (preflight; default from the
    /// platform's topology).
    #[serde(default)]
    #[schemars(with = "Option<Vec<InjectorName>>")]
    pub expects: Option<Vec<Spanned<String>>>,
}

/// `{ at = "30s", rate = 50 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RampStepFile {
    /// When the rate is reached.
    pub at: Dur,
    /// Requests per second at that moment, 0 to 100000.
    #[schemars(extend("minimum" = 0, "maximum" = 100000))]
    pub rate: f64,
}

/// What a `[[faults]]` window can do to the container behind an injector
/// (Docker stacks), instead of an injector fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainerAction {
    /// `docker stop` (graceful), started again at `until`: an outage that
    /// loses the service's in-memory state.
    Stop,
    /// `docker kill` (SIGKILL), started again at `until`.
    Kill,
    /// `docker pause` (frozen: connections hang), unpaused at `until`.
    Pause,
    /// Cut off the stack's network (a partition), reconnected at `until`.
    Disconnect,
    /// `docker restart` at `from` (no `until`): a blip that loses state.
    Restart,
}

impl ContainerAction {
    /// The scenario-file name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::Disconnect => "disconnect",
            Self::Restart => "restart",
        }
    }
}

/// One `[[faults]]`: a fault on an injector from `from` until `until`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultWindowFile {
    /// Injector name (`order-service`).
    #[schemars(with = "InjectorName")]
    pub injector: Spanned<String>,
    /// When the fault is set.
    #[schemars(with = "Dur")]
    pub from: Spanned<Dur>,
    /// When it is cleared (default: never, it lasts to the end).
    #[serde(default)]
    #[schemars(with = "Option<Dur>")]
    pub until: Option<Spanned<Dur>>,
    /// The fault, as the injectors' admin API takes it (checked with the
    /// rest of the file, so its errors are reported with the others).
    #[serde(default)]
    #[schemars(with = "Option<FaultSpec>")]
    pub fault: Option<Spanned<FaultSpec>>,
    /// Docker stacks, instead of `fault`: act on the container of the
    /// service behind the injector (payment-gateway, withdrawal-service).
    #[serde(default)]
    #[schemars(with = "Option<ContainerAction>")]
    pub container: Option<Spanned<ContainerAction>>,
}

/// One `[[phases]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseFile {
    /// Name (`baseline`, `fault`, `recovery`, or your own).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Start.
    #[schemars(with = "Dur")]
    pub from: Spanned<Dur>,
    /// End.
    #[schemars(with = "Dur")]
    pub until: Spanned<Dur>,
}

/// One `[[checks]]` table as written: every field with the location of its
/// value. Which fields a check takes depends on its `kind`; each kind reads
/// its own (see the verdict's checks), and the schema is derived from them.
pub type CheckTable = BTreeMap<String, Spanned<toml::Value>>;
