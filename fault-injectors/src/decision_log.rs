//! The fault-decision log: one line per request, in arrival order, with no
//! timestamps, so two runs with the same seed and arrival order produce
//! byte-identical files (`cmp` or `diff` them).
//!
//! Line format (tab-separated): `seq  METHOD path  outcome  delay_us`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use http::Method;

use crate::decide::Decision;

/// An open decision log.
#[derive(Debug)]
pub(crate) struct DecisionLog {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
}

impl DecisionLog {
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the log; the caller numbers and decides the request while
    /// holding it, so lines come out in arrival order.
    pub(crate) fn lock(&self) -> MutexGuard<'_, BufWriter<File>> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        self.lock().flush()
    }
}

/// Writes one decision.
pub(crate) fn write_line(
    out: &mut impl Write,
    decision: &Decision,
    method: &Method,
    path: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "{}\t{} {}\t{}\t{}",
        decision.seq,
        method,
        path,
        decision.action.outcome(),
        decision.delay.as_micros()
    )
}
