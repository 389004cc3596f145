//! Each worker's clock against the coordinator's, NTP-style: the
//! coordinator sends its time, the worker answers with its own, and the
//! offset is the worker's reading minus the midpoint of the round trip.
//! Of several exchanges the one with the shortest round trip is kept (its
//! midpoint is the tightest bound), and half that round trip is the
//! uncertainty.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Nanoseconds since the Unix epoch on this machine's wall clock.
pub fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// One exchange: when the coordinator sent (`sent_ns`) and received
/// (`received_ns`) on its clock, what the worker's clock read between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Coordinator clock when the ping left.
    pub sent_ns: i64,
    /// Worker clock when it answered.
    pub worker_ns: i64,
    /// Coordinator clock when the answer came.
    pub received_ns: i64,
}

/// A worker's clock offset, as measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offset {
    /// Worker clock minus coordinator clock, milliseconds.
    pub offset_ms: f64,
    /// Half the round trip of the exchange used, milliseconds: the
    /// offset is right to within this.
    pub uncertainty_ms: f64,
}

impl Offset {
    /// The offset from the exchange with the shortest round trip; `None`
    /// without exchanges.
    pub fn of(exchanges: &[Exchange]) -> Option<Self> {
        let best = exchanges
            .iter()
            .min_by_key(|e| e.received_ns.saturating_sub(e.sent_ns))?;
        let rtt = best.received_ns.saturating_sub(best.sent_ns);
        let midpoint = best.sent_ns + rtt / 2;
        Some(Self {
            offset_ms: (best.worker_ns - midpoint) as f64 / 1e6,
            uncertainty_ms: rtt as f64 / 2e6,
        })
    }

    /// `at_ns` on the coordinator's clock, read on the worker's.
    pub fn to_worker(self, at_ns: i64) -> i64 {
        at_ns + (self.offset_ms * 1e6) as i64
    }
}

/// How a worker's clock may behave: its offset known to within `max`, and
/// moving by no more than `max` from the start of the run to its end.
#[derive(Clone, Copy, Debug)]
pub struct SkewBound {
    /// The bound.
    pub max: Duration,
}

impl SkewBound {
    /// Why the clock at the end (`end`) of a run measured first as `start`
    /// breaks the bound, or `None`.
    pub fn broken(&self, start: &Offset, end: Option<&Offset>) -> Option<String> {
        let max_ms = self.max.as_secs_f64() * 1e3;
        if start.uncertainty_ms > max_ms {
            return Some(format!(
                "its clock offset is known only to ±{:.1} ms (round trip), above the {max_ms:.0} ms bound",
                start.uncertainty_ms
            ));
        }
        let end = end?;
        let drift = end.offset_ms - start.offset_ms;
        (drift.abs() > max_ms + end.uncertainty_ms).then(|| {
            format!(
                "its clock drifted {drift:+.1} ms against the coordinator's during the run (offset {:+.1} → {:+.1} ms), above the {max_ms:.0} ms bound",
                start.offset_ms, end.offset_ms
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_round_trip_gives_the_offset() {
        // The worker's clock runs 5 ms ahead; the second exchange waited
        // in a queue on the way back.
        let exchanges = [
            Exchange {
                sent_ns: 1_000_000,
                worker_ns: 6_200_000,
                received_ns: 1_400_000,
            },
            Exchange {
                sent_ns: 2_000_000,
                worker_ns: 7_100_000,
                received_ns: 12_000_000,
            },
        ];
        let offset = Offset::of(&exchanges).unwrap();
        assert!((offset.offset_ms - 5.0).abs() < 1e-9, "{offset:?}");
        assert!((offset.uncertainty_ms - 0.2).abs() < 1e-9, "{offset:?}");
        assert_eq!(offset.to_worker(10_000_000), 15_000_000);
        assert_eq!(Offset::of(&[]), None);
    }

    #[test]
    fn drift_and_uncertainty_past_the_bound_are_errors() {
        let bound = SkewBound {
            max: Duration::from_millis(10),
        };
        let at = |offset_ms, uncertainty_ms| Offset {
            offset_ms,
            uncertainty_ms,
        };
        assert_eq!(bound.broken(&at(250.0, 0.1), Some(&at(252.0, 0.1))), None);
        let drift = bound.broken(&at(0.0, 0.1), Some(&at(-30.0, 0.1))).unwrap();
        assert!(drift.contains("drifted -30.0 ms"), "{drift}");
        let vague = bound.broken(&at(0.0, 40.0), None).unwrap();
        assert!(vague.contains("±40.0 ms"), "{vague}");
    }
}
