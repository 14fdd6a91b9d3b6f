//! Sending: sealing a message into SEND frames, and the window that keeps
//! the client inside the relay's limits.
//!
//! Every outgoing message goes to the outbox before it is sealed, and is
//! sealed again (same id, fresh timestamp) after a reconnect until the
//! relay confirms it stored; that is the core's job ([`super::ClientCore`]).
//! This module owns the two mechanical parts: turning content into routed
//! frames (`seal_frames`), and `SendWindow`, which holds messages back
//! when too many are unanswered or when the relay's rate budget is spent,
//! instead of being cut off by the relay.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use blindrelay_e2e::{Content, LocalIdentity, SealParams, VerifiedPeer, seal};
use blindrelay_wire::{Message, MessageId, Routed, RoutedFlags, RoutedHeader, Target, UserName};

use crate::error::ClientError;
use crate::store::MAX_WINDOW_ENTRIES;

/// Messages sent but not yet answered by the relay's `Accepted`; past this
/// the client waits (reading) before sending more, so the relay's answers
/// never pile up in its queue for us.
pub const SEND_WINDOW: usize = 32;

/// Seals `content` from `me` for `recipients` and cuts it into SEND frames.
pub(crate) fn seal_frames(
    me: &LocalIdentity,
    recipients: &[VerifiedPeer],
    msg_id: MessageId,
    content: &Content,
    room: bool,
    flags: RoutedFlags,
    now_ms: u64,
) -> Result<Vec<Message>, ClientError> {
    let target = Target::Users(recipients.iter().map(|r| r.name().clone()).collect());
    let sealed = seal(
        me,
        &SealParams {
            msg_id,
            timestamp_ms: now_ms,
            room,
            recipients,
            content,
            fragment_room: RoutedHeader::max_payload_len(me.name(), &target),
        },
    )
    .map_err(ClientError::Seal)?;
    Ok(sealed
        .fragments()
        .map(|(fragment, piece)| {
            Message::Send(Routed {
                header: RoutedHeader {
                    msg_id,
                    fragment,
                    flags,
                    sender: me.name().clone(),
                    target: target.clone(),
                },
                payload: piece.to_vec(),
            })
        })
        .collect())
}

/// Number of messages (first fragments of SENDs) among `frames`.
pub(crate) fn messages_in(frames: &[Message]) -> usize {
    frames
        .iter()
        .filter(|m| matches!(m, Message::Send(r) if r.header.fragment.is_first()))
        .count()
}

/// How many messages may leave now. Two limits, per identity:
/// * at most [`SEND_WINDOW`] messages unanswered by the relay;
/// * one message under the relay's rate limit (announced in its Welcome)
///   in any rate window, counted the way the relay counts: a message
///   occupies a slot from the moment it is written until one window after
///   its *accepted* answer arrived. The relay counted it when it arrived,
///   which is before the answer came back, so by the time the client frees
///   the slot the relay has too, whatever the network and the TLS
///   buffering delayed (counting from the moment of writing is not
///   enough: a burst written at `t` may be counted at `t + 10 ms`, and the
///   next one written at `t + window` then overlaps it at the relay).
///
/// The relay's windows belong to the identity, across its sessions, so
/// a new session takes over the old one's slots ([`SendWindow::renew`]).
#[derive(Debug, Clone)]
pub(crate) struct SendWindow {
    /// Messages and receipts written and not yet answered.
    unanswered: usize,
    /// Messages (rate-counted) among them.
    in_flight: usize,
    budget: usize,
    rate_window: Duration,
    /// When the answer to each counted message arrived, oldest first.
    answered_at: VecDeque<Instant>,
}

impl Default for SendWindow {
    fn default() -> Self {
        Self::new(10, 5_000)
    }
}

impl SendWindow {
    /// A window for a relay allowing `rate_max` messages per
    /// `rate_window_ms`.
    pub(crate) fn new(rate_max: u16, rate_window_ms: u64) -> Self {
        Self {
            unanswered: 0,
            in_flight: 0,
            budget: usize::from(rate_max).saturating_sub(1).max(1),
            rate_window: Duration::from_millis(rate_window_ms.max(1)),
            answered_at: VecDeque::new(),
        }
    }

    /// The window of a new session at `now` under a relay allowing
    /// `rate_max` per `rate_window_ms`: what was counted still counts (the
    /// relay's window is the identity's): `counted`, the acceptances the
    /// store kept (across restarts of the client), or else what this
    /// window counted; and a message that was never answered is taken as
    /// counted now.
    pub(crate) fn renew(
        &self,
        rate_max: u16,
        rate_window_ms: u64,
        counted: Option<Vec<Instant>>,
        now: Instant,
    ) -> Self {
        let mut w = Self::new(rate_max, rate_window_ms);
        w.answered_at = match counted {
            Some(c) => c.into(),
            None => self.answered_at.clone(),
        };
        w.answered_at.extend(std::iter::repeat_n(
            now,
            self.in_flight.min(MAX_WINDOW_ENTRIES),
        ));
        while w.answered_at.len() > MAX_WINDOW_ENTRIES {
            w.answered_at.pop_front();
        }
        w
    }

