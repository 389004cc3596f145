//! The inference on synthetic request and arrival series, one breaker shape
//! or traffic pattern per test.

use super::*;

/// What happens to one request in a synthetic run.
enum Fate {
    /// A call admitted `admit` after the send, with attempts at these
    /// offsets from the admission (offset, duration, failed); answered
    /// just after its last attempt.
    Call {
        admit: f64,
        attempts: Vec<(f64, f64, bool)>,
    },
    /// Answered after `after` without any call reaching the downstream.
    Reject { after: f64 },
    /// Refused connections only (nothing arrives): answered after `took`.
    Refused { took: f64 },
    /// Admitted, hung; the load's client gave up after `after`.
    Hung { admit: f64, after: f64 },
    /// Never got anywhere; the load's client gave up after `after`.
    Lost { after: f64 },
    /// Not sent (the load paused).
    Skip,
}

/// A call of `n` attempts `gap` apart, each lasting 1 ms.
fn call(admit: f64, n: usize, gap: f64, failed: bool) -> Fate {
    Fate::Call {
        admit,
        attempts: (0..n).map(|k| (k as f64 * gap, 0.001, failed)).collect(),
    }
}

struct Sim {
    requests: Vec<Request>,
    attempts: Vec<Attempt>,
}

impl Sim {
    /// Requests every `spacing` seconds until `end`, fates by `fate(sent)`.
    fn run(spacing: f64, end: f64, mut fate: impl FnMut(f64) -> Fate) -> Self {
        let mut sim = Sim {
            requests: Vec::new(),
            attempts: Vec::new(),
        };
        let mut i = 0u64;
        loop {
            let sent = i as f64 * spacing;
            if sent >= end {
                break;
            }
            i += 1;
            let id = i;
            let request = |done: f64, answered: bool, ok: bool| Request {
                sent,
                done,
                answered,
                ok,
                ids: [id, 0],
            };
            match fate(sent) {
                Fate::Call { admit, attempts } => {
                    let mut last = (sent + admit, false);
                    for (offset, took, failed) in attempts {
                        let at = sent + admit + offset;
                        sim.attempts.push(Attempt {
                            at,
                            end: at + took,
                            id,
                            failed,
                        });
                        last = (at + took, failed);
                    }
                    sim.requests.push(request(last.0 + 0.0002, true, !last.1));
                }
                Fate::Reject { after } => sim.requests.push(request(sent + after, true, false)),
                Fate::Refused { took } => sim.requests.push(request(sent + took, true, false)),
                Fate::Hung { admit, after } => {
                    sim.attempts.push(Attempt {
                        at: sent + admit,
                        end: sent + after,
                        id,
                        failed: true,
                    });
                    sim.requests.push(request(sent + after, false, false));
                }
                Fate::Lost { after } => sim.requests.push(request(sent + after, false, false)),
                Fate::Skip => {}
            }
        }
        sim.attempts.sort_by(|a, b| a.at.total_cmp(&b.at));
        sim
    }

    fn input(&self, fault_start: f64) -> Input<'_> {
        Input {
            requests: &self.requests,
            attempts: &self.attempts,
            fault_start,
            refusing: &[],
            stated: Stated::default(),
        }
    }

    fn infer(&self, fault_start: f64) -> Inference {
        infer(&self.input(fault_start)).expect("conclusive")
    }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn assert_instants(got: &[f64], want: &[f64], what: &str, inference: &Inference) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {got:?} vs {want:?}\n{inference:#?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!(near(*g, *w), "{what}: {got:?} vs {want:?}\n{inference:#?}");
    }
}

/// A gobreaker-like breaker under concurrent calls: a call is a retry loop
/// of 4 failing attempts over 55 ms; it trips when the call sent at 1.08 s
/// ends; a probe at 1.44 s fails; the fault clears at 1.7 s and the probe
/// at 1.80 s succeeds.
fn concurrent() -> Sim {
    Sim::run(0.02, 3.0, |sent| {
        let failing = || Fate::Call {
            admit: 0.001,
            attempts: vec![
                (0.0, 0.001, true),
                (0.010, 0.001, true),
                (0.030, 0.001, true),
                (0.054, 0.001, true),
            ],
        };
        match sent {
            t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
            t if t < 1.14 - 1e-9 => failing(),
            t if (1.44 - 1e-9..1.46 - 1e-9).contains(&t) => failing(),
            t if (1.80 - 1e-9..1.82 - 1e-9).contains(&t) => call(0.001, 1, 0.0, false),
            t if t < 1.82 - 1e-9 => Fate::Reject { after: 0.0005 },
            _ => call(0.001, 1, 0.0, false),
        }
    })
}

