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
    /// Identities whose decisions the replay made differently under the
    /// same faults in force: the first attempt where they part, `key: was
    /// → is`.
    pub differing: Vec<String>,
    /// Identities with an attempt only one run made, where every earlier
    /// attempt matched: the SUT sent it in one run only (its retries and
    /// timeouts depend on timing), so there is no decision to compare.
    pub one_run_only: Vec<String>,
    /// Identities whose decisions parted where the faults in force differed
    /// (a request on the other side of a timeline edge or flapping switch):
    /// expected of a replay, not a difference.
    pub at_edge: usize,
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
        distribution: None,
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

/// A decision-log line: keyed by a request identity, or not.
enum Line {
    /// `id:<hash>`, the attempt, the faults in force, what was decided.
    Keyed(String, u32, String, String),
    /// What was decided for a request without an identity.
    Loose(String),
}

/// Splits a decision-log line (`seq  key  in_force  METHOD path  outcome
/// delay_us`).
fn split(line: &str) -> Line {
    let fields: Vec<&str> = line.split('\t').collect();
    match fields.as_slice() {
        [_seq, key, in_force, rest @ ..] if key.starts_with("id:") => {
            let (id, attempt) = key.split_once('#').unwrap_or((key, "0"));
            Line::Keyed(
                id.to_string(),
                attempt.parse().unwrap_or(0),
                (*in_force).to_string(),
                rest.join("\t"),
            )
        }
        [_seq, _key, _in_force, rest @ ..] => Line::Loose(rest.join("\t")),
        _ => Line::Loose(line.to_string()),
    }
}

/// Each identity's decisions, by attempt: (faults in force, decision).
type ByIdentity = BTreeMap<String, BTreeMap<u32, (String, String)>>;

/// Where an identity's decisions in two runs part.
enum Parted {
    /// Under other faults in force: expected.
    AtEdge,
    /// Under the same faults, another decision: a real difference.
    Decided(String),
    /// An attempt made in one run only.
    OneRunOnly(String),
}

/// How one identity's decisions compare: the first attempt where the runs
/// part, if any. Parting under other faults in force (the request arrived
/// on the other side of a timeline edge or flapping switch) is expected;
/// parting under the same faults is a real difference.
fn compare_identity(
    id: &str,
    was: Option<&BTreeMap<u32, (String, String)>>,
    is: Option<&BTreeMap<u32, (String, String)>>,
) -> Option<Parted> {
    let empty = BTreeMap::new();
    let (was, is) = (was.unwrap_or(&empty), is.unwrap_or(&empty));
    let attempts: std::collections::BTreeSet<u32> = was.keys().chain(is.keys()).copied().collect();
    for n in attempts {
        let show = |d: Option<&(String, String)>| d.map_or("not made".to_string(), |d| d.1.clone());
        let what = format!("{id}#{n}: {} → {}", show(was.get(&n)), show(is.get(&n)));
        return match (was.get(&n), is.get(&n)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) if a.0 != b.0 => Some(Parted::AtEdge),
            (Some(_), Some(_)) => Some(Parted::Decided(what)),
            _ => Some(Parted::OneRunOnly(what)),
        };
    }
    None
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
            let read = |dir: &Path| -> (ByIdentity, BTreeMap<String, i64>, usize, usize) {
                let text = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
                let (mut keyed, mut loose) = (ByIdentity::new(), BTreeMap::new());
                let (mut keyed_n, mut loose_n) = (0, 0);
                for line in text.lines() {
                    match split(line) {
                        Line::Keyed(id, attempt, in_force, what) => {
                            keyed_n += 1;
                            keyed
                                .entry(id)
                                .or_default()
                                .insert(attempt, (in_force, what));
                        }
                        Line::Loose(what) => {
                            loose_n += 1;
                            *loose.entry(what).or_insert(0) += 1;
                        }
                    }
                }
                (keyed, loose, keyed_n, loose_n)
            };
            let (keyed_a, loose_a, keyed_n, _) = read(before);
            let (keyed_b, loose_b, _, unkeyed_total) = read(after);
            let unkeyed_differing = loose_a
                .keys()
                .chain(loose_b.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|k| {
                    let count = |m: &BTreeMap<String, i64>| m.get(k).copied().unwrap_or(0);
                    (count(&loose_a) - count(&loose_b)).unsigned_abs() as usize
                })
                .sum();
            let ids: std::collections::BTreeSet<&String> =
                keyed_a.keys().chain(keyed_b.keys()).collect();
            let (mut differing, mut one_run_only, mut at_edge) = (Vec::new(), Vec::new(), 0);
            for id in ids {
                match compare_identity(id, keyed_a.get(id), keyed_b.get(id)) {
                    None => {}
                    Some(Parted::AtEdge) => at_edge += 1,
                    Some(Parted::Decided(d)) => differing.push(d),
                    Some(Parted::OneRunOnly(d)) => one_run_only.push(d),
                }
            }
            Decisions {
                injector: name.trim_end_matches(".tsv").to_string(),
                keyed: keyed_n,
                differing,
                one_run_only,
                at_edge,
                unkeyed: (unkeyed_total, unkeyed_differing),
            }
        })
        .collect()
}
