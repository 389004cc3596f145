//! One run of one scenario, through the pipeline: bring the stack up and
//! prove its wires, drive the load while the fault timeline plays and the
//! observers sample, decide, report, tear everything down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::distribute::coordinator::DistributeError;
use crate::distribute::crew::{Crew, Distribution};
use crate::distribute::messages::WorkPlan;
use crate::distribute::skew::now_ns;
use crate::faults;
use crate::load::acks::AckRecord;
use crate::load::driver::{self, LoadError};
use crate::load::journeys::Caller;
use crate::load::requests::RequestRecord;
use crate::load::schedule::Slice;
use crate::load::{self, progress};
use crate::observe::{self, Observations, arrivals, integrity, sut};
use crate::report::{LoadWorkers, Report, compare};
use crate::spill::Spill;
use crate::stack::{Stack, StackError, preflight};
use crate::verdict;
use crate::verdict::Plan;

/// Time between starting goose and the first intended request, so every
/// goose user is up before the schedule begins.
const LEAD: Duration = Duration::from_millis(500);

/// The same with workers: the plan reaches each of them, which checks it
/// and starts its goose users, before the schedule begins.
const DISTRIBUTED_LEAD: Duration = Duration::from_secs(3);

/// The signal that interrupted this process's runs: signals are
/// process-wide, so the record is too (set by the binary's handler).
static INTERRUPTED_BY: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Records that `signal` (`SIGINT`, `SIGTERM`, `SIGHUP`) interrupted the
/// runs; a report of an interrupted run names it. The first call counts.
pub fn interrupted_by(signal: &'static str) {
    let _ = INTERRUPTED_BY.set(signal);
}

/// How a run is carried out.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Folder the run folder is created in.
    pub out: PathBuf,
    /// No progress line.
    pub quiet: bool,
    /// Compare with a baseline run; a regression fails the run.
    pub baseline: Option<crate::report::compare::Gate>,
    /// Generate the load on workers (`--workers N --engine …`) instead of
    /// in this process.
    pub distribution: Option<Distribution>,
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run folder.
    pub dir: PathBuf,
    /// The report written there.
    pub report: Report,
    /// What the verdict was decided from (to judge it again, e.g. with
    /// other settings).
    pub observations: Observations,
}

