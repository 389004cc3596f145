//! The report: a run folder with `report.json` (the stable interface other
//! tools read), `junit.xml` (one testcase per check), `index.html`, and a
//! text summary on stdout.

mod bounded;
mod charts;
pub mod compare;
pub(crate) mod hlog;
pub(crate) mod html;
mod junit;
pub mod suite;
pub mod summary;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::distribute::crew::{EngineKind, WorkerFigures};
use crate::faults::FaultEvent;
use crate::load::recorder::{GeneratorLag, PhaseRecord, SeriesRecord, WindowStats};
use crate::observe::integrity::IntegrityResult;
use crate::observe::sut::SutSamples;
use crate::observe::{InjectorObservation, LoggedTransition, Observations};
use crate::scenario::Scenario;
use crate::verdict::{AmplificationRow, Analysis, BreakerReport, CheckResult, RecoveryReport};

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Latency {
    fn of(record: &PhaseRecord) -> Self {
        let h = &record.latency;
        Self {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// A journey (series) in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Phase name.
    pub name: String,
    /// Requests sent.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Requests dropped (could not start in time).
    pub dropped: u64,
    /// Share that succeeded.
    pub success_rate: Option<f64>,
    /// Latency from the intended start.
    pub latency_us: Latency,
    /// Requests by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// (quantile, µs) from 0 to 99.999 %, log-spaced, for percentile curves.
    #[serde(default)]
    pub percentiles: Vec<[f64; 2]>,
}

/// Quantiles of the percentile curves: 1 − 10^(−k/8), k = 0..=40.
fn curve(h: &hdrhistogram::Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=40)
        .map(|k| {
            let q = 1.0 - 10f64.powf(-f64::from(k) / 8.0);
            [q, h.value_at_quantile(q) as f64]
        })
        .collect()
}

impl PhaseStats {
    fn of(name: &str, r: &PhaseRecord) -> Self {
        Self {
            name: name.to_string(),
            requests: r.requests,
            errors: r.errors,
            dropped: r.dropped,
            success_rate: r.success_rate(),
            latency_us: Latency::of(r),
            outcomes: r.outcomes.iter().map(|(o, n)| (o.label(), *n)).collect(),
            percentiles: curve(&r.latency),
        }
    }
}

/// One journey (or follow-up series) over the whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JourneyReport {
    /// Series name (`payment`, `payment.webhook`).
    pub name: String,
    /// The journey it belongs to.
    pub journey: String,
    /// Journey kind.
    pub kind: String,
    /// Requests sent.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Dropped (open model: could not start within `max_lag`).
    pub dropped: u64,
    /// Started more than 10 ms late.
    pub late: u64,
    /// Latency over the whole run.
    pub latency_us: Latency,
    /// Latency of successful requests.
    pub ok_latency_us: Latency,
    /// Per phase.
    pub phases: Vec<PhaseStats>,
    /// Per window.
    pub windows: Vec<WindowStats>,
    /// How many of the run's windows each of `windows` merges (more than
    /// one in the `report.json` of a long run, see `bounded`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub windows_merged: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// One downstream's injector.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DownstreamReport {
    /// Injector name.
    pub name: String,
    /// Requests that reached it during the run (preflight excluded).
    pub attempts: u64,
    /// All arrivals by outcome (preflight included).
    pub by_outcome: BTreeMap<String, u64>,
    /// Repeated ids by field.
    pub ids: BTreeMap<String, fault_injectors::observe::IdCounters>,
    /// Bucket width of `arrivals`, seconds.
    pub bucket_s: f64,
    /// Arrival buckets (times from the load start).
    pub arrivals: Vec<fault_injectors::BucketReport>,
}

/// A phase as reported.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseSpan {
    /// Name.
    pub name: String,
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
}

/// A run's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed (and no regression against a baseline).
    Pass,
    /// A check failed, a regression was found, or the run was cut short.
    Fail,
}

impl Verdict {
    /// `pass` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
        }
    }
}

/// `report.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// faultline's version.
    pub faultline: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: String,
    /// The story it tells.
    pub description: String,
    /// Seed used.
    pub seed: u64,
    /// Stack kind.
    pub stack: String,
    /// Wall-clock start of the load (RFC 3339).
    pub started_at: String,
    /// Length of the load, seconds.
    pub duration_s: f64,
    /// Pass or fail.
    pub verdict: Verdict,
    /// True when the run was cut short (Ctrl-C, SIGTERM, SIGHUP).
    pub interrupted: bool,
    /// The signal that cut it short (`SIGINT`, `SIGTERM`, `SIGHUP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
    /// Every check.
    pub checks: Vec<CheckResult>,
    /// The phases.
    pub phases: Vec<PhaseSpan>,
    /// Breaker histories.
    pub breakers: Vec<BreakerReport>,
    /// Journeys.
    pub journeys: Vec<JourneyReport>,
    /// Downstreams.
    pub downstreams: Vec<DownstreamReport>,
    /// Recoveries per fault cycle.
    pub recoveries: Vec<RecoveryReport>,
    /// Retry amplification per downstream and phase.
    #[serde(default)]
    pub amplification: Vec<AmplificationRow>,
    /// The fault timeline as applied.
    pub faults: Vec<FaultEvent>,
    /// The SUT's own readings.
    pub sut: SutSamples,
    /// Breaker transitions the SUT logged (embedded stack).
    pub transitions: Vec<LoggedTransition>,
    /// Integrity lookups.
    pub integrity: Vec<IntegrityResult>,
    /// Width of the journeys' windows, seconds.
    pub window_s: f64,
    /// The scenario file as run.
    pub scenario_source: String,
    /// Comparison with a baseline run, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<compare::Comparison>,
    /// How far the load generator fell behind its own schedule: where it
    /// did, the latencies measured there include its lag, not only the SUT's.
    #[serde(default)]
    pub generator: GeneratorLag,
    /// Where the load was generated, when on workers (`--workers N`): each
    /// worker's figures next to the merged ones above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_workers: Option<LoadWorkers>,
}

