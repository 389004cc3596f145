//! The fault timeline: sets and clears each window's fault on its injector
//! at the stated offsets, and records when each change actually happened.

use std::time::Duration;

use fault_injectors::fault::FaultSpec;
use reference_stack::Downstream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::platform::injector_name;
use crate::scenario::{ContainerAction, FaultWindow};
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
    /// Set or cleared.
    pub action: FaultAction,
    /// The fault.
    pub fault: FaultSpec,
    /// Docker stacks: the container action this event took or undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerAction>,
}

/// What a fault event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// The fault took effect.
    Set,
    /// The fault was lifted.
    Clear,
}

/// The id a window's fault is set under (the user's, if given).
pub fn fault_id(window: usize, fault: &fault_injectors::Fault) -> String {
    fault
        .id
        .clone()
        .unwrap_or_else(|| format!("window-{window}"))
}

/// Applies the timeline; returns the events as they happened. When
/// `cancel` fires (Ctrl-C, SIGTERM, SIGHUP) the timeline stops and every
/// fault in force is cleared (a paused, stopped or disconnected container
/// is given back), so what is torn down next is a stack without faults.
pub async fn run(
    windows: Vec<FaultWindow>,
    stack: &Stack,
    clock: RunClock,
    cancel: CancellationToken,
) -> Vec<FaultEvent> {
    let mut plan: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        plan.push((w.from, i, true));
        // A restart's window closes where it opens: nothing to undo.
        if let Some(until) = w.until
            && w.container != Some(ContainerAction::Restart)
        {
            plan.push((until, i, false));
        }
    }
    // Clears before sets at the same instant, so back-to-back windows do not overlap.
    plan.sort_by_key(|(at, i, set)| (*at, *set, *i));
    let mut events = Vec::new();
    // Windows set and not cleared yet.
    let mut in_force = std::collections::BTreeSet::new();
    for (at, i, set) in plan {
        tokio::select! {
            _ = tokio::time::sleep_until(clock.at(at).into()) => {}
            _ = cancel.cancelled() => break,
        }
        if apply(stack, &windows, i, set, clock, &mut events).await {
            let restart = windows[i].container == Some(ContainerAction::Restart);
            if set && !restart {
                in_force.insert(i);
            } else {
                in_force.remove(&i);
            }
        }
    }
    if cancel.is_cancelled() {
        for i in in_force {
            apply(stack, &windows, i, false, clock, &mut events).await;
        }
    }
    events
}

/// Sets or clears window `i` (a fault or a container action) and records
/// the event; false when it could not be applied.
async fn apply(
    stack: &Stack,
    windows: &[FaultWindow],
    i: usize,
    set: bool,
    clock: RunClock,
    events: &mut Vec<FaultEvent>,
) -> bool {
    let w = &windows[i];
    let applied = match (w.container, stack.docker()) {
        (Some(action), Some(docker)) => {
            let service = w.injector.fronts();
            match service {
                Some(service) => match docker.act(service, action, set).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!("{e}");
                        false
                    }
                },
                None => false,
            }
        }
        (Some(_), None) => false,
        (None, _) => set_fault(stack, w, i, set).await,
    };
    if !applied {
        return false;
    }
    let t_s = clock.seconds(std::time::Instant::now());
    tracing::debug!(
        injector = injector_name(w.injector),
        window = i,
        "fault {}",
        if set { "set" } else { "cleared" }
    );
    let restart = w.container == Some(ContainerAction::Restart);
    let actions: &[FaultAction] = match (set, restart) {
        (true, true) => &[FaultAction::Set, FaultAction::Clear],
        (true, false) => &[FaultAction::Set],
        (false, _) => &[FaultAction::Clear],
    };
    for action in actions {
        events.push(FaultEvent {
            t_s,
            injector: w.injector,
            window: i,
            action: *action,
            fault: w.fault.clone().into(),
            container: w.container,
        });
    }
    true
}

/// Sets or clears window `i`'s fault on its injector.
async fn set_fault(stack: &Stack, w: &FaultWindow, i: usize, set: bool) -> bool {
    let Some(injector) = stack.injector(w.injector) else {
        return false;
    };
    let id = fault_id(i, &w.fault);
    if set {
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
    }
}
