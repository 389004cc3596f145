//! A recorder split over processes: a worker's recorder keeps what it
//! measured raw and hands it over ([`Recorder::forward`]); the
//! coordinator's recorder absorbs it ([`Recorder::absorb`]) as if its own
//! workers had recorded it. Histograms travel whole (HdrHistogram V2, the
//! same counts bucket by bucket) and are added, so the merge is exact:
//! percentiles are computed once, from the sum, never averaged.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use super::{Outcome, PhaseRecord, Recorder, WindowAcc};

/// One window of one series, raw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RawWindow {
    /// The series' index.
    pub series: usize,
    /// The window's number from the load start.
    pub index: u64,
    /// Latency histogram (µs), V2, base64.
    pub latency: String,
    /// Lateness histogram (µs), V2, base64.
    pub lateness: String,
    /// Requests sent.
    pub requests: u64,
    /// Of those, not successful.
    pub errors: u64,
    /// Requests dropped.
    pub dropped: u64,
    /// Requests sent late.
    pub late: u64,
    /// Requests by log₂ latency bucket.
    pub latency_log2: Vec<u32>,
}

/// One phase (or the whole run) of one series, raw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RawPhase {
    /// Latency histogram (µs), V2, base64.
    pub latency: String,
    /// Latency of the successful requests, V2, base64.
    pub ok_latency: String,
    /// Requests sent.
    pub requests: u64,
    /// Of those, not successful.
    pub errors: u64,
    /// Requests dropped.
    pub dropped: u64,
    /// Requests by outcome.
    pub outcomes: Vec<(Outcome, u64)>,
}

/// A series' totals over a worker's whole run, raw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RawSeries {
    /// The series' index.
    pub series: usize,
    /// The whole run.
    pub total: RawPhase,
    /// Per phase, in the scenario's order.
    pub phases: Vec<RawPhase>,
    /// Requests sent late.
    pub late: u64,
    /// Lateness of every request sent, V2, base64.
    pub lateness: String,
}

/// What a worker's recorder hands over now and then.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Forwarded {
    /// Windows that can no longer receive results.
    pub windows: Vec<RawWindow>,
    /// Per series: every window below this number has been handed over.
    pub through: Vec<u64>,
}

/// What a worker sent cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A series this run does not have.
    #[error("series {0} is not one of this run's")]
    Series(usize),
    /// A histogram that does not decode.
    #[error("a histogram that does not decode: {0}")]
    Histogram(String),
    /// A phase list of the wrong length.
    #[error("{got} phases, the scenario has {want}")]
    Phases {
        /// Sent.
        got: usize,
        /// Expected.
        want: usize,
    },
}

fn pack(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2Serializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

fn unpack(text: &str) -> Result<Histogram<u64>, MergeError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| MergeError::Histogram(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| MergeError::Histogram(format!("{e:?}")))
}

/// Adds `from` into `into`; histograms made by [`super::histogram`] grow
/// as needed, so only a corrupt one can fail.
fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) -> Result<(), MergeError> {
    into.add(from)
        .map_err(|e| MergeError::Histogram(format!("{e:?}")))
}

impl RawPhase {
    fn of(p: &PhaseRecord) -> Self {
        Self {
            latency: pack(&p.latency),
            ok_latency: pack(&p.ok_latency),
            requests: p.requests,
            errors: p.errors,
            dropped: p.dropped,
            outcomes: p.outcomes.iter().map(|(o, n)| (*o, *n)).collect(),
        }
    }

    fn add_into(&self, p: &mut PhaseRecord) -> Result<(), MergeError> {
        add(&mut p.latency, &unpack(&self.latency)?)?;
        add(&mut p.ok_latency, &unpack(&self.ok_latency)?)?;
        p.requests += self.requests;
        p.errors += self.errors;
        p.dropped += self.dropped;
        for (outcome, n) in &self.outcomes {
            *p.outcomes.entry(*outcome).or_default() += n;
        }
        Ok(())
    }
}

impl RawWindow {
    fn of(series: usize, index: u64, acc: &WindowAcc) -> Self {
        Self {
            series,
            index,
            latency: pack(&acc.hist),
            lateness: pack(&acc.lateness),
            requests: acc.requests,
            errors: acc.errors,
            dropped: acc.dropped,
            late: acc.late,
            latency_log2: acc.latency_log2.to_vec(),
        }
    }

