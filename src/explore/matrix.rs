//! The exploration as people read it: `explore.json`, `junit.xml` (one
//! testcase per cell) and `index.html` (clients × fault classes, each cell
//! linking to its run folder), with the coverage line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use super::cell::FaultClass;
use crate::report::html::esc;

/// How a cell came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    Pass,
    /// A check failed.
    Fail,
    /// The run could not be carried out.
    Error,
    /// Not run (the exploration was interrupted first).
    NotRun,
}

/// One cell's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellResult {
    /// `payment-gateway→order-service:outage`.
    pub id: String,
    /// The client.
    pub client: String,
    /// The fault class.
    pub class: FaultClass,
    /// How it came out.
    pub outcome: Outcome,
    /// Its run folder, relative to the exploration's.
    #[serde(default)]
    pub run_dir: Option<String>,
    /// From the fault's start to the breaker's opening, seconds as measured
    /// (on the scaled clock: ÷ `time_scale` for platform seconds).
    #[serde(default)]
    pub time_to_open_s: Option<f64>,
    /// Slowest recovery after the fault cleared, seconds as measured.
    #[serde(default)]
    pub recovery_s: Option<f64>,
    /// Attempts per call at the downstream during the fault.
    #[serde(default)]
    pub amplification: Option<f64>,
    /// Whether the failure spread to the journey that does not cross it.
    #[serde(default)]
    pub cascade: Option<bool>,
    /// The checks that failed, with what they saw.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Why the run could not be carried out.
    #[serde(default)]
    pub error: Option<String>,
}

/// A cell not run because another cell's outcome implies it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Skip {
    /// The cell not run.
    pub cell: String,
    /// The cell whose outcome it takes.
    pub implied_by: String,
    /// Why.
    pub why: String,
}

/// One client's row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientRow {
    /// `payment-gateway→order-service`.
    pub name: String,
    /// Whether its calls are fire-and-forget.
    pub background: bool,
    /// Protected under every fault class explored (None: some cell did not
    /// run).
    pub protected: Option<bool>,
}

/// How many clients are protected.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Coverage {
    /// Clients protected under every fault class.
    pub protected: usize,
    /// Clients explored.
    pub total: usize,
    /// `clients protected: x of N`.
    pub line: String,
    /// Per fault class: clients whose cell passed, and clients with a cell.
    pub per_class: BTreeMap<String, (usize, usize)>,
}

/// Everything an exploration found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exploration {
    /// faultline's version.
    pub faultline: String,
    /// The profile (or `external`).
    pub profile: String,
    /// The stack kind.
    pub stack: String,
    /// Factor on the platform's timings.
    pub time_scale: f64,
    /// The fault classes explored.
    pub faults: Vec<FaultClass>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Wall-clock seconds it took (this session, when resumed).
    pub wall_s: f64,
    /// Whether it was interrupted before every cell ran.
    pub interrupted: bool,
    /// What a client must pass, and how cells were reduced.
    pub rules: Vec<String>,
    /// The clients.
    pub clients: Vec<ClientRow>,
    /// Every cell run (or not run).
    pub cells: Vec<CellResult>,
    /// Cells implied by others.
    pub skipped: Vec<Skip>,
    /// The coverage line.
    pub coverage: Coverage,
}

impl Exploration {
    /// The outcome of `client`'s cell of `class`: its own, or that of the
    /// cell implying it.
    pub fn outcome(&self, client: &str, class: FaultClass) -> Option<Outcome> {
        let id = format!("{client}:{}", class.name());
        let id = self
            .skipped
            .iter()
            .find(|s| s.cell == id)
            .map_or(id, |s| s.implied_by.clone());
        self.cells.iter().find(|c| c.id == id).map(|c| c.outcome)
    }

    /// Fills in each client's protection and the coverage line.
    pub fn judge(&mut self) {
        let mut per_class: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for row in &mut self.clients {
            let outcomes: Vec<Option<Outcome>> = self
                .faults
                .iter()
                .map(|class| {
                    let id = format!("{}:{}", row.name, class.name());
                    let implied = self
                        .skipped
                        .iter()
                        .find(|s| s.cell == id)
                        .map_or(id, |s| s.implied_by.clone());
                    let outcome = self
                        .cells
                        .iter()
                        .find(|c| c.id == implied)
                        .map(|c| c.outcome);
                    let entry = per_class.entry(class.name().to_string()).or_default();
                    entry.1 += 1;
                    entry.0 += usize::from(outcome == Some(Outcome::Pass));
                    outcome
                })
                .collect();
            row.protected = if outcomes
                .iter()
                .any(|o| matches!(o, Some(Outcome::Fail | Outcome::Error)))
            {
                Some(false)
            } else if outcomes.iter().all(|o| *o == Some(Outcome::Pass)) {
                Some(true)
            } else {
                None
            };
        }
        let protected = self
            .clients
            .iter()
            .filter(|c| c.protected == Some(true))
            .count();
        let total = self.clients.len();
        let undecided = self
            .clients
            .iter()
            .filter(|c| c.protected.is_none())
            .count();
        self.coverage = Coverage {
            protected,
            total,
            line: match undecided {
                0 => format!("clients protected: {protected} of {total}"),
                n => format!("clients protected: {protected} of {total} ({n} not fully explored)"),
            },
            per_class,
        };
    }

