//! What the load measures: every request's latency (from its intended start)
//! into HDR histograms per series and phase, and counts per time window.
//!
//! A *series* is a journey, or a journey's follow-up request (the payment's
//! webhook is series `payment.webhook`). Requests are attributed to the phase
//! and window of their intended start.
//!
//! Each request's *lateness* — how long after its intended time it was
//! actually sent — is recorded too, per window: it is the generator's own
//! lag, which a reader must be able to tell apart from the SUT's latency. A
//! window where lateness p99 exceeds [`BEHIND_P99`] or requests were dropped
//! is one where the generator fell behind ([`LoadRecord::generator_lag`]).
//!
//! # No lock is held across encoding
//! Every goose worker takes its series' lock to record a request, so that
//! lock must only ever be held for a few counter and histogram updates. A
//! window that can no longer receive results is *moved* (not summarised)
//! from the series state onto a lock-free queue; [`Recorder::settle`] —
//! called off the request path by the driver's housekeeping task, and by
//! [`Recorder::finish`] — pops it and computes its percentiles and its V2
//! deflate + base64 encoding holding no lock at all, then takes the closed
//! list's own lock (which no worker ever takes) just to push the result.
//! [`Recorder::live`] copies what it needs under the lock and computes
//! outside it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::platform::JourneyKind;
use crate::scenario::Phase;

mod forward;

pub use forward::{Forwarded, MergeError, RawPhase, RawSeries, RawWindow};

/// Latencies are recorded in microseconds up to an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A request sent later than this after its intended time is "late".
pub const LATE: Duration = Duration::from_millis(10);

/// A window whose lateness p99 exceeds this is one where the generator fell
/// behind its schedule (and its latencies include the generator's own lag).
pub const BEHIND_P99: Duration = Duration::from_millis(5);

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Outcome {
    /// A success status.
    Ok(u16),
    /// A status outside the success list.
    Status(u16),
    /// The client gave up (load timeout).
    Timeout,
    /// No connection.
    Connect,
    /// Anything else on the wire (reset, closed, bad body).
    Broken,
}

impl Outcome {
    /// Whether it counts as a success.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// Label in reports: `200`, `status_503`, `timeout`, ...
    pub fn label(&self) -> String {
        match self {
            Outcome::Ok(s) => s.to_string(),
            Outcome::Status(s) => format!("status_{s}"),
            Outcome::Timeout => "timeout".into(),
            Outcome::Connect => "connect".into(),
            Outcome::Broken => "broken".into(),
        }
    }
}

/// Names a series.
#[derive(Clone, Debug)]
pub struct SeriesSpec {
    /// `payment`, `payment.webhook`, ...
    pub name: String,
    /// The journey it belongs to.
    pub journey: String,
    /// The journey's kind.
    pub kind: JourneyKind,
}

/// Counts and latencies of one series in one phase (or the whole run).
#[derive(Clone, Debug)]
pub struct PhaseRecord {
    /// Latency of every completed request, µs from the intended start.
    pub latency: Histogram<u64>,
    /// Latency of the successful ones.
    pub ok_latency: Histogram<u64>,
    /// Requests sent.
    pub requests: u64,
    /// Requests that did not succeed.
    pub errors: u64,
    /// Requests dropped because they could not start in time.
    pub dropped: u64,
    /// Requests by outcome (labels with [`Outcome::label`]).
    pub outcomes: BTreeMap<Outcome, u64>,
}

impl PhaseRecord {
    fn new() -> Self {
        Self {
            latency: histogram(),
            ok_latency: histogram(),
            requests: 0,
            errors: 0,
            dropped: 0,
            outcomes: BTreeMap::new(),
        }
    }

    fn add(&mut self, latency_us: u64, outcome: &Outcome) {
        self.requests += 1;
        let _ = self.latency.record(latency_us);
        if outcome.is_ok() {
            let _ = self.ok_latency.record(latency_us);
        } else {
            self.errors += 1;
        }
        *self.outcomes.entry(*outcome).or_default() += 1;
    }

    /// Share of requests that succeeded (None without requests).
    pub fn success_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| (self.requests - self.errors) as f64 / self.requests as f64)
    }
}

