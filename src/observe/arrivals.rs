//! Every arrival at every injector, drained while the run goes on into
//! `arrivals/<injector>.bin` in the run folder, on the run's clock: the
//! per-arrival evidence breaker inference correlates with the upstream
//! requests (see `verdict::infer`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fault_injectors::decide::Outcome;
use reference_stack::Downstream;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::platform::downstream_named;
use crate::spill::{Record, Spill, le};
use crate::stack::Stack;

/// How often the injectors' records are paged out.
const EVERY: Duration = Duration::from_millis(250);

/// One arrival at an injector, on the run's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The injector's arrival number.
    pub seq: u64,
    /// When it arrived, µs from the load start.
    pub at_us: i64,
    /// When the injector answered it, or the caller went away.
    pub end_us: i64,
    /// `fault_injectors::id_hash` of the business id it carried, 0: none.
    pub id: u64,
    /// How it ended (`fault_injectors::decide::Outcome::code`).
    pub outcome: u16,
    /// False when the caller gave up before the answer.
    pub answered: bool,
}

impl Arrival {
    /// Whether the caller saw this attempt fail: an injected fault, or no
    /// answer before it gave up.
    pub fn failed(&self) -> bool {
        !self.answered || !Outcome::from_code(self.outcome).is_some_and(Outcome::is_served)
    }

    /// Arrival instant in seconds.
    pub fn at_s(&self) -> f64 {
        self.at_us as f64 / 1e6
    }

    /// End instant in seconds.
    pub fn end_s(&self) -> f64 {
        self.end_us as f64 / 1e6
    }
}

impl Record for Arrival {
    const SIZE: usize = 40;

    fn encode(&self, out: &mut [u8]) {
        le::put_u64(out, 0, self.seq);
        le::put_u64(out, 8, self.at_us as u64);
        le::put_u64(out, 16, self.end_us as u64);
        le::put_u64(out, 24, self.id);
        le::put_u16(out, 32, self.outcome);
        out[34] = u8::from(self.answered);
        out[35..40].fill(0);
    }

    fn decode(b: &[u8]) -> Self {
        Self {
            seq: le::u64_at(b, 0),
            at_us: le::u64_at(b, 8) as i64,
            end_us: le::u64_at(b, 16) as i64,
            id: le::u64_at(b, 24),
            outcome: le::u16_at(b, 32),
            answered: b[34] != 0,
        }
    }
}

/// Where a run's arrival records went.
#[derive(Clone, Debug, Default)]
pub struct ArrivalFiles {
    /// One file per injector.
    pub paths: BTreeMap<Downstream, PathBuf>,
    /// Records an injector lost because they were not read in time.
    pub dropped: BTreeMap<Downstream, u64>,
}

impl ArrivalFiles {
    /// The arrivals at `downstream` from `from_s` on (seconds on the run's
    /// clock), in arrival order.
    pub fn read(&self, downstream: Downstream, from_s: f64) -> std::io::Result<Vec<Arrival>> {
        let Some(path) = self.paths.get(&downstream) else {
            return Ok(Vec::new());
        };
        let from_us = (from_s * 1e6) as i64;
        let mut arrivals = crate::spill::read::<Arrival>(path, |a| a.at_us >= from_us)?;
        arrivals.sort_by_key(|a| (a.at_us, a.seq));
        Ok(arrivals)
    }
}

/// Pages every injector's arrival records into `dir/<injector>.bin` until
/// `stop` fires, then once more.
pub async fn drain(
    stack: &Stack,
    clock: RunClock,
    dir: &Path,
    stop: CancellationToken,
) -> ArrivalFiles {
    let shift_us = (clock.injector_to_run(0.0) * 1e6).round() as i64;
    let mut lanes = Vec::new();
    let mut files = ArrivalFiles::default();
    for (i, injector) in stack.injectors.iter().enumerate() {
        let Some(downstream) = downstream_named(injector.name()) else {
            continue;
        };
        let path = dir.join(format!("{}.bin", injector.name()));
        match Spill::<Arrival>::create(&path) {
            Ok(spill) => {
                files.paths.insert(downstream, path);
                lanes.push((i, downstream, spill, 0u64));
            }
            Err(e) => tracing::error!("cannot write {}: {e}", path.display()),
        }
    }
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = stop.is_cancelled();
        for (i, downstream, spill, cursor) in &mut lanes {
            let injector = &stack.injectors[*i];
            let Some(page) = injector.arrivals_since(*cursor).await else {
                continue;
            };
            let shift = shift_us + injector.offset_us();
            for r in &page.records {
                let at_us = i64::try_from(r.at_us)
                    .unwrap_or(i64::MAX)
                    .saturating_add(shift);
                spill.push(Arrival {
                    seq: r.seq,
                    at_us,
                    end_us: at_us.saturating_add(i64::try_from(r.took_us).unwrap_or(i64::MAX)),
                    id: r.id,
                    outcome: r.outcome,
                    answered: r.answered,
                });
            }
            spill.flush();
            *cursor = page.next;
            files.dropped.insert(*downstream, page.dropped);
        }
        if last {
            return files;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_round_trip_and_know_when_they_failed() {
        let a = Arrival {
            seq: 9,
            at_us: -1_500,
            end_us: 2_000,
            id: 42,
            outcome: 503,
            answered: true,
        };
        let mut buf = [0u8; Arrival::SIZE];
        a.encode(&mut buf);
        assert_eq!(Arrival::decode(&buf), a);
        assert!(a.failed());
        let served = Arrival { outcome: 0, ..a };
        assert!(!served.failed());
        assert!(
            Arrival {
                answered: false,
                ..served
            }
            .failed(),
            "abandoned by its caller"
        );
    }
}
