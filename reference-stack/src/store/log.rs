//! An append-only byte log for encoded records: the newest chunks stay in memory, older
//! ones are written to an unlinked temporary file, so the memory it uses is bounded
//! however many records it holds.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per in-memory chunk. A chunk is allocated once at full size, never grown.
const CHUNK_BYTES: usize = 1 << 18;
/// Chunks kept in memory; older ones are spilled to the file.
const HOT_CHUNKS: usize = 16;
/// Bits of a [`Loc`] holding the record length.
const LEN_BITS: u32 = 24;
/// The longest record (16 MiB - 1); encoders keep theirs far below it.
pub(crate) const MAX_RECORD: usize = (1 << LEN_BITS) - 1;

/// Where a record lies in the log: offset (40 bits, 1 TiB) and length (24 bits) in one
/// non-zero word, so `Option<Loc>` is 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc(NonZeroU64);

impl Loc {
    fn new(offset: u64, len: usize) -> Self {
        let len = len.min(MAX_RECORD) as u64;
        Loc(NonZeroU64::MIN.saturating_add((offset << LEN_BITS) | len))
    }

    fn packed(self) -> u64 {
        self.0.get() - 1
    }

    fn offset(self) -> u64 {
        self.packed() >> LEN_BITS
    }

    fn len(self) -> usize {
        (self.packed() & MAX_RECORD as u64) as usize
    }
}

#[derive(Debug)]
struct Chunk {
    /// Log offset of the chunk's first byte.
    base: u64,
    bytes: Vec<u8>,
}

/// The log. Not synchronised: its owner holds it under a lock.
#[derive(Debug)]
pub(crate) struct Log {
    label: &'static str,
    /// In-memory chunks, oldest first; together they hold `[spilled, end)`.
    hot: VecDeque<Chunk>,
    /// Bytes below this offset are in the spill file.
    spilled: u64,
    /// The next record's offset.
    end: u64,
    /// The spill file, once created; it stays readable after a failed write.
    file: Option<File>,
    /// No more spilling: the file could not be created or written. Then new chunks
    /// stay in memory.
    spill_off: bool,
}

impl Log {
    /// An empty log; `label` names its spill file.
    pub(crate) fn new(label: &'static str) -> Self {
        Self {
            label,
            hot: VecDeque::new(),
            spilled: 0,
            end: 0,
            file: None,
            spill_off: false,
        }
    }

    /// Append a record (at most [`MAX_RECORD`] bytes; longer ones are cut).
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Loc {
        let bytes = &bytes[..bytes.len().min(MAX_RECORD)];
        let fits = self
            .hot
            .back()
            .is_some_and(|c| c.bytes.len() + bytes.len() <= c.bytes.capacity());
        if !fits {
            self.hot.push_back(Chunk {
                base: self.end,
                bytes: Vec::with_capacity(CHUNK_BYTES.max(bytes.len())),
            });
            self.spill_cold();
        }
        let offset = self.end;
        if let Some(chunk) = self.hot.back_mut() {
            chunk.bytes.extend_from_slice(bytes);
        }
        self.end += bytes.len() as u64;
        Loc::new(offset, bytes.len())
    }

    /// Write `bytes` over the record at `loc` when they fit in its place; returns the
    /// record's new location, or `None` when the caller must append instead.
    pub(crate) fn overwrite(&mut self, loc: Loc, bytes: &[u8]) -> Option<Loc> {
        if bytes.len() > loc.len() {
            return None;
        }
        let offset = loc.offset();
        if offset < self.spilled {
            let file = self.file.as_mut()?;
            file.seek(SeekFrom::Start(offset)).ok()?;
            file.write_all(bytes).ok()?;
        } else {
            let (chunk, start) = self.hot_position(offset)?;
            chunk
                .bytes
                .get_mut(start..start + bytes.len())?
                .copy_from_slice(bytes);
        }
        Some(Loc::new(offset, bytes.len()))
    }

