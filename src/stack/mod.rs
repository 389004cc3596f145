//! The stack: the system under test and the injectors standing for its
//! downstreams, brought up, wired, proven (preflight) and torn down.
//!
//! - `embedded`: the reference stack and the injectors in this process;
//! - `external`: a SUT someone else started, configured to call the
//!   injectors on fixed ports, which faultline starts here;
//! - `containers` / `compose`: the reference stack and the injectors in
//!   Docker containers on a private network (see [`docker`]).

pub mod docker;
mod embedded;
mod external;
pub(crate) mod injectors;
pub(crate) mod preflight;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fault_injectors::{Clock, Injector, ObserveConfig, StartError};
use platform_contract::{Downstream, ServiceKind};
use reference_stack::{BreakerTransition, ServiceConfig};

use crate::platform::injector_name;
use crate::scenario::{Scenario, StackKind};
use injectors::InjectorHandle;

/// Why the stack could not be brought up or proven.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// An injector could not start (usually its port is taken).
    #[error(transparent)]
    Injector(#[from] StartError),
    /// A reference-stack service could not start.
    #[error("cannot start the reference stack: {0}")]
    Service(#[from] reference_stack::StartError),
    /// A service under test does not answer.
    #[error("{service} does not answer at {url}: {reason}")]
    Unreachable {
        /// The service.
        service: &'static str,
        /// Where it was looked for.
        url: String,
        /// What happened.
        reason: String,
    },
    /// Preflight found wires that do not reach their injector.
    #[error("preflight failed (SUT wiring):\n{}", .0.join("\n"))]
    Wires(Vec<String>),
    /// Preflight could not read the injectors through their admin API, so
    /// the SUT's wires to them could not be judged: the fault is on the
    /// injectors' side, not the SUT's.
    #[error(
        "preflight failed (injectors' admin API, not the SUT): the arrivals that prove each wire could not be read, so the SUT's wiring was not judged:\n{}",
        .0.join("\n")
    )]
    InjectorAdmin(Vec<String>),
    /// Docker could not start, wire or prove the containers.
    #[error(transparent)]
    Docker(#[from] docker::DockerError),
    /// The run folder could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running stack.
pub struct Stack {
    /// Which kind.
    pub kind: StackKind,
    /// Base URL of each service under test.
    pub services: BTreeMap<ServiceKind, String>,
    /// The injectors.
    pub injectors: Vec<InjectorHandle>,
    /// The injectors' clock.
    pub clock: Clock,
    /// The URL each SUT client of a downstream was given (for messages).
    pub wiring: BTreeMap<Downstream, String>,
    embedded: Option<embedded::Sut>,
    docker: Option<docker::Running>,
}

impl Stack {
    /// Brings the stack up: injectors first, then (embedded) the services
    /// wired to them. Decision logs go to `out/decisions/`.
    pub async fn start(scenario: &Scenario, out: &Path) -> Result<Self, StackError> {
        let clock = Clock::start();
        let decisions = out.join("decisions");
        std::fs::create_dir_all(&decisions).map_err(|source| StackError::Io {
            path: decisions.display().to_string(),
            source,
        })?;
        let injector = Injectors {
            seed: scenario.seed,
            clock,
            observe: observe_config(scenario),
            decisions: &decisions,
        };
        match scenario.stack.kind {
            StackKind::Embedded => embedded::start(scenario, &injector).await,
            StackKind::External => external::start(scenario, &injector).await,
            StackKind::Containers | StackKind::Compose => docker::start(scenario, clock, out).await,
        }
    }

    /// The injector standing for `downstream`.
    pub fn injector(&self, downstream: Downstream) -> Option<&InjectorHandle> {
        let name = injector_name(downstream);
        self.injectors.iter().find(|i| i.name() == name)
    }

    /// The Docker side of a containers or compose stack.
    pub fn docker(&self) -> Option<&docker::Running> {
        self.docker.as_ref()
    }

    /// Embedded: every breaker transition the services logged (ground
    /// truth); empty for an external stack.
    pub fn transitions(&self) -> Vec<BreakerTransition> {
        self.embedded
            .as_ref()
            .map(embedded::Sut::transitions)
            .unwrap_or_default()
    }

    /// Stops everything this run started.
    pub async fn shutdown(self) {
        if let Some(sut) = self.embedded {
            sut.shutdown().await;
        }
        for injector in &self.injectors {
            injector.shutdown().await;
        }
        if let Some(docker) = self.docker {
            docker.shutdown().await;
        }
    }
}

/// In-process injectors as the run's handles; names must be distinct.
fn local(started: Vec<Injector>) -> Result<Vec<InjectorHandle>, StartError> {
    let set = fault_injectors::InjectorSet::new(started)?;
    Ok(set.iter().cloned().map(InjectorHandle::Local).collect())
}

/// What every injector of a run shares.
struct Injectors<'a> {
    seed: u64,
    clock: Clock,
    observe: ObserveConfig,
    decisions: &'a Path,
}

impl Injectors<'_> {
    /// Starts the injector for `downstream`: on `listen` (default an
    /// ephemeral loopback port), a stand-in unless `upstream` is given.
    async fn start(
        &self,
        downstream: Downstream,
        listen: Option<std::net::SocketAddr>,
        upstream: Option<&str>,
    ) -> Result<Injector, StartError> {
        let name = injector_name(downstream);
        let mut builder = Injector::builder(name)
            .seed(self.seed)
            .clock(self.clock)
            .observe(self.observe.clone())
            .decision_log(self.decisions.join(format!("{name}.tsv")));
        if let Some(addr) = listen {
            builder = builder.listen(addr);
        }
        if let Some(url) = upstream {
            builder = builder.front(url);
        }
        builder.start().await
    }
}

/// Arrival buckets fine enough to time a breaker: a tenth of the series
/// window, between 1 ms and 100 ms; kept for the whole run and a minute more.
pub(crate) fn observe_config(scenario: &Scenario) -> ObserveConfig {
    let bucket =
        (scenario.load.window / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    let span = scenario.duration + scenario.load.timeout + Duration::from_secs(60);
    ObserveConfig {
        bucket_ms: bucket.as_millis() as u64,
        bucket_capacity: ((span.as_millis() / bucket.as_millis().max(1)) as usize)
            .clamp(1_000, 2_000_000),
        ..ObserveConfig::default()
    }
}

/// How the reference stack's service `kind` runs for `scenario`, its
/// downstreams at `wiring`.
pub(crate) fn service_config(
    scenario: &Scenario,
    kind: ServiceKind,
    wiring: &BTreeMap<Downstream, String>,
) -> ServiceConfig {
    let plan = &scenario.stack;
    let mut config = ServiceConfig::new(kind)
        .client_settings(plan.clients.clone())
        .time_scale(plan.time_scale);
    for downstream in kind.downstreams() {
        if let Some(url) = wiring.get(downstream) {
            config = config.downstream_url(*downstream, url.clone());
        }
        if let Some(settings) = plan.client_overrides.get(downstream) {
            config = config.client_settings_for(*downstream, settings.clone());
        }
    }
    if let Some(defects) = plan.defects.get(&kind) {
        config = config.defects(defects.clone());
    }
    config
}
