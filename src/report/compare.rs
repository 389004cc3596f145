//! Runs compared: every run appends a summary of the numbers a release gate
//! watches (p99 per journey and phase, breaker trip time, recovery time) to
//! `history.jsonl` in its reports folder; a run is compared with the previous
//! run of the same scenario or a named baseline, and a regression beyond a
//! threshold fails it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Report;
use super::html::esc;
use crate::faults::FaultAction;

/// The history file in a reports folder.
pub const HISTORY: &str = "history.jsonl";

/// Requests a p99 needs before history watches it.
const MIN_P99_SAMPLES: u64 = 100;

/// Absolute changes below these are noise, whatever the ratio.
const FLOOR_MS: f64 = 1.0;
const FLOOR_S: f64 = 0.1;

/// One run, as history keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// When the load started (RFC 3339).
    pub started_at: String,
    /// The run folder.
    pub dir: String,
    /// `pass` or `fail`.
    pub verdict: crate::report::Verdict,
    /// Seed used.
    pub seed: u64,
    /// faultline's version.
    pub faultline: String,
    /// Watched numbers; lower is better; `None`: did not happen (a breaker
    /// that never opened, a journey that never recovered).
    pub metrics: BTreeMap<String, Option<f64>>,
}

impl Summary {
    /// The watched numbers of `report`, run in `dir`.
    pub fn of(report: &Report, dir: &Path) -> Self {
        let mut metrics = BTreeMap::new();
        for j in &report.journeys {
            // A p99 of fewer than 100 requests is the maximum of a handful:
            // noise, not a trend.
            if j.requests >= MIN_P99_SAMPLES {
                metrics.insert(
                    format!("p99_ms:{}:all", j.name),
                    Some(j.latency_us.p99 as f64 / 1e3),
                );
            }
            for p in j.phases.iter().filter(|p| p.requests >= MIN_P99_SAMPLES) {
                metrics.insert(
                    format!("p99_ms:{}:{}", j.name, p.name),
                    Some(p.latency_us.p99 as f64 / 1e3),
                );
            }
        }
        for b in report
            .breakers
            .iter()
            .filter(|b| b.source == crate::verdict::Source::Inferred)
        {
            let fault = report.faults.iter().find(|e| {
                e.action == FaultAction::Set
                    && crate::platform::injector_name(e.injector) == b.downstream
            });
            if let Some(fault) = fault {
                let trip = b.episodes.opened_at_s.first().map(|t| t - fault.t_s);
                metrics.insert(format!("trip_s:{}", b.downstream), trip);
            }
        }
        for r in &report.recoveries {
            let key = format!("recovery_s:{}:{}", r.downstream, r.journey);
            let worst = match (
                metrics.get(&key).copied().flatten(),
                r.recovery_s,
                metrics.contains_key(&key),
            ) {
                (_, None, _) | (None, _, true) => None,
                (Some(a), Some(b), _) => Some(a.max(b)),
                (None, Some(b), false) => Some(b),
            };
            metrics.insert(key, worst);
        }
        Self {
            scenario: report.scenario.clone(),
            started_at: report.started_at.clone(),
            dir: dir.display().to_string(),
            verdict: report.verdict,
            seed: report.seed,
            faultline: report.faultline.clone(),
            metrics,
        }
    }
}

/// Appends `summary` to the history of the reports folder `out`.
pub fn append(out: &Path, summary: &Summary) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(HISTORY))?;
    let line = serde_json::to_string(summary).map_err(std::io::Error::other)?;
    writeln!(file, "{line}")
}

/// The latest run of `scenario` in the history of `out` before the one in
/// `current_dir`.
pub fn previous(out: &Path, scenario: &str, current_dir: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(out.join(HISTORY)).ok()?;
    let current = current_dir.display().to_string();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Summary>(l).ok())
        .find(|s| s.scenario == scenario && s.dir != current)
}

