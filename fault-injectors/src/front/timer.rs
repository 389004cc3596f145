//! Sub-millisecond sleeps for injected latency, and calls at an instant.
//!
//! tokio's timer wheel ticks once a millisecond and rounds deadlines up, which
//! adds 0–1 ms (plus scheduling) to every injected delay: too coarse for a
//! 10 ms latency fault whose error should stay well under 2 ms. One timer
//! thread per process keeps a heap of deadlines and waits on a futex with the
//! kernel's timer slack (~50 µs), then wakes the waiting task — or, for work
//! that must not wait for a busy runtime (opening and closing the port as a
//! refuse fault flaps), runs a short call itself.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// What happens at a deadline.
enum Wake {
    Task(oneshot::Sender<()>),
    Call(Box<dyn FnOnce() + Send>),
}

impl Wake {
    fn fire(self) {
        match self {
            Self::Task(tx) => {
                let _ = tx.send(());
            }
            Self::Call(f) => f(),
        }
    }
}

struct Entry {
    deadline: Instant,
    seq: u64,
    wake: Wake,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// Where sleepers register: a deadline and the sender that wakes them.
type Registry = mpsc::Sender<(Instant, Wake)>;

fn timer() -> Option<&'static Registry> {
    static TIMER: OnceLock<Option<Registry>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<(Instant, Wake)>();
            std::thread::Builder::new()
                .name("fault-injector-timer".into())
                .spawn(move || run(rx))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

fn run(rx: mpsc::Receiver<(Instant, Wake)>) {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    let mut seq = 0;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
            if let Some(Reverse(e)) = heap.pop() {
                e.wake.fire();
            }
        }
        let received = match heap.peek() {
            Some(Reverse(next)) => rx.recv_timeout(next.deadline.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((deadline, wake)) => {
                seq += 1;
                heap.push(Reverse(Entry {
                    deadline,
                    seq,
                    wake,
                }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Sleeps for `delay` with sub-millisecond accuracy. Faults bound every
/// delay (`fault::MAX_DELAY`); a longer one is cut to that bound rather than
/// overflow the clock.
pub(crate) async fn sleep(delay: Duration) {
    let now = Instant::now();
    let deadline = now
        .checked_add(delay.min(crate::fault::MAX_DELAY))
        .unwrap_or(now);
    let (wake, woken) = oneshot::channel();
    match timer() {
        Some(tx) if tx.send((deadline, Wake::Task(wake))).is_ok() => {
            let _ = woken.await;
        }
        // No timer thread (spawn failed): tokio's coarser timer still works.
        _ => tokio::time::sleep_until(deadline.into()).await,
    }
}

/// Runs `f` on the timer thread at `deadline`; false when there is no timer
/// thread. `f` must be short: every sleeper waits behind it.
pub(crate) fn call_at(deadline: Instant, f: impl FnOnce() + Send + 'static) -> bool {
    timer().is_some_and(|tx| tx.send((deadline, Wake::Call(Box::new(f)))).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_are_accurate_to_well_under_a_millisecond() {
        let mut worst = Duration::ZERO;
        for _ in 0..50 {
            let started = Instant::now();
            sleep(Duration::from_millis(3)).await;
            let elapsed = started.elapsed();
            assert!(elapsed >= Duration::from_millis(3));
            worst = worst.max(elapsed - Duration::from_millis(3));
        }
        // Generous: a loaded CI machine, a debug build.
        assert!(
            worst < Duration::from_millis(20),
            "worst overshoot {worst:?}"
        );
    }

    #[test]
    fn calls_run_on_the_timer_thread_at_their_instant() {
        let (tx, rx) = mpsc::channel();
        let deadline = Instant::now() + Duration::from_millis(5);
        assert!(call_at(deadline, move || {
            let _ = tx.send((
                Instant::now(),
                std::thread::current().name().map(String::from),
            ));
        }));
        let (ran, thread) = rx.recv_timeout(Duration::from_secs(10)).expect("called");
        assert!(ran >= deadline);
        assert_eq!(thread.as_deref(), Some("fault-injector-timer"));
    }

    #[tokio::test]
    async fn a_delay_beyond_any_clock_is_cut_not_a_panic() {
        // Would overflow `Instant + Duration`; it must just sleep (long).
        let slept = tokio::time::timeout(Duration::from_millis(50), sleep(Duration::MAX)).await;
        assert!(slept.is_err(), "a cut delay is still a long one");
    }

    #[tokio::test]
    async fn concurrent_sleeps_wake_in_deadline_order() {
        let started = Instant::now();
        let tasks: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| {
                tokio::spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    (ms, started.elapsed())
                })
            })
            .collect();
        for t in tasks {
            let (ms, elapsed) = t.await.expect("task");
            assert!(elapsed >= Duration::from_millis(ms));
        }
    }
}
