//! Nothing outlives a run: a run removes its own containers and network when
//! it ends (success, failure, a signal); what a killed harness (SIGKILL, a
//! crash) left behind is removed by the next Docker run's [`sweep`].
//!
//! On a Docker host shared by several CI jobs (each in its own container,
//! one daemon) a pid says nothing by itself: pid 4242 of another job is not
//! pid 4242 here. So every resource carries its owner's [`HostIdentity`] —
//! the kernel's boot id, the PID namespace and the host name — and the sweep
//! removes only what provably belongs to a dead run of *this* boot, PID
//! namespace and host: the identity matches, and the pid is gone (or reused
//! by a process that started later). Anything else is left alone, and said.

use std::collections::HashMap;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};

use super::{LABEL, LABEL_BOOT, LABEL_HOSTNAME, LABEL_PID, LABEL_PIDNS, LABEL_RUN, LABEL_STARTED};

/// The start time of process `pid` (clock ticks since boot, field 22 of
/// `/proc/<pid>/stat`), or None when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from after its closing parenthesis (field 3 onwards).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Where a process lives, as far as its pids mean anything: one boot of one
/// kernel, one PID namespace, one host name. Two CI jobs in containers on
/// one host share the boot id but not the PID namespace; two hosts sharing
/// a remote daemon differ in boot id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostIdentity {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The PID namespace, as `/proc/self/ns/pid` links it (`pid:[4026531836]`).
    pub pid_ns: String,
    /// The host (or container) name.
    pub hostname: String,
}

impl HostIdentity {
    /// This process's identity; a part that cannot be read is empty, and an
    /// identity with an empty part matches nothing (nothing it labels is
    /// ever swept, and it sweeps nothing).
    pub fn current() -> Self {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        Self {
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            hostname: read("/proc/sys/kernel/hostname"),
        }
    }

    /// Whether every part is known.
    pub fn is_complete(&self) -> bool {
        !(self.boot_id.is_empty() || self.pid_ns.is_empty() || self.hostname.is_empty())
    }

    /// The identity a resource's labels give (absent parts empty).
    pub fn from_labels(labels: &HashMap<String, String>) -> Self {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        Self {
            boot_id: get(LABEL_BOOT),
            pid_ns: get(LABEL_PIDNS),
            hostname: get(LABEL_HOSTNAME),
        }
    }

    /// The labels that carry it.
    pub fn labels(&self) -> [(String, String); 3] {
        [
            (LABEL_BOOT.to_string(), self.boot_id.clone()),
            (LABEL_PIDNS.to_string(), self.pid_ns.clone()),
            (LABEL_HOSTNAME.to_string(), self.hostname.clone()),
        ]
    }
}

/// Who a labelled resource belongs to, as seen from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Started by hand (`faultline.pid` 0, e.g. `docker compose up`): never
    /// swept.
    Manual,
    /// Its owner is a live process of this boot, namespace and host.
    Alive,
    /// Labelled by another boot, PID namespace or host, or without a
    /// complete identity: its pid means nothing here, so it is never swept.
    Foreign,
    /// Its owner was a process of this boot, namespace and host, and is
    /// gone: the sweep removes it.
    Dead,
}

/// Decides who owns a resource with `labels`, for a sweeper with identity
/// `me`; `start_of(pid)` gives a live process's start time here.
pub fn ownership(
    labels: &HashMap<String, String>,
    me: &HostIdentity,
    start_of: impl Fn(u32) -> Option<u64>,
) -> Ownership {
    let pid: u32 = match labels.get(LABEL_PID).map(|p| p.parse()) {
        Some(Ok(0)) => return Ownership::Manual,
        Some(Ok(pid)) => pid,
        // No pid, or not a number: nothing proves its owner dead.
        _ => return Ownership::Foreign,
    };
    if !me.is_complete() || HostIdentity::from_labels(labels) != *me {
        return Ownership::Foreign;
    }
    let started: Option<u64> = labels.get(LABEL_STARTED).and_then(|s| s.parse().ok());
    match (start_of(pid), started) {
        (None, _) => Ownership::Dead,
        // The pid was reused by a process that started later.
        (Some(now), Some(then)) if then != 0 && now != then => Ownership::Dead,
        (Some(_), _) => Ownership::Alive,
    }
}

fn label_filter(label: String) -> Option<HashMap<String, Vec<String>>> {
    Some(HashMap::from([("label".to_string(), vec![label])]))
}

/// One resource the sweep removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swept {
    /// `container`, `network`, `service` or `swarm`.
    pub kind: &'static str,
    /// Its name (a container's first name, else its id).
    pub name: String,
    /// The run it belonged to.
    pub run: String,
    /// The owner's pid, gone.
    pub pid: String,
}

impl std::fmt::Display for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (run {}; its faultline process {} on this host is gone)",
            self.kind, self.name, self.run, self.pid
        )
    }
}

/// What a sweep did.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    /// Removed: resources of dead runs of this host and PID namespace.
    pub removed: Vec<Swept>,
    /// Left alone: resources of runs of other hosts, boots or PID
    /// namespaces (or without an identity), whose owners cannot be judged
    /// from here.
    pub foreign: usize,
}

