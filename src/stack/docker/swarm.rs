//! The Swarm side of leaving nothing behind: the workers' services a run
//! creates (`--engine swarm`) and the single-node swarm it initiates when
//! the engine was not a manager. A run removes them when it ends; what a
//! killed run left is removed by [`sweep`] (part of [`super::sweep::sweep`])
//! by the same owner rules as containers and networks.
//!
//! A swarm faultline initiates carries the owner labels in its spec, and
//! [`LABEL_GWBRIDGE`]: whether the `docker_gwbridge` network existed before
//! (a swarm creates it for its tasks and keeps it after leaving).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    LeaveSwarmOptions, ListContainersOptions, ListServicesOptions,
};

use super::sweep::{HostIdentity, Ownership, SweepReport, ownership, process_start, swept};
use super::{DockerError, LABEL};

/// On a swarm faultline initiated: `existed` when `docker_gwbridge` was
/// there before, `created` when the swarm created it (and leaving removes
/// it).
pub const LABEL_GWBRIDGE: &str = "faultline.gwbridge";
/// The bridge network a swarm creates for its tasks' outside traffic.
pub const GWBRIDGE: &str = "docker_gwbridge";
/// The label a swarm task's container carries: its service's id.
const TASK_SERVICE: &str = "com.docker.swarm.service.id";
/// How long a removed service's containers may take to go.
const REMOVAL_WITHIN: Duration = Duration::from_secs(60);

/// Removes service `id` (`name` for messages) and waits until its
/// containers are gone.
pub async fn remove_service(docker: &Docker, id: &str, name: &str) -> Result<(), DockerError> {
    match docker.delete_service(id).await {
        Ok(()) => {}
        Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }) => {}
        Err(e) => return Err(DockerError::engine(format!("remove service {name}"), e)),
    }
    let filters = Some(HashMap::from([(
        "label".to_string(),
        vec![format!("{TASK_SERVICE}={id}")],
    )]));
    let deadline = Instant::now() + REMOVAL_WITHIN;
    loop {
        let left = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: filters.clone(),
                ..Default::default()
            }))
            .await
            .map_err(|e| DockerError::engine(format!("list the containers of {name}"), e))?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DockerError::engine(
                format!("remove service {name}"),
                format!(
                    "{} of its containers still there after {}s",
                    left.len(),
                    REMOVAL_WITHIN.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Leaves the swarm (one faultline initiated: the caller checked) unless
/// services run on it, and removes the `docker_gwbridge` network it
/// created. True when it left. Failures are logged: leaving is part of
/// tearing down, which goes on.
pub async fn leave_if_unused(docker: &Docker) -> bool {
    let created_gwbridge = docker.inspect_swarm().await.ok().is_some_and(|s| {
        s.spec
            .and_then(|s| s.labels)
            .and_then(|l| l.get(LABEL_GWBRIDGE).cloned())
            .is_some_and(|v| v == "created")
    });
    match docker.list_services(None::<ListServicesOptions>).await {
        Ok(services) if !services.is_empty() => {
            tracing::info!(
                "the swarm faultline initiated still runs {} service(s): it stays; a later sweep leaves it",
                services.len()
            );
            return false;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!("cannot list the swarm's services, so it stays: {e}");
            return false;
        }
    }
    if let Err(e) = docker
        .leave_swarm(Some(LeaveSwarmOptions { force: true }))
        .await
    {
        tracing::warn!("cannot leave the swarm faultline initiated: {e}");
        return false;
    }
    if created_gwbridge && let Err(e) = docker.remove_network(GWBRIDGE).await {
        tracing::warn!("cannot remove {GWBRIDGE}, which the swarm created: {e}");
    }
    true
}

/// Removes the services of dead runs of this host, and leaves a swarm a
/// dead run initiated once nothing runs on it; adds what it did to
/// `report`. Does nothing on an engine that is not a swarm manager.
pub async fn sweep(docker: &Docker, me: &HostIdentity, report: &mut SweepReport) {
    let Ok(swarm) = docker.inspect_swarm().await else {
        return;
    };
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![LABEL.to_string()],
            )])),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    for service in services {
        let (Some(id), Some(spec)) = (service.id, service.spec) else {
            continue;
        };
        let labels = spec.labels.unwrap_or_default();
        let name = spec.name.unwrap_or_else(|| id.clone());
        match ownership(&labels, me, process_start) {
            Ownership::Dead => match remove_service(docker, &id, &name).await {
                Ok(()) => report.removed.push(swept("service", name, &labels)),
                Err(e) => tracing::warn!("{e}"),
            },
            Ownership::Foreign => report.foreign += 1,
            Ownership::Manual | Ownership::Alive => {}
        }
    }
    // A swarm nobody labelled is not faultline's: never touched.
    let labels = swarm.spec.and_then(|s| s.labels).unwrap_or_default();
    if !labels.contains_key(LABEL) {
        return;
    }
    match ownership(&labels, me, process_start) {
        Ownership::Dead => {
            if leave_if_unused(docker).await {
                report
                    .removed
                    .push(swept("swarm", "membership".into(), &labels));
            }
        }
        Ownership::Foreign => report.foreign += 1,
        Ownership::Manual | Ownership::Alive => {}
    }
}
