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

/// How many messages may leave now. Two limits, per session:
/// * at most [`SEND_WINDOW`] messages unanswered by the relay;
/// * one message under the relay's rate limit (announced in its Welcome)
///   in any rate window.
#[derive(Debug, Clone)]
pub(crate) struct SendWindow {
    unanswered: usize,
    budget: usize,
    rate_window: Duration,
    sent_at: VecDeque<Instant>,
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
            budget: usize::from(rate_max).saturating_sub(1).max(1),
            rate_window: Duration::from_millis(rate_window_ms.max(1)),
            sent_at: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while self
            .sent_at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.rate_window)
        {
            self.sent_at.pop_front();
        }
    }

    /// True if the rate budget has room now.
    pub(crate) fn paced(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.sent_at.len() < self.budget
    }

    /// True if a message may be sent now.
    pub(crate) fn has_room(&mut self, now: Instant) -> bool {
        self.unanswered < SEND_WINDOW && self.paced(now)
    }

    /// When the oldest message leaves the rate window (`now` if none).
    pub(crate) fn next_slot(&self, now: Instant) -> Instant {
        self.sent_at
            .front()
            .map(|t| *t + self.rate_window)
            .unwrap_or(now)
    }

    /// A message was sent at `now`: it counts against both limits.
    pub(crate) fn sent(&mut self, now: Instant) {
        self.unanswered += 1;
        self.sent_at.push_back(now);
    }

    /// Receipts were sent: they wait for an answer but have their own
    /// budget at the relay.
    pub(crate) fn sent_receipts(&mut self, n: usize) {
        self.unanswered += n;
    }

    /// The relay answered (accepted) `n` messages.
    pub(crate) fn answered(&mut self, n: usize) {
        self.unanswered = self.unanswered.saturating_sub(n);
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
            w.sent(t0);
        }
        // One under the relay's 10: the tenth waits for the window to slide.
        assert!(!w.has_room(t0));
        assert_eq!(w.next_slot(t0), t0 + Duration::from_secs(5));
        assert!(w.has_room(t0 + Duration::from_secs(5)));
        let mut w = SendWindow::new(u16::MAX, 1);
        for _ in 0..SEND_WINDOW {
            w.sent(t0);
        }
        assert!(!w.has_room(t0 + Duration::from_secs(1)));
        w.answered(1);
        assert!(w.has_room(t0 + Duration::from_secs(1)));
        w.sent_receipts(1);
        assert!(!w.has_room(t0 + Duration::from_secs(1)));
    }
}
