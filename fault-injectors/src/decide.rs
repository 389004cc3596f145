//! Per-request fault decisions.
//!
//! Every decision is a pure function of (injector seed, request key,
//! program, instant, request): each request gets its own RNG seeded from the
//! injector seed and its key. The key is the request's identity where it
//! has one — the business id its body carries (`order_no`, `payment_no`, …)
//! and its attempt number at this injector — so a request draws the same
//! fault whatever else arrives around it; a request without an identity is
//! keyed by its arrival number, and the same arrival order gives the same
//! decisions. Either way no lock is taken on the hot path.

use std::fmt;
use std::time::{Duration, Instant};

use http::Method;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault::FaultKind;
use crate::program::Program;

/// What the injector does with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Pass it to the stand-in or upstream and return its answer.
    Serve,
    /// Answer this status without asking the downstream.
    Status {
        /// The status.
        code: u16,
        /// Body override.
        body: Option<String>,
    },
    /// Reset the connection (before the response, or mid-body).
    Reset {
        /// Cut in the middle of the body.
        mid_response: bool,
    },
    /// Hold the request while the fault with this id stays on.
    Hang {
        /// The hang fault's id.
        fault_id: String,
    },
    /// Close the connection without a response.
    EmptyResponse,
    /// Serve with an empty body.
    EmptyBody,
    /// Serve with a body that is not JSON.
    MalformedBody,
    /// Serve with the body spread over this duration.
    SlowBody {
        /// From first to last body byte.
        duration: Duration,
    },
}

/// What a request's fault draws are keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Its arrival number (a request without an identity).
    Arrival,
    /// Its identity: the hash of the business id it carries
    /// ([`crate::observe::id_hash`]) and which attempt with that id this is
    /// at the injector (1 for the first).
    Id {
        /// The id's hash.
        hash: u64,
        /// The attempt, from 1.
        attempt: u32,
    },
}

impl fmt::Display for Key {
    /// `arrival`, or `id:<hash>#<attempt>` as in decision logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Arrival => f.write_str("arrival"),
            Key::Id { hash, attempt } => write!(f, "id:{hash:016x}#{attempt}"),
        }
    }
}

/// Which faults were in force for a decision: the program's generation and
/// which of its faults (the first 64, by position) were switched on. Two
/// runs draw the same decision for the same key only under the same faults:
/// a request that arrived on the other side of a timeline edge or a
/// flapping switch in a replay is expected to differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InForce {
    /// The program's generation (bumped by every change).
    pub generation: u64,
    /// Bit `i` set: fault `i` of the program was on.
    pub on: u64,
}

impl fmt::Display for InForce {
    /// `f<generation>.<on, hex>` as in decision logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "f{}.{:x}", self.generation, self.on)
    }
}

/// The decision for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Arrival number, from 0.
    pub seq: u64,
    /// What its draws were keyed by.
    pub key: Key,
    /// Which faults were in force when it was decided.
    pub in_force: InForce,
    /// Total latency added before the request is acted on.
    pub delay: Duration,
    /// What happens after the delay.
    pub action: Action,
}

/// How a request ended, as counted by the observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered by the stand-in or upstream, unchanged.
    Served,
    /// An injected status.
    Status(u16),
    /// Connection reset before the response.
    Reset,
    /// Connection reset mid-body.
    ResetMidResponse,
    /// Held by a hang fault.
    Hang,
    /// Closed without a response.
    EmptyResponse,
    /// Served with an empty body.
    EmptyBody,
    /// Served with a malformed body.
    MalformedBody,
    /// Served slowly.
    SlowBody,
    /// Front mode: the upstream could not be reached (answered 502).
    UpstreamError,
}

impl Action {
    /// The outcome this action produces.
    pub fn outcome(&self) -> Outcome {
        match self {
            Action::Serve => Outcome::Served,
            Action::Status { code, .. } => Outcome::Status(*code),
            Action::Reset {
                mid_response: false,
            } => Outcome::Reset,
            Action::Reset { mid_response: true } => Outcome::ResetMidResponse,
            Action::Hang { .. } => Outcome::Hang,
            Action::EmptyResponse => Outcome::EmptyResponse,
            Action::EmptyBody => Outcome::EmptyBody,
            Action::MalformedBody => Outcome::MalformedBody,
            Action::SlowBody { .. } => Outcome::SlowBody,
        }
    }

    /// Whether the downstream (stand-in or upstream) is asked for a response:
    /// the request has a side effect there.
    pub fn reaches_downstream(&self) -> bool {
        !matches!(
            self,
            Action::Status { .. }
                | Action::Reset {
                    mid_response: false
                }
                | Action::EmptyResponse
        )
    }
}