    /// Call `f` with the record at `loc` (`None` if it cannot be read back).
    pub(crate) fn with<R>(&mut self, loc: Loc, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let offset = loc.offset();
        if offset < self.spilled {
            let file = self.file.as_mut()?;
            let mut buf = vec![0; loc.len()];
            let read = file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut buf));
            if let Err(err) = read {
                tracing::error!(log = self.label, %err, "spilled record unreadable");
                return None;
            }
            return Some(f(&buf));
        }
        let (chunk, start) = self.hot_position(offset)?;
        chunk.bytes.get(start..start + loc.len()).map(f)
    }

    /// Bytes of the log kept in memory.
    #[cfg(test)]
    pub(crate) fn hot_bytes(&self) -> usize {
        self.hot.iter().map(|c| c.bytes.len()).sum()
    }

    fn hot_position(&mut self, offset: u64) -> Option<(&mut Chunk, usize)> {
        let index = self
            .hot
            .partition_point(|c| c.base <= offset)
            .checked_sub(1)?;
        let chunk = self.hot.get_mut(index)?;
        let start = usize::try_from(offset - chunk.base).ok()?;
        Some((chunk, start))
    }

    /// Move the oldest chunks to the spill file while more than [`HOT_CHUNKS`] are held.
    fn spill_cold(&mut self) {
        while self.hot.len() > HOT_CHUNKS {
            if !self.open_spill_file() {
                return;
            }
            let (Some(file), Some(chunk)) = (self.file.as_mut(), self.hot.front()) else {
                return;
            };
            let written = file
                .seek(SeekFrom::Start(chunk.base))
                .and_then(|_| file.write_all(&chunk.bytes));
            if let Err(err) = written {
                tracing::warn!(log = self.label, %err, "cannot spill the store to disk; keeping it in memory");
                self.spill_off = true;
                return;
            }
            self.spilled = chunk.base + chunk.bytes.len() as u64;
            self.hot.pop_front();
        }
    }

    /// Whether spilling is on, with the file open.
    fn open_spill_file(&mut self) -> bool {
        if self.spill_off {
            return false;
        }
        if self.file.is_none() {
            match create_spill_file(self.label) {
                Ok(file) => self.file = Some(file),
                Err(err) => {
                    tracing::warn!(log = self.label, %err, "no spill file; keeping the store in memory");
                    self.spill_off = true;
                    return false;
                }
            }
        }
        true
    }
}

/// A new spill file in the temporary directory (`TMPDIR`), unlinked at once so its
/// space is freed when the log is dropped, even after a crash.
fn create_spill_file(label: &str) -> std::io::Result<File> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "reference-stack-{}-{seq}-{label}.log",
        std::process::id()
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    // Unix keeps the open file without a name; elsewhere removal fails and the file
    // stays until the temporary directory is cleaned.
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_from_memory_and_from_the_spill_file() {
        let mut log = Log::new("test");
        let record = vec![7u8; 1000];
        let locs: Vec<Loc> = (0..6000)
            .map(|i| {
                let mut r = record.clone();
                r[0] = (i % 251) as u8;
                log.append(&r)
            })
            .collect();
        assert!(log.hot_bytes() <= HOT_CHUNKS * CHUNK_BYTES);
        for (i, loc) in locs.iter().enumerate() {
            let first = log.with(*loc, |b| (b.len(), b[0])).unwrap();
            assert_eq!(first, (1000, (i % 251) as u8));
        }
        // Overwrite in place, cold and hot.
        for loc in [locs[0], locs[5999]] {
            let moved = log.overwrite(loc, &[1, 2, 3]).unwrap();
            assert_eq!(log.with(moved, <[u8]>::to_vec).unwrap(), vec![1, 2, 3]);
        }
        assert!(log.overwrite(locs[1], &[0; 1001]).is_none());
    }

    #[test]
    fn a_record_longer_than_a_chunk_gets_its_own() {
        let mut log = Log::new("test");
        let small = log.append(b"abc");
        let big = log.append(&vec![9u8; CHUNK_BYTES + 10]);
        assert_eq!(log.with(small, <[u8]>::to_vec).unwrap(), b"abc");
        assert_eq!(log.with(big, <[u8]>::len).unwrap(), CHUNK_BYTES + 10);
    }
}
