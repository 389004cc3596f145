//! `report.json` stays small however long the run: a time series longer
//! than [`MAX_POINTS`] is written coarser, adjacent points merged exactly
//! (histograms added, counts summed), and the SUT's readings keep only what
//! a state timeline needs. Full resolution stays beside it: the `.hlog`
//! interval logs hold every window's histogram, `arrivals/` every arrival,
//! and the pages are drawn from the run itself, not from the file.

use hdrhistogram::Histogram;

use super::{DownstreamReport, JourneyReport, Report};
use crate::load::recorder::LOG2_BUCKETS;
use crate::load::recorder::{WindowStats, encode};
use crate::observe::sut::ReadySample;

/// Most points a time series keeps in `report.json`: ten minutes of
/// one-second windows; a 30-minute run's are merged three by three.
pub const MAX_POINTS: usize = 600;

/// How many adjacent points to merge so `len` fit in [`MAX_POINTS`].
fn factor(len: usize) -> u64 {
    len.div_ceil(MAX_POINTS).max(1) as u64
}

impl Report {
    /// The report as `report.json` holds it.
    pub(super) fn bounded(&self) -> Report {
        let mut report = self.clone();
        for journey in &mut report.journeys {
            coarsen_windows(journey);
        }
        for downstream in &mut report.downstreams {
            coarsen_arrivals(downstream);
        }
        report.sut.breakers = state_changes(&report.sut.breakers, |s| {
            ((s.service.clone(), s.downstream), s.state)
        });
        report.sut.ready = state_changes(&report.sut.ready, |s: &ReadySample| {
            (s.service.clone(), s.ready)
        });
        report
    }

    /// Whether every series is at the run's own resolution (a report read
    /// back from a long run's `report.json` is not).
    pub(super) fn full_resolution(&self) -> bool {
        self.journeys.iter().all(|j| j.windows_merged <= 1)
    }
}

fn coarsen_windows(journey: &mut JourneyReport) {
    let k = factor(journey.windows.len());
    if k == 1 {
        return;
    }
    let mut merged: Vec<WindowStats> = Vec::new();
    let mut group: Vec<&WindowStats> = Vec::new();
    for window in &journey.windows {
        if group
            .first()
            .is_some_and(|g| g.index / k != window.index / k)
        {
            merged.push(merge(&group, k));
            group.clear();
        }
        group.push(window);
    }
    if !group.is_empty() {
        merged.push(merge(&group, k));
    }
    journey.windows = merged;
    journey.windows_merged = k;
}

/// Windows `group` (of one k-window span) as one window.
fn merge(group: &[&WindowStats], k: u64) -> WindowStats {
    let first = group[0];
    let width = if first.index > 0 {
        first.start_s / first.index as f64
    } else {
        group
            .get(1)
            .map_or(0.0, |w| w.start_s / w.index.max(1) as f64)
    };
    let index = first.index / k;
    let mut histogram: Option<Histogram<u64>> = None;
    let mut out = WindowStats {
        index,
        start_s: (index * k) as f64 * width,
        requests: 0,
        errors: 0,
        dropped: 0,
        late: 0,
        lateness_p99_us: 0,
        lateness_max_us: 0,
        generator_behind: false,
        p50_us: 0,
        p90_us: 0,
        p99_us: 0,
        max_us: 0,
        latency_log2: [0; LOG2_BUCKETS],
        histogram: String::new(),
    };
    for w in group {
        out.requests += w.requests;
        out.errors += w.errors;
        out.dropped += w.dropped;
        out.late += w.late;
        // Lateness has no histogram here: the worst window's figures.
        out.lateness_p99_us = out.lateness_p99_us.max(w.lateness_p99_us);
        out.lateness_max_us = out.lateness_max_us.max(w.lateness_max_us);
        out.generator_behind |= w.generator_behind;
        for (into, n) in out.latency_log2.iter_mut().zip(w.latency_log2) {
            *into += n;
        }
        if let Some(h) = super::hlog::decode(&w.histogram) {
            match histogram.as_mut() {
                None => histogram = Some(h),
                Some(sum) => {
                    let _ = sum.add(&h);
                }
            }
        }
    }
    if let Some(h) = histogram.filter(|h| !h.is_empty()) {
        out.p50_us = h.value_at_quantile(0.5);
        out.p90_us = h.value_at_quantile(0.9);
        out.p99_us = h.value_at_quantile(0.99);
        out.max_us = h.max();
        out.histogram = encode(&h);
    }
    out
}

