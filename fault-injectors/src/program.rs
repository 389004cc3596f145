//! The live fault program of one injector and the means to change it.
//!
//! Requests read the program lock-free (an `ArcSwap` load costs a few
//! nanoseconds), so a change is seen by the very next request that arrives
//! after `set` returns: no 404 gap, no stale fault. Writers are serialised by
//! a mutex so two admin calls cannot lose each other's change.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::fault::{Fault, FaultError, FaultKind, FaultSpec};

/// A fault in the program, with the instant it was set (the origin of its
/// flapping schedule).
#[derive(Clone, Debug)]
pub struct ActiveFault {
    /// The fault; its `id` is always set.
    pub fault: Fault,
    /// When it was set.
    pub since: Instant,
}

impl ActiveFault {
    /// The fault's id.
    pub fn id(&self) -> &str {
        self.fault.id.as_deref().unwrap_or_default()
    }

    /// Whether the fault is switched on at `now` (always, unless flapping).
    pub fn is_on(&self, now: Instant) -> bool {
        self.fault
            .flapping
            .is_none_or(|f| f.is_on(now.saturating_duration_since(self.since)))
    }

    /// When the fault next switches on or off, if it flaps.
    pub fn next_toggle(&self, now: Instant) -> Option<Instant> {
        self.fault
            .flapping
            .map(|f| now + f.until_toggle(now.saturating_duration_since(self.since)))
    }
}

/// The faults in force, in the order they were set.
#[derive(Debug, Default)]
pub struct Program {
    /// Bumped by every change.
    pub generation: u64,
    /// The faults.
    pub faults: Vec<ActiveFault>,
}

impl Program {
    /// Whether a refuse fault is on at `now`.
    pub fn refusing(&self, now: Instant) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.fault.kind, FaultKind::Refuse) && f.is_on(now))
    }

    /// Whether the fault `id` is in the program and on at `now`.
    pub fn is_on(&self, id: &str, now: Instant) -> bool {
        self.faults.iter().any(|f| f.id() == id && f.is_on(now))
    }

    /// The earliest instant any flapping fault switches.
    pub fn next_toggle(&self, now: Instant) -> Option<Instant> {
        self.faults.iter().filter_map(|f| f.next_toggle(now)).min()
    }
}

/// One change of the program, kept for the run's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Seconds from the clock's origin.
    pub at_s: f64,
    /// Generation after the change.
    pub generation: u64,
    /// The whole program after the change.
    pub faults: Vec<FaultSpec>,
}

/// How many changes are remembered; older ones are dropped.
const CHANGE_HISTORY: usize = 4096;

/// Owns an injector's program: set, upsert, remove and clear faults, and
/// watch for changes.
#[derive(Debug)]
pub struct FaultControl {
    program: ArcSwap<Program>,
    writer: Mutex<Writer>,
    changed: watch::Sender<u64>,
    clock: Clock,
}

#[derive(Debug, Default)]
struct Writer {
    next_id: u64,
    history: VecDeque<Change>,
}

impl FaultControl {
    /// An empty program.
    pub fn new(clock: Clock) -> Self {
        Self {
            program: ArcSwap::from_pointee(Program::default()),
            writer: Mutex::new(Writer::default()),
            changed: watch::channel(0).0,
            clock,
        }
    }

    /// The program now in force (cheap; lock-free).
    pub fn program(&self) -> Arc<Program> {
        self.program.load_full()
    }

    /// Borrows the program for a moment without touching its refcount.
    pub(crate) fn peek(&self) -> arc_swap::Guard<Arc<Program>> {
        self.program.load()
    }

    /// A receiver that wakes on every change (its value is the generation).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The recent changes, oldest first.
    pub fn history(&self) -> Vec<Change> {
        self.lock().history.iter().cloned().collect()
    }

    /// Replaces the whole program. Every fault is checked first; on an error
    /// nothing changes. Returns the ids in order.
    pub fn set(&self, faults: Vec<Fault>) -> Result<Vec<String>, FaultError> {
        let mut writer = self.lock();
        let now = Instant::now();
        let mut seen = HashSet::new();
        let mut active = Vec::with_capacity(faults.len());
        for fault in faults {
            fault.validate()?;
            let fault = writer.named(fault);
            if !seen.insert(fault.id.clone()) {
                return Err(FaultError(format!(
                    "fault id `{}` appears twice",
                    fault.id.unwrap_or_default()
                )));
            }
            active.push(ActiveFault { fault, since: now });
        }
        let ids = active.iter().map(|f| f.id().to_string()).collect();
        self.publish(&mut writer, active);
        Ok(ids)
    }

