//! The breaker's history read off the classified requests.
//!
//! From the fault's start, admissions (a call's first arrival) and
//! rejections (a short-circuited request's answer) form one timeline. A
//! run of at least `min_run` rejections with no admission between them is
//! a *rejecting spell*: the breaker was open. Between spells the breaker
//! admitted calls: after a spell, the first admission is a half-open probe.
//!
//! Instants come from per-request and per-arrival times, never buckets:
//! - a breaker opens when a failed call's outcome is recorded, so an
//!   opening from closed is the earliest failed call end between the last
//!   admission before the spell and the spell's first answer (the two
//!   bounds when no call ended in between: their middle);
//! - after a probe, the breaker reopened at the earliest failed end of a
//!   probe call, or closed when probe calls succeeded: at the last of the
//!   stated number of half-open calls, or, that number unknown, at the
//!   first successful probe end followed by another admission;
//! - a rejecting spell after a closing read with no failed call between
//!   them is no opening (a breaker opens from closed only on failures): the
//!   breaker was still half-open, and the closing moves past the spell.

use std::collections::HashMap;

use super::classify::{Class, Classified};
use super::{Episodes, Inference, Input, Probe, secs};

/// Probability budget of a rejecting spell made of chance rejections.
const FALSE_SPELL_BUDGET: f64 = 0.01;

#[derive(Clone, Copy, Debug)]
enum Item {
    Admit { t: f64, key: usize },
    Reject { hi: f64 },
}

impl Item {
    fn t(&self) -> f64 {
        match self {
            Item::Admit { t, .. } => *t,
            Item::Reject { hi } => *hi,
        }
    }
}

/// A run of rejections: `items[from..to]`.
#[derive(Clone, Copy, Debug)]
struct Spell {
    from: usize,
    to: usize,
}

/// How a half-open spell ended.
enum Decision {
    Closed { at: f64, calls: u64 },
    Reopened { at: f64, calls: u64 },
    Undecided { calls: u64 },
}

struct Timeline<'a> {
    items: Vec<Item>,
    /// Every admission, by time (before the fault too).
    admits: Vec<f64>,
    /// Every call end: (instant, failed), by time.
    ends: Vec<(f64, bool)>,
    /// Call end of each request that reached the downstream.
    end_of: HashMap<usize, (f64, bool)>,
    input: &'a Input<'a>,
    stated_calls: Option<u32>,
}

/// Reads the episodes off the classified requests.
pub(super) fn read(input: &Input<'_>, c: &Classified) -> Inference {
    let tl = Timeline::new(input, c);
    let admitted = tl
        .items
        .iter()
        .filter(|i| matches!(i, Item::Admit { .. }))
        .count() as u64;
    let short_at: Vec<f64> = c
        .classes
        .iter()
        .filter_map(|c| match c {
            Class::Short { lo, hi } if *hi >= input.fault_start => Some(*lo),
            _ => None,
        })
        .collect();
    let min_run = min_run(c.baseline_short.unwrap_or(0.0), tl.items.len());
    let spells = spells(&tl.items, min_run);
    let mut inference = Inference {
        episodes: Episodes::default(),
        method: c.method,
        fast_below: c.fast_below,
        short_circuited: short_at.len() as u64,
        short_at,
        admitted,
        min_run,
        evidence: Vec::new(),
        assumptions: c.assumptions.clone(),
    };
    if input.stated.half_open_calls.is_none() && !spells.is_empty() {
        inference.assumptions.push(
            "half-open calls not stated: a probe's success is taken to close the breaker once another call is admitted"
                .into(),
        );
    }
    let mut open = false;
    for (n, spell) in spells.iter().enumerate() {
        let first_hi = tl.items[spell.from].t();
        let stretch_from = match n {
            0 => 0,
            _ => spells[n - 1].to,
        };
        let stretch = &tl.items[stretch_from..spell.from];
        if open {
            match tl.half_open(stretch, true, &mut inference) {
                Decision::Reopened { at, .. } => {
                    inference.episodes.opened_at_s.push(at);
                    continue;
                }
                // Rejections that began before the probes closed it were
                // the half-open breaker turning calls away while its probes
                // ran, not a new opening.
                Decision::Closed { at, .. } if first_hi < at => {
                    open = false;
                    continue;
                }
                Decision::Closed { .. } => {}
                // Without a probe's end to go by, read the spell like an
                // opening from closed.
                Decision::Undecided { .. } => {}
            }
        }
        // No call failed between the last closing read and these
        // rejections: a breaker opens from closed only on failed calls, so
        // it had not closed yet — still half-open, it turned away calls
        // beyond its probes, and closed once the last of them succeeded.
        if let Some(&closed) = inference.episodes.closed_at_s.last()
            && !tl.failed_between(closed, first_hi)
        {
            tl.close_later(closed, spell, &mut inference);
            open = false;
            continue;
        }
        let at = tl.opening(first_hi, &mut inference);
        inference.episodes.opened_at_s.push(at);
        open = true;
    }
    if open {
        let from = spells.last().map_or(0, |s| s.to);
        tl.half_open(&tl.items[from..], false, &mut inference);
    }
    inference
}

