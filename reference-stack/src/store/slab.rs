//! Records numbered in insertion order, kept in fixed-size chunks: growing never copies
//! what is already stored, and the oldest records leave first (FIFO eviction).

use std::collections::VecDeque;

/// Slots per chunk; a chunk is allocated once at this size.
const CHUNK: usize = 4096;
/// Most ids between the oldest and the newest slot, so `u32` ids never wrap into each
/// other.
const MAX_SPAN: usize = (u32::MAX / 2) as usize;

/// The slab. Ids are `u32` and wrap around; at most [`MAX_SPAN`] are in use at once.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    chunks: VecDeque<Vec<Option<T>>>,
    /// Id of `chunks[0][0]`.
    first: u32,
    /// No live slot is older than this id.
    oldest: u32,
    /// The next id handed out.
    next: u32,
    live: usize,
}

impl<T> Slab<T> {
    /// An empty slab.
    pub(crate) fn new() -> Self {
        Self {
            chunks: VecDeque::new(),
            first: 0,
            oldest: 0,
            next: 0,
            live: 0,
        }
    }

    /// Number of live slots.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Whether the oldest slot has to go before another push: more than `capacity`
    /// live, or the id span is used up.
    pub(crate) fn over(&self, capacity: usize) -> bool {
        self.live > capacity || self.next.wrapping_sub(self.first) as usize >= MAX_SPAN
    }

    /// Store `value`, returning its id.
    pub(crate) fn push(&mut self, value: T) -> u32 {
        if self.chunks.back().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push_back(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.back_mut() {
            chunk.push(Some(value));
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        self.live += 1;
        id
    }

    fn slot(&self, id: u32) -> Option<&Option<T>> {
        let offset = self.offset(id)?;
        self.chunks.get(offset / CHUNK)?.get(offset % CHUNK)
    }

    fn slot_mut(&mut self, id: u32) -> Option<&mut Option<T>> {
        let offset = self.offset(id)?;
        self.chunks.get_mut(offset / CHUNK)?.get_mut(offset % CHUNK)
    }

    /// Position of `id` from `first`, if it is one of the slots held.
    fn offset(&self, id: u32) -> Option<usize> {
        let offset = id.wrapping_sub(self.first) as usize;
        (offset < self.next.wrapping_sub(self.first) as usize).then_some(offset)
    }

    /// The value under `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.slot(id)?.as_ref()
    }

    /// The value under `id`, mutably.
    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slot_mut(id)?.as_mut()
    }

    /// Empty the slot `id`, returning its value.
    pub(crate) fn take(&mut self, id: u32) -> Option<T> {
        let value = self.slot_mut(id)?.take()?;
        self.live -= 1;
        self.skip_vacant();
        Some(value)
    }

    /// Remove the oldest live value.
    pub(crate) fn pop_oldest(&mut self) -> Option<(u32, T)> {
        self.skip_vacant();
        let id = self.oldest;
        let value = self.take(id)?;
        Some((id, value))
    }

    /// Move `oldest` past empty slots and free chunks that lie wholly before it.
    fn skip_vacant(&mut self) {
        while self.oldest != self.next && matches!(self.slot(self.oldest), Some(None)) {
            self.oldest = self.oldest.wrapping_add(1);
        }
        while self.oldest.wrapping_sub(self.first) as usize >= CHUNK {
            self.chunks.pop_front();
            self.first = self.first.wrapping_add(CHUNK as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_leaves_first_and_old_chunks_are_freed() {
        let mut slab = Slab::new();
        let ids: Vec<u32> = (0..10_000).map(|i| slab.push(i)).collect();
        assert_eq!(slab.take(ids[1]), Some(1));
        assert_eq!(slab.pop_oldest(), Some((0, 0)));
        assert_eq!(slab.pop_oldest(), Some((2, 2)));
        for _ in 3..9000 {
            slab.pop_oldest();
        }
        assert_eq!(slab.chunks.len(), 1);
        assert_eq!(slab.len(), 1000);
        assert_eq!(slab.get(ids[9500]), Some(&9500));
        assert_eq!(slab.get(ids[10]), None);
        assert!(slab.over(999) && !slab.over(1000));
    }

    #[test]
    fn ids_wrap_around() {
        let mut slab = Slab::new();
        slab.first = u32::MAX - 2;
        slab.oldest = u32::MAX - 2;
        slab.next = u32::MAX - 2;
        let ids: Vec<u32> = (0..6).map(|i| slab.push(i)).collect();
        assert_eq!(ids[5], 2);
        assert_eq!(slab.get(2), Some(&5));
        assert_eq!(slab.pop_oldest(), Some((u32::MAX - 2, 0)));
    }
}