fn coarsen_arrivals(downstream: &mut DownstreamReport) {
    let k = factor(downstream.arrivals.len());
    if k == 1 {
        return;
    }
    let mut merged: Vec<fault_injectors::BucketReport> = Vec::new();
    for bucket in &downstream.arrivals {
        let index = bucket.index / k;
        match merged.last_mut() {
            Some(last) if last.index == index => {
                last.open |= bucket.open;
                last.delayed += bucket.delayed;
                last.with_ids += bucket.with_ids;
                last.fresh += bucket.fresh;
                for cell in &bucket.counts {
                    match last
                        .counts
                        .iter_mut()
                        .find(|c| c.route == cell.route && c.outcome == cell.outcome)
                    {
                        Some(c) => c.count += cell.count,
                        None => last.counts.push(cell.clone()),
                    }
                }
            }
            _ => merged.push(fault_injectors::BucketReport {
                index,
                // Buckets count from the clock's origin, so the merged
                // bucket starts k widths times its number after it.
                start_s: bucket.start_s - (bucket.index % k) as f64 * downstream.bucket_s,
                ..bucket.clone()
            }),
        }
    }
    downstream.arrivals = merged;
    downstream.bucket_s *= k as f64;
}

/// Of readings in time order, the first and last of each key and, around
/// every change of its state, the reading before and the one after: the
/// state timeline and how closely each change is bounded, nothing else.
fn state_changes<T: Clone, K: PartialEq, S: PartialEq>(
    samples: &[T],
    key_state: impl Fn(&T) -> (K, S),
) -> Vec<T> {
    let mut keep = vec![false; samples.len()];
    // Per key: the index of its latest reading.
    let mut latest: Vec<(K, usize)> = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let (key, state) = key_state(sample);
        match latest.iter_mut().find(|(k, _)| *k == key) {
            None => {
                keep[i] = true;
                latest.push((key, i));
            }
            Some((_, previous)) => {
                if key_state(&samples[*previous]).1 != state {
                    keep[*previous] = true;
                    keep[i] = true;
                }
                *previous = i;
            }
        }
    }
    for (_, last) in latest {
        keep[last] = true;
    }
    samples
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(s, _)| s.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(index: u64, requests: u64, latency_us: u64) -> WindowStats {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for _ in 0..requests {
            h.record(latency_us).unwrap();
        }
        WindowStats {
            index,
            start_s: index as f64,
            requests,
            errors: 1,
            dropped: 0,
            late: 0,
            lateness_p99_us: index,
            lateness_max_us: index,
            generator_behind: false,
            p50_us: latency_us,
            p90_us: latency_us,
            p99_us: latency_us,
            max_us: latency_us,
            latency_log2: [0; LOG2_BUCKETS],
            histogram: encode(&h),
        }
    }

    #[test]
    fn long_series_are_merged_exactly_to_the_bound() {
        let n = 3 * MAX_POINTS as u64 + 7;
        let windows: Vec<WindowStats> = (0..n).map(|i| window(i, 10, 1000 + i)).collect();
        let mut journey = JourneyReport {
            name: "payment".into(),
            journey: "payment".into(),
            kind: "payment".into(),
            requests: 10 * n,
            errors: n,
            dropped: 0,
            late: 0,
            latency_us: Default::default(),
            ok_latency_us: Default::default(),
            phases: Vec::new(),
            windows,
            windows_merged: 1,
        };
        coarsen_windows(&mut journey);
        assert!(
            journey.windows.len() <= MAX_POINTS,
            "{}",
            journey.windows.len()
        );
        assert_eq!(journey.windows_merged, 4);
        let requests: u64 = journey.windows.iter().map(|w| w.requests).sum();
        assert_eq!(requests, 10 * n);
        let second = &journey.windows[1];
        assert_eq!((second.index, second.start_s), (1, 4.0));
        assert_eq!(second.errors, 4);
        assert_eq!(second.lateness_max_us, 7);
        // The merged histogram holds the four windows' requests.
        let h = super::super::hlog::decode(&second.histogram).unwrap();
        assert_eq!(h.len(), 40);
        assert_eq!(second.max_us, h.max());
        assert!((1004..=1008).contains(&h.value_at_quantile(0.0)));
    }

    #[test]
    fn readings_keep_the_state_timeline_and_its_bounds() {
        let states = [1, 1, 1, 2, 2, 2, 2, 1, 1];
        let samples: Vec<(u8, f64, i32)> = states
            .iter()
            .enumerate()
            .flat_map(|(i, s)| [(0u8, i as f64, *s), (1u8, i as f64, 0)])
            .collect();
        let kept = state_changes(&samples, |s| (s.0, s.2));
        let times =
            |key: u8| -> Vec<f64> { kept.iter().filter(|s| s.0 == key).map(|s| s.1).collect() };
        assert_eq!(times(0), [0.0, 2.0, 3.0, 6.0, 7.0, 8.0]);
        assert_eq!(times(1), [0.0, 8.0]);
    }
}