#[test]
fn a_concurrent_breaker_opens_when_the_tripping_call_ends_and_reopens_when_its_probe_fails() {
    let sim = concurrent();
    let i = sim.infer(1.0);
    assert_eq!(i.method, Method::Ids);
    // Tripped by the call admitted at 1.081 s (last attempt ends 1.136 s);
    // the probe admitted at 1.441 s failed at 1.496 s.
    assert_instants(&i.episodes.opened_at_s, &[1.136, 1.496], "opened", &i);
    assert_instants(&i.episodes.half_open_at_s, &[1.441, 1.801], "half-open", &i);
    // Limit unknown: the success at 1.802 s followed by another admission.
    assert_instants(&i.episodes.closed_at_s, &[1.802], "closed", &i);
    let probes: Vec<(u64, bool)> = i
        .episodes
        .probes
        .iter()
        .map(|p| (p.calls.unwrap_or(0), p.closed))
        .collect();
    assert_eq!(probes, [(1, false), (1, true)]);
}

#[test]
fn a_stated_half_open_limit_closes_after_that_many_successful_calls() {
    let sim = concurrent();
    let mut input = sim.input(1.0);
    input.stated.half_open_calls = Some(3);
    let i = infer(&input).expect("conclusive");
    // Probes at 1.801, 1.821, 1.841 s: the third ends at 1.842 s.
    assert_instants(&i.episodes.closed_at_s, &[1.842], "closed", &i);
    assert_eq!(i.episodes.probes[1].calls, Some(3));
}

/// pybreaker: the guarded call holds the breaker's lock, so calls queue;
/// 5 consecutive failures open it for 1 s; a trial after that fails.
fn serialised(call_s: f64, fault_from: f64) -> (Sim, Vec<f64>) {
    let mut free_at = 0.0f64;
    let mut failures = 0;
    let mut open_until: Option<f64> = None;
    let mut trips = Vec::new();
    let sim = Sim::run(0.02, 5.0, |sent| {
        let start = sent.max(free_at);
        if start - sent > 2.0 {
            return Fate::Lost { after: 2.0 };
        }
        if let Some(until) = open_until
            && start < until
        {
            free_at = start + 0.0002;
            return Fate::Reject {
                after: start - sent + 0.0002,
            };
        }
        if start < fault_from {
            free_at = start + 0.002;
            return call(start - sent, 1, 0.0, false);
        }
        // A failing retry loop: 3 attempts 0.1 × call_s apart.
        free_at = start + call_s + 0.0002;
        failures += 1;
        if failures >= 5 || open_until.is_some() {
            let trip = start + call_s;
            trips.push(trip);
            open_until = Some(trip + 1.0);
        }
        call(start - sent, 3, call_s / 2.0 - 0.0005, true)
    });
    (sim, trips)
}

#[test]
fn calls_serialised_behind_a_lock_are_not_an_open_breaker_until_it_trips() {
    let (sim, trips) = serialised(0.2, 1.0);
    let i = sim.infer(1.0);
    assert!(trips.len() >= 2, "{trips:?}");
    // The lock makes every gap between calls silent; only the trip opens it.
    assert!(
        near(i.episodes.opened_at_s[0], trips[0]),
        "{trips:?}\n{i:#?}"
    );
    for (got, want) in i.episodes.opened_at_s.iter().zip(&trips) {
        assert!((got - want).abs() < 0.002, "{trips:?}\n{i:#?}");
    }
    assert_eq!(i.episodes.probes[0].calls, Some(1));
}

