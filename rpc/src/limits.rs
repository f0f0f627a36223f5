//! A budget for entries signed by keys the co-op does not know (applications to join): a token
//! bucket, so a flood of strangers' entries cannot take the sequencer from the members. Known
//! keys never wait on it.

use std::sync::Mutex;
use std::time::Instant;

/// Integer token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug)]
pub struct Bucket {
    rate: u64,
    burst: u64,
    /// (thousandths of a token, when last refilled)
    state: Mutex<(u64, Instant)>,
}

impl Bucket {
    /// `rate` per second (at least 1), bursts of `2 × rate`.
    pub fn per_second(rate: u32) -> Bucket {
        let rate = u64::from(rate.max(1));
        Bucket {
            rate,
            burst: 2 * rate,
            state: Mutex::new((2 * rate * 1000, Instant::now())),
        }
    }

    /// Takes one token if there is one; otherwise how many milliseconds until there is.
    pub fn take(&self) -> Result<(), u64> {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.duration_since(s.1).as_millis() as u64;
        // `rate` tokens a second = `rate` thousandths of a token a millisecond.
        s.0 = (s.0 + elapsed.saturating_mul(self.rate)).min(self.burst * 1000);
        s.1 = now;
        if s.0 >= 1000 {
            s.0 -= 1000;
            Ok(())
        } else {
            Err((1000 - s.0).div_ceil(self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let b = Bucket::per_second(10);
        for _ in 0..20 {
            assert!(b.take().is_ok());
        }
        let wait = b.take().unwrap_err();
        assert!((1..=100).contains(&wait), "{wait}");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(b.take().is_ok());
    }
}