impl Outcome {
    /// A number for compact records: 0 served, the status code of an
    /// injected status, 1 to 8 for the other outcomes.
    pub fn code(self) -> u16 {
        match self {
            Outcome::Served => 0,
            Outcome::Status(code) => code,
            Outcome::Reset => 1,
            Outcome::ResetMidResponse => 2,
            Outcome::Hang => 3,
            Outcome::EmptyResponse => 4,
            Outcome::EmptyBody => 5,
            Outcome::MalformedBody => 6,
            Outcome::SlowBody => 7,
            Outcome::UpstreamError => 8,
        }
    }

    /// The outcome of a [`Outcome::code`] (None for a number no outcome has).
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            0 => Outcome::Served,
            1 => Outcome::Reset,
            2 => Outcome::ResetMidResponse,
            3 => Outcome::Hang,
            4 => Outcome::EmptyResponse,
            5 => Outcome::EmptyBody,
            6 => Outcome::MalformedBody,
            7 => Outcome::SlowBody,
            8 => Outcome::UpstreamError,
            100..=599 => Outcome::Status(code),
            _ => return None,
        })
    }

    /// Whether the caller got the downstream's normal answer (perhaps late
    /// or slowly): anything else is a failed attempt from its side.
    pub fn is_served(self) -> bool {
        matches!(self, Outcome::Served | Outcome::SlowBody)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Served => f.write_str("served"),
            Outcome::Status(code) => write!(f, "status_{code}"),
            Outcome::Reset => f.write_str("reset"),
            Outcome::ResetMidResponse => f.write_str("reset_mid_response"),
            Outcome::Hang => f.write_str("hang"),
            Outcome::EmptyResponse => f.write_str("empty_response"),
            Outcome::EmptyBody => f.write_str("empty_body"),
            Outcome::MalformedBody => f.write_str("malformed_body"),
            Outcome::SlowBody => f.write_str("slow_body"),
            Outcome::UpstreamError => f.write_str("upstream_error"),
        }
    }
}