/// Removes every faultline Swarm service, container and network that
/// provably belongs to a dead run of this host and PID namespace (and
/// leaves a swarm such a run initiated, once nothing runs on it); reports what it removed and
/// how many it left as foreign. Errors are logged, never fatal: a sweep
/// must not stop a run.
pub async fn sweep(docker: &Docker) -> SweepReport {
    let me = HostIdentity::current();
    let mut report = SweepReport::default();
    // Services first: removing one removes its containers.
    super::swarm::sweep(docker, &me, &mut report).await;
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
        match ownership(&labels, &me, process_start) {
            Ownership::Dead => {
                if remove_container(docker, &id).await {
                    let name = c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map_or(id, |n| n.trim_start_matches('/').to_string());
                    report.removed.push(swept("container", name, &labels));
                }
            }
            Ownership::Foreign => report.foreign += 1,
            Ownership::Manual | Ownership::Alive => {}
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
        match ownership(&labels, &me, process_start) {
            Ownership::Dead => match docker.remove_network(&name).await {
                Ok(()) => report.removed.push(swept("network", name, &labels)),
                Err(e) => tracing::warn!("cannot remove network {name}: {e}"),
            },
            Ownership::Foreign => report.foreign += 1,
            Ownership::Manual | Ownership::Alive => {}
        }
    }
    report
}

/// What the sweep says of a resource of `kind` with `labels` it removed.
pub(super) fn swept(kind: &'static str, name: String, labels: &HashMap<String, String>) -> Swept {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    Swept {
        kind,
        name,
        run: get(LABEL_RUN),
        pid: get(LABEL_PID),
    }
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

    fn me() -> HostIdentity {
        HostIdentity {
            boot_id: "6f1c0a8e-boot-a".into(),
            pid_ns: "pid:[4026532001]".into(),
            hostname: "ci-job-a".into(),
        }
    }

    /// Labels of a run owned by `pid` (started at tick `started`) of `host`.
    fn labels(host: &HostIdentity, pid: u32, started: u64) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (LABEL.to_string(), "1".to_string()),
            (LABEL_RUN.to_string(), format!("{pid}-1")),
            (LABEL_PID.to_string(), pid.to_string()),
            (LABEL_STARTED.to_string(), started.to_string()),
        ]);
        l.extend(host.labels());
        l
    }

    /// Process 4242 lives here, started at tick 900; nothing else does.
    fn here(pid: u32) -> Option<u64> {
        (pid == 4242).then_some(900)
    }

    #[test]
    fn the_same_pid_of_another_host_or_namespace_is_never_ours() {
        let other_job = HostIdentity {
            pid_ns: "pid:[4026532777]".into(),
            hostname: "ci-job-b".into(),
            ..me()
        };
        let other_host = HostIdentity {
            boot_id: "0d9e77aa-boot-b".into(),
            ..me()
        };
        // Both claim pid 4242 (alive here) and pid 5151 (dead here): from
        // here neither proves anything about their own namespaces.
        for host in [&other_job, &other_host] {
            assert_eq!(
                ownership(&labels(host, 4242, 900), &me(), here),
                Ownership::Foreign
            );
            assert_eq!(
                ownership(&labels(host, 5151, 1), &me(), here),
                Ownership::Foreign
            );
        }
        // A namespace alone differing (same boot and host name) is enough.
        let same_name = HostIdentity {
            pid_ns: "pid:[4026532778]".into(),
            ..me()
        };
        assert_eq!(
            ownership(&labels(&same_name, 5151, 1), &me(), here),
            Ownership::Foreign
        );
    }

    #[test]
    fn a_dead_run_of_this_host_and_namespace_is_swept_and_a_live_one_kept() {
        assert_eq!(
            ownership(&labels(&me(), 4242, 900), &me(), here),
            Ownership::Alive
        );
        assert_eq!(
            ownership(&labels(&me(), 5151, 900), &me(), here),
            Ownership::Dead
        );
        // Pid 4242 reused by a process that started later.
        assert_eq!(
            ownership(&labels(&me(), 4242, 100), &me(), here),
            Ownership::Dead
        );
        // Started by hand: never swept.
        assert_eq!(
            ownership(&labels(&me(), 0, 0), &me(), here),
            Ownership::Manual
        );
    }

    #[test]
    fn without_a_complete_identity_nothing_is_swept() {
        // Labelled by an older faultline (no identity): not provably ours.
        let mut legacy = labels(&me(), 5151, 1);
        for (k, _) in me().labels() {
            legacy.remove(&k);
        }
        assert_eq!(ownership(&legacy, &me(), here), Ownership::Foreign);
        // A sweeper that cannot read its own identity removes nothing.
        let blind = HostIdentity {
            pid_ns: String::new(),
            ..me()
        };
        assert_eq!(
            ownership(&labels(&blind, 5151, 1), &blind, here),
            Ownership::Foreign
        );
        // A pid that is not a number proves nothing either.
        let mut garbled = labels(&me(), 5151, 1);
        garbled.insert(LABEL_PID.to_string(), "x".into());
        assert_eq!(ownership(&garbled, &me(), here), Ownership::Foreign);
    }

    #[test]
    fn this_process_is_alive_by_its_real_identity() {
        let me = HostIdentity::current();
        assert!(me.is_complete(), "{me:?}");
        let pid = std::process::id();
        let started = process_start(pid).expect("own stat");
        assert_eq!(
            ownership(&labels(&me, pid, started), &me, process_start),
            Ownership::Alive
        );
        assert_eq!(
            ownership(&labels(&me, pid, started + 1), &me, process_start),
            Ownership::Dead,
            "pid reused later"
        );
        // Beyond pid_max: no such process.
        assert_eq!(
            ownership(&labels(&me, u32::MAX - 1, 1), &me, process_start),
            Ownership::Dead
        );
    }
}