/// Counts and latency percentiles of one time window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Window number from the load start.
    pub index: u64,
    /// Its start, seconds from the load start.
    pub start_s: f64,
    /// Requests meant to start in it and sent.
    pub requests: u64,
    /// Of those, not successful.
    pub errors: u64,
    /// Requests meant to start in it but dropped.
    pub dropped: u64,
    /// Of those sent, how many started more than [`LATE`] after their
    /// intended time.
    #[serde(default)]
    pub late: u64,
    /// Lateness (actual − intended send) 99th percentile, µs: the
    /// generator's own lag, not the SUT's (0 in the closed model).
    #[serde(default)]
    pub lateness_p99_us: u64,
    /// Largest lateness, µs.
    #[serde(default)]
    pub lateness_max_us: u64,
    /// The generator, not the SUT, fell behind in this window: lateness p99
    /// over [`BEHIND_P99`], or requests dropped.
    #[serde(default)]
    pub generator_behind: bool,
    /// Latency median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Maximum, µs.
    pub max_us: u64,
    /// Requests by latency, log₂ buckets of µs (bucket i holds latencies in
    /// [2^i, 2^(i+1))): lets the verdict count requests faster than any
    /// threshold.
    #[serde(skip, default = "no_latencies")]
    pub latency_log2: [u32; LOG2_BUCKETS],
    /// The window's latency histogram (µs), HdrHistogram V2 deflate,
    /// base64: what `.hlog` interval logs are written from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub histogram: String,
}

fn no_latencies() -> [u32; LOG2_BUCKETS] {
    [0; LOG2_BUCKETS]
}

/// Buckets of [`WindowStats::latency_log2`]: up to 2^40 µs (12 days).
pub const LOG2_BUCKETS: usize = 40;

impl WindowStats {
    /// Requests that took less than `limit_us` (up to the log₂ bucket
    /// holding `limit_us`).
    pub fn faster_than(&self, limit_us: u64) -> u64 {
        let top = log2_bucket(limit_us);
        self.latency_log2[..top].iter().map(|n| u64::from(*n)).sum()
    }
}

fn log2_bucket(us: u64) -> usize {
    (63 - us.max(1).leading_zeros() as usize).min(LOG2_BUCKETS - 1)
}

/// Everything recorded for one series.
#[derive(Clone, Debug)]
pub struct SeriesRecord {
    /// Series name.
    pub name: String,
    /// Journey name.
    pub journey: String,
    /// Journey kind.
    pub kind: JourneyKind,
    /// The whole run.
    pub total: PhaseRecord,
    /// Per phase, by phase name.
    pub phases: BTreeMap<String, PhaseRecord>,
    /// Per window, in order (windows with no request are absent).
    pub windows: Vec<WindowStats>,
    /// Requests that started more than 10 ms after their intended time.
    pub late: u64,
    /// Lateness (actual − intended send) of every request sent, µs.
    pub lateness: Histogram<u64>,
    /// Windows in which the generator fell behind
    /// ([`WindowStats::generator_behind`]).
    pub behind_windows: u64,
}

/// The load's measurements, after the run.
#[derive(Clone, Debug)]
pub struct LoadRecord {
    /// Window width.
    pub window: Duration,
    /// Every series.
    pub series: Vec<SeriesRecord>,
}

impl LoadRecord {
    /// The series named `name`.
    pub fn series(&self, name: &str) -> Option<&SeriesRecord> {
        self.series.iter().find(|s| s.name == name)
    }

    /// How far the generator itself fell behind its schedule, all series
    /// together: what a verdict or summary shows so a run whose generator
    /// lagged never passes silently as the SUT's latency.
    pub fn generator_lag(&self) -> GeneratorLag {
        let mut lag = GeneratorLag::default();
        for s in &self.series {
            lag.windows_behind += s.behind_windows;
            lag.late += s.late;
            lag.dropped += s.total.dropped;
            lag.lateness_p99_us = lag.lateness_p99_us.max(s.lateness.value_at_quantile(0.99));
            for w in &s.windows {
                lag.worst_window_p99_us = lag.worst_window_p99_us.max(w.lateness_p99_us);
            }
        }
        lag
    }
}

