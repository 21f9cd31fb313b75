//! The submission rate limit, a token bucket: how fast jobs may go to `sbatch`.

use std::time::Instant;

/// The submission rate limit: up to `rate` submissions at once (at least one), refilled at
/// `rate` per second, so a big gap goes out at a steady `rate` per second.
#[derive(Debug)]
pub(super) struct TokenBucket {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate: f64) -> TokenBucket {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        TokenBucket {
            rate,
            tokens: rate.max(1.0),
            refilled: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.refilled = now;
    }

    /// Whether a submission may go out at `now`.
    pub(super) fn available(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Counts a submission at `now` (even past the limit: the caller asked first).
    pub(super) fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_rate_limit_allows_a_burst_then_a_steady_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0);
        bucket.refilled = start;
        assert!(bucket.available(start));
        bucket.take(start);
        assert!(bucket.available(start));
        bucket.take(start);
        assert!(!bucket.available(start));
        assert!(!bucket.available(start + Duration::from_millis(400)));
        assert!(bucket.available(start + Duration::from_millis(500)));
        bucket.take(start + Duration::from_millis(500));
        assert!(!bucket.available(start + Duration::from_millis(600)));
        // Never more than the burst, however long it waited.
        let later = start + Duration::from_secs(60);
        bucket.take(later);
        bucket.take(later);
        assert!(!bucket.available(later));
    }

    #[test]
    fn a_slow_rate_still_allows_one() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0.5);
        bucket.refilled = start;
        assert!(bucket.available(start));
        bucket.take(start);
        assert!(!bucket.available(start + Duration::from_secs(1)));
        assert!(bucket.available(start + Duration::from_secs(2)));
    }
}
