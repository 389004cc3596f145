//! The `containers` stack: testcontainers starts the injectors container and
//! one container per service on a private, labelled network.

use std::collections::HashMap;
use std::path::Path;

use platform_contract::ServiceKind;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{HostConfig, NetworkCreateRequest, PortBinding};
use testcontainers::core::{IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::images::Images;
use super::topology::{ADMIN_PORT, DECISIONS_DIR, Topology};
use super::{DockerError, free_port, labels};
use crate::scenario::Scenario;

/// The started containers.
pub(super) struct Containers {
    started: Vec<ContainerAsync<GenericImage>>,
}

impl Containers {
    /// Stops and removes every container (the network goes with the run's
    /// sweep).
    pub(super) async fn shutdown(self) {
        for c in self.started {
            let id = c.id().to_string();
            if let Err(e) = c.rm().await {
                tracing::warn!("cannot remove container {id}: {e}");
            }
        }
    }
}

/// Starts the network, the injectors and the services; on error, what was
/// started is left for the caller's [`super::sweep::remove_run`].
pub(super) async fn start(
    docker: &Docker,
    scenario: &Scenario,
    images: &Images,
    run: &str,
    decisions: &Path,
) -> Result<(Topology, Containers), DockerError> {
    let prefix = format!("faultline-{run}");
    docker
        .create_network(NetworkCreateRequest {
            name: prefix.clone(),
            labels: Some(labels(run)),
            ..Default::default()
        })
        .await
        .map_err(|e| DockerError::engine(format!("create network {prefix}"), e))?;
    let mut topology = Topology::new(format!("{prefix}-injectors"), |k| {
        format!("{prefix}-{}", k.name())
    });
    std::fs::create_dir_all(decisions)
        .map_err(|e| DockerError::engine(format!("create {}", decisions.display()), e))?;
    let decisions = std::path::absolute(decisions)
        .map_err(|e| DockerError::engine(format!("resolve {}", decisions.display()), e))?;

    let mut started = Vec::new();
    topology.admin_port = free_port()?;
    let injectors = request(
        &images.fault_injector,
        (ADMIN_PORT, topology.admin_port),
        &prefix,
        run,
    )
    .with_container_name(topology.injectors_host())
    .with_label(super::LABEL_ROLE, "injectors")
    .with_cmd(topology.injector_args(scenario))
    .with_mount(Mount::bind_mount(
        decisions.display().to_string(),
        DECISIONS_DIR,
    ));
    let injectors = injectors
        .start()
        .await
        .map_err(|e| DockerError::engine("start the injectors container", e))?;
    started.push(injectors);

    // The services start together: none needs another to start.
    let mut starting = tokio::task::JoinSet::new();
    for kind in ServiceKind::ALL {
        let ports = (Topology::service_port(kind), free_port()?);
        let mut service = request(&images.reference_stack, ports, &prefix, run)
            .with_container_name(topology.service_host(kind))
            .with_cmd([kind.name()]);
        for (k, v) in topology.service_env(scenario, kind) {
            service = service.with_env_var(k, v);
        }
        topology.published.insert(kind, ports.1);
        starting.spawn(async move { (kind, service.start().await) });
    }
    let mut failed = None;
    while let Some(joined) = starting.join_next().await {
        match joined {
            Ok((_, Ok(service))) => started.push(service),
            Ok((kind, Err(e))) => {
                failed = Some(DockerError::engine(format!("start {}", kind.name()), e));
            }
            Err(e) => failed = Some(DockerError::engine("start a service", e)),
        }
    }
    match failed {
        // What did start is removed by the caller's sweep of the run.
        Some(e) => Err(e),
        None => Ok((topology, Containers { started })),
    }
}

/// A container of `image` (`name:tag`) on the run's network, labelled,
/// publishing `(port, host_port)` on 127.0.0.1 only.
fn request(
    image: &str,
    (port, host_port): (u16, u16),
    network: &str,
    run: &str,
) -> testcontainers::ContainerRequest<GenericImage> {
    let (name, tag) = image.split_once(':').unwrap_or((image, "latest"));
    GenericImage::new(name, tag)
        .with_exposed_port(port.tcp())
        .with_network(network)
        .with_labels(labels(run))
        .with_host_config_modifier(move |host: &mut HostConfig| {
            host.publish_all_ports = Some(false);
            host.port_bindings = Some(HashMap::from([(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host_port.to_string()),
                }]),
            )]));
        })
}
