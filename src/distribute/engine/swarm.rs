//! The `swarm` engine: the workers as one Docker Swarm service of N
//! replicas on this machine's engine; a task's slot (1-based) is its
//! worker's index + 1 (`FAULTLINE_WORKER_SLOT={{.Task.Slot}}`).
//!
//! Three choices make it work with local images and no registry, and leave
//! the engine as it was found:
//!
//! - **The image is named by its ID.** A swarm node tries to pull a task's
//!   image every time it starts one, even when the image is local and even
//!   when the service was created with `--no-resolve-image` (that flag only
//!   skips the client's digest lookup at creation); only an image ID
//!   (`sha256:…`), or a digest the engine already has, skips the pull. An
//!   image built here was never pushed and has no digest, so the service
//!   names it by ID: nothing asks a registry. A user's `--image` is used as
//!   given (and pulled as Swarm pulls).
//! - **Host networking.** Tasks share the host's network namespace, so they
//!   reach a coordinator and an embedded stack on 127.0.0.1. This is for a
//!   single-node swarm: on several nodes the workers would need an
//!   attachable overlay network, a coordinator address every node reaches,
//!   and the image in a registry every node pulls from.
//! - **Nothing restarts, nothing stays.** Restart condition `none` (a
//!   restarted worker would run its slice twice: a failed task stays
//!   failed and [`SwarmWorkers::lost`] names its slot). An engine that was
//!   not a swarm manager is made one with a swarm listening on loopback
//!   only, whose spec carries faultline's owner labels; [`SwarmWorkers::stop`]
//!   removes the service, waits for its containers to go, and leaves that
//!   swarm again (removing the `docker_gwbridge` network the swarm created).
//!   An engine that already was a manager keeps its swarm: only the service
//!   goes. What a killed run left — its service, a swarm it initiated — is
//!   removed by the sweep (`crate::stack::docker::swarm::sweep`, part of
//!   `faultline sweep` and of every Docker run's and Swarm engine's start),
//!   by the same owner rules as containers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{
    LocalNodeState, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, SwarmInitRequest, SwarmSpec, Task, TaskSpec, TaskSpecContainerSpec,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use testcontainers::bollard::query_parameters::{InspectNetworkOptions, ListTasksOptions};

use super::{EngineError, LostWorker, WorkerSpec, name_part};
use crate::distribute::contract::{COORDINATOR, WORKER_SLOT, WORKERS};
use crate::stack::docker::swarm::{GWBRIDGE, LABEL_GWBRIDGE, leave_if_unused, remove_service};
use crate::stack::docker::{self, LABEL_ROLE, images, sweep};

/// `faultline.role` of the workers' service and containers.
const ROLE: &str = "workers";
/// Where an initiated swarm listens: loopback only, nothing joins it.
const LISTEN: &str = "127.0.0.1:2377";

/// N workers running as one Swarm service.
pub struct SwarmWorkers {
    docker: Docker,
    service_id: String,
    service_name: String,
    initiated: bool,
}

/// One task of the workers' service, as the swarm reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// The task's slot (1-based): its worker's index + 1.
    pub slot: usize,
    /// Its state (`running`, `failed`, `complete`, …).
    pub state: String,
    /// The exit code of its container, once it ended.
    pub exit_code: Option<i64>,
    /// The swarm's error or message about it.
    pub message: String,
}

impl Replica {
    /// Whether the task ended in a way that loses its worker.
    fn is_lost(&self) -> bool {
        matches!(
            self.state.as_str(),
            "failed" | "rejected" | "orphaned" | "shutdown" | "remove"
        )
    }
}

impl SwarmWorkers {
    /// Starts `spec.count` workers dialling `spec.coordinator`: makes this
    /// engine a single-node swarm manager if it is not one, and creates the
    /// service (the faultline image is built first when `spec.image` is
    /// None). Returns once the service exists; the workers join the
    /// coordinator as their tasks start.
    pub async fn start(spec: &WorkerSpec) -> Result<Self, EngineError> {
        if spec.count == 0 {
            return Err(EngineError::Invalid("at least one worker".into()));
        }
        if !spec.coordinator.contains(':') {
            return Err(EngineError::Invalid(format!(
                "the coordinator address {:?} is not host:port",
                spec.coordinator
            )));
        }
        let docker = docker::connect().await?;
        let swept = sweep::sweep(&docker).await;
        for removed in &swept.removed {
            tracing::info!("swept {removed}");
        }
        let image = match &spec.image {
            Some(image) => image.clone(),
            None => local_image(&docker).await?,
        };
        let initiated = manage(&docker, &spec.run_id).await?;
        let service_name = service_name(&spec.run_id);
        let created = docker
            .create_service(service_spec(spec, &service_name, &image), None)
            .await
            .map_err(|e| EngineError::failed(format!("create service {service_name}"), e))
            .and_then(|r| {
                r.id.ok_or_else(|| {
                    EngineError::failed(format!("create service {service_name}"), "no id")
                })
            });
        match created {
            Ok(service_id) => {
                tracing::info!(
                    "swarm service {service_name}: {} workers of {image}",
                    spec.count
                );
                Ok(Self {
                    docker,
                    service_id,
                    service_name,
                    initiated,
                })
            }
            Err(e) => {
                if initiated {
                    leave_if_unused(&docker).await;
                }
                Err(e)
            }
        }
    }

