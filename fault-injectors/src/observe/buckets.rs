//! Arrivals counted in fixed time buckets, by route and outcome, in a ring of
//! bounded length: memory depends on the ring's capacity, never on how many
//! requests arrived.

use std::collections::VecDeque;

use serde::Serialize;

use crate::decide::Outcome;

/// The counts of one time bucket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bucket {
    pub(crate) index: u64,
    /// (route id, outcome, count); a handful of cells per bucket, so a linear
    /// scan beats a map.
    pub(crate) cells: Vec<(u16, Outcome, u32)>,
    pub(crate) delayed: u32,
    /// Arrivals that carried business ids.
    pub(crate) with_ids: u32,
    /// Of those, arrivals with an id never seen before: new calls, not retries.
    pub(crate) fresh: u32,
}

/// What one arrival adds to its bucket besides its route and outcome.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Marks {
    pub(crate) delayed: bool,
    pub(crate) with_ids: bool,
    pub(crate) fresh: bool,
}

/// The ring of buckets.
#[derive(Debug)]
pub(crate) struct Buckets {
    capacity: usize,
    ring: VecDeque<Bucket>,
    current: Option<Bucket>,
}

impl Buckets {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ring: VecDeque::new(),
            current: None,
        }
    }

    /// Counts one arrival in bucket `index`. Indices never go backwards
    /// because the caller reads the clock under the same lock.
    pub(crate) fn record(&mut self, index: u64, route: u16, outcome: Outcome, marks: Marks) {
        if self.current.as_ref().is_some_and(|c| c.index != index)
            && let Some(closed) = self.current.take()
        {
            if self.ring.len() == self.capacity {
                self.ring.pop_front();
            }
            self.ring.push_back(closed);
        }
        let bucket = self.current.get_or_insert_with(|| Bucket {
            index,
            ..Bucket::default()
        });
        match bucket
            .cells
            .iter_mut()
            .find(|(r, o, _)| *r == route && *o == outcome)
        {
            Some(cell) => cell.2 += 1,
            None => bucket.cells.push((route, outcome, 1)),
        }
        bucket.delayed += u32::from(marks.delayed);
        bucket.with_ids += u32::from(marks.with_ids);
        bucket.fresh += u32::from(marks.fresh);
    }

    /// Buckets with index >= `from`, the still-open one last.
    pub(crate) fn since(&self, from: u64) -> impl Iterator<Item = (&Bucket, bool)> {
        let start = self.ring.partition_point(|b| b.index < from);
        self.ring.range(start..).map(|b| (b, false)).chain(
            self.current
                .iter()
                .filter(move |b| b.index >= from)
                .map(|b| (b, true)),
        )
    }

    /// Number of buckets held (closed + open).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ring.len() + usize::from(self.current.is_some())
    }
}

/// One bucket as reported.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct BucketReport {
    /// Bucket number: it covers `[index × width, (index+1) × width)` from the
    /// clock's origin.
    pub index: u64,
    /// Start of the bucket, seconds from the origin.
    pub start_s: f64,
    /// True for the bucket still being filled: read it again later.
    pub open: bool,
    /// Arrivals by route and outcome.
    pub counts: Vec<CellReport>,
    /// How many of them were delayed by a latency fault.
    pub delayed: u32,
    /// How many carried business ids (`order_no`, ...).
    #[serde(default)]
    pub with_ids: u32,
    /// Of those, how many carried an id never seen before: new calls rather
    /// than retries of earlier ones.
    #[serde(default)]
    pub fresh: u32,
}

impl BucketReport {
    /// All arrivals in the bucket.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(c.count)).sum()
    }
}

/// Arrivals of one route with one outcome in one bucket.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct CellReport {
    /// Route name (see [`crate::observe::route_key`]).
    pub route: String,
    /// Outcome: `served`, `status_503`, `reset`, ...
    pub outcome: String,
    /// Number of arrivals.
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_only_the_newest_buckets() {
        let mut b = Buckets::new(3);
        for index in 0..10 {
            b.record(index, 0, Outcome::Served, Marks::default());
        }
        assert_eq!(b.len(), 4); // 3 closed + the open one
        let indices: Vec<u64> = b.since(0).map(|(b, _)| b.index).collect();
        assert_eq!(indices, vec![6, 7, 8, 9]);
        let open: Vec<bool> = b.since(8).map(|(_, open)| open).collect();
        assert_eq!(open, vec![false, true]);
    }

    #[test]
    fn cells_count_by_route_and_outcome() {
        let mut b = Buckets::new(10);
        let delayed = Marks {
            delayed: true,
            ..Marks::default()
        };
        let fresh = Marks {
            with_ids: true,
            fresh: true,
            ..Marks::default()
        };
        b.record(5, 0, Outcome::Served, fresh);
        b.record(5, 0, Outcome::Served, delayed);
        b.record(5, 1, Outcome::Status(503), Marks::default());
        let (bucket, open) = b.since(0).next().expect("one bucket");
        assert!(open);
        assert_eq!(
            bucket.cells,
            vec![(0, Outcome::Served, 2), (1, Outcome::Status(503), 1)]
        );
        assert_eq!((bucket.delayed, bucket.with_ids, bucket.fresh), (1, 1, 1));
    }
}