    fn expire(&mut self, now: Instant) {
        while self
            .answered_at
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.rate_window)
        {
            self.answered_at.pop_front();
        }
    }

    /// The rate window.
    pub(crate) fn rate_window(&self) -> Duration {
        self.rate_window
    }

    /// True if the rate budget has room now.
    pub(crate) fn paced(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.in_flight + self.answered_at.len() < self.budget
    }

    /// True if a message may be sent now.
    pub(crate) fn has_room(&mut self, now: Instant) -> bool {
        self.unanswered < SEND_WINDOW && self.paced(now)
    }

    /// When the oldest counted message leaves the rate window; `None` if
    /// none is counted (then only an answer frees a slot).
    pub(crate) fn next_slot(&self) -> Option<Instant> {
        self.answered_at.front().map(|t| *t + self.rate_window)
    }

    /// A message was written: it counts against both limits.
    pub(crate) fn sent(&mut self) {
        self.unanswered += 1;
        self.in_flight += 1;
    }

    /// Receipts were sent: they wait for an answer but have their own
    /// budget at the relay.
    pub(crate) fn sent_receipts(&mut self, n: usize) {
        self.unanswered += n;
    }

    /// The relay accepted a message (`receipt`: one of our receipts) and
    /// the answer arrived at `now`.
    pub(crate) fn answered(&mut self, receipt: bool, now: Instant) {
        self.unanswered = self.unanswered.saturating_sub(1);
        if !receipt && self.in_flight > 0 {
            self.in_flight -= 1;
            if self.answered_at.len() >= MAX_WINDOW_ENTRIES {
                self.answered_at.pop_front();
            }
            self.answered_at.push_back(now);
        }
    }
}

/// Recipients' names, for the history line of an outgoing message.
pub(crate) fn joined(to: &[UserName]) -> String {
    to.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_closes_when_answers_or_the_rate_budget_run_out() {
        let t0 = Instant::now();
        let mut w = SendWindow::new(10, 5_000);
        for _ in 0..9 {
            assert!(w.has_room(t0));
            w.sent();
        }
        // One under the relay's 10: the tenth waits for answers, then for
        // the window to slide past them.
        assert!(!w.has_room(t0));
        assert_eq!(w.next_slot(), None, "only an answer frees a slot");
        let answer = t0 + Duration::from_millis(40);
        for _ in 0..9 {
            w.answered(false, answer);
        }
        assert!(!w.has_room(t0 + Duration::from_secs(5)));
        assert_eq!(w.next_slot(), Some(answer + Duration::from_secs(5)));
        assert!(w.has_room(answer + Duration::from_secs(5)));
        let mut w = SendWindow::new(u16::MAX, 1);
        for _ in 0..SEND_WINDOW {
            w.sent();
        }
        assert!(!w.has_room(t0 + Duration::from_secs(1)));
        w.answered(false, t0);
        assert!(w.has_room(t0 + Duration::from_secs(1)));
        w.sent_receipts(1);
        assert!(!w.has_room(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn a_slot_is_free_one_window_after_the_answer_not_after_the_write() {
        // Written at t0, counted by the relay at t0 + 30 ms (the network),
        // answered at t0 + 60 ms: the next burst may not go at t0 + 5 s,
        // when the relay still counts the first one.
        let t0 = Instant::now();
        let mut w = SendWindow::new(3, 5_000);
        w.sent();
        w.sent();
        assert!(!w.has_room(t0));
        w.answered(false, t0 + Duration::from_millis(60));
        w.answered(false, t0 + Duration::from_millis(60));
        assert!(!w.has_room(t0 + Duration::from_millis(5_000)));
        assert!(w.has_room(t0 + Duration::from_millis(5_060)));
    }

    #[test]
    fn receipts_do_not_take_message_slots() {
        let t0 = Instant::now();
        let mut w = SendWindow::new(2, 5_000);
        w.sent_receipts(1);
        w.answered(true, t0);
        assert!(w.has_room(t0), "a receipt's answer frees no message slot");
        w.sent();
        assert!(!w.has_room(t0));
        // A receipt answered first does not start the message's window:
        // the message counts from its own answer.
        w.sent_receipts(1);
        w.answered(true, t0);
        w.answered(false, t0 + Duration::from_millis(100));
        assert!(!w.has_room(t0 + Duration::from_millis(5_050)));
        assert!(w.has_room(t0 + Duration::from_millis(5_100)));
    }

    #[test]
    fn an_answer_to_nothing_in_flight_takes_no_slot() {
        let t0 = Instant::now();
        let mut w = SendWindow::new(2, 5_000);
        w.answered(false, t0);
        assert!(w.has_room(t0));
        assert_eq!(w.next_slot(), None);
    }

    #[test]
    fn a_new_session_keeps_what_the_old_one_counted() {
        let t0 = Instant::now();
        let secs = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = SendWindow::new(3, 5_000);
        w.sent();
        w.sent();
        w.answered(false, t0);
        // The connection drops with one message unanswered: the relay may
        // have counted it, so it counts from the reconnect.
        let mut next = w.renew(3, 5_000, None, secs(1_000));
        assert!(!next.has_room(secs(1_000)));
        assert!(next.has_room(secs(5_000)), "the first left the window");
        next.sent();
        assert!(!next.has_room(secs(5_999)));
        next.answered(false, secs(5_100));
        assert!(next.has_room(secs(6_000)), "the unanswered one left it too");
        assert!(SendWindow::new(3, 5_000).has_room(t0));
        // What the store kept from a previous run of the client counts.
        let fresh = SendWindow::new(3, 5_000);
        let mut resumed = fresh.renew(3, 5_000, Some(vec![t0, t0]), secs(1_000));
        assert!(!resumed.has_room(secs(4_999)));
        assert!(resumed.has_room(secs(5_000)));
    }

    #[test]
    fn what_a_window_remembers_is_bounded() {
        let t0 = Instant::now();
        let mut w = SendWindow::new(u16::MAX, 5_000);
        for _ in 0..MAX_WINDOW_ENTRIES + 3 {
            w.sent();
            w.answered(false, t0);
        }
        assert_eq!(w.answered_at.len(), MAX_WINDOW_ENTRIES);
        w.sent();
        w.sent();
        let next = w.renew(u16::MAX, 5_000, None, t0);
        assert_eq!(next.answered_at.len(), MAX_WINDOW_ENTRIES);
    }
}
