//! `faultline explore`: every client of the stack under every fault class,
//! under load, with the same checks each time — whether each client is
//! protected, with the evidence.
//!
//! The clients come from the platform description (each caller's calls to
//! one downstream: the routes it calls there, whether it waits for them, a
//! journey that exercises them and one that does not). Each client × fault
//! class is a cell: a generated scenario ([`cell`]) run as its own `faultline
//! run` process (`runner`), up to `--jobs` at once. Cells whose outcome
//! another cell implies are not run, and the report says which and why.
//! The matrix (`matrix`) is written as `explore.json`, `junit.xml` and
//! `index.html`, for the cells finished even when interrupted; `--resume`
//! runs only the missing ones.

pub mod cell;
mod clients;
pub(crate) mod matrix;
pub mod profile;
pub(crate) mod runner;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use reference_stack::{Downstream, ServiceKind};
use tokio_util::sync::CancellationToken;

use crate::platform::{JourneyKind, injector_name};
use crate::report::Report;
use crate::scenario::StackKind;
use cell::{Cell, FaultClass, StackSection, Timing};
use matrix::{CellResult, ClientRow, Coverage, Exploration, Outcome, Skip};
use profile::Profile;
use runner::{Ran, Runner};

pub use clients::clients;

/// A client of the stack: one caller's calls to one downstream.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// The calling service.
    pub caller: ServiceKind,
    /// The downstream called.
    pub downstream: Downstream,
    /// The routes it calls there: (method, path pattern).
    pub routes: Vec<(String, String)>,
    /// Fire-and-forget: sent after the caller answered.
    pub background: bool,
    /// A journey whose requests make these calls.
    pub journey: JourneyKind,
    /// Made by the journey's follow-up (the payment's webhook), not its
    /// request.
    pub follow_up: bool,
    /// A journey that does not reach the downstream at all (None: every
    /// journey does).
    pub unaffected: Option<JourneyKind>,
}

impl Client {
    /// `payment-gateway→order-service`.
    pub fn name(&self) -> String {
        format!("{}→{}", self.caller.name(), injector_name(self.downstream))
    }
}

/// How an exploration runs.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// The faultline binary each cell runs with.
    pub faultline: PathBuf,
    /// The stack kind.
    pub stack: StackKind,
    /// How the reference stack is set up (ignored with `base`).
    pub profile: Profile,
    /// External stacks: the scenario whose `[stack]`, `[sut]` and
    /// `[merchant]` every cell uses.
    pub base: Option<PathBuf>,
    /// The fault classes.
    pub faults: Vec<FaultClass>,
    /// Only these clients: `caller→downstream` (or `caller->downstream`),
    /// or a caller's name for all of its clients. Empty: every client.
    pub clients: Vec<String>,
    /// Cells at once.
    pub jobs: usize,
    /// Where the exploration folder is created.
    pub out: PathBuf,
    /// Continue the exploration in this folder.
    pub resume: Option<PathBuf>,
    /// Factor on the platform's timings (0.01 by default; 1 for production
    /// timings).
    pub time_scale: f64,
    /// Seed of every cell.
    pub seed: u64,
    /// No progress line.
    pub quiet: bool,
}

/// Why an exploration could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// Bad options.
    #[error("{0}")]
    Input(String),
    /// The exploration folder could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A finished exploration.
#[derive(Debug)]
pub struct Explored {
    /// Its folder.
    pub dir: PathBuf,
    /// What it found.
    pub exploration: Exploration,
}

/// Runs the exploration; `cancel` stops it, keeping the finished cells.
pub async fn explore(
    options: &ExploreOptions,
    cancel: CancellationToken,
) -> Result<Explored, ExploreError> {
    let started = Instant::now();
    let (stack, clients, label) = match &options.base {
        Some(base) => {
            let (tables, services, injectors) = clients::base(base)?;
            let found = clients(Some((&services, &injectors)));
            (StackSection::Base(tables), found, "external".to_string())
        }
        None if options.stack == StackKind::External => {
            return Err(ExploreError::Input(
                "explore --stack external needs --base SCENARIO: the scenario giving the SUT's [stack.services] and [stack.injectors]".into(),
            ));
        }
        None => (
            StackSection::Reference {
                kind: options.stack,
                profile: options.profile.clone(),
            },
            clients(None),
            options.profile.name().to_string(),
        ),
    };
    if clients.is_empty() {
        return Err(ExploreError::Input(
            "no client of the platform is both among the base's services and its injectors".into(),
        ));
    }
    let clients = select(clients, &options.clients)?;
    let dir = match &options.resume {
        Some(dir) => dir.clone(),
        None => options.out.join(format!(
            "explore-{label}-{}",
            Utc::now().format("%Y%m%d-%H%M%S")
        )),
    };
    std::fs::create_dir_all(&dir).map_err(|source| ExploreError::Io {
        path: dir.clone(),
        source,
    })?;
    let (planned, skipped, rules) = plan(&clients, &options.faults, &stack);
    let runner = Runner {
        faultline: options.faultline.clone(),
        dir: dir.clone(),
        jobs: options.jobs,
        quiet: options.quiet,
    };
    let timing = Timing {
        scale: options.time_scale,
    };
    let mut done = Vec::new();
    let mut todo = Vec::new();
    for cell in planned {
        match runner.finished(&cell) {
            Some(ran) => done.push((cell, ran)),
            None => {
                let text = cell.scenario(&stack, timing, options.seed);
                todo.push((cell, text));
            }
        }
    }
    done.extend(runner.run(todo, cancel.clone()).await);
    let mut cells: Vec<CellResult> = done
        .iter()
        .map(|(cell, ran)| result(cell, ran, &dir))
        .collect();
    cells.sort_by(|a, b| (&a.client, a.class).cmp(&(&b.client, b.class)));
    let mut exploration = Exploration {
        faultline: env!("CARGO_PKG_VERSION").into(),
        profile: label,
        stack: options.stack.name().into(),
        time_scale: options.time_scale,
        faults: options.faults.clone(),
        started_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        wall_s: started.elapsed().as_secs_f64(),
        interrupted: cancel.is_cancelled(),
        rules,
        clients: clients
            .iter()
            .map(|c| ClientRow {
                name: c.name(),
                background: c.background,
                protected: None,
            })
            .collect(),
        cells,
        skipped,
        coverage: Coverage {
            protected: 0,
            total: 0,
            line: String::new(),
            per_class: Default::default(),
        },
    };
    exploration.judge();
    exploration.write(&dir).map_err(|source| ExploreError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(Explored { dir, exploration })
}

/// The clients `wanted` names (all when it is empty); a name matching no
/// client is an error listing the clients there are.
fn select(clients: Vec<Client>, wanted: &[String]) -> Result<Vec<Client>, ExploreError> {
    if wanted.is_empty() {
        return Ok(clients);
    }
    let matches = |c: &Client, w: &str| {
        let w = w.replace("->", "→");
        c.name() == w || c.caller.name() == w
    };
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !clients.iter().any(|c| matches(c, w)))
    {
        let names: Vec<String> = clients.iter().map(Client::name).collect();
        return Err(ExploreError::Input(format!(
            "--clients: no client `{unknown}`; the clients are {}",
            names.join(", ")
        )));
    }
    Ok(clients
        .into_iter()
        .filter(|c| wanted.iter().any(|w| matches(c, w)))
        .collect())
}

