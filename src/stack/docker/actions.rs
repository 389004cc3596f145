//! Container faults: stop, kill, pause, disconnect (each undone at the
//! window's end) and restart, on a service's container of a running Docker
//! stack. Host ports are fixed for the run, so a container started again
//! answers where the load expects it.

use platform_contract::ServiceKind;
use testcontainers::bollard::models::{
    EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest,
};
use testcontainers::bollard::query_parameters::{
    KillContainerOptions, RestartContainerOptions, StopContainerOptions,
};

use super::{DockerError, Running};
use crate::scenario::ContainerAction;

impl Running {
    /// Applies (`set`) or undoes `action` on `service`'s container.
    pub async fn act(
        &self,
        service: ServiceKind,
        action: ContainerAction,
        set: bool,
    ) -> Result<(), DockerError> {
        let id = self.services.get(&service).ok_or_else(|| {
            DockerError::engine(
                format!("{} {}", action.name(), service.name()),
                "no such container",
            )
        })?;
        let d = &self.docker;
        let what = format!(
            "{} {} ({})",
            if set { action.name() } else { "undo" },
            service.name(),
            action.name()
        );
        let fail = |e: testcontainers::bollard::errors::Error| DockerError::engine(&what, e);
        match (action, set) {
            (ContainerAction::Stop, true) => d
                .stop_container(
                    id,
                    Some(StopContainerOptions {
                        t: Some(5),
                        ..Default::default()
                    }),
                )
                .await
                .map_err(fail),
            (ContainerAction::Kill, true) => d
                .kill_container(
                    id,
                    Some(KillContainerOptions {
                        signal: "SIGKILL".into(),
                    }),
                )
                .await
                .map_err(fail),
            (ContainerAction::Stop | ContainerAction::Kill, false) => {
                d.start_container(id, None).await.map_err(fail)
            }
            (ContainerAction::Pause, true) => d.pause_container(id).await.map_err(fail),
            (ContainerAction::Pause, false) => d.unpause_container(id).await.map_err(fail),
            (ContainerAction::Restart, true) => d
                .restart_container(
                    id,
                    Some(RestartContainerOptions {
                        t: Some(5),
                        ..Default::default()
                    }),
                )
                .await
                .map_err(fail),
            (ContainerAction::Restart, false) => Ok(()),
            (ContainerAction::Disconnect, true) => {
                let info = d.inspect_container(id, None).await.map_err(fail)?;
                let networks: Vec<String> = info
                    .network_settings
                    .and_then(|s| s.networks)
                    .map(|n| n.into_keys().collect())
                    .unwrap_or_default();
                for net in &networks {
                    d.disconnect_network(
                        net,
                        NetworkDisconnectRequest {
                            container: id.clone(),
                            force: Some(true),
                        },
                    )
                    .await
                    .map_err(fail)?;
                }
                self.parted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone(), networks);
                Ok(())
            }
            (ContainerAction::Disconnect, false) => {
                let networks = self
                    .parted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id)
                    .unwrap_or_default();
                for net in networks {
                    // The service name stays resolvable (compose reaches
                    // services by it).
                    let endpoint = EndpointSettings {
                        aliases: Some(vec![service.name().to_string()]),
                        ..Default::default()
                    };
                    d.connect_network(
                        &net,
                        NetworkConnectRequest {
                            container: id.clone(),
                            endpoint_config: Some(endpoint),
                        },
                    )
                    .await
                    .map_err(fail)?;
                }
                Ok(())
            }
        }
    }
}