    /// Adds a fault, or replaces the one with the same id (its flapping
    /// schedule restarts). Returns its id.
    pub fn upsert(&self, fault: Fault) -> Result<String, FaultError> {
        fault.validate()?;
        let mut writer = self.lock();
        let fault = writer.named(fault);
        let id = fault.id.clone().unwrap_or_default();
        let mut faults = self.program.load().faults.clone();
        let entry = ActiveFault {
            fault,
            since: Instant::now(),
        };
        match faults.iter_mut().find(|f| f.id() == id) {
            Some(existing) => *existing = entry,
            None => faults.push(entry),
        }
        self.publish(&mut writer, faults);
        Ok(id)
    }

    /// Removes the fault `id`; false if there is none.
    pub fn remove(&self, id: &str) -> bool {
        let mut writer = self.lock();
        let mut faults = self.program.load().faults.clone();
        let before = faults.len();
        faults.retain(|f| f.id() != id);
        if faults.len() == before {
            return false;
        }
        self.publish(&mut writer, faults);
        true
    }

    /// Removes every fault.
    pub fn clear(&self) {
        let mut writer = self.lock();
        self.publish(&mut writer, Vec::new());
    }

    fn publish(&self, writer: &mut Writer, faults: Vec<ActiveFault>) {
        let generation = self.program.load().generation + 1;
        let change = Change {
            at_s: self.clock.since_origin(Instant::now()).as_secs_f64(),
            generation,
            faults: faults.iter().map(|f| f.fault.clone().into()).collect(),
        };
        self.program.store(Arc::new(Program { generation, faults }));
        self.changed.send_replace(generation);
        if writer.history.len() == CHANGE_HISTORY {
            writer.history.pop_front();
        }
        writer.history.push_back(change);
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding this lock cannot leave the program half
        // written (it is swapped whole), so a poisoned lock is still usable.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Writer {
    fn named(&mut self, mut fault: Fault) -> Fault {
        if fault.id.is_none() {
            self.next_id += 1;
            fault.id = Some(format!("f{}", self.next_id));
        }
        fault
    }
}

/// How long until `now + d`, saturating: a helper for schedule waits.
pub(crate) fn deadline_or_far(at: Option<Instant>) -> Instant {
    at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_is_all_or_nothing() {
        let control = FaultControl::new(Clock::start());
        control.set(vec![Fault::hang()]).expect("valid");
        let err = control
            .set(vec![Fault::status(503), Fault::status(503).rate(2.0)])
            .expect_err("rate 2 refused");
        assert!(err.0.contains("rate"));
        let program = control.program();
        assert_eq!(program.faults.len(), 1);
        assert_eq!(program.faults[0].fault.kind, FaultKind::Hang);
    }

    #[test]
    fn upsert_replaces_by_id_and_remove_clears_it() {
        let control = FaultControl::new(Clock::start());
        let mut changes = control.subscribe();
        let id = control.upsert(Fault::status(503).id("x")).expect("valid");
        assert_eq!(id, "x");
        control.upsert(Fault::status(500).id("x")).expect("valid");
        let auto = control.upsert(Fault::hang()).expect("valid");
        let program = control.program();
        assert_eq!(program.faults.len(), 2);
        assert!(matches!(
            program.faults[0].fault.kind,
            FaultKind::Status { code: 500, .. }
        ));
        assert!(changes.has_changed().unwrap_or(false));
        assert_eq!(*changes.borrow_and_update(), 3);
        assert!(control.remove("x"));
        assert!(!control.remove("x"));
        assert!(control.remove(&auto));
        assert!(control.program().faults.is_empty());
        assert_eq!(control.history().len(), 5);
    }

    #[test]
    fn duplicate_ids_in_one_set_are_refused() {
        let control = FaultControl::new(Clock::start());
        let err = control
            .set(vec![Fault::hang().id("a"), Fault::status(503).id("a")])
            .expect_err("duplicate");
        assert!(err.0.contains("appears twice"));
    }

    #[test]
    fn refusing_follows_flapping() {
        let control = FaultControl::new(Clock::start());
        control
            .set(vec![
                Fault::refuse().flapping(Duration::from_millis(100), 0.5),
            ])
            .expect("valid");
        let program = control.program();
        let since = program.faults[0].since;
        assert!(program.refusing(since + Duration::from_millis(10)));
        assert!(!program.refusing(since + Duration::from_millis(60)));
        assert_eq!(
            program.next_toggle(since + Duration::from_millis(10)),
            Some(since + Duration::from_millis(50))
        );
    }
}
