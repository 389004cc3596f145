//! Docker stacks: the reference stack's services and the injectors in
//! containers on a private network, from images built here (no registry).
//!
//! - `containers`: testcontainers starts each container;
//! - `compose`: the root `docker-compose.yml`, driven through testcontainers'
//!   compose support.
//!
//! Either way the SUT's `*_SERVICE_URL`s point at the injectors container,
//! ports are published on 127.0.0.1 only, the harness waits for every
//! service's `/health/ready`, and the injectors are driven through their
//! admin API. Everything carries the [`labels`] that let [`sweep`] remove
//! what a killed run left behind.

mod actions;
mod compose;
mod containers;
pub mod images;
pub(crate) mod swarm;
pub mod sweep;
pub(crate) mod topology;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use fault_injectors::{AdminClient, Clock};
use testcontainers::bollard::Docker;

use super::injectors::{InjectorHandle, RemoteInjector};
use super::{Stack, StackError};
use crate::scenario::{Scenario, StackKind};
pub use topology::Topology;

/// Why a Docker stack could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answers on the local socket.
    #[error(
        "no Docker engine answers ({0}); start Docker, or run the scenario with --stack embedded"
    )]
    NoEngine(String),
    /// The static binaries or the images could not be built.
    #[error("cannot build the images: {0}")]
    Build(String),
    /// `docker compose` (v2 CLI) is missing.
    #[error(
        "`docker compose` does not work here ({0}); install the Compose v2 plugin, or with only docker-compose v1 the shim the README describes"
    )]
    NoCompose(String),
    /// The engine refused an operation.
    #[error("docker: cannot {what}: {reason}")]
    Engine {
        /// What was being done.
        what: String,
        /// The engine's answer.
        reason: String,
    },
    /// A service or the injectors never became ready.
    #[error("{name} was not ready at {url} within {}s (last: {last})", .within.as_secs())]
    NotReady {
        /// The container.
        name: String,
        /// The readiness URL polled.
        url: String,
        /// How long it was given.
        within: Duration,
        /// The last answer or error.
        last: String,
    },
}

impl DockerError {
    pub(crate) fn engine(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Engine {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// Label on everything faultline starts in Docker.
pub const LABEL: &str = "faultline";
/// The run a resource belongs to.
pub const LABEL_RUN: &str = "faultline.run";
/// `injectors` on the injectors container (how `faultline status` finds
/// running stacks).
pub const LABEL_ROLE: &str = "faultline.role";
/// The harness process that started it (`0`: started by hand, never swept).
pub const LABEL_PID: &str = "faultline.pid";
/// That process's start time (clock ticks since boot), so a reused pid is
/// not mistaken for the owner.
pub const LABEL_STARTED: &str = "faultline.started";
/// The boot id of the kernel the owner runs on (see [`sweep::HostIdentity`]).
pub const LABEL_BOOT: &str = "faultline.boot";
/// The owner's PID namespace: its pid means something only there.
pub const LABEL_PIDNS: &str = "faultline.pidns";
/// The owner's host (or container) name.
pub const LABEL_HOSTNAME: &str = "faultline.hostname";

/// The labels for resources of run `run`, owned by this process of this
/// host and PID namespace.
pub fn labels(run: &str) -> HashMap<String, String> {
    let pid = std::process::id();
    let mut labels = HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (LABEL_RUN.to_string(), run.to_string()),
        (LABEL_PID.to_string(), pid.to_string()),
        (
            LABEL_STARTED.to_string(),
            sweep::process_start(pid).unwrap_or(0).to_string(),
        ),
    ]);
    labels.extend(sweep::HostIdentity::current().labels());
    labels
}

/// A run id unique on this host: pid and start instant (the labels, not
/// the id, tell hosts apart).
fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 100_000_000)
        .unwrap_or(0);
    format!("{}-{millis}", std::process::id())
}

/// A free loopback port. Published ports are chosen here, not by Docker,
/// so a container started again (stop, kill, restart faults) answers on the
/// port the load is aimed at.
fn free_port() -> Result<u16, DockerError> {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DockerError::engine("find a free loopback port", e))
}

