//! The `compose` stack: the root `docker-compose.yml` brought up through
//! testcontainers' compose support (`docker compose`), parameterised for the
//! run: images, seed, arrival buckets, each service's env file written from
//! the scenario, ephemeral loopback ports, and the run's labels.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use platform_contract::ServiceKind;
use testcontainers::compose::DockerCompose;
use testcontainers::core::IntoContainerPort;

use super::images::{Images, workspace};
use super::topology::{ADMIN_PORT, Topology};
use super::{DockerError, free_port, labels};
use crate::scenario::Scenario;
use crate::stack::observe_config;

/// A compose project of this run.
pub(super) struct Compose {
    compose: DockerCompose,
}

impl Compose {
    /// Each service's container id.
    pub(super) fn container_ids(&self) -> std::collections::BTreeMap<ServiceKind, String> {
        ServiceKind::ALL
            .into_iter()
            .filter_map(|k| Some((k, self.compose.service(k.name())?.id().to_string())))
            .collect()
    }

    /// `docker compose down`; the caller's sweep of the run's labels removes
    /// anything `down` could not (compose v1 needs the file to go down).
    pub(super) async fn shutdown(self) {
        if let Err(e) = self.compose.down().await {
            tracing::debug!("docker compose down: {e}");
        }
    }
}

/// The topology of `docker-compose.yml`: containers reached by service name.
pub fn topology() -> Topology {
    Topology::new("injectors".into(), |k| k.name().to_string())
}

/// The variable that publishes `kind`'s port (`FAULTLINE_PAYMENT_GATEWAY_PORT`).
pub fn port_var(name: &str) -> String {
    format!("FAULTLINE_{}_PORT", name.to_uppercase().replace('-', "_"))
}

pub(super) async fn start(
    scenario: &Scenario,
    images: &Images,
    run: &str,
    decisions: &Path,
    out: &Path,
) -> Result<(Topology, Compose), DockerError> {
    check_cli()?;
    let mut topology = topology();
    let absolute = |p: &Path| {
        std::fs::create_dir_all(p)
            .and_then(|()| std::path::absolute(p))
            .map_err(|e| DockerError::engine(format!("create {}", p.display()), e))
    };
    let decisions = absolute(decisions)?;
    let env_dir = absolute(&out.join("compose"))?;
    for kind in ServiceKind::ALL {
        let text = Topology::env_file(&topology.service_env(scenario, kind));
        let file = env_dir.join(format!("{}.env", kind.name()));
        std::fs::write(&file, text)
            .map_err(|e| DockerError::engine(format!("write {}", file.display()), e))?;
    }
    let observe = observe_config(scenario);
    let mut vars: HashMap<String, String> = labels(run)
        .into_iter()
        .filter_map(|(k, v)| {
            let var = match k.as_str() {
                super::LABEL_RUN => "FAULTLINE_RUN",
                super::LABEL_PID => "FAULTLINE_PID",
                super::LABEL_STARTED => "FAULTLINE_STARTED",
                super::LABEL_BOOT => "FAULTLINE_BOOT",
                super::LABEL_PIDNS => "FAULTLINE_PIDNS",
                super::LABEL_HOSTNAME => "FAULTLINE_HOSTNAME",
                _ => return None,
            };
            Some((var.to_string(), v))
        })
        .collect();
    vars.extend([
        ("FAULTLINE_SEED".into(), scenario.seed.to_string()),
        ("FAULTLINE_BUCKET_MS".into(), observe.bucket_ms.to_string()),
        (
            "FAULTLINE_BUCKET_CAPACITY".into(),
            observe.bucket_capacity.to_string(),
        ),
        (
            "FAULTLINE_DECISIONS".into(),
            decisions.display().to_string(),
        ),
        ("FAULTLINE_ENV_DIR".into(), env_dir.display().to_string()),
        (
            "FAULTLINE_INJECTOR_IMAGE".into(),
            images.fault_injector.clone(),
        ),
        (
            "FAULTLINE_STACK_IMAGE".into(),
            images.reference_stack.clone(),
        ),
        // Free ports of this run's own: it never collides with a stack an
        // engineer has up, and a container started again keeps its port.
        (port_var("admin"), free_port()?.to_string()),
    ]);
    for kind in ServiceKind::ALL {
        vars.insert(port_var(kind.name()), free_port()?.to_string());
    }
    let file = workspace().join("docker-compose.yml");
    let mut compose = DockerCompose::with_local_client(&[file])
        .with_project_name(format!("faultline-{run}"))
        .with_wait(false)
        .with_env_vars(vars);
    compose
        .up()
        .await
        .map_err(|e| DockerError::engine("docker compose up", e))?;
    let compose = Compose { compose };
    topology.admin_port = published(&compose, "injectors", ADMIN_PORT).await?;
    for kind in ServiceKind::ALL {
        let port = published(&compose, kind.name(), Topology::service_port(kind)).await?;
        topology.published.insert(kind, port);
    }
    Ok((topology, compose))
}

async fn published(compose: &Compose, service: &str, port: u16) -> Result<u16, DockerError> {
    let container = compose.compose.service(service).ok_or_else(|| {
        DockerError::engine(
            format!("find compose service {service}"),
            "not in the project",
        )
    })?;
    container
        .get_host_port_ipv4(port.tcp())
        .await
        .map_err(|e| DockerError::engine(format!("read {service}'s published port {port}"), e))
}

/// testcontainers runs `docker compose` (the v2 CLI plugin).
fn check_cli() -> Result<(), DockerError> {
    let output = Command::new("docker")
        .args(["compose", "version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DockerError::NoCompose(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(DockerError::NoCompose(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}