#[test]
fn calls_that_hang_without_a_client_timeout_are_not_an_open_breaker() {
    let sim = Sim::run(0.02, 4.0, |sent| match sent {
        t if t < 1.0 => call(0.001, 1, 0.0, false),
        _ => Fate::Hung {
            admit: 0.001,
            after: 2.0,
        },
    });
    let i = sim.infer(1.0);
    assert!(i.episodes.opened_at_s.is_empty(), "{i:#?}");
    assert_eq!(i.short_circuited, 0);
}

#[test]
fn a_hang_behind_a_lock_is_not_an_open_breaker_either() {
    // The first call after the fault hangs holding the lock; every later
    // request waits for it until the load gives up.
    let sim = Sim::run(0.02, 4.0, |sent| match sent {
        t if t < 1.0 => call(0.001, 1, 0.0, false),
        t if t < 1.01 => Fate::Hung {
            admit: 0.001,
            after: 2.0,
        },
        _ => Fate::Lost { after: 2.0 },
    });
    let i = sim.infer(1.0);
    assert_eq!(i.episodes, Episodes::default(), "{i:#?}");
}

#[test]
fn a_paused_load_is_not_an_open_breaker() {
    // No breaker: every call is attempted and fails; the load pauses
    // between 1.5 s and 2.5 s, leaving the downstream silent.
    let sim = Sim::run(0.02, 4.0, |sent| match sent {
        t if t < 1.0 => call(0.001, 1, 0.0, false),
        t if (1.5..2.5).contains(&t) => Fate::Skip,
        _ => call(0.001, 4, 0.01, true),
    });
    let i = sim.infer(1.0);
    assert_eq!(i.episodes, Episodes::default(), "{i:#?}");
}

#[test]
fn a_retry_storm_opens_once_and_its_retries_are_not_admissions() {
    // 11 attempts without delay per call; the breaker trips after the call
    // sent at 1.10 s; the run ends before the open timeout.
    let sim = Sim::run(0.02, 2.0, |sent| match sent {
        t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
        t if t < 1.11 => call(0.001, 11, 0.0015, true),
        _ => Fate::Reject { after: 0.0004 },
    });
    let i = sim.infer(1.0);
    // The call admitted at 1.101 s: its 11th attempt ends at 1.117 s.
    assert_instants(&i.episodes.opened_at_s, &[1.117], "opened", &i);
    assert_eq!(i.admitted, 6);
    assert!(i.episodes.half_open_at_s.is_empty());
}

#[test]
fn an_unlimited_half_open_counts_every_call_it_let_through() {
    // Open from 1.1 s; after 0.3 s every request is admitted until the
    // first probe's failure (55 ms later) reopens it.
    let sim = Sim::run(0.005, 2.0, |sent| match sent {
        t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
        t if t < 1.1 - 1e-9 => call(0.0, 2, 0.054, true),
        t if t < 1.4 - 1e-9 => Fate::Reject { after: 0.0003 },
        t if t < 1.455 - 1e-9 => call(0.0, 2, 0.054, true),
        _ => Fate::Reject { after: 0.0003 },
    });
    let i = sim.infer(1.0);
    assert_eq!(i.episodes.opened_at_s.len(), 2, "{i:#?}");
    // Probes admitted at 1.400 … 1.450 s; the first ends at 1.455 s.
    assert!(near(i.episodes.opened_at_s[1], 1.455), "{i:#?}");
    assert_eq!(i.episodes.probes[0].calls, Some(11), "{i:#?}");
}

#[test]
fn a_probe_whose_wait_spans_the_fault_end_closes_the_breaker() {
    // Open at ~1.136 s; the fault clears at 1.2 s while the breaker waits;
    // the probe at 1.5 s succeeds.
    let sim = Sim::run(0.02, 2.5, |sent| match sent {
        t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
        t if t < 1.14 - 1e-9 => call(0.001, 4, 0.018, true),
        t if t < 1.5 - 1e-9 => Fate::Reject { after: 0.0005 },
        _ => call(0.001, 1, 0.0, false),
    });
    let i = sim.infer(1.0);
    assert_eq!(i.episodes.opened_at_s.len(), 1, "{i:#?}");
    assert_instants(&i.episodes.half_open_at_s, &[1.501], "half-open", &i);
    assert_instants(&i.episodes.closed_at_s, &[1.502], "closed", &i);
    assert!(i.episodes.probes[0].closed);
}

