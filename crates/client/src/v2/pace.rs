//! Pacing a device's requests within the budget the relay announced in
//! HELLO (requests, ACK excepted, per window, shared by the device's
//! sessions): a burst is slowed down, never cut off by the relay's rate
//! limit. Sans I/O: the caller asks how long to wait and sleeps.
//!
//! A request occupies a slot from the moment it is written until one
//! window after its answer arrived: the relay counted it on arrival, which
//! is before its answer came back, so the device frees the slot no sooner
//! than the relay does, whatever the network and TLS buffering delayed.
//!
//! The announced budget is informative: it only slows this device down
//! (a relay can refuse service anyway), and it is clamped to
//! [`MAX_PACED`] requests and a window of at most [`MAX_WINDOW`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The budget assumed until HELLO names one (the relay's default).
pub const DEFAULT_BUDGET: (u32, u32) = (100, 5_000);
/// The share of the announced budget a device uses, in tenths: the rest
/// is room for the device's other sessions and for timing differences.
pub const SHARE_TENTHS: usize = 9;
/// Most requests remembered (the bound on a huge announced budget).
pub const MAX_PACED: usize = 10_000;
/// Longest window honoured.
pub const MAX_WINDOW: Duration = Duration::from_secs(60);

/// When this device may send its next request.
#[derive(Debug)]
pub struct Pacer {
    max: usize,
    window: Duration,
    /// Requests written and not yet answered.
    in_flight: usize,
    /// When each answered request's answer arrived, oldest first.
    sent: VecDeque<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        let mut p = Self {
            max: 1,
            window: Duration::ZERO,
            in_flight: 0,
            sent: VecDeque::new(),
        };
        p.set_budget(DEFAULT_BUDGET.0, DEFAULT_BUDGET.1);
        p
    }
}

impl Pacer {
    /// Uses the budget the relay announced: `budget` requests per
    /// `window_ms`.
    pub fn set_budget(&mut self, budget: u32, window_ms: u32) {
        let budget = usize::try_from(budget).unwrap_or(MAX_PACED);
        self.max = (budget.saturating_mul(SHARE_TENTHS) / 10).clamp(1, MAX_PACED);
        self.window = Duration::from_millis(u64::from(window_ms)).min(MAX_WINDOW);
    }

    /// How long to wait, from `now`, before the next request may go.
    pub fn wait(&mut self, now: Instant) -> Duration {
        while let Some(first) = self.sent.front() {
            if now.saturating_duration_since(*first) >= self.window {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.in_flight + self.sent.len() < self.max {
            return Duration::ZERO;
        }
        match self.sent.front() {
            Some(first) => (*first + self.window).saturating_duration_since(now),
            // Only answers can free a slot (a caller that awaits each
            // answer never gets here).
            None => self.window,
        }
    }

    /// Takes over the requests `old` remembers (a reconnect at `now`),
    /// keeping this pacer's budget; one never answered is taken as
    /// counted now.
    pub fn carry(&mut self, old: &mut Pacer, now: Instant) {
        let mut sent = std::mem::take(&mut old.sent);
        sent.extend(std::iter::repeat_n(now, old.in_flight.min(MAX_PACED)));
        old.in_flight = 0;
        sent.extend(self.sent.drain(..));
        while sent.len() > MAX_PACED {
            sent.pop_front();
        }
        self.sent = sent;
    }

    /// Takes answers of an earlier process of this device (kept across
    /// a restart): each holds a slot until one window after it arrived.
    pub fn seed(&mut self, answered: impl IntoIterator<Item = Instant>) {
        for at in answered {
            self.sent(at);
        }
        self.sent.make_contiguous().sort_unstable();
    }

    /// The window of the budget in use.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A request was written.
    pub fn started(&mut self) {
        self.in_flight = self.in_flight.saturating_add(1);
    }

    /// The answer to a request arrived at `now`.
    pub fn answered(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.sent(now);
    }

    /// A request counted at `now` (answered, or carried over).
    fn sent(&mut self, now: Instant) {
        if self.sent.len() >= MAX_PACED {
            self.sent.pop_front();
        }
        self.sent.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_before_a_restart_hold_their_slots_for_a_window() {
        let now = Instant::now();
        let mut p = Pacer::default();
        p.set_budget(10, 1_000);
        // Nine answers (the whole share) 400 ms ago, and one long gone.
        let mut before: Vec<Instant> = vec![now - Duration::from_millis(400); 9];
        before.push(now - Duration::from_secs(5));
        p.seed(before);
        assert_eq!(p.wait(now), Duration::from_millis(600));
        assert_eq!(p.window(), Duration::from_secs(1));
    }

    #[test]
    fn a_burst_goes_at_most_nine_tenths_of_the_budget_per_window() {
        let mut p = Pacer::default();
        p.set_budget(20, 1_000);
        let t0 = Instant::now();
        for _ in 0..18 {
            assert_eq!(p.wait(t0), Duration::ZERO);
            p.sent(t0);
        }
        assert_eq!(p.wait(t0), Duration::from_millis(1_000));
        let later = t0 + Duration::from_millis(400);
        assert_eq!(p.wait(later), Duration::from_millis(600));
        assert_eq!(p.wait(t0 + Duration::from_millis(1_000)), Duration::ZERO);
    }

    #[test]
    fn what_was_sent_before_a_reconnect_still_counts() {
        let mut old = Pacer::default();
        old.set_budget(10, 1_000);
        let t0 = Instant::now();
        for _ in 0..9 {
            old.sent(t0);
        }
        let mut new = Pacer::default();
        new.set_budget(10, 1_000);
        assert_eq!(new.wait(t0), Duration::ZERO);
        new.carry(&mut old, t0);
        assert_eq!(new.wait(t0), Duration::from_millis(1_000));
    }

    #[test]
    fn a_slot_frees_one_window_after_the_answer_not_the_write() {
        let mut p = Pacer::default();
        p.set_budget(2, 1_000);
        let t0 = Instant::now();
        p.started();
        assert_eq!(
            p.wait(t0),
            Duration::from_millis(1_000),
            "only an answer frees it"
        );
        p.answered(t0 + Duration::from_millis(50));
        assert_eq!(
            p.wait(t0 + Duration::from_millis(1_000)),
            Duration::from_millis(50)
        );
        // Unanswered when the link failed: counted from the reconnect.
        let mut q = Pacer::default();
        q.set_budget(2, 1_000);
        q.started();
        let mut next = Pacer::default();
        next.set_budget(2, 1_000);
        next.carry(&mut q, t0 + Duration::from_secs(3));
        assert_eq!(
            next.wait(t0 + Duration::from_secs(3)),
            Duration::from_millis(1_000)
        );
    }

    #[test]
    fn an_announced_budget_is_clamped() {
        let mut p = Pacer::default();
        p.set_budget(0, u32::MAX);
        let t0 = Instant::now();
        p.sent(t0);
        assert_eq!(
            p.wait(t0),
            MAX_WINDOW,
            "at least one request per window, at most a minute"
        );
        p.set_budget(u32::MAX, 1);
        for _ in 0..MAX_PACED + 5 {
            p.sent(t0);
        }
        assert!(p.sent.len() <= MAX_PACED);
    }
}
