//! What the load measures: every request's latency (from its intended start)
//! into HDR histograms per series and phase, counts per time window, and the
//! payments the SUT acknowledged (a seeded sample, for the integrity check).
//!
//! A *series* is a journey, or a journey's follow-up request (the payment's
//! webhook is series `payment.webhook`). Requests are attributed to the phase
//! and window of their intended start.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::platform::JourneyKind;
use crate::scenario::Phase;

/// Most acknowledged payments kept per series for the integrity check.
pub const ACK_SAMPLE: usize = 10_000;

/// Latencies are recorded in microseconds up to an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

/// A payment the SUT acknowledged, and the status it should be found in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ack {
    /// The SUT's payment number.
    pub payment_no: String,
    /// Statuses consistent with what the SUT answered.
    pub expect: Vec<String>,
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
    /// Acknowledged payments (a seeded sample of at most [`ACK_SAMPLE`]).
    pub acks: Vec<Ack>,
    /// How many were acknowledged in all.
    pub acks_total: u64,
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

struct WindowAcc {
    hist: Histogram<u64>,
    requests: u64,
    errors: u64,
    dropped: u64,
    latency_log2: [u32; LOG2_BUCKETS],
}

impl WindowAcc {
    fn new() -> Self {
        Self {
            hist: histogram(),
            requests: 0,
            errors: 0,
            dropped: 0,
            latency_log2: [0; LOG2_BUCKETS],
        }
    }
}

struct SeriesState {
    total: PhaseRecord,
    phases: Vec<PhaseRecord>,
    open: BTreeMap<u64, WindowAcc>,
    closed: Vec<WindowStats>,
    newest: u64,
    late: u64,
    acks: Vec<Ack>,
    acks_total: u64,
    rng: ChaCha8Rng,
}

/// Thread-safe recorder for a run's series.
pub struct Recorder {
    specs: Vec<SeriesSpec>,
    states: Vec<Mutex<SeriesState>>,
    phases: Vec<Phase>,
    window: Duration,
    /// Windows this far behind the newest can no longer receive results (a
    /// request lasts at most the load timeout), so they are summarised.
    settle: u64,
}

/// Latency histograms: 3 significant digits, growing only as far as the
/// values recorded (a window of millisecond latencies stays small).
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

