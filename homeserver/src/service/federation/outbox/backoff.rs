//! Retry delays for one destination: exponential (doubling from `initial` up to `max`), with
//! jitter so that destinations which failed together do not all retry at the same instant.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt: the current step, scaled by a random factor in
    /// [0.75, 1] (never above the cap). The step then doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = step.saturating_mul(2).min(self.max);
        step.mul_f64(rand::random_range(0.75..=1.0))
    }

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(3600));
        let mut steps = Vec::new();
        for _ in 0..14 {
            let d = b.next_delay();
            steps.push(d);
        }
        // Step k is 2^k s (capped at 3600 s), jittered into [0.75, 1] of it.
        for (k, d) in steps.iter().enumerate() {
            let step = s(1 << k.min(12)).min(s(3600));
            assert!(*d <= step && *d >= step.mul_f64(0.75), "step {k}: {d:?}");
        }
        assert!(steps[13] <= s(3600));
        b.reset();
        assert!(b.next_delay() <= s(1));
    }
}
