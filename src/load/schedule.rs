//! The open model's arrival schedule: when the k-th request of a journey is
//! meant to start, for a constant rate or a ramp (rate linear between steps,
//! held before the first and after the last).
//!
//! Intended times come from the rate alone, never from how the SUT answers,
//! so a slow SUT cannot slow the load down (no coordinated omission).

use std::time::Duration;

/// One linear piece of the rate: from `start` (seconds) the rate is
/// `rate + slope × (t − start)`, and `before` requests were due before it.
#[derive(Clone, Debug)]
struct Segment {
    start: f64,
    until: f64,
    rate: f64,
    slope: f64,
    before: f64,
}

/// Intended start times of one journey's requests.
#[derive(Clone, Debug)]
pub struct Schedule {
    segments: Vec<Segment>,
    end: f64,
    total: u64,
}

impl Schedule {
    /// A schedule over `[0, duration)` for `(instant, rate)` steps.
    pub fn new(steps: &[(Duration, f64)], duration: Duration) -> Self {
        let end = duration.as_secs_f64();
        let mut points: Vec<(f64, f64)> =
            steps.iter().map(|(t, r)| (t.as_secs_f64(), *r)).collect();
        match points.first() {
            Some(&(t, r)) if t > 0.0 => points.insert(0, (0.0, r)),
            None => points.push((0.0, 0.0)),
            _ => {}
        }
        let mut segments = Vec::with_capacity(points.len());
        let mut before = 0.0;
        for (i, &(start, rate)) in points.iter().enumerate() {
            let slope = match points.get(i + 1) {
                Some(&(next_t, next_r)) if next_t > start => (next_r - rate) / (next_t - start),
                _ => 0.0,
            };
            let until = points.get(i + 1).map_or(end, |p| p.0.min(end));
            segments.push(Segment {
                start,
                until,
                rate,
                slope,
                before,
            });
            let len = (until - start).max(0.0);
            before += rate * len + slope * len * len / 2.0;
        }
        let mut schedule = Self {
            segments,
            end,
            total: 0,
        };
        schedule.total = schedule.due_by(end).ceil() as u64;
        // Rounding can put the last arrival a hair past the end.
        while schedule.total > 0 && schedule.at(schedule.total - 1).is_none() {
            schedule.total -= 1;
        }
        schedule
    }

    /// Requests due in `[0, t)`.
    fn due_by(&self, t: f64) -> f64 {
        let Some(seg) = self.segments.iter().rev().find(|s| s.start <= t) else {
            return 0.0;
        };
        let x = t - seg.start;
        seg.before + seg.rate * x + seg.slope * x * x / 2.0
    }

    /// How many requests are due by `elapsed` (those whose intended time is
    /// at or before it), at most [`Schedule::total`].
    pub fn due_at(&self, elapsed: Duration) -> u64 {
        // A hair of slack: `due_by(at(k))` may round to just under k.
        let due = self.due_by(elapsed.as_secs_f64()) + 1e-6;
        ((due.max(0.0).floor() as u64).saturating_add(1)).min(self.total)
    }

    /// How many requests the schedule holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `k` (from 0) is meant to start, or `None` past the end.
    pub fn at(&self, k: u64) -> Option<Duration> {
        let k = k as f64;
        // The last piece already due `k` requests at its start holds request k.
        let seg = self.segments.iter().rev().find(|s| s.before <= k)?;
        let need = k - seg.before;
        let x = if need <= 0.0 {
            0.0
        } else if seg.slope.abs() < 1e-12 {
            if seg.rate <= 0.0 {
                return None;
            }
            need / seg.rate
        } else {
            // rate·x + slope·x²/2 = need, the root where the rate is positive.
            let disc = seg.rate * seg.rate + 2.0 * seg.slope * need;
            if disc < 0.0 {
                return None;
            }
            (disc.sqrt() - seg.rate) / seg.slope
        };
        let t = seg.start + x;
        (t < self.end && t.is_finite()).then(|| Duration::from_secs_f64(t))
    }

    /// The highest rate the schedule reaches, requests/s.
    pub fn peak_rate(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.rate.max(s.rate + s.slope * (s.until - s.start).max(0.0)))
            .fold(0.0, f64::max)
    }
}

/// A worker's share of every schedule: arrivals `index`, `index + of`,
/// `index + 2·of`, … — interleaved, so the workers' union is the whole
/// schedule exactly and no two workers burst together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// The worker's index, below `of`.
    pub index: u64,
    /// How many workers share the schedule.
    pub of: u64,
}

