//! The `local` engine: N `faultline worker` processes on this machine, the
//! test bed of the worker contract the other engines rely on (the same
//! environment variables, the same wire).
//!
//! Each worker runs in a process group of its own, so the terminal's Ctrl-C
//! reaches only the coordinator, which stops the workers itself and still
//! writes its report; a worker whose coordinator vanished stops its load
//! when the connection closes. Nothing outlives the run: the processes are
//! waited for, or killed, when the workers stop (and when dropped).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{EngineError, LostWorker, WorkerSpec};
use crate::distribute::contract::WorkerIdentity;

/// How long a worker may take to exit once its coordinator is done.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// N worker processes.
pub struct LocalWorkers {
    children: Vec<Child>,
}

impl LocalWorkers {
    /// Starts `spec.count` workers running `program worker`, each with its
    /// identity in its environment and its output in `logs/worker-<k>.log`.
    pub fn start(spec: &WorkerSpec, program: &Path, logs: &Path) -> Result<Self, EngineError> {
        if spec.count == 0 {
            return Err(EngineError::Invalid("at least one worker".into()));
        }
        let coordinator = spec.coordinator.parse().map_err(|e| {
            EngineError::Invalid(format!(
                "the coordinator address {:?} is not ip:port: {e}",
                spec.coordinator
            ))
        })?;
        std::fs::create_dir_all(logs)
            .map_err(|e| EngineError::failed(format!("create {}", logs.display()), e))?;
        let mut workers = Self {
            children: Vec::with_capacity(spec.count),
        };
        for index in 0..spec.count {
            let log = logs.join(format!("worker-{index}.log"));
            let file = std::fs::File::create(&log)
                .map_err(|e| EngineError::failed(format!("create {}", log.display()), e))?;
            let err = file
                .try_clone()
                .map_err(|e| EngineError::failed(format!("open {}", log.display()), e))?;
            let child = Command::new(program)
                .arg("worker")
                .envs(WorkerIdentity::env(index, spec.count, coordinator))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(err)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| EngineError::failed(format!("start {}", program.display()), e))?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    /// The program a local worker runs: this one.
    pub fn this_program() -> Result<PathBuf, EngineError> {
        std::env::current_exe().map_err(|e| EngineError::failed("find this program", e))
    }

    /// The workers whose process ended so far, with how it ended.
    pub fn lost(&mut self) -> Vec<LostWorker> {
        self.children
            .iter_mut()
            .enumerate()
            .filter_map(|(index, child)| {
                let status = child.try_wait().ok().flatten()?;
                Some(LostWorker {
                    index,
                    place: format!("process {}", child.id().unwrap_or(0)),
                    what: describe(status),
                })
            })
            .collect()
    }

    /// Waits for every worker to exit (they do once the coordinator closes
    /// their connection), killing those that take longer than a few seconds.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            if tokio::time::timeout(EXIT_WITHIN, child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("ended: {status}"),
    }
}
