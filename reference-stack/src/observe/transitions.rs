//! Breaker transitions as ground truth: a bounded in-process history, a broadcast for
//! waiters, and one structured log line each.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::client::State;
use crate::topology::{Downstream, ServiceKind};

/// One breaker state change, with both clocks: `at` for comparing with other
/// in-process instants, `wall` for comparing with logs and other processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerTransition {
    /// The service whose client changed state.
    pub service: ServiceKind,
    /// The client's downstream.
    pub downstream: Downstream,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Monotonic instant of the change.
    pub at: Instant,
    /// Wall-clock time of the change.
    pub wall: SystemTime,
}

impl BreakerTransition {
    /// RFC 3339 UTC timestamp with microseconds, as logged.
    pub fn timestamp(&self) -> String {
        rfc3339_micros(self.wall)
    }
}

/// RFC 3339 UTC with microseconds, e.g. `2025-01-01T12:00:00.123456Z`.
pub fn rfc3339_micros(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The JSON shape of a transition in `/debug/breakers`.
#[derive(Debug, Serialize)]
pub(crate) struct TransitionJson {
    downstream: &'static str,
    from: &'static str,
    to: &'static str,
    timestamp: String,
}

impl From<&BreakerTransition> for TransitionJson {
    fn from(t: &BreakerTransition) -> Self {
        Self {
            downstream: t.downstream.name(),
            from: t.from.as_str(),
            to: t.to.as_str(),
            timestamp: t.timestamp(),
        }
    }
}

/// Bounded history of a service's transitions (oldest dropped first).
#[derive(Debug)]
pub struct TransitionLog {
    capacity: usize,
    history: Mutex<VecDeque<BreakerTransition>>,
    sender: broadcast::Sender<BreakerTransition>,
}

impl TransitionLog {
    /// A log keeping the last `capacity` transitions.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(256);
        Self {
            capacity,
            history: Mutex::new(VecDeque::new()),
            sender,
        }
    }

    /// Record, log and broadcast one transition.
    pub fn record(&self, transition: BreakerTransition) {
        tracing::info!(
            target: "reference_stack::breaker",
            service = transition.service.name(),
            downstream = transition.downstream.name(),
            from = transition.from.as_str(),
            to = transition.to.as_str(),
            timestamp = %transition.timestamp(),
            "circuit breaker state change"
        );
        {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if self.capacity > 0 && history.len() == self.capacity {
                history.pop_front();
            }
            if self.capacity > 0 {
                history.push_back(transition);
            }
        }
        // No receiver is the normal case; nothing to do then.
        let _ = self.sender.send(transition);
    }

    /// The transitions kept, oldest first.
    pub fn snapshot(&self) -> Vec<BreakerTransition> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.iter().copied().collect()
    }

    /// Receive every transition recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BreakerTransition> {
        self.sender.subscribe()
    }
}
