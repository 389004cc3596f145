//! Where workers run: an engine starts N `faultline worker` processes that
//! dial the coordinator, reports the ones it lost, and stops them all.
//!
//! - `local`: N processes on this machine (the test bed);
//! - [`swarm`]: a Docker Swarm service of N replicas (task slot = index + 1);
//! - [`kubernetes`]: an Indexed Job of N completions, applied with `kubectl`.
//!
//! Every engine starts workers that are never restarted (a restarted
//! worker would run its slice twice), so a lost worker is reported, not
//! hidden.

pub mod kubernetes;
pub(crate) mod local;
pub mod swarm;

use crate::stack::docker::DockerError;

/// What an engine is asked to start.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    /// How many workers share the load.
    pub count: usize,
    /// The coordinator's address, `host:port`, as the workers dial it.
    pub coordinator: String,
    /// The run the workers belong to (names and labels carry it).
    pub run_id: String,
    /// The image the workers run (default: the faultline image built here).
    pub image: Option<String>,
}

/// Why an engine could not start, watch or stop its workers.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine cannot be used here; nothing was started.
    #[error("{0}")]
    Unavailable(String),
    /// The request cannot be turned into workers (bad count, address...).
    #[error("{0}")]
    Invalid(String),
    /// Docker refused or failed (Swarm).
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The engine refused an operation.
    #[error("{what}: {reason}")]
    Failed {
        /// What was being done.
        what: String,
        /// The engine's answer.
        reason: String,
    },
}

impl EngineError {
    pub(crate) fn failed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Failed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// A worker the engine lost: it failed, was rejected or stopped, or ran
/// more than once (a restart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostWorker {
    /// The worker's 0-based index.
    pub index: usize,
    /// Where it ran, in the engine's words (`swarm task slot 3`, `pod …`).
    pub place: String,
    /// What happened to it.
    pub what: String,
}

impl std::fmt::Display for LostWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "worker {} ({}): {}", self.index, self.place, self.what)
    }
}

/// A name part made of the run id: lowercase letters, digits and `-`
/// only, so it fits Docker service names and Kubernetes DNS labels.
pub(crate) fn name_part(run_id: &str) -> String {
    let cleaned: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches('-').to_string()
}
