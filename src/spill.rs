//! Fixed-size binary records spilled to a file in the run folder, so a run
//! keeps per-request and per-arrival evidence in bounded memory however
//! long it lasts: producers push onto a lock-free queue, a writer drains it
//! in batches, and the verdict reads the file back.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crossbeam_queue::SegQueue;

/// A record with a fixed little-endian encoding.
pub trait Record: Copy + Send + 'static {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Writes the record into `out` (`SIZE` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Reads a record from `bytes` (`SIZE` bytes).
    fn decode(bytes: &[u8]) -> Self;
}

/// A spill file being written: [`Spill::push`] from any thread without a
/// lock, [`Spill::flush`] from one writer now and then.
pub struct Spill<T: Record> {
    path: PathBuf,
    queue: SegQueue<T>,
    out: Mutex<Option<BufWriter<File>>>,
    /// No file: records wait for [`Spill::take`].
    detached: bool,
}

impl<T: Record> Spill<T> {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            queue: SegQueue::new(),
            out: Mutex::new(Some(BufWriter::with_capacity(1 << 16, file))),
            detached: false,
        })
    }

    /// A spill with no file: records are only queued, for the owner to
    /// [`Spill::take`] (a worker sends them to its coordinator).
    pub fn detached() -> Self {
        Self {
            path: PathBuf::new(),
            queue: SegQueue::new(),
            out: Mutex::new(None),
            detached: true,
        }
    }

    /// Every queued record, taken off the queue (not written).
    pub fn take(&self) -> Vec<T> {
        let mut taken = Vec::with_capacity(self.queue.len());
        while let Some(record) = self.queue.pop() {
            taken.push(record);
        }
        taken
    }

    /// Where the records go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one record (lock-free; written at the next flush).
    pub fn push(&self, record: T) {
        self.queue.push(record);
    }

    /// Writes every queued record to the file (a detached spill keeps
    /// them for [`Spill::take`]). A write error is logged
    /// once and the file abandoned: evidence goes missing (and the verdict
    /// says so) rather than the run failing.
    pub fn flush(&self) {
        if self.detached {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = vec![0u8; T::SIZE];
        while let Some(record) = self.queue.pop() {
            let Some(w) = out.as_mut() else { continue };
            record.encode(&mut buf);
            if let Err(e) = w.write_all(&buf) {
                tracing::error!("cannot write {}: {e}", self.path.display());
                *out = None;
            }
        }
        if let Some(w) = out.as_mut()
            && let Err(e) = w.flush()
        {
            tracing::error!("cannot write {}: {e}", self.path.display());
            *out = None;
        }
    }
}

/// Reads every record of a spill file, keeping those `keep` accepts. A
/// missing file reads as empty; a torn last record is ignored.
pub fn read<T: Record>(path: &Path, mut keep: impl FnMut(&T) -> bool) -> std::io::Result<Vec<T>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = vec![0u8; T::SIZE];
    let mut out = Vec::new();
    loop {
        match reader.read_exact(&mut buf) {
            Ok(()) => {
                let record = T::decode(&buf);
                if keep(&record) {
                    out.push(record);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// A spill file read a chunk at a time, in bounded memory.
pub struct Chunks<T: Record> {
    reader: Option<BufReader<File>>,
    _records: std::marker::PhantomData<T>,
}

impl<T: Record> Chunks<T> {
    /// Opens the file at `path`; a missing file reads as empty.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let reader = match File::open(path) {
            Ok(f) => Some(BufReader::with_capacity(1 << 16, f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            reader,
            _records: std::marker::PhantomData,
        })
    }

    /// The next records, at most `n`; empty at the end (a torn last
    /// record is ignored).
    pub fn next_chunk(&mut self, n: usize) -> std::io::Result<Vec<T>> {
        let mut out = Vec::with_capacity(n);
        let Some(reader) = self.reader.as_mut() else {
            return Ok(out);
        };
        let mut buf = vec![0u8; T::SIZE];
        while out.len() < n {
            match reader.read_exact(&mut buf) {
                Ok(()) => out.push(T::decode(&buf)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.reader = None;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// `records` in their file encoding, one after the other.
pub fn encode_all<T: Record>(records: &[T]) -> Vec<u8> {
    let mut bytes = vec![0u8; records.len() * T::SIZE];
    for (record, out) in records.iter().zip(bytes.chunks_exact_mut(T::SIZE)) {
        record.encode(out);
    }
    bytes
}

/// The records of [`encode_all`]'s `bytes`; None when `bytes` is not a
/// whole number of records.
pub fn decode_all<T: Record>(bytes: &[u8]) -> Option<Vec<T>> {
    bytes
        .len()
        .is_multiple_of(T::SIZE)
        .then(|| bytes.chunks_exact(T::SIZE).map(T::decode).collect())
}

/// Little-endian field access for [`Record`] implementations.
pub(crate) mod le {
    /// Writes `v` at `out[at..at + 8]`.
    pub(crate) fn put_u64(out: &mut [u8], at: usize, v: u64) {
        out[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Writes `v` at `out[at..at + 2]`.
    pub(crate) fn put_u16(out: &mut [u8], at: usize, v: u16) {
        out[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// Reads 8 bytes at `at`.
    pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    }

    /// Reads 2 bytes at `at`.
    pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([bytes[at], bytes[at + 1]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Pair(u64, u16);

    impl Record for Pair {
        const SIZE: usize = 10;
        fn encode(&self, out: &mut [u8]) {
            le::put_u64(out, 0, self.0);
            le::put_u16(out, 8, self.1);
        }
        fn decode(bytes: &[u8]) -> Self {
            Pair(le::u64_at(bytes, 0), le::u16_at(bytes, 8))
        }
    }

    #[test]
    fn a_detached_spill_hands_its_records_over_in_push_order() {
        let spill = Spill::<Pair>::detached();
        for i in 0..10u64 {
            spill.push(Pair(i, 1));
        }
        spill.flush();
        let taken = spill.take();
        assert_eq!(taken.len(), 10);
        let bytes = encode_all(&taken);
        assert_eq!(decode_all::<Pair>(&bytes), Some(taken));
        assert_eq!(decode_all::<Pair>(&bytes[1..]), None);
        assert!(spill.take().is_empty());
    }

    #[test]
    fn records_round_trip_through_the_file_in_push_order() {
        let dir = std::env::temp_dir().join(format!("faultline-spill-{}", std::process::id()));
        let path = dir.join("pairs.bin");
        let spill = Spill::<Pair>::create(&path).expect("created");
        for i in 0..1000u64 {
            spill.push(Pair(i, (i % 7) as u16));
            if i % 300 == 0 {
                spill.flush();
            }
        }
        spill.flush();
        let all = read::<Pair>(&path, |_| true).expect("read");
        assert_eq!(all.len(), 1000);
        let mut chunks = Chunks::<Pair>::open(&path).expect("opened");
        let mut chunked = Vec::new();
        loop {
            let chunk = chunks.next_chunk(300).expect("read");
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 300);
            chunked.extend(chunk);
        }
        assert_eq!(chunked, all);
        assert!(all.iter().enumerate().all(|(i, p)| p.0 == i as u64));
        let sevens = read::<Pair>(&path, |p| p.1 == 0).expect("read");
        assert_eq!(sevens.len(), 143);
        assert!(
            read::<Pair>(&dir.join("absent.bin"), |_| true)
                .expect("absent reads as empty")
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