/// Decides what happens to request number `seq`, keyed by `key`.
///
/// Faults are taken in program order. Each targeted, switched-on fault draws
/// once from the request's RNG against its rate; latencies that hit add up,
/// and the first other fault that hits decides the action.
pub fn decide(
    seed: u64,
    seq: u64,
    key: Key,
    program: &Program,
    now: Instant,
    method: &Method,
    path: &str,
) -> Decision {
    let on = program
        .faults
        .iter()
        .take(64)
        .enumerate()
        .filter(|(_, f)| f.is_on(now))
        .fold(0u64, |mask, (i, _)| mask | 1 << i);
    let mut decision = Decision {
        seq,
        key,
        in_force: InForce {
            generation: program.generation,
            on,
        },
        delay: Duration::ZERO,
        action: Action::Serve,
    };
    if program.faults.is_empty() {
        return decision;
    }
    let stream = match key {
        Key::Arrival => mix(seed, seq),
        // Its own family of streams: an id's draws never repeat an arrival
        // number's.
        Key::Id { hash, attempt } => mix(mix(seed ^ ID_STREAMS, hash), u64::from(attempt)),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(stream);
    for active in &program.faults {
        let fault = &active.fault;
        // Refuse acts on the listener, never on a request that got through.
        if matches!(fault.kind, FaultKind::Refuse)
            || !fault.target.matches(method, path)
            || !active.is_on(now)
        {
            continue;
        }
        let hit = fault.rate >= 1.0 || rng.random::<f64>() < fault.rate;
        if !hit {
            continue;
        }
        let action = match &fault.kind {
            FaultKind::Latency(delay) => {
                decision.delay += delay.sample(&mut rng);
                continue;
            }
            FaultKind::Status { code, body } => Action::Status {
                code: *code,
                body: body.clone(),
            },
            FaultKind::Reset { mid_response } => Action::Reset {
                mid_response: *mid_response,
            },
            FaultKind::Hang => Action::Hang {
                fault_id: active.id().to_string(),
            },
            FaultKind::EmptyResponse => Action::EmptyResponse,
            FaultKind::EmptyBody => Action::EmptyBody,
            FaultKind::MalformedBody => Action::MalformedBody,
            FaultKind::SlowBody { duration } => Action::SlowBody {
                duration: *duration,
            },
            FaultKind::Refuse => continue,
        };
        if decision.action == Action::Serve {
            decision.action = action;
        }
    }
    decision
}

/// An injector's own seed: the run seed mixed with its name, so injectors
/// draw independent streams from one run seed.
pub fn injector_seed(run_seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across Rust releases, unlike std's DefaultHasher.
    let name_hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    mix(run_seed, name_hash)
}

/// Separates identity-keyed streams from arrival-keyed ones.
const ID_STREAMS: u64 = 0x6964_5f73_7472_6561;

/// SplitMix64 finaliser over a combination of two words.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::fault::{Delay, Fault};
    use crate::program::FaultControl;

    fn program(faults: Vec<Fault>) -> std::sync::Arc<Program> {
        let control = FaultControl::new(Clock::start());
        control.set(faults).expect("valid faults");
        control.program()
    }

    fn status_count(seed: u64, n: u64, program: &Program) -> usize {
        let now = Instant::now();
        (0..n)
            .filter(|&seq| {
                matches!(
                    decide(seed, seq, Key::Arrival, program, now, &Method::GET, "/x").action,
                    Action::Status { .. }
                )
            })
            .count()
    }

    #[test]
    fn same_seed_same_decisions_other_seed_other_decisions() {
        let p = program(vec![
            Fault::status(503).rate(0.3),
            Fault::latency(Delay::LogNormal {
                median: Duration::from_millis(5),
                sigma: 0.5,
            }),
        ]);
        let now = Instant::now();
        let run = |seed| -> Vec<Decision> {
            (0..500)
                .map(|seq| decide(seed, seq, Key::Arrival, &p, now, &Method::GET, "/x"))
                .collect()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn status_rate_is_within_binomial_bounds_across_seeds() {
        let p = program(vec![Fault::status(503).rate(0.3)]);
        let n = 5_000;
        // 5 standard deviations of Binomial(5000, 0.3) is ±162.
        for seed in 0..20 {
            let hits = status_count(seed, n, &p) as f64;
            assert!((hits - 1500.0).abs() < 162.0, "seed {seed}: {hits}");
        }
    }

    #[test]
    fn latencies_add_and_first_terminal_fault_wins() {
        let p = program(vec![
            Fault::latency(Delay::Fixed(Duration::from_millis(10))),
            Fault::status(500),
            Fault::latency(Delay::Fixed(Duration::from_millis(5))),
            Fault::hang(),
        ]);
        let d = decide(1, 0, Key::Arrival, &p, Instant::now(), &Method::GET, "/");
        assert_eq!(d.delay, Duration::from_millis(15));
        assert!(matches!(d.action, Action::Status { code: 500, .. }));
    }

    #[test]
    fn untargeted_requests_are_served() {
        let p = program(vec![
            Fault::status(503)
                .method(Method::POST)
                .path("/api/v1/orders"),
        ]);
        let now = Instant::now();
        assert_eq!(
            decide(1, 0, Key::Arrival, &p, now, &Method::GET, "/api/v1/orders").action,
            Action::Serve
        );
        assert!(matches!(
            decide(1, 0, Key::Arrival, &p, now, &Method::POST, "/api/v1/orders").action,
            Action::Status { code: 503, .. }
        ));
    }

    #[test]
    fn flapping_fault_only_hits_in_its_on_phase() {
        let p = program(vec![
            Fault::status(503).flapping(Duration::from_millis(100), 0.5),
        ]);
        let since = p.faults[0].since;
        let at = |ms| {
            decide(
                1,
                0,
                Key::Arrival,
                &p,
                since + Duration::from_millis(ms),
                &Method::GET,
                "/",
            )
        };
        assert!(matches!(at(10).action, Action::Status { .. }));
        assert_eq!(at(60).action, Action::Serve);
        assert!(matches!(at(110).action, Action::Status { .. }));
    }

    #[test]
    fn identity_keyed_draws_do_not_depend_on_arrival_number() {
        let p = program(vec![
            Fault::status(503).rate(0.5),
            Fault::latency(Delay::LogNormal {
                median: Duration::from_millis(5),
                sigma: 0.8,
            }),
        ]);
        let now = Instant::now();
        let draw = |seq, key| {
            let d = decide(7, seq, key, &p, now, &Method::POST, "/x");
            (d.delay, d.action)
        };
        let ids: Vec<Key> = (0..200u64)
            .map(|i| Key::Id {
                hash: crate::observe::id_hash(&format!("ord-{i}")),
                attempt: 1 + (i % 3) as u32,
            })
            .collect();
        // The same identities arriving in another order draw the same.
        for (i, key) in ids.iter().enumerate() {
            assert_eq!(draw(i as u64, *key), draw(10_000 - i as u64, *key));
        }
        // Distinct identities and distinct attempts of one id draw apart.
        let distinct: std::collections::HashSet<String> =
            ids.iter().map(|k| format!("{:?}", draw(0, *k))).collect();
        assert!(
            distinct.len() > 150,
            "only {} distinct draws",
            distinct.len()
        );
        let hash = crate::observe::id_hash("ord-1");
        let attempts: std::collections::HashSet<String> = (1..=20)
            .map(|attempt| format!("{:?}", draw(0, Key::Id { hash, attempt })))
            .collect();
        assert!(attempts.len() > 15, "attempts drew alike: {attempts:?}");
        // Arrival-keyed draws do follow the arrival number.
        assert_ne!(
            (0..50).map(|s| draw(s, Key::Arrival)).collect::<Vec<_>>(),
            (50..100).map(|s| draw(s, Key::Arrival)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn injector_seeds_differ_by_name() {
        assert_ne!(
            injector_seed(1, "order-service"),
            injector_seed(1, "risk-service")
        );
        assert_eq!(
            injector_seed(1, "order-service"),
            injector_seed(1, "order-service")
        );
    }
}
