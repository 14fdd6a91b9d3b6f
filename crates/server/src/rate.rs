//! Rate limiting: the sliding window, and the budgets an identity's frames
//! are counted against. Pure logic over [`Instant`]s (tokio's, so tests can
//! pause time). The registry keeps one window per identity and budget, and
//! the cool-down that follows a rate-limit disconnect.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Which budget a frame is counted against; each has its own window per
/// identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Messages (first fragments of non-receipt SENDs): `rate_max_messages`.
    Message,
    /// Delivery receipts: `receipt_rate_max`.
    Receipt,
    /// ACK frames: `ack_rate_max`.
    Ack,
    /// New sessions: `login_rate_max`.
    Login,
}

/// At most `max` events in any `window`.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    max: usize,
    window: Duration,
    stamps: VecDeque<Instant>,
}

impl SlidingWindow {
    /// A window allowing `max` events per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            stamps: VecDeque::with_capacity(max),
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&t) = self.stamps.front() {
            if now.duration_since(t) >= self.window {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records an event at `now`; false if it exceeds the limit (the event
    /// is then not recorded). Memory is bounded by `max`.
    pub fn hit(&mut self, now: Instant) -> bool {
        self.hit_n(now, 1)
    }

    /// Records `n` events at `now` (an event that costs `n`); false, and
    /// nothing recorded, if they do not all fit.
    pub fn hit_n(&mut self, now: Instant, n: usize) -> bool {
        self.prune(now);
        if self.stamps.len().saturating_add(n) > self.max {
            return false;
        }
        self.stamps.extend(std::iter::repeat_n(now, n));
        true
    }

    /// True if no event is inside the window any more.
    pub fn is_idle(&mut self, now: Instant) -> bool {
        self.prune(now);
        self.stamps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn eleventh_message_in_five_seconds_is_refused() {
        let mut w = SlidingWindow::new(10, Duration::from_secs(5));
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(w.hit(t0 + Duration::from_millis(i * 100)), "message {i}");
        }
        assert!(!w.hit(t0 + Duration::from_millis(1000)));
        // The window slides: 5 s after the first message one slot frees up.
        assert!(w.hit(t0 + Duration::from_millis(5000)));
        assert!(!w.hit(t0 + Duration::from_millis(5050)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_that_costs_several_fits_whole_or_not_at_all() {
        let mut w = SlidingWindow::new(10, Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(w.hit_n(t0, 7));
        assert!(!w.hit_n(t0, 4));
        assert!(w.hit_n(t0, 3));
        assert!(!w.hit(t0));
        assert!(w.hit_n(t0 + Duration::from_secs(5), 10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_is_idle_only_once_its_last_event_left_it() {
        let mut w = SlidingWindow::new(10, Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(w.is_idle(t0));
        assert!(w.hit(t0));
        assert!(!w.is_idle(t0 + Duration::from_millis(4999)));
        assert!(w.is_idle(t0 + Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn steady_rate_below_the_limit_is_never_refused() {
        let mut w = SlidingWindow::new(10, Duration::from_secs(5));
        let t0 = Instant::now();
        for i in 0..1000u64 {
            assert!(w.hit(t0 + Duration::from_millis(i * 501)));
        }
        assert!(w.stamps.len() <= 10);
    }
}