/// The cells to run, those implied by others, and the rules applied.
fn plan(
    clients: &[Client],
    faults: &[FaultClass],
    stack: &StackSection,
) -> (Vec<Cell>, Vec<Skip>, Vec<String>) {
    let mut rules = vec![
        "protected: under every fault class but partial errors the caller's breaker opens within 120 s of the fault (two counting intervals) and the journey crossing the client recovers its baseline success within 30 s of the clear (judged in 5 s windows, two windows of slack); under partial errors (30 % 503) the retries absorb them (success within 5 points of baseline); under all, the journey not reaching the downstream keeps its baseline success and p99 (≤ 3× + 25 ms of scheduling noise), attempts stay at most 4.5 per call (per request where the calls carry no id; not judged under an outage, when nothing arrives), and acknowledged payments are kept; a background (fire-and-forget) client must not slow or fail the journey that triggers it".to_string(),
        "stack starts are not shared between cells: an embedded stack starts in milliseconds, and a shared one would carry breaker state from one cell into the next".to_string(),
    ];
    let reference = matches!(stack, StackSection::Reference { .. });
    if reference && faults.contains(&FaultClass::Hang) && faults.contains(&FaultClass::Latency) {
        rules.push("hang ⇐ latency where the caller's client has a per-attempt timeout: both end as that timeout, the same upstream error after the same wait".into());
    }
    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    for client in clients {
        for &class in faults {
            let cell = Cell::new(client, class);
            let times_out = match stack {
                StackSection::Reference { profile, .. } => {
                    profile.times_out(client.caller, client.downstream)
                }
                StackSection::Base(_) => false,
            };
            if class == FaultClass::Hang && faults.contains(&FaultClass::Latency) && times_out {
                skipped.push(Skip {
                    cell: cell.id.clone(),
                    implied_by: Cell::new(client, FaultClass::Latency).id,
                    why: "the client's per-attempt timeout ends a hang as it ends a long delay: the same upstream error".into(),
                });
                continue;
            }
            cells.push(cell);
        }
    }
    (cells, skipped, rules)
}

/// A cell's figures from its run.
fn result(cell: &Cell, ran: &Ran, dir: &Path) -> CellResult {
    let mut r = CellResult {
        id: cell.id.clone(),
        client: cell.client.name(),
        class: cell.class,
        outcome: Outcome::NotRun,
        run_dir: None,
        time_to_open_s: None,
        recovery_s: None,
        amplification: None,
        cascade: None,
        failed: Vec::new(),
        error: None,
    };
    match ran {
        Ran::Interrupted => {}
        Ran::Error(e) => {
            r.outcome = Outcome::Error;
            r.error = Some(e.clone());
        }
        Ran::Done { dir: run, report } => {
            r.outcome = if report.passed() {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            r.run_dir = Some(run.strip_prefix(dir).unwrap_or(run).display().to_string());
            figures(&mut r, report, cell.client.downstream);
        }
    }
    r
}

/// Time to open, recovery, amplification, spread and failed checks.
fn figures(r: &mut CellResult, report: &Report, downstream: Downstream) {
    let target = injector_name(downstream);
    let fault_at = report
        .faults
        .iter()
        .find(|e| e.injector == downstream)
        .map(|e| e.t_s);
    let opened = report
        .breakers
        .iter()
        .filter(|b| b.downstream == target)
        .find_map(|b| b.episodes.opened_at_s.first().copied());
    r.time_to_open_s = match (fault_at, opened) {
        (Some(f), Some(o)) => Some(o - f),
        _ => None,
    };
    r.recovery_s = report
        .recoveries
        .iter()
        .filter_map(|x| x.recovery_s)
        .reduce(f64::max);
    r.amplification = report
        .amplification
        .iter()
        .find(|a| a.downstream == target && a.phase == "fault")
        .and_then(|a| a.per_call);
    r.cascade = report
        .checks
        .iter()
        .find(|c| c.name == "no_spread")
        .map(|c| !c.passed);
    r.failed = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.observed))
        .collect();
}