/// How far the load generator fell behind its own schedule over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorLag {
    /// Windows (of any series) in which the generator fell behind.
    pub windows_behind: u64,
    /// Requests sent more than [`LATE`] after their intended time.
    pub late: u64,
    /// Requests dropped: they could not start within the allowed lag.
    pub dropped: u64,
    /// Lateness p99 over the whole run, µs (the worst series).
    pub lateness_p99_us: u64,
    /// The worst window's lateness p99, µs.
    pub worst_window_p99_us: u64,
}

impl GeneratorLag {
    /// Whether the generator fell behind anywhere.
    pub fn fell_behind(&self) -> bool {
        self.windows_behind > 0 || self.dropped > 0
    }

    /// One sentence for a summary or a verdict, when it fell behind.
    pub fn describe(&self) -> Option<String> {
        self.fell_behind().then(|| {
            format!(
                "the load generator fell behind its schedule in {} window(s) (lateness p99 up to {:.1} ms, {} requests dropped, {} late): latencies there include the generator's own lag",
                self.windows_behind,
                self.worst_window_p99_us as f64 / 1000.0,
                self.dropped,
                self.late
            )
        })
    }
}

/// A live view for the progress line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Live {
    /// Requests completed.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Requests per second in the last closed window.
    pub rate: f64,
    /// p99 of the last closed window, µs.
    pub p99_us: u64,
}

/// One window's raw counts, while it can still receive results.
struct WindowAcc {
    hist: Histogram<u64>,
    lateness: Histogram<u64>,
    requests: u64,
    errors: u64,
    dropped: u64,
    late: u64,
    latency_log2: [u32; LOG2_BUCKETS],
}

impl WindowAcc {
    fn new() -> Self {
        Self {
            hist: histogram(),
            lateness: lateness_histogram(),
            requests: 0,
            errors: 0,
            dropped: 0,
            late: 0,
            latency_log2: [0; LOG2_BUCKETS],
        }
    }
}

/// What a worker updates, under its series' lock: counters and histogram
/// records only (see the module docs).
struct SeriesState {
    total: PhaseRecord,
    phases: Vec<PhaseRecord>,
    open: BTreeMap<u64, WindowAcc>,
    newest: u64,
    late: u64,
    lateness: Histogram<u64>,
    /// The window `live()` last summarised, and its p99.
    live: Option<(u64, u64)>,
    /// A coordinator's recorder: requests and errors of the windows
    /// absorbed from workers so far (the totals come at the end), for the
    /// progress line.
    streamed: (u64, u64),
}

/// Thread-safe recorder for a run's series.
pub struct Recorder {
    specs: Vec<SeriesSpec>,
    states: Vec<Mutex<SeriesState>>,
    /// Per series: windows that can no longer receive results, moved out of
    /// the series state, waiting for [`Recorder::settle`].
    settled: Vec<SegQueue<(u64, WindowAcc)>>,
    /// Per series: summarised windows. Only `settle` and `finish` lock it.
    closed: Vec<Mutex<Vec<WindowStats>>>,
    phases: Vec<Phase>,
    window: Duration,
    /// Windows this far behind the newest can no longer receive results (a
    /// request lasts at most the load timeout), so they are summarised.
    settle: u64,
    /// A worker's recorder: settled windows are kept raw for
    /// [`Recorder::forward`] instead of summarised.
    forwarding: bool,
}

/// Latency histograms: 3 significant digits, growing only as far as the
/// values recorded (a window of millisecond latencies stays small).
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

/// Lateness histograms: 2 significant digits are plenty for a lag.
fn lateness_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant digits is a valid histogram")
}

/// A histogram as HdrHistogram's V2 deflate encoding, base64 (what
/// [`WindowStats::histogram`] holds).
pub(crate) fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

impl Recorder {
    /// A recorder for `specs`, windows of `window`, requests lasting at most
    /// `timeout`.
    pub fn new(
        specs: Vec<SeriesSpec>,
        phases: Vec<Phase>,
        window: Duration,
        timeout: Duration,
    ) -> Self {
        let settle = (timeout.as_secs_f64() / window.as_secs_f64()).ceil() as u64 + 2;
        let states = specs
            .iter()
            .map(|_| {
                Mutex::new(SeriesState {
                    total: PhaseRecord::new(),
                    phases: phases.iter().map(|_| PhaseRecord::new()).collect(),
                    open: BTreeMap::new(),
                    newest: 0,
                    late: 0,
                    lateness: lateness_histogram(),
                    live: None,
                    streamed: (0, 0),
                })
            })
            .collect();
        Self {
            settled: specs.iter().map(|_| SegQueue::new()).collect(),
            closed: specs.iter().map(|_| Mutex::new(Vec::new())).collect(),
            specs,
            states,
            phases,
            window,
            settle,
            forwarding: false,
        }
    }

