//! The fault-decision log: one line per request, in arrival order, with no
//! timestamps, so two runs with the same seed and arrival order produce
//! byte-identical files (`cmp` or `diff` them).
//!
//! Line format (tab-separated): `seq  key  in_force  METHOD path  outcome
//! delay_us`, where `key` says what the request's draws were keyed by:
//! `id:<hash>#<attempt>` (its business id and attempt number at this
//! injector: the same in any run, whatever the interleaving) or `arrival`
//! (no identity: its arrival number), and `in_force` which faults were in
//! force (`f<generation>.<on-mask>`, see [`crate::decide::InForce`]).
//!
//! Nothing is written on the request path. A request, numbered by an atomic
//! counter, pushes a compact entry onto a lock-free queue; a writer task
//! ([`DecisionLog::drain`], every few milliseconds) pops them, puts them
//! back in sequence order — two requests numbered 5 and 6 on two threads may
//! push 6 first — and formats the lines. The numbering and the push happen
//! in one synchronous call, so every number reaches the queue and the lines
//! come out gapless, in arrival order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use http::{Method, Uri};

use crate::decide::{Decision, InForce, Key, Outcome};

/// One decision, as queued: cheap to build (the URI shares the request's
/// bytes; standard methods are inline).
#[derive(Debug)]
pub(crate) struct Entry {
    seq: u64,
    key: Key,
    in_force: InForce,
    method: Method,
    uri: Uri,
    outcome: Outcome,
    delay: Duration,
}

impl Entry {
    pub(crate) fn new(decision: &Decision, method: &Method, uri: &Uri) -> Self {
        Self {
            seq: decision.seq,
            key: decision.key,
            in_force: decision.in_force,
            method: method.clone(),
            uri: uri.clone(),
            outcome: decision.action.outcome(),
            delay: decision.delay,
        }
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{}\t{}\t{}\t{} {}\t{}\t{}",
            self.seq,
            self.key,
            self.in_force,
            self.method,
            self.uri.path(),
            self.outcome,
            self.delay.as_micros()
        )
    }
}

/// An open decision log.
#[derive(Debug)]
pub(crate) struct DecisionLog {
    path: PathBuf,
    queue: SegQueue<Entry>,
    out: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    file: BufWriter<File>,
    /// The next sequence number to write.
    next: u64,
    /// Entries that arrived before their turn.
    early: BTreeMap<u64, Entry>,
    /// The first write error; later lines are dropped.
    failed: bool,
}

impl DecisionLog {
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            queue: SegQueue::new(),
            out: Mutex::new(Writer {
                file: BufWriter::with_capacity(1 << 16, File::create(path)?),
                next: 0,
                early: BTreeMap::new(),
                failed: false,
            }),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one decision (lock-free).
    pub(crate) fn push(&self, entry: Entry) {
        self.queue.push(entry);
    }

    /// Writes every queued decision whose turn has come (to the buffer).
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut out = self.lock();
        let out = &mut *out;
        while let Some(entry) = self.queue.pop() {
            // Most entries come in order: write them without the detour.
            if entry.seq == out.next && out.early.is_empty() {
                out.next += 1;
                if !out.failed
                    && let Err(e) = entry.write(&mut out.file)
                {
                    out.failed = true;
                    return Err(e);
                }
                continue;
            }
            out.early.insert(entry.seq, entry);
        }
        while let Some(entry) = out.early.remove(&out.next) {
            out.next += 1;
            if out.failed {
                continue;
            }
            if let Err(e) = entry.write(&mut out.file) {
                out.failed = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes what is queued and flushes the file.
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.drain()?;
        self.lock().file.flush()
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for DecisionLog {
    /// The last lines: nothing can be numbered any more, so whatever waits
    /// is written, in order.
    fn drop(&mut self) {
        let _ = self.drain();
        let out = self.out.get_mut().unwrap_or_else(|p| p.into_inner());
        if !out.failed {
            for entry in std::mem::take(&mut out.early).into_values() {
                if entry.write(&mut out.file).is_err() {
                    break;
                }
            }
        }
        let _ = out.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Action;

    fn decision(seq: u64) -> Decision {
        Decision {
            seq,
            key: match seq {
                2 => Key::Id {
                    hash: 0xab,
                    attempt: 2,
                },
                _ => Key::Arrival,
            },
            in_force: InForce {
                generation: 3,
                on: seq % 2,
            },
            delay: Duration::from_micros(seq * 10),
            action: match seq % 3 {
                0 => Action::Serve,
                _ => Action::Status {
                    code: 503,
                    body: None,
                },
            },
        }
    }

    #[test]
    fn lines_come_out_in_sequence_order_whatever_the_push_order() {
        let dir = std::env::temp_dir().join(format!("fi-decisions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log.tsv");
        let log = DecisionLog::create(&path).expect("created");
        let uri: Uri = "/api/v1/orders?x=1".parse().expect("uri");
        for seq in [1, 0, 3, 2, 5] {
            log.push(Entry::new(&decision(seq), &Method::POST, &uri));
        }
        log.flush().expect("flushed");
        // 4 has not arrived yet: 5 waits for it.
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 4);
        log.push(Entry::new(&decision(4), &Method::GET, &uri));
        log.flush().expect("flushed");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "0\tarrival\tf3.0\tPOST /api/v1/orders\tserved\t0");
        assert_eq!(
            lines[1],
            "1\tarrival\tf3.1\tPOST /api/v1/orders\tstatus_503\t10"
        );
        assert_eq!(
            lines[2],
            "2\tid:00000000000000ab#2\tf3.0\tPOST /api/v1/orders\tstatus_503\t20"
        );
        assert_eq!(
            lines[4],
            "4\tarrival\tf3.0\tGET /api/v1/orders\tstatus_503\t40"
        );
        assert_eq!(lines.len(), 6);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