/// A histogram as HdrHistogram's V2 deflate encoding, base64.
fn encode(h: &Histogram<u64>) -> String {
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
    /// `timeout`, acknowledgement sampling seeded by `seed`.
    pub fn new(
        specs: Vec<SeriesSpec>,
        phases: Vec<Phase>,
        window: Duration,
        timeout: Duration,
        seed: u64,
    ) -> Self {
        let settle = (timeout.as_secs_f64() / window.as_secs_f64()).ceil() as u64 + 2;
        let states = specs
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Mutex::new(SeriesState {
                    total: PhaseRecord::new(),
                    phases: phases.iter().map(|_| PhaseRecord::new()).collect(),
                    open: BTreeMap::new(),
                    closed: Vec::new(),
                    newest: 0,
                    late: 0,
                    acks: Vec::new(),
                    acks_total: 0,
                    rng: ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9)),
                })
            })
            .collect();
        Self {
            specs,
            states,
            phases,
            window,
            settle,
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

    /// Records a completed request meant to start at `intended` (from the load
    /// start) that took `latency` from then.
    pub fn record(&self, series: usize, intended: Duration, latency: Duration, outcome: &Outcome) {
        let index = self.window_of(intended);
        let latency_us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let Some(mut s) = self.lock(series) else {
            return;
        };
        s.total.add(latency_us, outcome);
        for (i, phase) in self.phases.iter().enumerate() {
            if phase.from <= intended && intended < phase.until {
                s.phases[i].add(latency_us, outcome);
            }
        }
        let w = s.open.entry(index).or_insert_with(WindowAcc::new);
        w.requests += 1;
        let _ = w.hist.record(latency_us);
        w.latency_log2[log2_bucket(latency_us)] += 1;
        if !outcome.is_ok() {
            w.errors += 1;
        }
        self.advance(&mut s, index);
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
        self.advance(&mut s, index);
    }

    /// Counts a request that started late (but within the allowed lag).
    pub fn late(&self, series: usize) {
        if let Some(mut s) = self.lock(series) {
            s.late += 1;
        }
    }

    /// Keeps an acknowledged payment (reservoir sample).
    pub fn ack(&self, series: usize, ack: Ack) {
        let Some(mut s) = self.lock(series) else {
            return;
        };
        s.acks_total += 1;
        if s.acks.len() < ACK_SAMPLE {
            s.acks.push(ack);
        } else {
            let total = s.acks_total;
            let slot = s.rng.random_range(0..total) as usize;
            if slot < ACK_SAMPLE {
                s.acks[slot] = ack;
            }
        }
    }

    fn advance(&self, s: &mut SeriesState, index: u64) {
        s.newest = s.newest.max(index);
        let settled = s.newest.saturating_sub(self.settle);
        while let Some(entry) = s.open.first_entry() {
            if *entry.key() >= settled {
                break;
            }
            let (index, acc) = entry.remove_entry();
            let stats = self.summarise(index, &acc);
            s.closed.push(stats);
        }
    }

    fn summarise(&self, index: u64, acc: &WindowAcc) -> WindowStats {
        let (p50, p90, p99, max) = match acc.hist.len() {
            0 => (0, 0, 0, 0),
            _ => (
                acc.hist.value_at_quantile(0.5),
                acc.hist.value_at_quantile(0.9),
                acc.hist.value_at_quantile(0.99),
                acc.hist.max(),
            ),
        };
        WindowStats {
            index,
            start_s: index as f64 * self.window.as_secs_f64(),
            requests: acc.requests,
            errors: acc.errors,
            dropped: acc.dropped,
            p50_us: p50,
            p90_us: p90,
            p99_us: p99,
            max_us: max,
            latency_log2: acc.latency_log2,
            histogram: encode(&acc.hist),
        }
    }

    /// Totals for the progress line: all series together.
    pub fn live(&self) -> Live {
        let mut live = Live::default();
        for i in 0..self.states.len() {
            let Some(s) = self.lock(i) else { continue };
            live.requests += s.total.requests;
            live.errors += s.total.errors;
            // The newest window with data is still filling; take the one before.
            let recent = s
                .open
                .range(..s.newest)
                .next_back()
                .map(|(idx, acc)| self.summarise(*idx, acc));
            if let Some(w) = recent.or_else(|| s.closed.last().cloned()) {
                live.rate += w.requests as f64 / self.window.as_secs_f64();
                live.p99_us = live.p99_us.max(w.p99_us);
            }
        }
        live
    }

    /// Everything recorded, every window summarised.
    pub fn finish(&self) -> LoadRecord {
        let series = self
            .specs
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| {
                let mut s = self.lock(i)?;
                let open = std::mem::take(&mut s.open);
                for (index, acc) in open {
                    let stats = self.summarise(index, &acc);
                    s.closed.push(stats);
                }
                s.closed.sort_by_key(|w| w.index);
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
                    windows: s.closed.clone(),
                    late: s.late,
                    acks: s.acks.clone(),
                    acks_total: s.acks_total,
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
            7,
        )
    }

    #[test]
    fn requests_land_in_their_phase_and_window_by_intended_time() {
        let r = recorder();
        let ms = Duration::from_millis;
        r.record(0, ms(500), ms(10), &Outcome::Ok(200));
        r.record(0, ms(1500), ms(20), &Outcome::Ok(200));
        r.record(0, ms(2500), ms(3000), &Outcome::Status(502));
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
                Duration::from_millis(5),
                &Outcome::Ok(200),
            );
        }
        let s = r.lock(0).expect("series");
        // Timeout 1 s → settle 3 windows: windows 0..=6 are closed.
        assert_eq!(s.closed.len(), 6);
        assert!(s.open.len() <= 4);
    }

    #[test]
    fn ack_sample_is_bounded() {
        let r = recorder();
        for i in 0..(ACK_SAMPLE as u64 + 500) {
            r.ack(
                0,
                Ack {
                    payment_no: format!("P{i}"),
                    expect: vec!["failed".into()],
                },
            );
        }
        let rec = r.finish();
        let s = rec.series("payment").expect("series");
        assert_eq!(s.acks.len(), ACK_SAMPLE);
        assert_eq!(s.acks_total, ACK_SAMPLE as u64 + 500);
        assert!(
            s.acks
                .iter()
                .any(|a| a.payment_no == format!("P{}", ACK_SAMPLE + 100))
        );
    }
}
