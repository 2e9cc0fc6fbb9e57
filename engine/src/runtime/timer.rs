//! A shard's timers: a min-heap of deadlines over a generation-checked slab, so that setting and
//! cancelling a timer costs no allocation once the shard has warmed up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Names one timer on one shard; stale ids (fired or cancelled) are recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    slot: u32,
    generation: u32,
}

struct Entry<T> {
    generation: u32,
    target: Option<T>,
}

/// Timers carrying a payload `T`, ordered by deadline.
pub(crate) struct TimerHeap<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    live: usize,
}

impl<T> TimerHeap<T> {
    pub(crate) fn new() -> Self {
        TimerHeap {
            entries: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::new(),
            live: 0,
        }
    }

    pub(crate) fn insert(&mut self, deadline: Instant, target: T) -> TimerId {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    target: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[slot as usize];
        entry.target = Some(target);
        self.live += 1;
        let id = TimerId {
            slot,
            generation: entry.generation,
        };
        self.heap.push(Reverse((deadline, slot, id.generation)));
        self.compact_if_stale();
        id
    }

    /// Cancels a pending timer and returns its payload; `None` if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        let entry = self.entries.get_mut(id.slot as usize)?;
        if entry.generation != id.generation {
            return None;
        }
        let target = entry.target.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(id.slot);
        self.live -= 1;
        Some(target)
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, slot, generation))) = self.heap.peek().copied() {
            if self.entries[slot as usize].generation == generation {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one timer whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<T> {
        loop {
            let Reverse((deadline, slot, generation)) = *self.heap.peek()?;
            if self.entries[slot as usize].generation != generation {
                self.heap.pop();
                continue;
            }
            if deadline > now {
                return None;
            }
            self.heap.pop();
            return self.cancel(TimerId { slot, generation });
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Cancelled timers leave stale heap entries until their deadline; rebuild the heap when they
    /// outnumber the live ones, so churn (set, cancel, set) cannot grow it without bound.
    fn compact_if_stale(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.live {
            let entries = &self.entries;
            self.heap.retain(|Reverse((_, slot, generation))| {
                entries[*slot as usize].generation == *generation
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_fire_in_deadline_order() {
        let mut t = TimerHeap::new();
        let now = Instant::now();
        t.insert(now + Duration::from_millis(30), 3);
        t.insert(now + Duration::from_millis(10), 1);
        t.insert(now + Duration::from_millis(20), 2);
        assert_eq!(t.pop_expired(now), None);
        let later = now + Duration::from_millis(25);
        assert_eq!(t.pop_expired(later), Some(1));
        assert_eq!(t.pop_expired(later), Some(2));
        assert_eq!(t.pop_expired(later), None);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(30)));
    }

    #[test]
    fn a_cancelled_timer_never_fires_and_its_id_goes_stale() {
        let mut t = TimerHeap::new();
        let now = Instant::now();
        let id = t.insert(now, "a");
        assert_eq!(t.cancel(id), Some("a"));
        assert_eq!(t.cancel(id), None);
        let id2 = t.insert(now, "b");
        assert_eq!(
            t.cancel(id),
            None,
            "the old id must not cancel the reused slot"
        );
        assert_eq!(t.pop_expired(now), Some("b"));
        assert_eq!(t.cancel(id2), None);
    }

    #[test]
    fn churn_does_not_grow_the_heap_without_bound() {
        let mut t = TimerHeap::new();
        let far = Instant::now() + Duration::from_secs(3600);
        for i in 0..100_000u32 {
            let id = t.insert(far, i);
            t.cancel(id);
        }
        assert!(t.heap.len() <= 2048, "heap holds {} entries", t.heap.len());
        assert_eq!(t.len(), 0);
    }
}