/// The shortest rejecting run that chance rejections (as often as in the
/// baseline) would form less than [`FALSE_SPELL_BUDGET`] times among `n`.
fn min_run(baseline_short: f64, n: usize) -> usize {
    if baseline_short <= 0.0 {
        return 2;
    }
    (2..8)
        .find(|k| n as f64 * baseline_short.powi(*k as i32) < FALSE_SPELL_BUDGET)
        .unwrap_or(8)
}

/// Maximal runs of at least `min_run` rejections with no admission between.
fn spells(items: &[Item], min_run: usize) -> Vec<Spell> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        if matches!(items[i], Item::Reject { .. }) {
            let from = i;
            while i < items.len() && matches!(items[i], Item::Reject { .. }) {
                i += 1;
            }
            if i - from >= min_run {
                out.push(Spell { from, to: i });
            }
        } else {
            i += 1;
        }
    }
    out
}

impl<'a> Timeline<'a> {
    fn new(input: &'a Input<'a>, c: &Classified) -> Self {
        let mut items = Vec::new();
        let mut admits = Vec::new();
        let mut ends = Vec::new();
        let mut end_of = HashMap::new();
        for (key, class) in c.classes.iter().enumerate() {
            match *class {
                Class::Reached { admit, end } => {
                    admits.push(admit);
                    ends.push(end);
                    end_of.insert(key, end);
                    if admit >= input.fault_start {
                        items.push(Item::Admit { t: admit, key });
                    }
                }
                Class::Short { hi, .. } if hi >= input.fault_start => {
                    items.push(Item::Reject { hi });
                }
                Class::Short { .. } | Class::Unknown => {}
            }
        }
        items.sort_by(|a, b| a.t().total_cmp(&b.t()));
        admits.sort_by(f64::total_cmp);
        ends.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            items,
            admits,
            ends,
            end_of,
            input,
            stated_calls: input.stated.half_open_calls,
        }
    }

    /// Whether a call that reached the downstream ended failed in `(from, to]`.
    fn failed_between(&self, from: f64, to: f64) -> bool {
        self.ends
            .iter()
            .any(|(t, failed)| *failed && *t > from && *t <= to)
    }

    /// Moves a closing read at `read` past the rejecting `spell` that
    /// followed it: to the last successful call end before the first
    /// admission after the spell (that admission itself when none).
    fn close_later(&self, read: f64, spell: &Spell, inference: &mut Inference) {
        let Some(next) = self.items[spell.to..].iter().find_map(|i| match i {
            Item::Admit { t, .. } => Some(*t),
            Item::Reject { .. } => None,
        }) else {
            return;
        };
        let at = self
            .ends
            .iter()
            .filter(|(t, failed)| !*failed && *t > read && *t <= next)
            .map(|(t, _)| *t)
            .reduce(f64::max)
            .unwrap_or(next);
        if let Some(last) = inference.episodes.closed_at_s.last_mut() {
            *last = at;
        }
        inference.evidence.push(format!(
            "calls were turned away from {} to {} with no call failing since the closing read at {}: still half-open then, closed at {}",
            secs(self.items[spell.from].t()),
            secs(self.items[spell.to - 1].t()),
            secs(read),
            secs(at)
        ));
    }

    /// When the breaker opened from closed, given the first answer of the
    /// rejecting spell: the earliest failed call end after the last
    /// admission before that answer.
    fn opening(&self, first_reject: f64, inference: &mut Inference) -> f64 {
        let last_admit = self.admits[..self.admits.partition_point(|t| *t < first_reject)]
            .last()
            .copied();
        let lo = last_admit.unwrap_or(self.input.fault_start);
        let failed_end = self
            .ends
            .iter()
            .find(|(t, failed)| *failed && *t > lo && *t <= first_reject)
            .map(|(t, _)| *t);
        let (at, how) = match failed_end {
            Some(t) => (t, format!("a failed call ended at {}", secs(t))),
            None => (
                (lo + first_reject) / 2.0,
                "no call ended between them: their middle".to_string(),
            ),
        };
        inference.evidence.push(format!(
            "opened at {}: last call admitted at {}, first request answered without reaching it at {}; {how}",
            secs(at),
            last_admit.map_or_else(|| "none".to_string(), secs),
            secs(first_reject),
        ));
        at
    }

    /// Reads the half-open spell in `stretch` (the items after a rejecting
    /// spell); `reopens`: a rejecting spell follows it. Records the probe
    /// and, when it closed, the closing.
    fn half_open(&self, stretch: &[Item], reopens: bool, inference: &mut Inference) -> Decision {
        let probes: Vec<(f64, usize)> = stretch
            .iter()
            .filter_map(|i| match i {
                Item::Admit { t, key } => Some((*t, *key)),
                Item::Reject { .. } => None,
            })
            .collect();
        let Some(&(first, _)) = probes.first() else {
            return Decision::Undecided { calls: 0 };
        };
        inference.episodes.half_open_at_s.push(first);
        let decision = self.decide(&probes, reopens, inference);
        let (calls, closed, at) = match decision {
            Decision::Closed { at, calls } => (calls, true, Some(at)),
            Decision::Reopened { at, calls } => (calls, false, Some(at)),
            Decision::Undecided { calls } => (calls, false, None),
        };
        inference.episodes.probes.push(Probe {
            at_s: first,
            calls: Some(calls),
            closed,
        });
        if closed && let Some(at) = at {
            inference.episodes.closed_at_s.push(at);
        }
        inference.evidence.push(format!(
            "half-open at {}: {calls} call(s) admitted, then {}",
            secs(first),
            match (closed, at) {
                (true, Some(t)) => format!("closed at {}", secs(t)),
                (false, Some(t)) => format!("a probe failed at {}: open again", secs(t)),
                _ => "undecided when the run ended".to_string(),
            }
        ));
        decision
    }

    fn decide(
        &self,
        probes: &[(f64, usize)],
        reopens: bool,
        inference: &mut Inference,
    ) -> Decision {
        let calls_until = |t: f64| probes.iter().filter(|(a, _)| *a <= t).count() as u64;
        let ends: Vec<(f64, bool)> = {
            let mut e: Vec<(f64, bool)> = probes
                .iter()
                .filter_map(|(_, key)| self.end_of.get(key).copied())
                .collect();
            e.sort_by(|a, b| a.0.total_cmp(&b.0));
            e
        };
        let first_failure = ends.iter().find(|(_, failed)| *failed).map(|(t, _)| *t);
        if let Some(m) = self.stated_calls {
            // The first `m` calls are the permitted ones.
            let permitted: Vec<(f64, bool)> = probes
                .iter()
                .take(m as usize)
                .filter_map(|(_, key)| self.end_of.get(key).copied())
                .collect();
            let all_ended = permitted.len() == (m as usize).min(probes.len());
            let failed = permitted
                .iter()
                .filter(|(_, f)| *f)
                .map(|(t, _)| *t)
                .reduce(f64::min);
            let last = permitted.iter().map(|(t, _)| *t).reduce(f64::max);
            return match (failed, last) {
                (Some(t), _) if reopens => Decision::Reopened {
                    at: t,
                    calls: calls_until(t),
                },
                (None, Some(t)) if all_ended && permitted.len() == m as usize => Decision::Closed {
                    at: t,
                    calls: calls_until(t),
                },
                (Some(_), Some(t)) if probes.len() > m as usize => {
                    inference.assumptions.push(format!(
                        "a half-open probe failed but calls went on being admitted: read as closed at {}",
                        secs(t)
                    ));
                    Decision::Closed {
                        at: t,
                        calls: calls_until(t),
                    }
                }
                _ => Decision::Undecided {
                    calls: probes.len() as u64,
                },
            };
        }
        // Unknown limit: a success followed by another admission closed it.
        let closing = ends
            .iter()
            .filter(|(t, failed)| !*failed && first_failure.is_none_or(|f| *t < f))
            .map(|(t, _)| *t)
            .find(|t| probes.iter().any(|(a, _)| a > t));
        let last_success = ends
            .iter()
            .filter(|(_, failed)| !*failed)
            .map(|(t, _)| *t)
            .reduce(f64::max);
        match (closing, first_failure) {
            (Some(t), _) => Decision::Closed {
                at: t,
                calls: calls_until(t),
            },
            (None, Some(t)) if reopens => Decision::Reopened {
                at: t,
                calls: calls_until(t),
            },
            // Rejections followed, but every probe succeeded: they were
            // turned away while the probes ran; the last success closed it.
            (None, None) if reopens => match last_success {
                Some(t) => Decision::Closed {
                    at: t,
                    calls: calls_until(t),
                },
                None => Decision::Undecided {
                    calls: probes.len() as u64,
                },
            },
            (None, _) => match ends.iter().find(|(_, failed)| !*failed) {
                Some(&(t, _)) if !reopens => {
                    inference.assumptions.push(format!(
                        "the run ended after a probe succeeded at {}: read as closed then",
                        secs(t)
                    ));
                    Decision::Closed {
                        at: t,
                        calls: calls_until(t),
                    }
                }
                _ => Decision::Undecided {
                    calls: probes.len() as u64,
                },
            },
        }
    }
}
