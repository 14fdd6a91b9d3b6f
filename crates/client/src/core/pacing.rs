//! The relay's answers about our messages (STATUS) and the send window
//! they move: a message's slot is freed one window after its *accepted*
//! arrived (see `send::SendWindow`), and each acceptance is kept in the
//! store, because the relay's window is the identity's and outlives a
//! session and a restart of this client.

use std::time::{Duration, Instant};

use blindrelay_wire::{MessageId, StatusKind, Welcome};

use super::ClientCore;
use crate::event::{Event, UndeliveredReason};

/// A duration in whole milliseconds (saturating).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ClientCore {
    /// A new session under the budget `w` announced, at `now` (wall clock
    /// `now_ms`): what the relay counted still counts, even from before
    /// this process (a restart mid-burst), as the store remembers it.
    pub(super) fn resume_window(&mut self, w: &Welcome, now_ms: u64, now: Instant) {
        let window_ms = u64::from(w.rate_window_ms);
        let counted = self
            .store
            .window_since(now_ms.saturating_sub(window_ms))
            .ok()
            .map(|at| {
                at.into_iter()
                    .map(|ms| {
                        let ago = Duration::from_millis(now_ms.saturating_sub(ms));
                        now.checked_sub(ago).unwrap_or(now)
                    })
                    .collect()
            });
        self.window = self.window.renew(w.rate_max, window_ms, counted, now);
    }

    pub(super) fn status(
        &mut self,
        msg_id: MessageId,
        kind: StatusKind,
        now_ms: u64,
        now: Instant,
        events: &mut Vec<Event>,
    ) {
        let receipt = self.receipts.is_ours(&msg_id);
        if matches!(kind, StatusKind::Accepted { .. }) {
            self.window.answered(receipt, now);
            if !receipt {
                let forget = now_ms.saturating_sub(ms(self.window.rate_window()));
                if let Err(e) = self.store.window_add(now_ms, forget) {
                    events.push(Event::Warning(format!(
                        "cannot record the send window ({e}); a restart may be paced too little"
                    )));
                }
            }
        }
        if receipt {
            return;
        }
        events.push(match kind {
            StatusKind::Accepted { delivered } => Event::Sent { msg_id, delivered },
            StatusKind::Stored { recipients } => {
                let _ = self.store.outbox_stored(&msg_id);
                Event::Stored { msg_id, recipients }
            }
            StatusKind::Offline(name) => Event::Undelivered {
                msg_id,
                name,
                reason: UndeliveredReason::Offline,
            },
            StatusKind::Unknown(name) => Event::Undelivered {
                msg_id,
                name,
                reason: UndeliveredReason::Unknown,
            },
            StatusKind::QuotaExceeded(name) => Event::Undelivered {
                msg_id,
                name,
                reason: UndeliveredReason::QuotaExceeded,
            },
        });
    }

    /// True if a message may be sent now: fewer than [`super::send::SEND_WINDOW`]
    /// messages unanswered, and room in the relay's rate budget.
    pub fn can_send(&mut self, now: Instant) -> bool {
        self.window.has_room(now)
    }

    /// When the rate budget frees a slot, if it is what holds sending back
    /// and a slot frees with time (`None` while only the relay's answers
    /// can free one: their arrival wakes the caller).
    pub fn paced_until(&mut self, now: Instant) -> Option<Instant> {
        if self.window.paced(now) {
            None
        } else {
            self.window.next_slot()
        }
    }
}