#[test]
fn requests_turned_away_while_successful_probes_run_are_no_reopening() {
    // Open from ~1.136 s; half-open at 1.44 s admits 3 probes 20 ms apart,
    // each a 55 ms retry loop whose last attempt succeeds (the fault
    // cleared meanwhile); requests between them are turned away; the
    // third probe's success closes it at 1.536 s.
    let sim = Sim::run(0.02, 2.5, |sent| {
        let probe = || Fate::Call {
            admit: 0.001,
            attempts: vec![
                (0.0, 0.001, true),
                (0.02, 0.001, true),
                (0.054, 0.001, false),
            ],
        };
        match sent {
            t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
            t if t < 1.14 - 1e-9 => call(0.001, 4, 0.018, true),
            t if t < 1.44 - 1e-9 => Fate::Reject { after: 0.0005 },
            t if t < 1.50 - 1e-9 => probe(),
            t if t < 1.54 - 1e-9 => Fate::Reject { after: 0.0005 },
            _ => call(0.001, 1, 0.0, false),
        }
    });
    let i = sim.infer(1.0);
    assert_eq!(i.episodes.opened_at_s.len(), 1, "{i:#?}");
    assert_instants(&i.episodes.closed_at_s, &[1.536], "closed", &i);
    assert_eq!(i.episodes.probes[0].calls, Some(3), "{i:#?}");
}

#[test]
fn rejections_between_single_successful_probes_are_no_reopening() {
    // Open from ~1.136 s; the fault is over. Half-open from 1.44 s, the
    // breaker lets one probe through every 60 ms (1.44, 1.50, 1.56 s), each
    // a quick success, and turns the requests between them away; the third
    // success closes it. With the limit unknown, the first success read as
    // a closing; the rejections after it are not a new opening, since no
    // call failed in between.
    let sim = Sim::run(0.02, 2.5, |sent| {
        let probe = (1.44 - 1e-9..1.58).contains(&sent)
            && ((sent - 1.44) / 0.06 - ((sent - 1.44) / 0.06).round()).abs() < 1e-6;
        match sent {
            t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
            t if t < 1.14 - 1e-9 => call(0.001, 4, 0.018, true),
            _ if probe => call(0.001, 1, 0.0, false),
            t if t < 1.58 - 1e-9 => Fate::Reject { after: 0.0005 },
            _ => call(0.001, 1, 0.0, false),
        }
    });
    let i = sim.infer(1.0);
    assert_eq!(i.episodes.opened_at_s.len(), 1, "{i:#?}");
    assert_eq!(i.episodes.closed_at_s.len(), 1, "{i:#?}");
    let closed = i.episodes.closed_at_s[0];
    assert!((1.44..=1.562).contains(&closed), "closed at {closed}");
    assert!(i.episodes.probes.iter().all(|p| p.closed), "{i:#?}");
}

/// Refused connections from 1.0 s to 2.0 s: attempted calls take
/// `attempted` (their retry sleeps); from 1.14 s the breaker rejects; the
/// probe at 1.44 s is attempted; from 2.0 s calls reach it again.
fn refused(attempted: f64, rejected_after: f64) -> Sim {
    Sim::run(0.02, 2.5, move |sent| match sent {
        t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
        t if t < 1.14 - 1e-9 => Fate::Refused { took: attempted },
        t if (1.44 - 1e-9..1.46 - 1e-9).contains(&t) => Fate::Refused { took: attempted },
        t if t < 2.0 - 1e-9 => Fate::Reject {
            after: rejected_after,
        },
        _ => call(0.001, 1, 0.0, false),
    })
}

#[test]
fn refused_connections_are_told_apart_by_a_gap_in_answer_times() {
    let sim = refused(0.06, 0.0005);
    let mut input = sim.input(1.0);
    input.refusing = &[(1.0, 2.0)];
    let i = infer(&input).expect("a clear gap");
    let (threshold, stated) = i.fast_below.expect("split");
    assert!(!stated && threshold > 0.0005 && threshold < 0.06);
    // The call sent at 1.08 s was answered (and counted) at 1.14 s; the
    // probe sent at 1.44 s failed at 1.50 s.
    assert_instants(&i.episodes.opened_at_s, &[1.14, 1.50], "opened", &i);
    assert_instants(&i.episodes.half_open_at_s, &[1.44, 2.001], "half-open", &i);
}