    /// The series' specs, by index.
    pub fn specs(&self) -> &[SeriesSpec] {
        &self.specs
    }

    fn lock(&self, series: usize) -> Option<MutexGuard<'_, SeriesState>> {
        self.states
            .get(series)
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn window_of(&self, intended: Duration) -> u64 {
        (intended.as_nanos() / self.window.as_nanos().max(1)) as u64
    }

    /// Records a completed request meant to start at `intended` (from the
    /// load start), sent `lateness` after that, that took `latency` from its
    /// intended start.
    pub fn record(
        &self,
        series: usize,
        intended: Duration,
        lateness: Duration,
        latency: Duration,
        outcome: &Outcome,
    ) {
        let index = self.window_of(intended);
        let latency_us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let lateness_us = (lateness.as_micros() as u64).min(MAX_LATENCY_US);
        let late = lateness > LATE;
        let Some(mut s) = self.lock(series) else {
            return;
        };
        s.total.add(latency_us, outcome);
        for (i, phase) in self.phases.iter().enumerate() {
            if phase.from <= intended && intended < phase.until {
                s.phases[i].add(latency_us, outcome);
            }
        }
        let _ = s.lateness.record(lateness_us);
        s.late += u64::from(late);
        let w = s.open.entry(index).or_insert_with(WindowAcc::new);
        w.requests += 1;
        let _ = w.hist.record(latency_us);
        let _ = w.lateness.record(lateness_us);
        w.late += u64::from(late);
        w.latency_log2[log2_bucket(latency_us)] += 1;
        if !outcome.is_ok() {
            w.errors += 1;
        }
        self.advance(series, &mut s, index);
    }

    /// Records a request that was dropped: it could not start in time.
    pub fn dropped(&self, series: usize, intended: Duration) {
        let index = self.window_of(intended);
        let Some(mut s) = self.lock(series) else {
            return;
        };
        s.total.dropped += 1;
        for (i, phase) in self.phases.iter().enumerate() {
            if phase.from <= intended && intended < phase.until {
                s.phases[i].dropped += 1;
            }
        }
        s.open.entry(index).or_insert_with(WindowAcc::new).dropped += 1;
        self.advance(series, &mut s, index);
    }

    /// Moves windows too old to receive results onto the settled queue: a
    /// move under the lock, never a summary (see the module docs).
    fn advance(&self, series: usize, s: &mut SeriesState, index: u64) {
        s.newest = s.newest.max(index);
        let settled = s.newest.saturating_sub(self.settle);
        while let Some(entry) = s.open.first_entry() {
            if *entry.key() >= settled {
                break;
            }
            self.settled[series].push(entry.remove_entry());
        }
    }

    /// Summarises and encodes the settled windows, holding no series lock:
    /// called now and then off the request path (the driver's housekeeping)
    /// so finished windows do not pile up raw, and by [`Recorder::finish`].
    pub fn settle(&self) {
        if self.forwarding {
            return;
        }
        for (queue, closed) in self.settled.iter().zip(&self.closed) {
            let mut done = Vec::new();
            while let Some((index, acc)) = queue.pop() {
                done.push(self.summarise(index, &acc));
            }
            if !done.is_empty() {
                closed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(done);
            }
        }
    }

    fn summarise(&self, index: u64, acc: &WindowAcc) -> WindowStats {
        let mut stats = self.counts(index, acc);
        stats.histogram = encode(&acc.hist);
        stats
    }