/// Why a run could not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The stack could not be brought up or failed preflight.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The load could not run.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The workers could not be started, or one was lost: the load is not
    /// the scenario's, so there is no verdict.
    #[error("the run is invalid: {0}")]
    Workers(#[from] DistributeError),
    /// The run folder could not be written.
    #[error("cannot write the run folder {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Runs `plan`; `cancel` (Ctrl-C) stops the load early and still reports.
pub async fn run(
    plan: &Plan,
    options: &RunOptions,
    cancel: CancellationToken,
) -> Result<RunOutcome, RunError> {
    let began = Instant::now();
    let dir = run_dir(&options.out, &plan.scenario.name).map_err(|source| RunError::Io {
        path: options.out.clone(),
        source,
    })?;
    let result = run_in(plan, options, &dir, began, cancel).await;
    if result.is_err() {
        // Nothing half-done is left behind: no report, no folder.
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(
    plan: &Plan,
    options: &RunOptions,
    dir: &Path,
    began: Instant,
    cancel: CancellationToken,
) -> Result<RunOutcome, RunError> {
    let scenario = &plan.scenario;
    let stack = Stack::start(scenario, dir).await?;
    tracing::debug!(
        scenario = %scenario.name,
        services = %stack.services.values().cloned().collect::<Vec<_>>().join(" "),
        injectors = %stack.injectors.iter().map(|i| i.url()).collect::<Vec<_>>().join(" "),
        "stack up"
    );
    let tag = run_tag(scenario.seed);
    let caller = Arc::new(Caller::new(scenario.merchant.clone(), tag.clone()));
    if let Err(e) = preflight::check(&stack, scenario, &caller).await {
        stack.shutdown().await;
        return Err(e.into());
    }

    tracing::debug!("preflight passed");
    let mut crew = match &options.distribution {
        None => None,
        Some(distribution) => {
            let run_id = dir.file_name().map_or_else(
                || scenario.name.clone(),
                |n| n.to_string_lossy().into_owned(),
            );
            match Crew::start(distribution, &run_id, dir).await {
                Ok(crew) => Some(crew),
                Err(e) => {
                    stack.shutdown().await;
                    return Err(e.into());
                }
            }
        }
    };
    let lead = if crew.is_some() {
        DISTRIBUTED_LEAD
    } else {
        LEAD
    };
    let recorder = Arc::new(load::recorder(scenario, false));
    let start_ns = now_ns().saturating_add(i64::try_from(lead.as_nanos()).unwrap_or(i64::MAX));
    let load_start = Instant::now() + lead;
    let started_at = (Utc::now() + lead).to_rfc3339_opts(SecondsFormat::Millis, true);
    let clock = RunClock::new(stack.clock, load_start);
    let lanes = load::lanes(scenario, |journey| {
        stack
            .services
            .get(&journey.kind.entry())
            .cloned()
            .unwrap_or_default()
    });
    let requests_path = dir.join("requests.bin");
    let requests = match Spill::<RequestRecord>::create(&requests_path) {
        Ok(spill) => Arc::new(spill),
        Err(source) => {
            stack.shutdown().await;
            return Err(RunError::Io {
                path: requests_path,
                source,
            });
        }
    };
    let acks_path = dir.join("acks.bin");
    let acks = match Spill::<AckRecord>::create(&acks_path) {
        Ok(spill) => Arc::new(spill),
        Err(source) => {
            stack.shutdown().await;
            return Err(RunError::Io {
                path: acks_path,
                source,
            });
        }
    };
    let settings = load::settings(
        scenario,
        Slice::WHOLE,
        Arc::clone(&requests),
        Arc::clone(&acks),
    );
    if let Some(members) = crew.as_mut() {
        let work = WorkPlan {
            scenario_path: scenario.path.display().to_string(),
            scenario_source: scenario.source.clone(),
            stack: scenario.stack.kind,
            seed: scenario.seed,
            run_tag: tag,
            targets: lanes.iter().map(|lane| lane.target.clone()).collect(),
            start_ns,
        };
        if let Err(e) = members.plan(&work).await {
            if let Some(crew) = crew.take() {
                crew.stop().await;
            }
            stack.shutdown().await;
            return Err(e.into());
        }
    }

    let observing = CancellationToken::new();
    let sampler = tokio::spawn(sut::sample(
        stack.services.clone(),
        scenario.sut.clone(),
        clock,
        observing.clone(),
    ));
    let progress = progress::spawn(
        Arc::clone(&recorder),
        scenario.phases.clone(),
        load_start,
        scenario.duration,
        options.quiet,
        observing.clone(),
    );
    // A lost worker ends the fault timeline too; an interruption (the
    // parent) ends both.
    let abort = cancel.child_token();
    let driving = async {
        match crew.as_mut() {
            Some(crew) => crew
                .pump(&recorder, &requests, &acks, cancel.clone(), abort.clone())
                .await
                .map(|(_, figures)| Some(figures))
                .map_err(RunError::from),
            None => driver::drive(
                lanes,
                &settings,
                Arc::clone(&caller),
                Arc::clone(&recorder),
                load_start,
                cancel.clone(),
            )
            .await
            .map(|_| None)
            .map_err(RunError::from),
        }
    };
    let load = async {
        let done = tokio::join!(
            faults::run(scenario.faults.clone(), &stack, clock, abort.clone()),
            driving,
        );
        observing.cancel();
        done
    };
    let arrivals_dir = dir.join("arrivals");
    let ((events, driven), arrival_files, ()) = tokio::join!(
        load,
        arrivals::drain(&stack, clock, &arrivals_dir, observing.clone()),
        flush_every(&requests, &acks, observing.clone()),
    );
    tracing::debug!(cancelled = cancel.is_cancelled(), "load finished");
    let sut_samples = sampler.await.unwrap_or_default();
    let _ = progress.await;
    let workers = match driven {
        Ok(workers) => workers,
        Err(e) => {
            if let Some(crew) = crew {
                crew.stop().await;
            }
            stack.shutdown().await;
            return Err(e);
        }
    };
    if let Some(crew) = crew {
        crew.stop().await;
    }

    let load = recorder.finish();
    let mut integrity_results = Vec::new();
    for journey in plan
        .checks
        .iter()
        .filter_map(|c| c.check.integrity_journey())
    {
        {
            let (Some(series), Some(j)) = (
                load.series.iter().position(|s| s.name == journey),
                scenario.journey(journey),
            ) else {
                continue;
            };
            let base = stack
                .services
                .get(&j.kind.entry())
                .cloned()
                .unwrap_or_default();
            integrity_results.push(
                integrity::lookup(
                    journey,
                    &base,
                    &acks_path,
                    u16::try_from(series).unwrap_or(u16::MAX),
                    &caller,
                )
                .await,
            );
        }
    }
    let evidence = observe::Evidence::load(
        scenario,
        &plan.counted_downstreams(),
        &arrival_files,
        &requests_path,
    );
    let obs = Observations {
        phases: scenario.phases.clone(),
        load,
        evidence,
        injectors: observe::injectors(&stack, &clock).await,
        sut: sut_samples,
        faults: events,
        transitions: observe::transitions(&stack, &clock),
        integrity: integrity_results,
    };
    tracing::debug!("observations collected");
    let analysis = verdict::evaluate(plan, &obs);
    let mut report = Report::new(scenario, &obs, &analysis, started_at, cancel.is_cancelled());
    if report.interrupted {
        report.interrupted_by = INTERRUPTED_BY.get().map(|s| s.to_string());
    }
    if let (Some(figures), Some(distribution)) = (workers, &options.distribution) {
        report.load_workers = Some(LoadWorkers {
            engine: distribution.engine,
            workers: figures,
        });
    }
    // The comparison is part of the report, written once with it: report,
    // JUnit, page and summary all say the same.
    if let Some(gate) = &options.baseline
        && let Some(comparison) = compare::judge(&report, dir, &options.out, gate)
    {
        report.set_comparison(comparison);
    }
    stack.shutdown().await;
    tracing::debug!("stack down");
    report
        .write(dir, began.elapsed().as_secs_f64())
        .map_err(|source| RunError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(RunOutcome {
        dir: dir.to_path_buf(),
        report,
        observations: obs,
    })
}

/// Writes the request records and acknowledgements to their files now and
/// then until `stop` fires, then once more.
async fn flush_every(
    requests: &Spill<RequestRecord>,
    acks: &Spill<AckRecord>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                requests.flush();
                acks.flush();
            }
            _ = stop.cancelled() => break,
        }
    }
    requests.flush();
    acks.flush();
}

/// A fresh folder `<out>/<name>-<UTC time>[-n]`.
fn run_dir(out: &Path, name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let stamp = Utc::now().format("%Y%m%d-%H%M%S");
    let mut n = 1;
    loop {
        let dir = match n {
            1 => out.join(format!("{name}-{stamp}")),
            n => out.join(format!("{name}-{stamp}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Prefix of the run's business ids: unique across runs against one SUT.
/// The injectors key fault decisions without it, so a replay draws alike.
fn run_tag(seed: u64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    fault_injectors::run_tag(seed, ms)
}
