//! Observability as ground truth: metrics, health, breaker transitions, debug view.

pub mod health;
pub mod http;
pub mod metrics;
pub mod transitions;

pub use metrics::{AttemptOutcome, Metrics};
pub use transitions::{BreakerTransition, TransitionLog, rfc3339_micros};

use crate::topology::ServiceKind;

/// What a service records about itself: metrics and breaker transitions.
#[derive(Debug)]
pub struct Observer {
    /// The service's Prometheus registry and families.
    pub metrics: Metrics,
    /// The service's bounded transition history.
    pub transitions: TransitionLog,
}

impl Observer {
    /// A fresh observer for `service` keeping `history` transitions.
    pub fn new(service: ServiceKind, history: usize) -> Self {
        Self {
            metrics: Metrics::new(service),
            transitions: TransitionLog::new(history),
        }
    }
}