    /// A window's counts and percentiles, without the encoded histogram.
    fn counts(&self, index: u64, acc: &WindowAcc) -> WindowStats {
        let (p50, p90, p99, max) = match acc.hist.len() {
            0 => (0, 0, 0, 0),
            _ => (
                acc.hist.value_at_quantile(0.5),
                acc.hist.value_at_quantile(0.9),
                acc.hist.value_at_quantile(0.99),
                acc.hist.max(),
            ),
        };
        let (lateness_p99_us, lateness_max_us) = match acc.lateness.len() {
            0 => (0, 0),
            _ => (acc.lateness.value_at_quantile(0.99), acc.lateness.max()),
        };
        WindowStats {
            index,
            start_s: index as f64 * self.window.as_secs_f64(),
            requests: acc.requests,
            errors: acc.errors,
            dropped: acc.dropped,
            late: acc.late,
            lateness_p99_us,
            lateness_max_us,
            generator_behind: acc.dropped > 0 || lateness_p99_us > BEHIND_P99.as_micros() as u64,
            p50_us: p50,
            p90_us: p90,
            p99_us: p99,
            max_us: max,
            latency_log2: acc.latency_log2,
            histogram: String::new(),
        }
    }

    /// Totals for the progress line: all series together. The last complete
    /// window's p99 is computed once per window, from a copy of its
    /// histogram taken under the lock and read outside it.
    pub fn live(&self) -> Live {
        let mut live = Live::default();
        for i in 0..self.states.len() {
            let (index, requests, known, copy) = {
                let Some(s) = self.lock(i) else { continue };
                live.requests += s.total.requests.max(s.streamed.0);
                live.errors += s.total.errors.max(s.streamed.1);
                // The newest window with data is still filling; take the one before.
                let Some((index, acc)) = s.open.range(..s.newest).next_back() else {
                    continue;
                };
                match s.live {
                    Some((seen, p99)) if seen == *index => (*index, acc.requests, Some(p99), None),
                    _ => (*index, acc.requests, None, Some(acc.hist.clone())),
                }
            };
            let p99 = match (known, copy) {
                (Some(p99), _) => p99,
                (None, Some(hist)) => {
                    let p99 = hist.value_at_quantile(0.99);
                    if let Some(mut s) = self.lock(i) {
                        s.live = Some((index, p99));
                    }
                    p99
                }
                (None, None) => 0,
            };
            live.rate += requests as f64 / self.window.as_secs_f64();
            live.p99_us = live.p99_us.max(p99);
        }
        live
    }

