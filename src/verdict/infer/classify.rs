//! Each upstream request, classified against the downstream's arrivals:
//! reached, short-circuited, or unknown (see the module above).

use std::collections::HashMap;

use super::{Input, Method, Request, secs};

/// Baseline requests may be answered without reaching the downstream at
/// most this often, or the journey does not need it on every request and a
/// short-circuit cannot be told from a request that never needed it.
const MAX_BASELINE_SHORT: f64 = 0.2;

/// Answer times must differ at least this much (ratio) across the gap that
/// separates attempted calls from rejected ones in a refuse outage.
const MIN_GAP_RATIO: f64 = 4.0;

/// Failed calls that must have ended before a breaker can reject. Every
/// library counts a failure when its call ends, and none opens on its first
/// failure by default (gobreaker: more than 5 consecutive, pybreaker
/// `fail_max` 5, resilience4j a minimum number of calls, opossum a share of
/// its rolling window, Envoy 5 consecutive 5xx); a breaker set to open on
/// one failure can state `fast_below`.
const MIN_FAILURES_BEFORE_REJECTING: usize = 2;

/// What one request was, for the downstream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Class {
    /// A call of it reached the downstream: admitted at `admit`, its last
    /// attempt ended at `end` (and failed or not).
    Reached {
        /// When the breaker admitted it (its first arrival).
        admit: f64,
        /// When its last attempt ended, and whether that attempt failed.
        end: (f64, bool),
    },
    /// The SUT answered it without a call reaching the downstream, at some
    /// instant in `[lo, hi]`.
    Short {
        /// It was sent then.
        lo: f64,
        /// It was answered then.
        hi: f64,
    },
    /// No answer and no arrival: says nothing.
    Unknown,
}

/// The requests, classified (same order as [`Input::requests`]).
#[derive(Clone, Debug)]
pub struct Classified {
    /// One class per request.
    pub classes: Vec<Class>,
    /// How requests were matched with arrivals.
    pub method: Method,
    /// Refuse outages: the threshold used, and whether it was stated.
    pub fast_below: Option<(f64, bool)>,
    /// Share of baseline requests answered without reaching the
    /// downstream (None without baseline requests).
    pub baseline_short: Option<f64>,
    /// What was assumed.
    pub assumptions: Vec<String>,
}

/// Classifies every request, choosing the matching method the baseline
/// supports.
pub(super) fn classify(input: &Input<'_>) -> Result<Classified, String> {
    let carries_ids =
        input.requests.iter().any(|r| r.ids != [0, 0]) && input.attempts.iter().any(|a| a.id != 0);
    let mut tried = Vec::new();
    for method in [Method::Ids, Method::Timing] {
        if method == Method::Ids && !carries_ids {
            continue;
        }
        let classes = match_arrivals(input, method);
        let share = baseline_short(input, &classes);
        if share.is_none_or(|s| s < MAX_BASELINE_SHORT) {
            let mut assumptions = Vec::new();
            if share.is_none() {
                assumptions.push(
                    "no baseline request before the fault: the journey is assumed to need the downstream on every request"
                        .into(),
                );
            }
            if method == Method::Timing && carries_ids {
                assumptions.push(format!(
                    "ids did not match ({:.0}% of baseline requests had none of their ids arrive): matched by timing",
                    tried.first().map_or(0.0, |(_, s): &(Method, f64)| s * 100.0)
                ));
            }
            let mut classified = Classified {
                classes,
                method,
                fast_below: None,
                baseline_short: share,
                assumptions,
            };
            split_refused(input, &mut classified)?;
            return Ok(classified);
        }
        tried.push((method, share.unwrap_or(0.0)));
    }
    let shares: Vec<String> = tried
        .iter()
        .map(|(m, s)| format!("{:.0}% matched by {m:?}", s * 100.0).to_lowercase())
        .collect();
    Err(format!(
        "{} of the baseline's answered requests never reached the downstream ({}), so a request the breaker short-circuited cannot be told from one that did not need it",
        shares
            .first()
            .map_or("most".to_string(), |_| "too many".to_string()),
        if shares.is_empty() {
            "no arrivals to match".to_string()
        } else {
            shares.join(", ")
        }
    ))
}