    fn add_into(&self, acc: &mut WindowAcc) -> Result<(), MergeError> {
        add(&mut acc.hist, &unpack(&self.latency)?)?;
        add(&mut acc.lateness, &unpack(&self.lateness)?)?;
        acc.requests += self.requests;
        acc.errors += self.errors;
        acc.dropped += self.dropped;
        acc.late += self.late;
        for (bucket, n) in acc.latency_log2.iter_mut().zip(&self.latency_log2) {
            *bucket += n;
        }
        Ok(())
    }
}

impl Recorder {
    /// A worker's recorder: like [`Recorder::new`], but what it records is
    /// kept raw for [`Recorder::forward`] (never summarised here: the
    /// coordinator does that once, for every worker together).
    pub fn forwarding(
        specs: Vec<super::SeriesSpec>,
        phases: Vec<super::Phase>,
        window: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Self {
        let mut recorder = Self::new(specs, phases, window, timeout);
        recorder.forwarding = true;
        recorder
    }

    /// The windows settled since the last call, and how far every series
    /// has been handed over. Encoding happens here,
    /// holding no series lock (see the module docs of the recorder).
    pub fn forward(&self) -> Forwarded {
        // The watermark is read before the queue is emptied: every window
        // below it was moved onto the queue before the lock was released.
        let through = (0..self.states.len())
            .map(|i| {
                self.lock(i)
                    .map_or(0, |s| s.newest.saturating_sub(self.settle))
            })
            .collect();
        let mut windows = Vec::new();
        for (series, queue) in self.settled.iter().enumerate() {
            while let Some((index, acc)) = queue.pop() {
                windows.push(RawWindow::of(series, index, &acc));
            }
        }
        Forwarded { windows, through }
    }

    /// Everything not yet handed over — every open window too — and each
    /// series' totals: a worker's last hand-over.
    pub fn forward_rest(&self) -> (Forwarded, Vec<RawSeries>) {
        let mut totals = Vec::new();
        for (i, queue) in self.settled.iter().enumerate() {
            if let Some(mut s) = self.lock(i) {
                for window in std::mem::take(&mut s.open) {
                    queue.push(window);
                }
                totals.push(RawSeries {
                    series: i,
                    total: RawPhase::of(&s.total),
                    phases: s.phases.iter().map(RawPhase::of).collect(),
                    late: s.late,
                    lateness: pack(&s.lateness),
                });
            }
        }
        let mut rest = self.forward();
        rest.through = vec![u64::MAX; rest.through.len()];
        (rest, totals)
    }

    /// Merges a worker's hand-over: its windows into this recorder's
    /// (summarised once every worker is past them, see
    /// [`Recorder::settle_before`]).
    pub fn absorb(&self, forwarded: &Forwarded) -> Result<(), MergeError> {
        for window in &forwarded.windows {
            let mut s = self
                .lock(window.series)
                .ok_or(MergeError::Series(window.series))?;
            s.streamed.0 += window.requests;
            s.streamed.1 += window.errors;
            s.newest = s.newest.max(window.index);
            let acc = s.open.entry(window.index).or_insert_with(WindowAcc::new);
            window.add_into(acc)?;
        }
        Ok(())
    }

    /// Merges a worker's totals for one series.
    pub fn absorb_series(&self, raw: &RawSeries) -> Result<(), MergeError> {
        let mut s = self
            .lock(raw.series)
            .ok_or(MergeError::Series(raw.series))?;
        if raw.phases.len() != s.phases.len() {
            return Err(MergeError::Phases {
                got: raw.phases.len(),
                want: s.phases.len(),
            });
        }
        raw.total.add_into(&mut s.total)?;
        for (from, into) in raw.phases.iter().zip(s.phases.iter_mut()) {
            from.add_into(into)?;
        }
        s.late += raw.late;
        add(&mut s.lateness, &unpack(&raw.lateness)?)?;
        Ok(())
    }

    /// Summarises `series`' windows below `index`: every worker has handed
    /// them over, so nothing more can come for them.
    pub fn settle_before(&self, series: usize, index: u64) {
        if let Some(mut s) = self.lock(series) {
            while let Some(entry) = s.open.first_entry() {
                if *entry.key() >= index {
                    break;
                }
                self.settled[series].push(entry.remove_entry());
            }
        }
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::load::recorder::{SeriesSpec, WindowStats};
    use crate::platform::JourneyKind;
    use crate::scenario::Phase;

    fn specs() -> Vec<SeriesSpec> {
        vec![SeriesSpec {
            name: "payment".into(),
            journey: "payment".into(),
            kind: JourneyKind::Payment,
        }]
    }

    fn phases() -> Vec<Phase> {
        vec![
            Phase {
                name: "baseline".into(),
                from: Duration::ZERO,
                until: Duration::from_secs(3),
            },
            Phase {
                name: "fault".into(),
                from: Duration::from_secs(3),
                until: Duration::from_secs(6),
            },
        ]
    }

    /// A deterministic request `k`: its time, latency and outcome.
    fn request(k: u64) -> (Duration, Duration, Duration, Outcome) {
        let intended = Duration::from_micros(k * 1_777);
        let lateness = Duration::from_micros(k * 37 % 20_000);
        let latency = Duration::from_micros(200 + k * 7_919 % 900_000);
        let outcome = if k.is_multiple_of(7) {
            Outcome::Status(503)
        } else {
            Outcome::Ok(201)
        };
        (intended, lateness, latency, outcome)
    }

    #[test]
    fn merged_workers_equal_one_recorder_that_saw_everything() {
        let window = Duration::from_secs(1);
        let timeout = Duration::from_secs(1);
        let whole = Recorder::new(specs(), phases(), window, timeout);
        let coordinator = Recorder::new(specs(), phases(), window, timeout);
        let workers: Vec<Recorder> = (0..3)
            .map(|_| Recorder::forwarding(specs(), phases(), window, timeout))
            .collect();
        let mut sent = [0u64; 3];
        let mut through = [0u64; 3];
        for k in 0..3_000u64 {
            let (intended, lateness, latency, outcome) = request(k);
            // Interleaved slices, as the workers of a run share arrivals.
            let w = (k % 3) as usize;
            sent[w] += 1;
            whole.record(0, intended, lateness, latency, &outcome);
            workers[w].record(0, intended, lateness, latency, &outcome);
            if k % 250 == 0 {
                // Hand-overs while the run goes on, as the workers stream.
                for (w, worker) in workers.iter().enumerate() {
                    let forwarded = worker.forward();
                    through[w] = forwarded.through[0];
                    coordinator.absorb(&forwarded).unwrap();
                }
                coordinator.settle_before(0, *through.iter().min().unwrap());
            }
        }
        for worker in &workers {
            let (rest, totals) = worker.forward_rest();
            coordinator.absorb(&rest).unwrap();
            for t in &totals {
                coordinator.absorb_series(t).unwrap();
            }
        }
        let (whole, merged) = (whole.finish(), coordinator.finish());
        let (a, b) = (&whole.series[0], &merged.series[0]);
        // The merged histogram's count is the sum of the workers' exactly,
        // and it is the same histogram, bucket by bucket.
        assert_eq!(b.total.latency.len(), sent.iter().sum::<u64>());
        assert_eq!(a.total.latency, b.total.latency);
        assert_eq!(a.total.ok_latency, b.total.ok_latency);
        assert_eq!(a.total.outcomes, b.total.outcomes);
        assert_eq!(a.lateness, b.lateness);
        assert_eq!(a.late, b.late);
        for name in ["baseline", "fault"] {
            assert_eq!(a.phases[name].latency, b.phases[name].latency, "{name}");
            assert_eq!(a.phases[name].errors, b.phases[name].errors, "{name}");
        }
        // Every window once, with the same counts and percentiles; some
        // were summarised while the hand-overs went on.
        let strip = |w: &WindowStats| WindowStats {
            histogram: String::new(),
            ..w.clone()
        };
        let decoded = |w: &WindowStats| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&w.histogram)
                .unwrap();
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .unwrap();
            h
        };
        assert_eq!(a.windows.len(), b.windows.len());
        for (x, y) in a.windows.iter().zip(&b.windows) {
            assert_eq!(strip(x), strip(y));
            // The same counts (the encodings may differ in trailing zeros).
            assert_eq!(decoded(x), decoded(y), "window {}", x.index);
        }
        assert!(through.iter().all(|t| *t > 0), "{through:?}");
    }

    #[test]
    fn a_hand_over_for_an_unknown_series_or_a_bad_histogram_is_refused() {
        let window = Duration::from_secs(1);
        let coordinator = Recorder::new(specs(), phases(), window, window);
        let worker = Recorder::forwarding(specs(), phases(), window, window);
        worker.record(
            0,
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_millis(3),
            &Outcome::Ok(200),
        );
        let (mut rest, _) = worker.forward_rest();
        rest.windows[0].series = 4;
        assert!(matches!(
            coordinator.absorb(&rest),
            Err(MergeError::Series(4))
        ));
        rest.windows[0].series = 0;
        rest.windows[0].latency = "not a histogram".into();
        assert!(matches!(
            coordinator.absorb(&rest),
            Err(MergeError::Histogram(_))
        ));
    }
}
