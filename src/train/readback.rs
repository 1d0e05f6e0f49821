//! When the training loop reads from the device during an epoch: after its
//! first batch (so that a loss blown up at once is named at once), at most
//! once per interval after that (the progress line), and after its last.
//! Every read waits for the device's queue to drain: on a GPU, one per batch
//! would serialise the host and the device.

use std::time::{Duration, Instant};

/// How often the progress line's loss is refreshed, at most.
pub const READ_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct ReadBack {
    interval: Duration,
    last: Option<Instant>,
    /// Reads granted so far.
    pub reads: usize,
}

impl ReadBack {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            reads: 0,
        }
    }

    /// Whether to read after a batch that ended at `now`.
    pub fn due(&mut self, now: Instant, last_batch: bool) -> bool {
        let due = last_batch
            || self
                .last
                .is_none_or(|then| now.duration_since(then) >= self.interval);
        if due {
            self.last = Some(now);
            self.reads += 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_and_last_batch_and_once_per_interval_between() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut read = ReadBack::new(Duration::from_secs(1));
        // Batches every 300 ms: 0, 300, ..., 2700; the last one at 2700.
        let granted: Vec<u64> = (0..10)
            .map(|b| b * 300)
            .filter(|&ms| read.due(at(ms), ms == 2700))
            .collect();
        assert_eq!(granted, [0, 1200, 2400, 2700]);
        assert_eq!(read.reads, 4);
    }

    #[test]
    fn slow_batches_are_each_read() {
        let start = Instant::now();
        let mut read = ReadBack::new(Duration::from_secs(1));
        let granted = (0..4)
            .filter(|&b| read.due(start + Duration::from_secs(2 * b), false))
            .count();
        assert_eq!(granted, 4);
    }
}