/// Classes from arrivals alone: by id, or by arrivals inside each
/// request's lifetime.
fn match_arrivals(input: &Input<'_>, method: Method) -> Vec<Class> {
    let mut by_id: HashMap<u64, Vec<usize>> = HashMap::new();
    if method == Method::Ids {
        for (i, a) in input.attempts.iter().enumerate() {
            if a.id != 0 {
                by_id.entry(a.id).or_default().push(i);
            }
        }
    }
    input
        .requests
        .iter()
        .map(|r| {
            let mut seen = match method {
                // Ids are unique to a request: every arrival carrying one
                // of them is a call of it, whenever it came.
                Method::Ids => r
                    .ids
                    .iter()
                    .filter(|id| **id != 0)
                    .filter_map(|id| by_id.get(id))
                    .flatten()
                    .copied()
                    .collect::<Vec<usize>>(),
                Method::Timing => {
                    let from = input.attempts.partition_point(|a| a.at < r.sent);
                    let to = input.attempts.partition_point(|a| a.at <= r.done);
                    (from..to.max(from)).collect()
                }
            };
            seen.sort_unstable();
            class_of(r, &seen, input)
        })
        .collect()
}

fn class_of(r: &Request, seen: &[usize], input: &Input<'_>) -> Class {
    let attempts = seen.iter().map(|i| &input.attempts[*i]);
    match (
        attempts.clone().map(|a| a.at).reduce(f64::min),
        attempts.reduce(|a, b| if b.at >= a.at { b } else { a }),
    ) {
        (Some(admit), Some(last)) => Class::Reached {
            admit,
            end: (last.end, last.failed),
        },
        _ if r.answered => Class::Short {
            lo: r.sent,
            hi: r.done,
        },
        _ => Class::Unknown,
    }
}

/// Share of the baseline's answered requests that reached nothing.
fn baseline_short(input: &Input<'_>, classes: &[Class]) -> Option<f64> {
    let (mut answered, mut short) = (0u64, 0u64);
    for (r, c) in input.requests.iter().zip(classes) {
        if r.sent >= input.fault_start || !r.answered || refused(input, r) {
            continue;
        }
        answered += 1;
        short += u64::from(matches!(c, Class::Short { .. }));
    }
    (answered > 0).then(|| short as f64 / answered as f64)
}

/// Whether the request lived while the downstream refused connections.
fn refused(input: &Input<'_>, r: &Request) -> bool {
    input
        .refusing
        .iter()
        .any(|(from, until)| r.sent < *until && r.done > *from)
}