    /// Writes `explore.json`, `junit.xml` and `index.html` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("explore.json"), json)?;
        std::fs::write(dir.join("junit.xml"), self.junit()?)?;
        std::fs::write(dir.join("index.html"), self.html())
    }

    fn junit(&self) -> std::io::Result<String> {
        let mut junit = JUnit::new("faultline-explore");
        let mut suite = TestSuite::new(format!("explore.{}", self.profile));
        suite.set_time(Duration::from_secs_f64(self.wall_s.max(0.0)));
        let classname = format!("faultline.explore.{}", self.profile);
        for cell in &self.cells {
            let status = match cell.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(cell.failed.join("; "));
                    if let Some(dir) = &cell.run_dir {
                        s.set_description(format!("run folder: {dir}"));
                    }
                    s
                }
                Outcome::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(cell.error.clone().unwrap_or_default());
                    s
                }
                Outcome::NotRun => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message("not run: the exploration was interrupted");
                    s
                }
            };
            let mut case = TestCase::new(cell.id.as_str(), status);
            case.set_classname(classname.as_str());
            suite.add_test_case(case);
        }
        for skip in &self.skipped {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!("implied by {}: {}", skip.implied_by, skip.why));
            let mut case = TestCase::new(skip.cell.as_str(), status);
            case.set_classname(classname.as_str());
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
        junit.to_string().map_err(std::io::Error::other)
    }

    fn html(&self) -> String {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>faultline explore · {} · {} stack</h1><p class=\"coverage\">{}</p><p>{} cells run, {} implied by others · time scale {} (times to open and recover shown at the platform's timings: measured ÷ {}) · {:.0} s{}</p>",
            esc(&self.profile),
            esc(&self.stack),
            esc(&self.coverage.line),
            self.cells.len(),
            self.skipped.len(),
            self.time_scale,
            self.time_scale,
            self.wall_s,
            if self.interrupted {
                " · INTERRUPTED"
            } else {
                ""
            }
        );
        body.push_str("<table><tr><th>client</th>");
        for class in &self.faults {
            let (pass, total) = self
                .coverage
                .per_class
                .get(class.name())
                .copied()
                .unwrap_or_default();
            let _ = write!(
                body,
                "<th>{}<br><small>{pass} of {total}</small></th>",
                class.name()
            );
        }
        body.push_str("<th>protected</th></tr>");
        for row in &self.clients {
            let _ = write!(
                body,
                "<tr><th class=\"client\">{}{}</th>",
                esc(&row.name),
                if row.background {
                    " <small>(background)</small>"
                } else {
                    ""
                }
            );
            for class in &self.faults {
                let id = format!("{}:{}", row.name, class.name());
                body.push_str(&self.cell_html(&id));
            }
            let (class, text) = match row.protected {
                Some(true) => ("pass", "yes"),
                Some(false) => ("fail", "no"),
                None => ("", "—"),
            };
            let _ = write!(body, "<td class=\"{class}\">{text}</td></tr>");
        }
        body.push_str("</table><h2>Rules</h2><ul>");
        for rule in &self.rules {
            let _ = write!(body, "<li>{}</li>", esc(rule));
        }
        body.push_str("</ul>");
        if !self.skipped.is_empty() {
            body.push_str("<h2>Cells not run</h2><ul>");
            for s in &self.skipped {
                let _ = write!(
                    body,
                    "<li>{} — implied by {}: {}</li>",
                    esc(&s.cell),
                    esc(&s.implied_by),
                    esc(&s.why)
                );
            }
            body.push_str("</ul>");
        }
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>faultline explore {}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
            esc(&self.profile)
        )
    }

    fn cell_html(&self, id: &str) -> String {
        if let Some(skip) = self.skipped.iter().find(|s| s.cell == id) {
            let outcome = self
                .cells
                .iter()
                .find(|c| c.id == skip.implied_by)
                .map_or(Outcome::NotRun, |c| c.outcome);
            return format!(
                "<td class=\"{} implied\" data-cell=\"{}\" title=\"{}\">{}<br><small>as {}</small></td>",
                class_of(outcome),
                esc(id),
                esc(&skip.why),
                label(outcome),
                esc(skip.implied_by.rsplit(':').next().unwrap_or_default())
            );
        }
        let Some(cell) = self.cells.iter().find(|c| c.id == id) else {
            return "<td></td>".into();
        };
        let mut figures = Vec::new();
        // Durations at the platform's timings, comparable with its 30 s.
        let platform = |t: f64| t / self.time_scale;
        if let Some(t) = cell.time_to_open_s {
            figures.push(format!("opens {:.1}s", platform(t)));
        }
        if let Some(r) = cell.recovery_s {
            figures.push(format!("recovers {:.1}s", platform(r)));
        }
        if let Some(a) = cell.amplification {
            figures.push(format!("{a:.1} att/call"));
        }
        if let Some(c) = cell.cascade {
            figures.push(if c {
                "spread".into()
            } else {
                "no spread".into()
            });
        }
        let link = cell.run_dir.as_ref().map_or(String::new(), |d| {
            format!(" <a href=\"{}/index.html\">run</a>", esc(d))
        });
        format!(
            "<td class=\"{}\" data-cell=\"{}\" title=\"{}\">{}{link}<br><small>{}</small></td>",
            class_of(cell.outcome),
            esc(id),
            esc(&cell.failed.join("; ")),
            label(cell.outcome),
            esc(&figures.join(" · "))
        )
    }
}

fn class_of(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::Fail | Outcome::Error => "fail",
        Outcome::NotRun => "",
    }
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Error => "ERROR",
        Outcome::NotRun => "not run",
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:center;vertical-align:top}th.client{text-align:left}.pass{background:#e6f4ea;color:#0a7d2c}.fail{background:#fce8e6;color:#b00020}.implied{font-style:italic}.coverage{font-size:1.3em;font-weight:bold}";
