//! The micro-batcher: a pure state machine that groups incoming items into batches closed by size,
//! bytes or age, whichever comes first. It knows nothing of Kafka or clocks of its own — the caller
//! passes `now` — so its rules are tested without a broker or a sleep.

use std::time::{Duration, Instant};

/// When a batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_wait: Duration,
}

/// Collects items until a limit is reached.
#[derive(Debug)]
pub struct MicroBatcher<T> {
    limits: BatchLimits,
    items: Vec<T>,
    bytes: usize,
    opened: Option<Instant>,
}

impl<T> MicroBatcher<T> {
    pub fn new(limits: BatchLimits) -> Self {
        Self { limits, items: Vec::new(), bytes: 0, opened: None }
    }

    /// Adds one item of `bytes` bytes; returns the batch if this item filled it (by rows or bytes).
    pub fn push(&mut self, item: T, bytes: usize, now: Instant) -> Option<Vec<T>> {
        if self.items.is_empty() {
            self.opened = Some(now);
        }
        self.items.push(item);
        self.bytes += bytes;
        if self.items.len() >= self.limits.max_rows || self.bytes >= self.limits.max_bytes {
            return self.flush();
        }
        None
    }

    /// When the open batch must close by age; `None` when nothing is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + self.limits.max_wait)
    }

    /// Returns the batch if its age limit has passed at `now`.
    pub fn poll_expired(&mut self, now: Instant) -> Option<Vec<T>> {
        match self.deadline() {
            Some(deadline) if now >= deadline => self.flush(),
            _ => None,
        }
    }

    /// Closes the open batch whatever its size (shutdown, timeout); `None` when empty.
    pub fn flush(&mut self) -> Option<Vec<T>> {
        self.opened = None;
        self.bytes = 0;
        if self.items.is_empty() { None } else { Some(std::mem::take(&mut self.items)) }
    }

    /// Drops waiting items that fail `keep` (the partitions taken away by a rebalance); their offsets
    /// were never committed, so the partitions' new owner reads them again.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool, size_of: impl Fn(&T) -> usize) {
        self.items.retain(keep);
        self.bytes = self.items.iter().map(size_of).sum();
        if self.items.is_empty() {
            self.opened = None;
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(rows: usize, bytes: usize, wait_ms: u64) -> BatchLimits {
        BatchLimits { max_rows: rows, max_bytes: bytes, max_wait: Duration::from_millis(wait_ms) }
    }

    #[test]
    fn closes_at_rows_bytes_or_age() {
        let t0 = Instant::now();
        let mut by_rows = MicroBatcher::new(limits(3, 1000, 50));
        assert!(by_rows.push(1, 1, t0).is_none());
        assert!(by_rows.push(2, 1, t0).is_none());
        assert_eq!(by_rows.push(3, 1, t0), Some(vec![1, 2, 3]));
        assert!(by_rows.is_empty() && by_rows.deadline().is_none());

        let mut by_bytes = MicroBatcher::new(limits(100, 10, 50));
        assert!(by_bytes.push("a", 6, t0).is_none());
        assert_eq!(by_bytes.push("b", 6, t0), Some(vec!["a", "b"]));

        let mut by_age = MicroBatcher::new(limits(100, 1000, 20));
        by_age.push(7, 1, t0);
        by_age.push(8, 1, t0 + Duration::from_millis(15));
        assert_eq!(by_age.deadline(), Some(t0 + Duration::from_millis(20)), "the first item starts the clock");
        assert!(by_age.poll_expired(t0 + Duration::from_millis(19)).is_none());
        assert_eq!(by_age.poll_expired(t0 + Duration::from_millis(20)), Some(vec![7, 8]));
        assert!(by_age.flush().is_none());
    }

    #[test]
    fn retain_drops_revoked_items_and_recounts_bytes() {
        let t0 = Instant::now();
        let mut batcher = MicroBatcher::new(limits(100, 10, 50));
        batcher.push((0, 4), 4, t0);
        batcher.push((1, 4), 4, t0);
        batcher.retain(|&(partition, _)| partition != 0, |&(_, size)| size);
        assert_eq!(batcher.len(), 1);
        // 4 + 4 bytes would close the batch; after the retain only 4 are counted.
        assert!(batcher.push((1, 4), 4, t0).is_none());
        batcher.retain(|_| false, |&(_, size)| size);
        assert!(batcher.deadline().is_none());
    }

    proptest! {
        /// Whatever the limits and the arrival times, every item comes out exactly once, in order, and no
        /// batch exceeds the row limit.
        #[test]
        fn neither_loses_nor_duplicates(
            sizes in proptest::collection::vec(1usize..50, 0..300),
            gaps in proptest::collection::vec(0u64..10, 300),
            max_rows in 1usize..40, max_bytes in 1usize..400, wait in 1u64..30,
        ) {
            let mut batcher = MicroBatcher::new(limits(max_rows, max_bytes, wait));
            let mut now = Instant::now();
            let mut out = Vec::new();
            for (i, &size) in sizes.iter().enumerate() {
                now += Duration::from_millis(gaps[i]);
                if let Some(batch) = batcher.poll_expired(now) {
                    out.push(batch);
                }
                if let Some(batch) = batcher.push(i, size, now) {
                    out.push(batch);
                }
            }
            out.extend(batcher.flush());
            prop_assert!(out.iter().all(|b| !b.is_empty() && b.len() <= max_rows));
            let flat: Vec<usize> = out.into_iter().flatten().collect();
            prop_assert_eq!(flat, (0..sizes.len()).collect::<Vec<_>>());
        }
    }
}