    /// The service's name (`faultline-workers-<run>`).
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Every task of the service, by slot.
    pub async fn replicas(&self) -> Result<Vec<Replica>, EngineError> {
        let tasks = self
            .docker
            .list_tasks(Some(ListTasksOptions {
                filters: Some(HashMap::from([(
                    "service".to_string(),
                    vec![self.service_id.clone()],
                )])),
            }))
            .await
            .map_err(|e| EngineError::failed(format!("list tasks of {}", self.service_name), e))?;
        let mut replicas: Vec<Replica> = tasks.into_iter().filter_map(replica).collect();
        replicas.sort_by_key(|r| r.slot);
        Ok(replicas)
    }

    /// The workers lost so far: a task that failed, was rejected, shut
    /// down or orphaned, and any slot that ran more than one task (a
    /// restart). Empty while every worker runs or finished cleanly.
    pub async fn lost(&self) -> Result<Vec<LostWorker>, EngineError> {
        Ok(lost(&self.replicas().await?))
    }

    /// Removes the service and waits for its containers to go; leaves the
    /// swarm when this run initiated it and nothing else runs on it.
    pub async fn stop(self) -> Result<(), EngineError> {
        let removed = remove_service(&self.docker, &self.service_id, &self.service_name).await;
        if self.initiated {
            leave_if_unused(&self.docker).await;
        }
        Ok(removed?)
    }
}