/// Requests that reached nothing while the downstream refused connections
/// are told apart by answer time: attempted (refused, perhaps retried) or
/// rejected at once.
fn split_refused(input: &Input<'_>, classified: &mut Classified) -> Result<(), String> {
    let candidates: Vec<usize> = input
        .requests
        .iter()
        .zip(&classified.classes)
        .enumerate()
        .filter(|(_, (r, c))| matches!(c, Class::Short { .. }) && refused(input, r))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let took = |i: usize| input.requests[i].done - input.requests[i].sent;
    let mut times: Vec<f64> = candidates.iter().map(|i| took(*i)).collect();
    times.sort_by(f64::total_cmp);
    let mut refuted = None;
    let threshold = match input.stated.fast_below {
        Some(t) => Some((t, true)),
        None => match gap(&times) {
            Some(t) => match fast_before_failures(input, classified, &candidates, t) {
                Some(at) => {
                    refuted = Some(at);
                    None
                }
                None => Some((t, false)),
            },
            None => None,
        },
    };
    let attempted = |i: usize| match threshold {
        Some((t, _)) => took(i) >= t,
        None => true,
    };
    if threshold.is_none() {
        // One speed for every answer: attempted calls only if all of them
        // took clearly longer than the baseline's answers.
        let baseline = baseline_p50(input, classified);
        let slowest_rejection = baseline.map(|b| (4.0 * b).max(b + 0.005));
        match slowest_rejection {
            Some(limit) if times[0] >= limit => classified.assumptions.push(format!(
                "refuse outage: every answer took {} or more, over 4× the baseline's median {}: all were attempted",
                secs(times[0]),
                secs(baseline.unwrap_or_default())
            )),
            _ => {
                let why = match refuted {
                    Some(at) => format!(
                        "; the fast ones cannot all be rejections, one was answered at {} before {MIN_FAILURES_BEFORE_REJECTING} calls had failed",
                        secs(at)
                    ),
                    None => String::new(),
                };
                return Err(format!(
                    "while the downstream refused connections every answer took {} to {}{why}: calls that were attempted (refused) cannot be told from calls the breaker rejected; state `fast_below` for it under [sut.breakers] or expose a breaker gauge",
                    secs(times[0]),
                    secs(times[times.len() - 1])
                ));
            }
        }
    }
    for i in candidates {
        if attempted(i) {
            let r = &input.requests[i];
            classified.classes[i] = Class::Reached {
                admit: r.sent,
                end: (r.done, !r.ok),
            };
        }
    }
    classified.fast_below = threshold;
    Ok(())
}

/// A split at `threshold` read as rejections answers that came before any
/// breaker could have counted enough failures: the answer time of the first
/// such, or `None` when the split is possible. Answer times of refused
/// calls vary (scheduling, a slow connect), so a gap alone can cut one
/// population in two; a closed breaker admits calls until failures end.
fn fast_before_failures(
    input: &Input<'_>,
    classified: &Classified,
    candidates: &[usize],
    threshold: f64,
) -> Option<f64> {
    let took = |i: usize| input.requests[i].done - input.requests[i].sent;
    let first_rejection = candidates
        .iter()
        .filter(|i| took(**i) < threshold)
        .map(|i| input.requests[*i].done)
        .min_by(f64::total_cmp)?;
    let mut attempted = vec![false; input.requests.len()];
    for i in candidates.iter().filter(|i| took(**i) >= threshold) {
        attempted[*i] = true;
    }
    let failures = input
        .requests
        .iter()
        .zip(&classified.classes)
        .enumerate()
        .filter_map(|(i, (r, c))| match c {
            Class::Reached {
                end: (end, true), ..
            } => Some(*end),
            _ if attempted[i] && !r.ok => Some(r.done),
            _ => None,
        })
        .filter(|end| *end <= first_rejection)
        .count();
    (failures < MIN_FAILURES_BEFORE_REJECTING).then_some(first_rejection)
}

/// The widest split of sorted answer times into a slow and a fast group
/// (two answers each at least) whose ends differ by [`MIN_GAP_RATIO`]: the
/// geometric middle of the gap.
fn gap(sorted: &[f64]) -> Option<f64> {
    (2..sorted.len().saturating_sub(1))
        .map(|i| (sorted[i - 1].max(1e-6), sorted[i]))
        .filter(|(fast, slow)| slow / fast >= MIN_GAP_RATIO)
        .max_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)))
        .map(|(fast, slow)| (fast * slow).sqrt())
}

/// Median answer time of the baseline's requests that reached the
/// downstream and succeeded.
fn baseline_p50(input: &Input<'_>, classified: &Classified) -> Option<f64> {
    let mut times: Vec<f64> = input
        .requests
        .iter()
        .zip(&classified.classes)
        .filter(|(r, c)| r.sent < input.fault_start && r.ok && matches!(c, Class::Reached { .. }))
        .map(|(r, _)| r.done - r.sent)
        .collect();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied()
}