    /// Everything recorded, every window summarised.
    pub fn finish(&self) -> LoadRecord {
        for (i, queue) in self.settled.iter().enumerate() {
            if let Some(mut s) = self.lock(i) {
                for window in std::mem::take(&mut s.open) {
                    queue.push(window);
                }
            }
        }
        self.settle();
        let series = self
            .specs
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| {
                let mut windows = self
                    .closed
                    .get(i)?
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                windows.sort_by_key(|w| w.index);
                let s = self.lock(i)?;
                Some(SeriesRecord {
                    name: spec.name.clone(),
                    journey: spec.journey.clone(),
                    kind: spec.kind,
                    total: s.total.clone(),
                    phases: self
                        .phases
                        .iter()
                        .zip(&s.phases)
                        .map(|(p, r)| (p.name.clone(), r.clone()))
                        .collect(),
                    behind_windows: windows.iter().filter(|w| w.generator_behind).count() as u64,
                    windows,
                    late: s.late,
                    lateness: s.lateness.clone(),
                })
            })
            .collect();
        LoadRecord {
            window: self.window,
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn recorder() -> Recorder {
        let phases = vec![
            Phase {
                name: "baseline".into(),
                from: Duration::ZERO,
                until: Duration::from_secs(2),
            },
            Phase {
                name: "fault".into(),
                from: Duration::from_secs(2),
                until: Duration::from_secs(4),
            },
        ];
        let spec = SeriesSpec {
            name: "payment".into(),
            journey: "payment".into(),
            kind: JourneyKind::Payment,
        };
        Recorder::new(
            vec![spec],
            phases,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn requests_land_in_their_phase_and_window_by_intended_time() {
        let r = recorder();
        let ms = Duration::from_millis;
        r.record(0, ms(500), ms(0), ms(10), &Outcome::Ok(200));
        r.record(0, ms(1500), ms(0), ms(20), &Outcome::Ok(200));
        r.record(0, ms(2500), ms(0), ms(3000), &Outcome::Status(502));
        r.dropped(0, ms(2600));
        let rec = r.finish();
        let s = rec.series("payment").expect("series");
        assert_eq!(s.total.requests, 3);
        assert_eq!(s.phases["baseline"].requests, 2);
        assert_eq!(s.phases["fault"].errors, 1);
        assert_eq!(s.phases["fault"].dropped, 1);
        assert_eq!(s.phases["fault"].outcomes[&Outcome::Status(502)], 1);
        assert_eq!(s.phases["baseline"].success_rate(), Some(1.0));
        let windows: Vec<(u64, u64, u64)> = s
            .windows
            .iter()
            .map(|w| (w.index, w.requests, w.dropped))
            .collect();
        assert_eq!(windows, vec![(0, 1, 0), (1, 1, 0), (2, 1, 1)]);
        // Latency from the intended start, in µs (3 significant digits).
        let p = s.phases["fault"].latency.max() as f64;
        assert!((p - 3_000_000.0).abs() / 3_000_000.0 < 0.001);
    }

    #[test]
    fn old_windows_are_summarised_while_the_run_goes_on() {
        let r = recorder();
        for i in 0..10 {
            r.record(
                0,
                Duration::from_millis(i * 1000 + 1),
                Duration::ZERO,
                Duration::from_millis(5),
                &Outcome::Ok(200),
            );
        }
        // Timeout 1 s → settle 3 windows: windows 0..=5 are settled.
        assert!(r.lock(0).expect("series").open.len() <= 4);
        assert_eq!(r.settled[0].len(), 6);
        r.settle();
        assert_eq!(r.settled[0].len(), 0);
        let closed = r.closed[0].lock().expect("closed");
        assert_eq!(closed.len(), 6);
        assert!(closed.iter().all(|w| !w.histogram.is_empty()));
    }

    /// The hot path (`record`, `dropped`, `live`) never encodes, and encoding
    /// (`settle`) needs no series lock: it completes while this test holds
    /// every series lock, which would deadlock if it took one.
    #[test]
    fn no_lock_is_held_across_encoding() {
        let r = Arc::new(recorder());
        for i in 0..20u64 {
            r.record(
                0,
                Duration::from_millis(i * 1000 + 1),
                Duration::ZERO,
                Duration::from_millis(5),
                &Outcome::Ok(200),
            );
            r.dropped(0, Duration::from_millis(i * 1000 + 2));
            let _ = r.live();
        }
        // Windows left the series state, none was encoded on the way.
        assert_eq!(r.settled[0].len(), 16);
        assert!(r.closed[0].lock().expect("closed").is_empty());
        let held = r.lock(0).expect("series");
        let (tx, rx) = std::sync::mpsc::channel();
        let settler = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                r.settle();
                let _ = tx.send(r.closed[0].lock().map(|c| c.len()).unwrap_or(0));
            })
        };
        let encoded = rx.recv_timeout(Duration::from_secs(60));
        drop(held);
        let _ = settler.join();
        assert_eq!(encoded, Ok(16), "settle() waited for the series lock");
    }

    #[test]
    fn lateness_is_reported_per_window_and_a_lagging_generator_says_so() {
        let r = recorder();
        let ms = Duration::from_millis;
        for _ in 0..100 {
            r.record(0, ms(100), ms(1), ms(3), &Outcome::Ok(200));
            r.record(0, ms(1100), ms(40), ms(45), &Outcome::Ok(200));
        }
        let rec = r.finish();
        let s = rec.series("payment").expect("series");
        let (on_time, lagging) = (&s.windows[0], &s.windows[1]);
        assert!(!on_time.generator_behind);
        assert_eq!((on_time.late, on_time.lateness_p99_us / 100), (0, 10));
        assert!(lagging.generator_behind);
        assert_eq!(lagging.late, 100);
        assert!((39_000..=41_000).contains(&lagging.lateness_p99_us));
        assert_eq!(s.late, 100);
        assert_eq!(s.behind_windows, 1);
        let lag = rec.generator_lag();
        assert!(lag.fell_behind());
        assert_eq!((lag.windows_behind, lag.late, lag.dropped), (1, 100, 0));
        assert!(lag.describe().is_some_and(|d| d.contains("1 window")));
        // The report's per-window series carries the new fields.
        let json = serde_json::to_value(lagging).expect("json");
        assert_eq!(json["generator_behind"], true);
        assert_eq!(json["late"], 100);
    }
}