/// One watched number, then and now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Which number (`p99_ms:payment:fault`, `trip_s:order-service`, ...).
    pub metric: String,
    /// In the baseline.
    pub baseline: Option<f64>,
    /// In this run.
    pub current: Option<f64>,
    /// Relative change (0.25 = 25 % worse), when both exist.
    pub change: Option<f64>,
    /// Worse than the threshold allows.
    pub regression: bool,
}

/// A run compared with a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's run folder.
    pub baseline: String,
    /// When the baseline ran.
    pub baseline_started_at: String,
    /// Largest allowed relative worsening.
    pub max_regression: f64,
    /// Every watched number in either run.
    pub deltas: Vec<Delta>,
    /// True when a delta is a regression.
    pub regressed: bool,
}

/// Compares `current` with `baseline`; a number more than `max_regression`
/// worse (and worse by more than noise), or one that stopped happening
/// (a breaker no longer opening, a journey no longer recovering), regresses.
pub fn compare(current: &Summary, baseline: &Summary, max_regression: f64) -> Comparison {
    let mut keys: Vec<&String> = current
        .metrics
        .keys()
        .chain(baseline.metrics.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let deltas: Vec<Delta> = keys
        .into_iter()
        .map(|key| {
            let then = baseline.metrics.get(key).copied().flatten();
            let now = current.metrics.get(key).copied().flatten();
            let floor = if key.starts_with("p99_ms") {
                FLOOR_MS
            } else {
                FLOOR_S
            };
            let in_both = baseline.metrics.contains_key(key) && current.metrics.contains_key(key);
            let (change, regression) = match (then, now) {
                (Some(a), Some(b)) => {
                    let change = if a > 0.0 { (b - a) / a } else { 0.0 };
                    (Some(change), change > max_regression && b - a > floor)
                }
                // Happened before, no longer does.
                (Some(_), None) => (None, in_both),
                _ => (None, false),
            };
            Delta {
                metric: key.clone(),
                baseline: then,
                current: now,
                change,
                regression,
            }
        })
        .collect();
    Comparison {
        baseline: baseline.dir.clone(),
        baseline_started_at: baseline.started_at.clone(),
        max_regression,
        regressed: deltas.iter().any(|d| d.regression),
        deltas,
    }
}

/// Reads a run folder's summary from its `report.json`.
pub fn load(dir: &Path) -> Result<(Report, Summary), String> {
    let path: PathBuf = dir.join("report.json");
    let bytes =
        std::fs::read(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let report: Report = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a faultline report: {e}", path.display()))?;
    let summary = Summary::of(&report, dir);
    Ok((report, summary))
}

/// The largest regression threshold: 100 (10000 %).
pub const MAX_THRESHOLD: f64 = 100.0;

/// Reads `--max-regression`: `10%` or `0.1`, from 0 to [`MAX_THRESHOLD`].
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    match value {
        Ok(v) if v.is_finite() && (0.0..=MAX_THRESHOLD).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{text}` is not a threshold between 0% and 10000%; write e.g. 10% or 0.1"
        )),
    }
}

fn show(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.3}"))
}

/// What a run is compared with, and how much worse it may be.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// `previous` (the last run of the same scenario in the history) or a
    /// run folder.
    pub baseline: String,
    /// Largest allowed relative worsening (0.1 = 10 %).
    pub max_regression: f64,
}

/// Compares the report of the run in `dir` with its baseline; None when
/// there is none (the first run of a scenario becomes the baseline) or it
/// cannot be read (said on stderr).
pub fn judge(report: &Report, dir: &Path, out: &Path, gate: &Gate) -> Option<Comparison> {
    let current = Summary::of(report, dir);
    let base = if gate.baseline == "previous" {
        previous(out, &report.scenario, dir)
    } else {
        match load(Path::new(&gate.baseline)) {
            Ok((_, s)) => Some(s),
            Err(e) => {
                eprintln!("faultline: --baseline: {e}");
                None
            }
        }
    }?;
    Some(compare(&current, &base, gate.max_regression))
}

/// The deltas that regressed, one line each.
pub fn regressions(c: &Comparison) -> Vec<String> {
    c.deltas
        .iter()
        .filter(|d| d.regression)
        .map(|d| {
            format!(
                "{}: {} → {}{}",
                d.metric,
                show(d.baseline),
                show(d.current),
                d.change
                    .map_or(String::new(), |x| format!(" ({:+.1}%)", x * 100.0))
            )
        })
        .collect()
}

/// The comparison as text.
pub fn text(c: &Comparison) -> String {
    let mut out = format!(
        "compared with {} ({}), regression threshold {:.0}%:\n",
        c.baseline,
        c.baseline_started_at,
        c.max_regression * 100.0
    );
    for d in &c.deltas {
        let mark = if d.regression { "REGRESSION" } else { "" };
        let change = d
            .change
            .map_or("".into(), |c| format!("{:+.1}%", c * 100.0));
        let _ = writeln!(
            out,
            "  {:<48} {:>12} → {:<12} {:>8} {mark}",
            d.metric,
            show(d.baseline),
            show(d.current),
            change
        );
    }
    let _ = writeln!(
        out,
        "  {}",
        if c.regressed {
            "REGRESSED"
        } else {
            "no regression"
        }
    );
    out
}

/// The comparison as an HTML section.
pub(super) fn html(body: &mut String, c: &Comparison) {
    let _ = write!(
        body,
        "<h2>Compared with {} <span class=\"{}\">{}</span></h2><p>baseline run {} · threshold {:.0}%</p><table><tr><th>metric</th><th>baseline</th><th>this run</th><th>change</th></tr>",
        esc(&c.baseline_started_at),
        if c.regressed { "fail" } else { "pass" },
        if c.regressed {
            "REGRESSED"
        } else {
            "no regression"
        },
        esc(&c.baseline),
        c.max_regression * 100.0
    );
    for d in &c.deltas {
        let class = match d.change {
            _ if d.regression => "worse",
            Some(x) if x < 0.0 => "better",
            _ => "",
        };
        let _ = write!(
            body,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.metric),
            show(d.baseline),
            show(d.current),
            d.change
                .map_or("".into(), |x| format!("{:+.1}%", x * 100.0))
        );
    }
    body.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(metrics: &[(&str, Option<f64>)]) -> Summary {
        Summary {
            scenario: "s".into(),
            started_at: "t".into(),
            dir: "d".into(),
            verdict: crate::report::Verdict::Pass,
            seed: 1,
            faultline: "0".into(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn worse_beyond_the_threshold_and_the_noise_floor_regresses() {
        let before = summary(&[
            ("p99_ms:payment:fault", Some(100.0)),
            ("p99_ms:payment:baseline", Some(0.5)),
            ("trip_s:order-service", Some(6.0)),
        ]);
        let after = summary(&[
            ("p99_ms:payment:fault", Some(125.0)),
            ("p99_ms:payment:baseline", Some(0.9)),
            ("trip_s:order-service", Some(6.2)),
        ]);
        let c = compare(&after, &before, 0.10);
        let regressed: Vec<&str> = c
            .deltas
            .iter()
            .filter(|d| d.regression)
            .map(|d| d.metric.as_str())
            .collect();
        // +25 % p99 regresses; +80 % of half a millisecond is noise; +3 % trip is fine.
        assert_eq!(regressed, vec!["p99_ms:payment:fault"]);
        assert!(c.regressed);
        assert!(!compare(&after, &before, 0.30).regressed);
    }

    #[test]
    fn a_breaker_that_no_longer_opens_regresses() {
        let before = summary(&[("trip_s:order-service", Some(6.0))]);
        let after = summary(&[("trip_s:order-service", None)]);
        assert!(compare(&after, &before, 0.10).regressed);
        assert!(
            !compare(&before, &after, 0.10).regressed,
            "opening now is an improvement"
        );
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(parse_threshold("10%"), Ok(0.1));
        assert_eq!(parse_threshold("0.25"), Ok(0.25));
        assert!(parse_threshold("ten").is_err());
        assert!(parse_threshold("-5%").is_err());
    }
}
