//! Breaker states: their names and gobreaker's numbers, and the gauge the
//! platform's reports propose for them (the reference stack exposes it; the
//! real code has none, so the harness's gauge settings are configurable).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A breaker state, numbered as gobreaker numbers them (closed 0, half-open
/// 1, open 2); named `closed`, `half_open`, `open` in logs, metrics labels
/// and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow; failures are counted.
    Closed,
    /// A limited number of trial requests decide whether to close or reopen.
    HalfOpen,
    /// Requests are rejected at once until the open timeout has passed.
    Open,
}

impl BreakerState {
    /// Every state, in gobreaker's order.
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::HalfOpen,
        BreakerState::Open,
    ];

    /// gobreaker's number of the state: the value of [`BREAKER_GAUGE`].
    pub const fn as_number(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }

    /// The state's name (`closed`, `half_open`, `open`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BreakerState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BreakerState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown breaker state {s:?} (known: closed, half_open, open)"))
    }
}

/// The gauge holding each breaker's state as [`BreakerState::as_number`],
/// labelled `service` (the caller) and [`BREAKER_GAUGE_DOWNSTREAM_LABEL`].
pub const BREAKER_GAUGE: &str = "circuit_breaker_state";

/// The gauge's label naming the downstream, by its
/// [`crate::Downstream::injector_name`].
pub const BREAKER_GAUGE_DOWNSTREAM_LABEL: &str = "downstream";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_serde_agree() {
        for (number, state) in BreakerState::ALL.into_iter().enumerate() {
            assert_eq!(state.as_number(), number as i64);
            assert_eq!(state.as_str().parse::<BreakerState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
            let json = format!("\"{}\"", state.as_str());
            assert_eq!(serde_json::to_string(&state).expect("serializes"), json);
            assert_eq!(
                serde_json::from_str::<BreakerState>(&json).expect("reads"),
                state
            );
        }
        assert!("half-open".parse::<BreakerState>().is_err());
    }
}
