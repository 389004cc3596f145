//! The worker contract every engine relies on: a worker is `faultline
//! worker` with its index, the number of workers and the coordinator's
//! address in its environment. The `local` engine sets them on the
//! processes it starts, the `swarm` engine templates them from the task
//! slot, and the Kubernetes Indexed Job gets its index from
//! `JOB_COMPLETION_INDEX`.

use std::net::SocketAddr;

/// The coordinator's address, `host:port`, as the worker dials it.
pub const COORDINATOR: &str = "FAULTLINE_COORDINATOR";
/// The worker's index, 0-based.
pub const WORKER_INDEX: &str = "FAULTLINE_WORKER_INDEX";
/// A Kubernetes Indexed Job's completion index (0-based).
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";
/// A Docker Swarm task slot (`{{.Task.Slot}}`, 1-based).
pub const WORKER_SLOT: &str = "FAULTLINE_WORKER_SLOT";
/// How many workers share the load.
pub const WORKERS: &str = "FAULTLINE_WORKERS";

/// Who a worker is, read from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerIdentity {
    /// 0-based index: the worker runs arrivals `index`, `index + workers`, …
    pub index: usize,
    /// How many workers share the load.
    pub workers: usize,
    /// Where the coordinator listens, `host:port` (a name is resolved when
    /// dialled).
    pub coordinator: String,
}

/// A worker environment that does not say who the worker is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    /// A variable the worker needs is not set.
    #[error(
        "{0} is not set: a worker needs {COORDINATOR}, {WORKERS} and its index ({WORKER_INDEX}, {JOB_COMPLETION_INDEX} or {WORKER_SLOT})"
    )]
    Missing(&'static str),
    /// A variable does not hold what it should.
    #[error("{name}={value:?}: {why}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

impl WorkerIdentity {
    /// Reads the identity from `var` (the process environment in
    /// production, a map in tests).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ContractError> {
        let number = |name: &'static str, value: String| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|e| ContractError::Invalid {
                    name,
                    value,
                    why: e.to_string(),
                })
        };
        let coordinator = var(COORDINATOR).ok_or(ContractError::Missing(COORDINATOR))?;
        if !coordinator.contains(':') {
            return Err(ContractError::Invalid {
                name: COORDINATOR,
                value: coordinator,
                why: "expected host:port".into(),
            });
        }
        let workers = number(
            WORKERS,
            var(WORKERS).ok_or(ContractError::Missing(WORKERS))?,
        )?;
        if workers == 0 {
            return Err(ContractError::Invalid {
                name: WORKERS,
                value: "0".into(),
                why: "at least one worker".into(),
            });
        }
        let index = if let Some(v) = var(WORKER_INDEX) {
            number(WORKER_INDEX, v)?
        } else if let Some(v) = var(JOB_COMPLETION_INDEX) {
            number(JOB_COMPLETION_INDEX, v)?
        } else if let Some(v) = var(WORKER_SLOT) {
            match number(WORKER_SLOT, v.clone())? {
                0 => {
                    return Err(ContractError::Invalid {
                        name: WORKER_SLOT,
                        value: v,
                        why: "task slots start at 1".into(),
                    });
                }
                slot => slot - 1,
            }
        } else {
            return Err(ContractError::Missing(WORKER_INDEX));
        };
        if index >= workers {
            return Err(ContractError::Invalid {
                name: WORKER_INDEX,
                value: index.to_string(),
                why: format!("index must be below {WORKERS}={workers}"),
            });
        }
        Ok(Self {
            index,
            workers,
            coordinator,
        })
    }

    /// The environment that makes a worker this one (the `local` engine's
    /// processes; the other engines set the same names their own way).
    pub fn env(
        index: usize,
        workers: usize,
        coordinator: SocketAddr,
    ) -> Vec<(&'static str, String)> {
        vec![
            (COORDINATOR, coordinator.to_string()),
            (WORKERS, workers.to_string()),
            (WORKER_INDEX, index.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<WorkerIdentity, ContractError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WorkerIdentity::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn each_engine_s_index_is_read() {
        let base = [(COORDINATOR, "10.0.0.1:7000"), (WORKERS, "4")];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            read(&v).map(|w| w.index)
        };
        assert_eq!(with((WORKER_INDEX, "2")), Ok(2));
        assert_eq!(with((JOB_COMPLETION_INDEX, "3")), Ok(3));
        assert_eq!(with((WORKER_SLOT, "1")), Ok(0));
        assert!(matches!(
            with((WORKER_SLOT, "0")),
            Err(ContractError::Invalid { .. })
        ));
        assert!(matches!(
            with((WORKER_INDEX, "4")),
            Err(ContractError::Invalid { .. })
        ));
        assert_eq!(read(&base), Err(ContractError::Missing(WORKER_INDEX)));
        assert_eq!(
            read(&[(WORKERS, "1"), (WORKER_INDEX, "0")]),
            Err(ContractError::Missing(COORDINATOR))
        );
    }

    #[test]
    fn the_local_engine_s_environment_reads_back() {
        let addr: SocketAddr = "127.0.0.1:4100".parse().unwrap();
        let env = WorkerIdentity::env(1, 3, addr);
        let id =
            WorkerIdentity::from_env(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .unwrap();
        assert_eq!(
            id,
            WorkerIdentity {
                index: 1,
                workers: 3,
                coordinator: "127.0.0.1:4100".into()
            }
        );
    }
}