/// `faultline-workers-<run>`, within Swarm's 63 characters.
fn service_name(run_id: &str) -> String {
    let mut name = format!("faultline-workers-{}", name_part(run_id));
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// The faultline image built here, by ID (see the module's notes).
async fn local_image(docker: &Docker) -> Result<String, EngineError> {
    let built = images::ensure_faultline().await?;
    let inspected = docker
        .inspect_image(&built.image)
        .await
        .map_err(|e| EngineError::failed(format!("inspect {}", built.image), e))?;
    inspected
        .id
        .ok_or_else(|| EngineError::failed(format!("inspect {}", built.image), "no image id"))
}

/// Makes sure this engine is a swarm manager; true when this call made it
/// one (it initiated the swarm).
async fn manage(docker: &Docker, run_id: &str) -> Result<bool, EngineError> {
    let state = || async {
        let info = docker
            .info()
            .await
            .map_err(|e| EngineError::failed("read the engine's swarm state", e))?;
        let swarm = info.swarm.unwrap_or_default();
        Ok::<_, EngineError>((swarm.local_node_state, swarm.control_available))
    };
    match state().await? {
        (Some(LocalNodeState::ACTIVE), Some(true)) => return Ok(false),
        (Some(LocalNodeState::ACTIVE), _) => {
            return Err(EngineError::Unavailable(
                "this Docker engine is a worker node of a swarm: services are created on a manager; run faultline where the engine is a swarm manager, or not in a swarm".into(),
            ));
        }
        (Some(LocalNodeState::INACTIVE | LocalNodeState::EMPTY) | None, _) => {}
        (Some(other), _) => {
            return Err(EngineError::Unavailable(format!(
                "this Docker engine's swarm is {other}; fix it (`docker swarm leave --force`, or unlock it) or use --engine local"
            )));
        }
    }
    let gwbridge = docker
        .inspect_network(GWBRIDGE, None::<InspectNetworkOptions>)
        .await
        .is_ok();
    let mut labels = docker::labels(run_id);
    labels.insert(
        LABEL_GWBRIDGE.to_string(),
        if gwbridge { "existed" } else { "created" }.to_string(),
    );
    let init = docker
        .init_swarm(SwarmInitRequest {
            listen_addr: Some(LISTEN.into()),
            advertise_addr: Some("127.0.0.1".into()),
            spec: Some(SwarmSpec {
                labels: Some(labels),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    match init {
        Ok(_) => {
            tracing::info!("this Docker engine is now a single-node swarm (left again at the end)");
            Ok(true)
        }
        // Someone else made it a manager meanwhile: use theirs.
        Err(e) => match state().await? {
            (Some(LocalNodeState::ACTIVE), Some(true)) => Ok(false),
            _ => Err(EngineError::Unavailable(format!(
                "cannot make this Docker engine a swarm manager ({e})"
            ))),
        },
    }
}

/// The workers' service: `faultline worker` × `count`, host network, never
/// restarted, labelled as the run's.
fn service_spec(spec: &WorkerSpec, name: &str, image: &str) -> ServiceSpec {
    let mut labels = docker::labels(&spec.run_id);
    labels.insert(LABEL_ROLE.to_string(), ROLE.to_string());
    ServiceSpec {
        name: Some(name.to_string()),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_string()),
                args: Some(vec!["worker".into()]),
                env: Some(vec![
                    format!("{COORDINATOR}={}", spec.coordinator),
                    format!("{WORKERS}={}", spec.count),
                    // Swarm fills the template in per task: 1..=count.
                    format!("{WORKER_SLOT}={{{{.Task.Slot}}}}"),
                ]),
                labels: Some(labels),
                // The worker is not PID 1: a stop's SIGTERM ends it at once.
                init: Some(true),
                stop_grace_period: Some(Duration::from_secs(5).as_nanos() as i64),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                max_attempts: Some(0),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some("host".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(spec.count as i64),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A task as a replica (None for a task without a slot: not ours).
fn replica(task: Task) -> Option<Replica> {
    let slot = usize::try_from(task.slot?).ok()?;
    let status = task.status.unwrap_or_default();
    let message = match (status.err, status.message) {
        (Some(err), _) if !err.is_empty() => err,
        (_, Some(message)) => message,
        _ => String::new(),
    };
    Some(Replica {
        slot,
        state: status
            .state
            .map_or_else(|| "unknown".to_string(), |s: TaskState| s.to_string()),
        exit_code: status.container_status.and_then(|c| c.exit_code),
        message,
    })
}

/// The workers `replicas` say were lost (see [`SwarmWorkers::lost`]).
pub fn lost(replicas: &[Replica]) -> Vec<LostWorker> {
    let mut by_slot: BTreeMap<usize, Vec<&Replica>> = BTreeMap::new();
    for r in replicas {
        by_slot.entry(r.slot).or_default().push(r);
    }
    let mut lost = Vec::new();
    for (slot, tasks) in by_slot {
        let place = format!("swarm task slot {slot}");
        let index = slot.saturating_sub(1);
        if tasks.len() > 1 {
            lost.push(LostWorker {
                index,
                place,
                what: format!(
                    "restarted: {} tasks ran in this slot ({})",
                    tasks.len(),
                    tasks
                        .iter()
                        .map(|t| t.state.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        } else if let Some(task) = tasks.into_iter().find(|t| t.is_lost()) {
            let code = task
                .exit_code
                .filter(|c| *c != 0)
                .map(|c| format!(", exit code {c}"))
                .unwrap_or_default();
            lost.push(LostWorker {
                index,
                place,
                what: format!("task {}{code}: {}", task.state, task.message),
            });
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::docker::{LABEL_PID, LABEL_RUN};

    fn task(slot: usize, state: &str, exit_code: Option<i64>, message: &str) -> Replica {
        Replica {
            slot,
            state: state.into(),
            exit_code,
            message: message.into(),
        }
    }

    #[test]
    fn a_failed_task_is_named_by_its_slot_and_a_running_one_is_not() {
        let replicas = [
            task(1, "running", None, "started"),
            task(2, "failed", Some(137), "task: non-zero exit (137)"),
            task(3, "complete", Some(0), "finished"),
        ];
        assert_eq!(
            lost(&replicas),
            [LostWorker {
                index: 1,
                place: "swarm task slot 2".into(),
                what: "task failed, exit code 137: task: non-zero exit (137)".into(),
            }]
        );
    }

    #[test]
    fn a_slot_that_ran_twice_is_a_restart() {
        let replicas = [
            task(1, "running", None, ""),
            task(2, "failed", Some(1), "boom"),
            task(2, "running", None, ""),
        ];
        let lost = lost(&replicas);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].index, 1);
        assert!(lost[0].what.starts_with("restarted: 2 tasks"), "{lost:?}");
        assert_eq!(
            lost[0].to_string(),
            "worker 1 (swarm task slot 2): restarted: 2 tasks ran in this slot (failed, running)"
        );
    }

    #[test]
    fn the_service_carries_the_worker_contract_and_never_restarts() {
        let spec = WorkerSpec {
            count: 3,
            coordinator: "127.0.0.1:4100".into(),
            run_id: "4242-17".into(),
            image: None,
        };
        let s = service_spec(&spec, &service_name(&spec.run_id), "sha256:abc");
        assert_eq!(s.name.as_deref(), Some("faultline-workers-4242-17"));
        let task = s.task_template.unwrap();
        let c = task.container_spec.unwrap();
        assert_eq!(c.image.as_deref(), Some("sha256:abc"));
        assert_eq!(c.args, Some(vec!["worker".to_string()]));
        assert_eq!(
            c.env.unwrap(),
            [
                "FAULTLINE_COORDINATOR=127.0.0.1:4100",
                "FAULTLINE_WORKERS=3",
                "FAULTLINE_WORKER_SLOT={{.Task.Slot}}"
            ]
        );
        assert_eq!(
            task.restart_policy.unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        assert_eq!(task.networks.unwrap()[0].target.as_deref(), Some("host"));
        assert_eq!(s.mode.unwrap().replicated.unwrap().replicas, Some(3));
        let labels = s.labels.unwrap();
        assert_eq!(labels[LABEL_RUN], "4242-17");
        assert_eq!(labels[LABEL_ROLE], ROLE);
        assert_eq!(labels[LABEL_PID], std::process::id().to_string());
    }
}
