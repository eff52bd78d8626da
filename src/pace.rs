//! Download rate per answer (`limit_rate`, `limit_rate_after`;
//! docs/operations.md "Download rate"), with nginx's semantics: the first
//! `limit_rate_after` bytes go out unthrottled, then the body is held to
//! `limit_rate` bytes per second, counted from the start of the answer.
//! The pacer only computes: how much may be sent now, or how long to wait;
//! the senders (`h1::send`, `paced`) sleep, never spin.

use std::time::{Duration, Instant};

/// A configured rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Bytes per second (≥ 1).
    pub bytes_per_sec: u64,
    /// Bytes sent before the rate applies.
    pub after: u64,
}

/// What the sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send at most this many bytes (≥ 1) now.
    Send(u64),
    /// Sleep this long first.
    Wait(Duration),
}

/// The shortest sleep: no timer is armed for less.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Pacing of one answer's body.
#[derive(Debug, Clone)]
pub struct Pacer {
    spec: RateSpec,
    start: Instant,
    sent: u64,
}

impl Pacer {
    /// A pacer whose clock starts at `start`.
    pub fn new(spec: RateSpec, start: Instant) -> Self {
        Self {
            spec,
            start,
            sent: 0,
        }
    }

    /// Bytes allowed ahead of the rate: an eighth of a second's worth
    /// (at least 4 KiB), so sends are of a useful size.
    fn burst(&self) -> u64 {
        (self.spec.bytes_per_sec / 8).max(4096)
    }

    /// Bytes the answer may have sent by `now`.
    fn credit(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.start).as_nanos();
        let earned = ns.saturating_mul(u128::from(self.spec.bytes_per_sec)) / 1_000_000_000;
        let earned = u64::try_from(earned).unwrap_or(u64::MAX);
        self.spec
            .after
            .saturating_add(self.burst())
            .saturating_add(earned)
    }

    /// What to do before sending the next `want` bytes (≥ 1): send a part
    /// of them, or wait until a useful part (half the burst, or all of
    /// `want` if less) may go.
    pub fn next(&self, want: u64, now: Instant) -> Step {
        let credit = self.credit(now);
        let avail = credit.saturating_sub(self.sent);
        let useful = want.min(self.burst() / 2).max(1);
        if avail >= useful {
            return Step::Send(avail.min(want));
        }
        // Time at which the credit reaches `sent + useful`.
        let target = self.sent + useful - self.spec.after - self.burst();
        let ns = u128::from(target) * 1_000_000_000 / u128::from(self.spec.bytes_per_sec.max(1));
        let at = Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX));
        let elapsed = now.saturating_duration_since(self.start);
        Step::Wait(at.saturating_sub(elapsed).max(MIN_WAIT))
    }

    /// Records `n` bytes sent.
    pub fn sent(&mut self, n: u64) {
        self.sent = self.sent.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Simulated transfer of `total` bytes in sends of at most `chunk`:
    /// the time the last byte leaves.
    fn simulate(spec: RateSpec, total: u64, chunk: u64) -> Duration {
        let t0 = Instant::now();
        let mut now = t0;
        let mut p = Pacer::new(spec, t0);
        let mut left = total;
        let mut steps = 0;
        while left > 0 {
            steps += 1;
            assert!(steps < 1_000_000, "no progress");
            match p.next(left.min(chunk), now) {
                Step::Send(n) => {
                    assert!(n >= 1 && n <= left.min(chunk));
                    p.sent(n);
                    left -= n;
                }
                Step::Wait(d) => {
                    assert!(d >= MIN_WAIT);
                    now += d;
                }
            }
        }
        now - t0
    }

    #[test]
    fn holds_the_rate() {
        let spec = RateSpec {
            bytes_per_sec: MIB,
            after: 0,
        };
        let t = simulate(spec, 4 * MIB, 256 * 1024);
        // 4 MiB at 1 MiB/s, the first eighth of a second's worth at once.
        assert!(
            t >= Duration::from_millis(3800) && t <= Duration::from_millis(3900),
            "{t:?}"
        );
    }

    #[test]
    fn after_bytes_are_free() {
        let spec = RateSpec {
            bytes_per_sec: MIB,
            after: 3 * MIB,
        };
        let t = simulate(spec, 4 * MIB, 64 * 1024);
        assert!(t <= Duration::from_millis(900), "{t:?}");
        let small = simulate(spec, 2 * MIB, 64 * 1024);
        assert_eq!(small, Duration::ZERO);
    }

    #[test]
    fn slow_rates_wait_rather_than_trickle() {
        let spec = RateSpec {
            bytes_per_sec: 1000,
            after: 0,
        };
        let t0 = Instant::now();
        let mut p = Pacer::new(spec, t0);
        assert_eq!(p.next(10_000, t0), Step::Send(4096));
        p.sent(4096);
        // Half the burst (2048 bytes) at 1000 B/s: about 2 s later.
        let Step::Wait(d) = p.next(10_000, t0) else {
            panic!()
        };
        assert!(
            d >= Duration::from_millis(2000) && d <= Duration::from_millis(2100),
            "{d:?}"
        );
    }
}