#[test]
fn refused_connections_without_a_gap_need_a_stated_threshold() {
    // No retry sleeps: a refused attempt costs 1.5 ms, a rejection 1 ms.
    let sim = refused(0.0015, 0.001);
    let mut input = sim.input(1.0);
    input.refusing = &[(1.0, 2.0)];
    let why = infer(&input).expect_err("cannot be told apart");
    assert!(why.contains("fast_below"), "{why}");
    input.stated.fast_below = Some(0.00125);
    let i = infer(&input).expect("stated");
    assert_eq!(i.fast_below, Some((0.00125, true)));
    assert_eq!(i.episodes.opened_at_s.len(), 2, "{i:#?}");
}

#[test]
fn fast_refusals_with_a_few_slow_ones_are_no_open_breaker() {
    // No breaker, no retry: a refused call fails in 0.4 ms, but one in 25
    // waits 5 ms for the scheduler. The gap between the two is no open
    // breaker: the first fast answer came before any call had failed.
    let mut n = 0;
    let sim = Sim::run(0.02, 2.5, move |sent| match sent {
        t if t < 1.0 - 1e-9 => call(0.002, 1, 0.0, false),
        t if t < 2.0 - 1e-9 => {
            n += 1;
            let took = if n % 25 == 7 { 0.005 } else { 0.0004 };
            Fate::Refused { took }
        }
        _ => call(0.002, 1, 0.0, false),
    });
    let mut input = sim.input(1.0);
    input.refusing = &[(1.0, 2.0)];
    let why = infer(&input).expect_err("refused calls of one kind");
    assert!(why.contains("before 2 calls had failed"), "{why}");
}

#[test]
fn refused_calls_all_slower_than_any_rejection_mean_it_never_opened() {
    // No breaker: every call pays its retry sleeps, far over the baseline.
    let sim = Sim::run(0.02, 2.5, |sent| match sent {
        t if t < 1.0 - 1e-9 => call(0.001, 1, 0.0, false),
        t if t < 2.0 - 1e-9 => Fate::Refused { took: 0.06 },
        _ => call(0.001, 1, 0.0, false),
    });
    let mut input = sim.input(1.0);
    input.refusing = &[(1.0, 2.0)];
    let i = infer(&input).expect("one slow cluster");
    assert!(i.episodes.opened_at_s.is_empty(), "{i:#?}");
    assert!(i.assumptions.iter().any(|a| a.contains("attempted")));
}

#[test]
fn a_journey_that_does_not_need_the_downstream_cannot_be_judged() {
    // Nothing reaches the downstream even in the baseline.
    let sim = Sim::run(0.02, 2.0, |_| Fate::Reject { after: 0.001 });
    let why = infer(&sim.input(1.0)).expect_err("no baseline match");
    assert!(why.contains("baseline"), "{why}");
}

#[test]
fn ids_the_sut_does_not_forward_fall_back_to_timing() {
    let mut sim = concurrent();
    for a in &mut sim.attempts {
        a.id += 1_000_000;
    }
    let i = sim.infer(1.0);
    assert_eq!(i.method, Method::Timing);
    assert!(i.assumptions.iter().any(|a| a.contains("timing")), "{i:#?}");
    // Matched by time the first opening is still found.
    assert!((i.episodes.opened_at_s[0] - 1.136).abs() < 0.03, "{i:#?}");
}

#[test]
fn scattered_rejections_like_the_baselines_are_no_open_breaker() {
    // One request in 10 is answered without a call (e.g. a cache), before
    // and during the fault; calls keep being admitted.
    let sim = Sim::run(0.01, 3.0, |sent| {
        let n = (sent * 100.0).round() as u64;
        match (n % 10, sent) {
            (0, _) => Fate::Reject { after: 0.001 },
            (_, t) if t < 1.0 => call(0.001, 1, 0.0, false),
            _ => call(0.001, 2, 0.002, true),
        }
    });
    let i = sim.infer(1.0);
    assert!(i.min_run > 2, "{i:#?}");
    assert!(i.episodes.opened_at_s.is_empty(), "{i:#?}");
}