/// A distributed run's workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadWorkers {
    /// The engine they ran on.
    pub engine: EngineKind,
    /// Each worker, by index.
    pub workers: Vec<WorkerFigures>,
}

impl Report {
    /// Assembles the report of a run.
    pub fn new(
        scenario: &Scenario,
        obs: &Observations,
        analysis: &Analysis,
        started_at: String,
        interrupted: bool,
    ) -> Self {
        let passed = analysis.passed() && !interrupted;
        Self {
            faultline: env!("CARGO_PKG_VERSION").into(),
            scenario: scenario.name.clone(),
            file: scenario.path.display().to_string(),
            description: scenario.description.clone(),
            seed: scenario.seed,
            stack: scenario.stack.kind.name().to_string(),
            started_at,
            duration_s: scenario.duration.as_secs_f64(),
            verdict: if passed { Verdict::Pass } else { Verdict::Fail },
            interrupted,
            interrupted_by: None,
            checks: analysis.checks.clone(),
            phases: scenario
                .phases
                .iter()
                .map(|p| PhaseSpan {
                    name: p.name.clone(),
                    start_s: p.from.as_secs_f64(),
                    end_s: p.until.as_secs_f64(),
                })
                .collect(),
            breakers: analysis.breakers.clone(),
            journeys: obs.load.series.iter().map(journey).collect(),
            downstreams: obs
                .injectors
                .values()
                .map(|i| downstream(i, scenario.duration.as_secs_f64()))
                .collect(),
            recoveries: analysis.recoveries.clone(),
            amplification: analysis.amplification.clone(),
            faults: obs.faults.clone(),
            sut: obs.sut.clone(),
            transitions: obs.transitions.clone(),
            integrity: obs.integrity.clone(),
            window_s: obs.load.window.as_secs_f64(),
            scenario_source: scenario.source.clone(),
            comparison: None,
            generator: obs.load.generator_lag(),
            load_workers: None,
        }
    }

    /// Whether every check passed (and no regression was found).
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// Records a comparison; a regression fails the run.
    pub fn set_comparison(&mut self, comparison: compare::Comparison) {
        if comparison.regressed {
            self.verdict = Verdict::Fail;
        }
        self.comparison = Some(comparison);
    }

    /// Writes `report.json`, `junit.xml` and `index.html` into `dir`.
    pub fn write(&self, dir: &Path, elapsed_s: f64) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(&self.bounded()).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("report.json"), json)?;
        std::fs::write(dir.join("junit.xml"), junit::render(self, elapsed_s)?)?;
        self.render(dir)
    }

    /// (Re)draws the pages of a run folder from this report: `index.html`
    /// and the `.hlog` interval logs.
    pub fn render(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(
            dir.join("index.html"),
            html::render(self, &charts::all(self)),
        )?;
        // A long run's report read back is coarser than its interval logs:
        // those stay as the run wrote them.
        if self.full_resolution() {
            hlog::write(dir, self)?;
        }
        Ok(())
    }
}

fn journey(s: &SeriesRecord) -> JourneyReport {
    JourneyReport {
        name: s.name.clone(),
        journey: s.journey.clone(),
        kind: s.kind.name().to_string(),
        requests: s.total.requests,
        errors: s.total.errors,
        dropped: s.total.dropped,
        late: s.late,
        latency_us: Latency::of(&s.total),
        ok_latency_us: Latency {
            p50: s.total.ok_latency.value_at_quantile(0.5),
            p90: s.total.ok_latency.value_at_quantile(0.9),
            p99: s.total.ok_latency.value_at_quantile(0.99),
            p999: s.total.ok_latency.value_at_quantile(0.999),
            max: s.total.ok_latency.max(),
        },
        phases: s
            .phases
            .iter()
            .map(|(name, r)| PhaseStats::of(name, r))
            .collect(),
        windows: s.windows.clone(),
        windows_merged: 1,
    }
}

fn downstream(i: &InjectorObservation, end_s: f64) -> DownstreamReport {
    DownstreamReport {
        name: i.name.clone(),
        attempts: i.arrivals(0.0, end_s + 3600.0),
        by_outcome: i.counters.by_outcome.clone(),
        ids: i.counters.ids.clone(),
        bucket_s: i.width_s,
        arrivals: i
            .buckets
            .iter()
            .filter(|b| b.start_s >= 0.0)
            .cloned()
            .collect(),
    }
}
