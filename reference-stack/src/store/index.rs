//! A hashed index from text keys to slab ids that never stores the keys: each key is
//! kept as a 64-bit keyed hash (12 bytes per entry with the id), and callers confirm a
//! hit against the record itself. Two live keys with the same hash are rare; the later
//! one is kept by its full text in a small overflow map. The entries are spread over
//! [`SHARDS`] maps, so growth rehashes one small map at a time, never millions of
//! entries at once.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// Maps the entries are spread over.
const SHARDS: usize = 1024;

/// A key's hash, split so the entry packs into 12 bytes with its `u32` id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Fingerprint {
    hi: u32,
    lo: u32,
}

/// Passes a [`Fingerprint`] through as the hash: it is already a keyed hash.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 << 32) | u64::from(n);
    }
}

type Shard = HashMap<Fingerprint, u32, BuildHasherDefault<PassThrough>>;

/// The index.
#[derive(Debug)]
pub(crate) struct HashIndex {
    hasher: RandomState,
    shards: Vec<Shard>,
    overflow: HashMap<String, u32>,
}

impl HashIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            overflow: HashMap::new(),
        }
    }

    /// The shard (from bits 32..42, apart from the bits the shard's own table uses)
    /// and fingerprint of `key`.
    fn locate(&self, key: &str) -> (usize, Fingerprint) {
        let hash = self.hasher.hash_one(key);
        let shard = (hash >> 32) as usize % SHARDS;
        let fingerprint = Fingerprint {
            hi: (hash >> 32) as u32,
            lo: hash as u32,
        };
        (shard, fingerprint)
    }

    /// The ids that may hold `key`, to be confirmed against the records.
    pub(crate) fn candidates(&self, key: &str) -> impl Iterator<Item = u32> + use<> {
        let (shard, fingerprint) = self.locate(key);
        let main = self.shards[shard].get(&fingerprint).copied();
        let overflow = if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(key).copied()
        };
        main.into_iter().chain(overflow)
    }

    /// Index `key` (not indexed yet) under `id`.
    pub(crate) fn insert(&mut self, key: &str, id: u32) {
        let (shard, fingerprint) = self.locate(key);
        match self.shards[shard].entry(fingerprint) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(key.to_owned(), id);
            }
        }
    }

    /// Drop `key` if it is indexed under `id`.
    pub(crate) fn remove(&mut self, key: &str, id: u32) {
        let (shard, fingerprint) = self.locate(key);
        if self.shards[shard].get(&fingerprint) == Some(&id) {
            self.shards[shard].remove(&fingerprint);
        } else if self.overflow.get(key) == Some(&id) {
            self.overflow.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_keys_are_told_apart_through_the_overflow() {
        let mut index = HashIndex::new();
        index.insert("a", 1);
        // Force a collision: index "b" under "a"'s fingerprint by hand.
        let (shard, fingerprint) = index.locate("a");
        assert_eq!(index.shards[shard].get(&fingerprint), Some(&1));
        index.overflow.insert("b".into(), 2);
        assert_eq!(index.candidates("b").collect::<Vec<_>>(), vec![2]);
        assert_eq!(index.candidates("a").collect::<Vec<_>>(), vec![1]);
        index.remove("b", 2);
        assert!(index.overflow.is_empty());
        index.remove("a", 7);
        assert_eq!(index.candidates("a").count(), 1);
        index.remove("a", 1);
        assert_eq!(index.candidates("a").count(), 0);
    }

    #[test]
    fn a_taken_fingerprint_sends_the_new_key_to_the_overflow() {
        let mut index = HashIndex::new();
        // Same key twice stands in for two keys with one fingerprint.
        index.insert("k", 1);
        index.insert("k", 2);
        assert_eq!(index.candidates("k").collect::<Vec<_>>(), vec![1, 2]);
    }
}
