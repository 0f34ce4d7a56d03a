//! How far a batch may move: steps granted by polls (`steps_per_poll`) and by wall time
//! (`step_interval`), and the share of lines each step answers (`progress_steps`, `stall`).

use std::time::{Duration, Instant};

use super::knobs::FakeKnobs;

/// The steps a batch is owed and has not taken yet.
#[derive(Debug)]
pub struct Clock {
    owed: u64,
    last_tick: Instant,
    born: Instant,
}

impl Clock {
    pub fn new() -> Self {
        let now = Instant::now();
        Self { owed: 0, last_tick: now, born: now }
    }

    /// Whether the batch has outlived the `expire_after` knob.
    pub fn expired(&self, knobs: &FakeKnobs) -> bool {
        knobs.expire_after.is_some_and(|window: Duration| self.born.elapsed() >= window)
    }

    /// A poll showed this batch.
    pub fn polled(&mut self, knobs: &FakeKnobs) {
        self.owed += u64::from(knobs.steps_per_poll);
    }

    /// Takes the steps owed (time's included), to be run one by one by the caller.
    pub fn take(&mut self, knobs: &FakeKnobs) -> u64 {
        let now = Instant::now();
        match knobs.step_interval.filter(|i| !i.is_zero()) {
            Some(interval) => {
                let ticks = (now.saturating_duration_since(self.last_tick).as_nanos() / interval.as_nanos()) as u64;
                self.owed += ticks;
                self.last_tick += interval * u32::try_from(ticks).unwrap_or(u32::MAX);
            }
            // Time does not count while no interval is set (turning one on starts from now).
            None => self.last_tick = now,
        }
        std::mem::take(&mut self.owed)
    }
}

/// How many of `total` lines are answered after one more step from `done`, or `None` when
/// the batch may not move (stalled at half).
pub fn next_share(total: usize, done: usize, knobs: &FakeKnobs) -> Option<usize> {
    let share = total.div_ceil(knobs.progress_steps.max(1) as usize).max(1);
    let cap = if knobs.stall { total / 2 } else { total };
    let next = (done + share).min(cap).max(done);
    (next > done || done == total).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_the_stall() {
        let knobs = FakeKnobs::default();
        assert_eq!(next_share(5, 0, &knobs), Some(3));
        assert_eq!(next_share(5, 3, &knobs), Some(5));
        assert_eq!(next_share(0, 0, &knobs), Some(0));
        let stalled = FakeKnobs { stall: true, ..FakeKnobs::default() };
        assert_eq!(next_share(5, 0, &stalled), Some(2));
        assert_eq!(next_share(5, 2, &stalled), None);
        assert_eq!(next_share(1, 0, &stalled), None);
    }
}
