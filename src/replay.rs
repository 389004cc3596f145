//! `faultline replay RUN_DIR`: runs a run folder again — the same scenario
//! text, seed and stack settings, all kept in its `report.json` — and shows
//! that the fault decisions are the same for every request identity (the
//! decision logs compared as sets keyed by identity) and the verdict too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::report::Report;
use crate::run::{RunError, RunOptions, run};
use crate::scenario::{ScenarioErrors, StackKind};
use crate::verdict::Plan;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The run folder is unreadable or not a run folder.
    #[error("{0}")]
    Folder(String),
    /// Its scenario no longer loads (e.g. written for another version).
    #[error("the run's scenario does not load:\n{0}")]
    Scenario(#[from] ScenarioErrors),
    /// The replay run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// One injector's decisions in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Decisions {
    /// Injector name.
    pub injector: String,
    /// Decisions keyed by a request identity, in the original run.
    pub keyed: usize,
    /// Keyed decisions the replay made differently, or not at all (and
    /// the other way round): `key: was → is`.
    pub differing: Vec<String>,
    /// Decisions of requests without an identity (compared as a multiset
    /// of what was decided), and how many differ.
    pub unkeyed: (usize, usize),
}

/// What a replay found.
#[derive(Debug)]
pub struct Replayed {
    /// The replay's run folder.
    pub dir: PathBuf,
    /// Decision comparison per injector.
    pub decisions: Vec<Decisions>,
    /// The original verdict and the replay's, with the checks that changed.
    pub verdicts: (String, String, Vec<String>),
    /// The original run's faultline version, when not this one.
    pub other_version: Option<String>,
}

impl Replayed {
    /// Whether every keyed decision and the verdict are the same.
    pub fn same(&self) -> bool {
        self.decisions.iter().all(|d| d.differing.is_empty())
            && self.verdicts.0 == self.verdicts.1
            && self.verdicts.2.is_empty()
    }
}

/// Replays `dir` into `out` (default: next to it).
pub async fn replay(
    dir: &Path,
    out: Option<&Path>,
    cancel: CancellationToken,
) -> Result<Replayed, ReplayError> {
    let folder = |why: String| ReplayError::Folder(format!("{}: {why}", dir.display()));
    let bytes = std::fs::read(dir.join("report.json"))
        .map_err(|e| folder(format!("no report.json ({e})")))?;
    let original: Report = serde_json::from_slice(&bytes)
        .map_err(|e| folder(format!("unreadable report.json: {e}")))?;
    let kind = stack_kind(&original.stack)
        .ok_or_else(|| folder(format!("unknown stack kind `{}`", original.stack)))?;
    let mut plan = Plan::parse(
        Path::new(&original.file),
        &original.scenario_source,
        Some(kind),
    )?;
    plan.scenario.seed = original.seed;
    let options = RunOptions {
        out: out
            .map(Path::to_path_buf)
            .or_else(|| dir.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("reports")),
        quiet: true,
        baseline: None,
    };
    let outcome = run(&plan, &options, cancel).await?;
    let decisions = compare_decisions(&dir.join("decisions"), &outcome.dir.join("decisions"));
    let changed: Vec<String> = original
        .checks
        .iter()
        .filter_map(|c| {
            let now = outcome.report.checks.iter().find(|n| n.name == c.name)?;
            (now.passed != c.passed).then(|| {
                format!(
                    "{}: {} → {}",
                    c.name,
                    if c.passed { "pass" } else { "fail" },
                    if now.passed { "pass" } else { "fail" }
                )
            })
        })
        .collect();
    Ok(Replayed {
        dir: outcome.dir,
        decisions,
        verdicts: (
            original.verdict.name().to_string(),
            outcome.report.verdict.name().to_string(),
            changed,
        ),
        other_version: (original.faultline != env!("CARGO_PKG_VERSION"))
            .then_some(original.faultline),
    })
}

fn stack_kind(name: &str) -> Option<StackKind> {
    [
        StackKind::Embedded,
        StackKind::External,
        StackKind::Containers,
        StackKind::Compose,
    ]
    .into_iter()
    .find(|k| k.name() == name)
}

/// A decision-log line split into its identity (None: arrival order only)
/// and what was decided.
fn split(line: &str) -> (Option<String>, String) {
    let fields: Vec<&str> = line.split('\t').collect();
    match fields.as_slice() {
        [_seq, key, rest @ ..] if key.starts_with("id:") => {
            (Some((*key).to_string()), rest.join("\t"))
        }
        [_seq, key, rest @ ..] if *key == "arrival" => (None, rest.join("\t")),
        [_seq, rest @ ..] => (None, rest.join("\t")),
        [] => (None, String::new()),
    }
}

/// Compares the decision logs of two runs, injector by injector.
pub fn compare_decisions(before: &Path, after: &Path) -> Vec<Decisions> {
    let mut names: Vec<String> = std::fs::read_dir(before)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tsv"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let read = |dir: &Path| std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
            let (a, b) = (read(before), read(after));
            let mut keyed_a = BTreeMap::new();
            let mut keyed_b = BTreeMap::new();
            let mut loose_a: BTreeMap<String, i64> = BTreeMap::new();
            for line in a.lines() {
                match split(line) {
                    (Some(k), v) => {
                        keyed_a.insert(k, v);
                    }
                    (None, v) => *loose_a.entry(v).or_default() += 1,
                }
            }
            let mut loose_b = loose_a.clone();
            let mut unkeyed_total = 0;
            for line in b.lines() {
                match split(line) {
                    (Some(k), v) => {
                        keyed_b.insert(k, v);
                    }
                    (None, v) => {
                        unkeyed_total += 1;
                        *loose_b.entry(v).or_default() -= 1;
                    }
                }
            }
            let unkeyed_differing = loose_b.values().map(|n| n.unsigned_abs() as usize).sum();
            let mut differing = Vec::new();
            for (k, was) in &keyed_a {
                match keyed_b.get(k) {
                    Some(is) if is == was => {}
                    Some(is) => differing.push(format!("{k}: {was} → {is}")),
                    None => differing.push(format!("{k}: {was} → not made")),
                }
            }
            for (k, is) in &keyed_b {
                if !keyed_a.contains_key(k) {
                    differing.push(format!("{k}: not made → {is}"));
                }
            }
            Decisions {
                injector: name.trim_end_matches(".tsv").to_string(),
                keyed: keyed_a.len(),
                differing,
                unkeyed: (unkeyed_total, unkeyed_differing),
            }
        })
        .collect()
}
