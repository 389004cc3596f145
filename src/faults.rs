//! The fault timeline: sets and clears each window's fault on its injector
//! at the stated offsets, and records when each change actually happened.

use std::time::Duration;

use fault_injectors::fault::FaultSpec;
use reference_stack::Downstream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::scenario::FaultWindow;
use crate::stack::Stack;

/// A fault set or cleared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When it took effect, seconds from the load start.
    pub t_s: f64,
    /// The injector.
    #[serde(with = "crate::platform::injector_serde")]
    pub injector: Downstream,
    /// Index of the `[[faults]]` window.
    pub window: usize,
    /// `set` or `clear`.
    pub action: String,
    /// The fault.
    pub fault: FaultSpec,
}

/// The id a window's fault is set under (the user's, if given).
pub fn fault_id(window: usize, fault: &fault_injectors::Fault) -> String {
    fault
        .id
        .clone()
        .unwrap_or_else(|| format!("window-{window}"))
}

/// Applies the timeline; returns the events as they happened. Stops early
/// (leaving faults as they are) when `cancel` fires.
pub async fn run(
    windows: Vec<FaultWindow>,
    stack: &Stack,
    clock: RunClock,
    cancel: CancellationToken,
) -> Vec<FaultEvent> {
    let mut plan: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        plan.push((w.from, i, true));
        if let Some(until) = w.until {
            plan.push((until, i, false));
        }
    }
    // Clears before sets at the same instant, so back-to-back windows do not overlap.
    plan.sort_by_key(|(at, i, set)| (*at, *set, *i));
    let mut events = Vec::new();
    for (at, i, set) in plan {
        tokio::select! {
            _ = tokio::time::sleep_until(clock.at(at).into()) => {}
            _ = cancel.cancelled() => break,
        }
        let w = &windows[i];
        let Some(injector) = stack.injector(w.injector) else {
            continue;
        };
        let id = fault_id(i, &w.fault);
        let applied = if set {
            let mut fault = w.fault.clone();
            fault.id = Some(id.clone());
            match injector.inject(fault).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!("cannot set {id} on {}: {e}", injector.name());
                    false
                }
            }
        } else {
            injector.clear_fault(&id).await
        };
        if applied {
            events.push(FaultEvent {
                t_s: clock.seconds(std::time::Instant::now()),
                injector: w.injector,
                window: i,
                action: if set { "set" } else { "clear" }.into(),
                fault: w.fault.clone().into(),
            });
        }
    }
    events
}
