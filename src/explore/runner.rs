//! Runs cells as separate `faultline run` processes, up to `jobs` at once
//! (goose's stop switch is process-wide, so two runs cannot share one), with
//! a progress line; an interrupted exploration keeps the cells it finished,
//! and a resumed one runs only those it lacks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::cell::Cell;
use crate::report::Report;

/// How a cell's run ended.
#[derive(Clone, Debug)]
pub enum Ran {
    /// The run folder holds a complete report.
    Done {
        /// The run folder.
        dir: PathBuf,
        /// Its report.
        report: Box<Report>,
    },
    /// The run could not be carried out (exit 2), with what it said.
    Error(String),
    /// Stopped before it ended (the exploration was interrupted).
    Interrupted,
}

/// What the runner needs.
pub struct Runner {
    /// The faultline binary the cells run with.
    pub faultline: PathBuf,
    /// The exploration folder: `scenarios/` and `cells/` go there.
    pub dir: PathBuf,
    /// Cells at once.
    pub jobs: usize,
    /// No progress line.
    pub quiet: bool,
}

impl Runner {
    /// Where the cell's runs go.
    fn out(&self, cell: &Cell) -> PathBuf {
        self.dir.join("cells").join(cell.slug())
    }

    /// The cell's finished run, if an earlier (resumed) exploration has one.
    pub fn finished(&self, cell: &Cell) -> Option<Ran> {
        let (dir, report) = last_report(&self.out(cell))?;
        (!report.interrupted).then(|| Ran::Done {
            dir,
            report: Box::new(report),
        })
    }

    /// Runs `cells` (scenario texts given), `jobs` at a time; `cancel`
    /// stops the ones running (they report as interrupted) and starts no
    /// more.
    pub async fn run(
        &self,
        cells: Vec<(Cell, String)>,
        cancel: CancellationToken,
    ) -> Vec<(Cell, Ran)> {
        let total = cells.len() as u64;
        let bar = progress(total, self.quiet);
        let permits = Arc::new(Semaphore::new(self.jobs.max(1)));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (cell, scenario) in cells {
            let permit = Arc::clone(&permits);
            let cancel = cancel.clone();
            let out = self.out(&cell);
            let file = self
                .dir
                .join("scenarios")
                .join(format!("{}.toml", cell.slug()));
            let faultline = self.faultline.clone();
            let bar = bar.clone();
            tasks.spawn(async move {
                let Ok(_permit) = permit.acquire_owned().await else {
                    return (cell, Ran::Interrupted);
                };
                if cancel.is_cancelled() {
                    return (cell, Ran::Interrupted);
                }
                bar.set_message(cell.id.clone());
                let ran = run_cell(&faultline, &file, &scenario, &out, &cancel).await;
                bar.inc(1);
                (cell, ran)
            });
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(done) = done {
                out.push(done);
            }
        }
        bar.finish_and_clear();
        tracing::debug!(
            cells = total,
            secs = started.elapsed().as_secs_f64(),
            "cells ran"
        );
        out
    }
}

/// The progress line: cells done of all, the one starting, ETA.
fn progress(total: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if quiet || std::env::var_os("CI").is_some() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    if let Ok(style) = ProgressStyle::with_template(
        "explore {pos}/{len} cells [{elapsed_precise}, ETA {eta}] {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

/// Runs one cell's scenario in its own process.
async fn run_cell(
    faultline: &Path,
    file: &Path,
    scenario: &str,
    out: &Path,
    cancel: &CancellationToken,
) -> Ran {
    if let Err(e) = std::fs::create_dir_all(out)
        .and_then(|()| std::fs::create_dir_all(file.parent().unwrap_or(out)))
        .and_then(|()| std::fs::write(file, scenario))
    {
        return Ran::Error(format!("cannot write {}: {e}", file.display()));
    }
    let log_path = out.join("run.log");
    let log = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => return Ran::Error(format!("cannot write {}: {e}", log_path.display())),
    };
    let (stdout, stderr) = match log.try_clone() {
        Ok(copy) => (Stdio::from(copy), Stdio::from(log)),
        Err(e) => return Ran::Error(format!("cannot write {}: {e}", log_path.display())),
    };
    let child = tokio::process::Command::new(faultline)
        .arg("run")
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Ran::Error(format!("cannot start {}: {e}", faultline.display())),
    };
    let status = tokio::select! {
        status = child.wait() => status,
        () = cancel.cancelled() => {
            // The child stops its load, tears its stack down and reports on
            // SIGTERM, as on Ctrl-C; it is killed if it lingers.
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
            // A run that had finished its report when the signal came is kept.
            return match last_report(out) {
                Some((dir, report)) if !report.interrupted => Ran::Done {
                    dir,
                    report: Box::new(report),
                },
                _ => Ran::Interrupted,
            };
        }
    };
    let status = match status {
        Ok(s) => s,
        Err(e) => return Ran::Error(format!("lost the run: {e}")),
    };
    match (status.code(), last_report(out)) {
        (Some(0 | 1), Some((dir, report))) => Ran::Done {
            dir,
            report: Box::new(report),
        },
        (code, _) => {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            Ran::Error(format!(
                "faultline run exited with {}: {}",
                code.map_or("a signal".to_string(), |c| c.to_string()),
                said.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
            ))
        }
    }
}

/// The newest run folder under `out` with a readable report.
fn last_report(out: &Path) -> Option<(PathBuf, Report)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("report.json").is_file())
        .collect();
    dirs.sort();
    let dir = dirs.pop()?;
    let report = serde_json::from_slice(&std::fs::read(dir.join("report.json")).ok()?).ok()?;
    Some((dir, report))
}