impl Slice {
    /// The whole schedule: one process runs it all.
    pub const WHOLE: Slice = Slice { index: 0, of: 1 };

    /// The arrival number in the whole schedule of this slice's `k`-th.
    pub fn global(&self, k: u64) -> u64 {
        self.index.saturating_add(k.saturating_mul(self.of))
    }

    /// How many of the first `count` arrivals of the whole schedule are
    /// this slice's.
    pub fn count(&self, count: u64) -> u64 {
        if count > self.index {
            (count - self.index - 1) / self.of.max(1) + 1
        } else {
            0
        }
    }

    /// This slice's share of `n` closed-model users: `n / of`, the first
    /// `n % of` workers one more.
    pub fn users(&self, n: u64) -> u64 {
        let of = self.of.max(1);
        n / of + u64::from(self.index < n % of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_partition_the_schedule_exactly() {
        let schedule = Schedule::new(
            &[(Duration::ZERO, 50.0), (Duration::from_secs(2), 400.0)],
            Duration::from_secs(4),
        );
        for of in [1u64, 2, 3, 4, 7] {
            let mut seen = Vec::new();
            for index in 0..of {
                let slice = Slice { index, of };
                let mine = slice.count(schedule.total());
                for k in 0..mine {
                    let g = slice.global(k);
                    assert!(schedule.at(g).is_some(), "{of} {index} {k}");
                    seen.push(g);
                }
                // Counting due arrivals agrees with enumerating them.
                for due in [0, 1, index, index + 1, schedule.total() / 2] {
                    let direct = (0..due).filter(|g| g % of == index).count() as u64;
                    assert_eq!(slice.count(due), direct, "{of} {index} {due}");
                }
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..schedule.total()).collect::<Vec<_>>(), "{of}");
            let users: u64 = (0..of).map(|index| Slice { index, of }.users(10)).sum();
            assert_eq!(users, 10, "{of}");
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let s = Schedule::new(&[(Duration::ZERO, 20.0)], secs(3.0));
        assert_eq!(s.total(), 60);
        assert_eq!(s.at(0), Some(Duration::ZERO));
        assert_eq!(s.at(1), Some(secs(0.05)));
        assert!(
            s.at(59)
                .is_some_and(|t| (t.as_secs_f64() - 2.95).abs() < 1e-9)
        );
        assert_eq!(s.at(60), None);
    }

    #[test]
    fn a_ramp_delivers_its_integral_and_speeds_up() {
        // 0 → 100 req/s over 10 s: 500 requests, denser at the end.
        let s = Schedule::new(&[(Duration::ZERO, 0.0), (secs(10.0), 100.0)], secs(10.0));
        assert!((499..=500).contains(&s.total()), "{}", s.total());
        let early = s.at(10).expect("due") - s.at(9).expect("due");
        let late = s.at(490).expect("due") - s.at(489).expect("due");
        assert!(early > late * 5);
        // Half the requests come in the last 30 % of the time.
        let mid = s.at(s.total() / 2).expect("due").as_secs_f64();
        assert!((mid - 7.07).abs() < 0.05, "{mid}");
    }

    #[test]
    fn rate_holds_after_the_last_step_and_before_the_first() {
        let s = Schedule::new(&[(secs(2.0), 10.0), (secs(4.0), 30.0)], secs(6.0));
        // 0-2 s at 10/s, 2-4 s ramping 10→30 (40), 4-6 s at 30 (60).
        assert_eq!(s.total(), 120);
        assert!((s.peak_rate() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn arrivals_fall_due_at_their_time() {
        let s = Schedule::new(
            &[
                (Duration::ZERO, 50.0),
                (secs(2.0), 400.0),
                (secs(4.0), 10.0),
            ],
            secs(6.0),
        );
        for k in 0..s.total() {
            let t = s.at(k).expect("within the run");
            assert!(s.due_at(t) > k, "arrival {k} at {t:?} not due then");
            if let Some(before) = t.checked_sub(Duration::from_micros(50)) {
                assert!(s.due_at(before) <= k + 1, "arrival {k} due too early");
            }
        }
        assert_eq!(s.due_at(secs(100.0)), s.total());
    }

    #[test]
    fn times_never_go_backwards() {
        let s = Schedule::new(
            &[(Duration::ZERO, 5.0), (secs(3.0), 500.0), (secs(6.0), 50.0)],
            secs(9.0),
        );
        let mut last = Duration::ZERO;
        for k in 0..s.total() {
            let t = s.at(k).expect("within the run");
            assert!(t >= last);
            last = t;
        }
    }
}
