//! Nothing outlives a run: a run removes its own containers and network when
//! it ends (success, failure, Ctrl-C); what a killed harness (SIGKILL, a
//! crash) left behind is removed by the next Docker run's [`sweep`], which
//! finds it by label and sees that its owner process is gone.

use std::collections::HashMap;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};

use super::{LABEL, LABEL_PID, LABEL_RUN, LABEL_STARTED};

/// The start time of process `pid` (clock ticks since boot, field 22 of
/// `/proc/<pid>/stat`), or None when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from after its closing parenthesis (field 3 onwards).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that labelled a resource is still running. A
/// resource started by hand (`faultline.pid` 0, e.g. `docker compose up`)
/// always counts as owned.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    let pid: u32 = match labels.get(LABEL_PID).and_then(|p| p.parse().ok()) {
        Some(0) | None => return true,
        Some(pid) => pid,
    };
    let started: Option<u64> = labels.get(LABEL_STARTED).and_then(|s| s.parse().ok());
    match (process_start(pid), started) {
        (None, _) => false,
        (Some(now), Some(then)) if then != 0 => now == then,
        (Some(_), _) => true,
    }
}

fn label_filter(label: String) -> Option<HashMap<String, Vec<String>>> {
    Some(HashMap::from([("label".to_string(), vec![label])]))
}

/// Removes every faultline container and network whose owner process is
/// gone; returns how many. Errors are logged, never fatal: a sweep must not
/// stop a run.
pub async fn sweep(docker: &Docker) -> usize {
    let mut removed = 0;
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: label_filter(LABEL.to_string()),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    for c in containers {
        let (Some(id), Some(labels)) = (c.id, c.labels) else {
            continue;
        };
        if !owner_alive(&labels) && remove_container(docker, &id).await {
            removed += 1;
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: label_filter(LABEL.to_string()),
        }))
        .await
        .unwrap_or_default();
    for n in networks {
        let (Some(name), Some(labels)) = (n.name, n.labels) else {
            continue;
        };
        if !owner_alive(&labels) && docker.remove_network(&name).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Removes every container and network labelled with run `run`.
pub async fn remove_run(docker: &Docker, run: &str) {
    let filter = label_filter(format!("{LABEL_RUN}={run}"));
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filter.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    for id in containers.into_iter().filter_map(|c| c.id) {
        remove_container(docker, &id).await;
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters: filter }))
        .await
        .unwrap_or_default();
    for name in networks.into_iter().filter_map(|n| n.name) {
        if let Err(e) = docker.remove_network(&name).await {
            tracing::warn!("cannot remove network {name}: {e}");
        }
    }
}

async fn remove_container(docker: &Docker, id: &str) -> bool {
    let removed = docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await;
    if let Err(e) = &removed {
        tracing::warn!("cannot remove container {id}: {e}");
    }
    removed.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_the_owner() {
        let pid = std::process::id();
        let started = process_start(pid).expect("own stat");
        let labels = |pid: u32, started: u64| {
            HashMap::from([
                (LABEL_PID.to_string(), pid.to_string()),
                (LABEL_STARTED.to_string(), started.to_string()),
            ])
        };
        assert!(owner_alive(&labels(pid, started)));
        assert!(!owner_alive(&labels(pid, started + 1)), "pid reused later");
        // Beyond pid_max: no such process.
        assert!(!owner_alive(&labels(u32::MAX - 1, 1)));
        // Started by hand: never swept.
        assert!(owner_alive(&labels(0, 0)));
    }
}
