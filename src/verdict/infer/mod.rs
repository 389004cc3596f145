//! Breaker episodes inferred from outside, for any breaker library.
//!
//! **Open means the SUT answered without calling.** Silence at the
//! downstream proves nothing by itself: calls can be serialised behind a
//! lock (pybreaker holds its lock across the guarded call), queued, hung
//! without a client timeout, slow through a long retry loop, or the load
//! can pause. So each upstream request of a journey that needs the
//! downstream is classified ([`classify`]):
//! - **reached**: a call of it arrived at the downstream — by its business
//!   id where the SUT forwards one (`order_no`, `payment_no`), else by an
//!   arrival inside the request's lifetime; the call's first arrival is
//!   when the breaker *admitted* it, its last attempt's end when the call
//!   *ended* (and whether it failed);
//! - **short-circuited**: the SUT answered it and no call of it reached the
//!   downstream — rejected (or served a fallback) somewhere between its send
//!   and its answer;
//! - **unknown**: no answer from the SUT (client timeout, dropped) and no
//!   arrival: it says nothing.
//!
//! During a *refuse* outage nothing can arrive, so there the requests are
//! told apart by how long the SUT took (an attempted call pays its connect
//! failures and retry sleeps, a rejected one does not): a threshold stated
//! for the downstream, or a clear gap in the answers' times.
//!
//! The classified requests form a timeline of admissions, call ends and
//! rejections from which [`episodes`] reads the breaker's history. No
//! retry policy, breaker threshold or timing of the reference stack is
//! assumed anywhere; what the scenario states about the SUT is used and
//! reported.

mod classify;
mod episodes;

use serde::{Deserialize, Serialize};

/// One breaker's history, as inferred or as reported by the SUT.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Episodes {
    /// Instants the breaker opened (seconds from the load start).
    pub opened_at_s: Vec<f64>,
    /// Instants it went half-open.
    pub half_open_at_s: Vec<f64>,
    /// Instants it closed.
    pub closed_at_s: Vec<f64>,
    /// Each half-open probe: when, how many calls, whether it closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
}

/// One half-open spell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// When the first probe call was admitted (seconds from the load start).
    pub at_s: f64,
    /// Calls let through before the breaker decided (None when they could
    /// not be counted).
    pub calls: Option<u64>,
    /// Whether the breaker closed after it (else it opened again).
    pub closed: bool,
}

/// An upstream request as inference reads it (seconds on the run's clock).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    /// When it was sent.
    pub sent: f64,
    /// When its answer (or error) came.
    pub done: f64,
    /// Whether the SUT answered it (any HTTP status).
    pub answered: bool,
    /// Whether the answer was a success.
    pub ok: bool,
    /// Hashes of the ids it carried or was answered with (0: none).
    pub ids: [u64; 2],
}

/// One arrival at the downstream (seconds on the run's clock).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attempt {
    /// When it arrived.
    pub at: f64,
    /// When the downstream answered it or its caller gave up.
    pub end: f64,
    /// Hash of the business id it carried (0: none).
    pub id: u64,
    /// Whether the caller saw it fail.
    pub failed: bool,
}

/// What the scenario states about the SUT's breaker for one downstream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stated {
    /// Calls a half-open breaker lets through before it decides.
    pub half_open_calls: Option<u32>,
    /// Answers faster than this (seconds) were not attempted at the
    /// downstream (read only where nothing can arrive: refuse outages).
    pub fast_below: Option<f64>,
}

/// Everything the inference reads for one downstream.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Requests of the journeys that need the downstream on their request
    /// path, baseline included.
    pub requests: &'a [Request],
    /// Every arrival at the downstream, in arrival order.
    pub attempts: &'a [Attempt],
    /// When the first fault was set on it: the baseline ends here.
    pub fault_start: f64,
    /// Spells during which it refused connections (nothing can arrive).
    pub refusing: &'a [(f64, f64)],
    /// What the scenario states about the SUT.
    pub stated: Stated,
}

/// How requests were matched with arrivals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// By the business id each request carried.
    Ids,
    /// By arrivals inside each request's lifetime (no id forwarded).
    Timing,
}

/// A breaker history with the evidence behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Inference {
    /// The history.
    pub episodes: Episodes,
    /// How requests were matched with arrivals.
    pub method: Method,
    /// Refuse outages: the answer time below which a request was not
    /// attempted, and whether it was stated (else read off a gap).
    pub fast_below: Option<(f64, bool)>,
    /// Requests answered without reaching the downstream, after the fault.
    pub short_circuited: u64,
    /// When each of them was sent.
    pub short_at: Vec<f64>,
    /// Calls admitted after the fault.
    pub admitted: u64,
    /// Shortest run of consecutive short-circuited requests read as open.
    pub min_run: usize,
    /// One line per instant: what bracketed it.
    pub evidence: Vec<String>,
    /// What was assumed for lack of a statement.
    pub assumptions: Vec<String>,
}

/// Infers the breaker's history, or says why it cannot.
pub fn infer(input: &Input<'_>) -> Result<Inference, String> {
    let classified = classify::classify(input)?;
    Ok(episodes::read(input, &classified))
}

/// Seconds with millisecond precision, for evidence.
fn secs(t: f64) -> String {
    format!("{t:.3}s")
}

#[cfg(test)]
mod tests;