/// The local engine, answering.
pub async fn connect() -> Result<Docker, DockerError> {
    let docker =
        Docker::connect_with_local_defaults().map_err(|e| DockerError::NoEngine(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| DockerError::NoEngine(e.to_string()))?;
    Ok(docker)
}

/// What a Docker stack holds until it is torn down.
pub struct Running {
    docker: Docker,
    run: String,
    inner: Inner,
    /// Each service's container (id or unique name), for container faults.
    services: std::collections::BTreeMap<platform_contract::ServiceKind, String>,
    /// Networks a disconnected container is to rejoin.
    parted: std::sync::Mutex<HashMap<String, Vec<String>>>,
}

enum Inner {
    Containers(containers::Containers),
    Compose(Box<compose::Compose>),
}

impl Running {
    /// Removes every container and the network of this run.
    pub async fn shutdown(self) {
        match self.inner {
            Inner::Containers(c) => c.shutdown().await,
            Inner::Compose(c) => c.shutdown().await,
        }
        // Whatever a failed removal above left.
        sweep::remove_run(&self.docker, &self.run).await;
    }
}

/// Brings up a containers or compose stack for `scenario`.
pub(super) async fn start(
    scenario: &Scenario,
    clock: Clock,
    out: &Path,
) -> Result<Stack, StackError> {
    let began = Instant::now();
    let docker = connect().await?;
    let swept = sweep::sweep(&docker).await;
    for removed in &swept.removed {
        tracing::info!("swept {removed}");
    }
    if swept.foreign > 0 {
        tracing::debug!(
            "left {} container(s)/network(s) of faultline runs on other hosts or PID namespaces alone",
            swept.foreign
        );
    }
    let images = images::ensure().await?;
    let run = run_id();
    let decisions = out.join("decisions");
    let started = match scenario.stack.kind {
        StackKind::Compose => compose::start(scenario, &images, &run, &decisions, out)
            .await
            .map(|(t, c)| (t, Inner::Compose(Box::new(c)))),
        _ => containers::start(&docker, scenario, &images, &run, &decisions)
            .await
            .map(|(t, c)| (t, Inner::Containers(c))),
    };
    let (topology, inner) = match started {
        Ok(started) => started,
        Err(e) => {
            sweep::remove_run(&docker, &run).await;
            return Err(e.into());
        }
    };
    let services = match &inner {
        Inner::Containers(_) => topology
            .published
            .keys()
            .map(|k| (*k, topology.service_host(*k).to_string()))
            .collect(),
        Inner::Compose(c) => c.container_ids(),
    };
    let running = Running {
        docker,
        run,
        inner,
        services,
        parted: Default::default(),
    };
    match connect_injectors(&topology, clock).await {
        Ok(injectors) => {
            tracing::info!(
                "{} stack up and ready in {:.1}s (run {})",
                scenario.stack.kind.name(),
                began.elapsed().as_secs_f64(),
                running.run
            );
            Ok(Stack {
                kind: scenario.stack.kind,
                services: topology.published_services(),
                injectors,
                clock,
                wiring: topology.wiring(),
                embedded: None,
                docker: Some(running),
            })
        }
        Err(e) => {
            running.shutdown().await;
            Err(e.into())
        }
    }
}

/// Handles on every injector of the injectors container, once its admin
/// API and every service answer ready.
async fn connect_injectors(
    topology: &Topology,
    clock: Clock,
) -> Result<Vec<InjectorHandle>, DockerError> {
    let within = Duration::from_secs(60);
    let admin_url = topology.admin_url();
    wait_ready("injectors", &format!("{admin_url}/health"), within).await?;
    for (service, url) in topology.published_services() {
        wait_ready(service.name(), &format!("{url}/health/ready"), within).await?;
    }
    let admin = AdminClient::new(admin_url);
    let mut handles = Vec::new();
    for (name, url) in topology.injector_urls() {
        let remote = RemoteInjector::connect(&name, url, admin.clone(), clock)
            .await
            .map_err(|e| DockerError::engine(format!("reach injector {name}"), e))?;
        handles.push(InjectorHandle::Remote(remote));
    }
    Ok(handles)
}

/// Polls `url` until it answers 2xx.
async fn wait_ready(name: &str, url: &str, within: Duration) -> Result<(), DockerError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| DockerError::engine("build an HTTP client", e))?;
    let deadline = Instant::now() + within;
    loop {
        let last = match http.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(DockerError::NotReady {
                name: name.to_string(),
                url: url.to_string(),
                within,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
