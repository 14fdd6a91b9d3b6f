//! What waits and what is held: outbox messages waiting for a recipient's
//! first key (or for a changed key to be accepted), and fragments held
//! from a sender whose changed key awaits the user, released when the key
//! arrives or is accepted.

use blindrelay_wire::{MessageId, Routed, UserName};
use std::collections::VecDeque;

use super::peers::Trust;
use super::receive::Context;
use super::{ClientCore, MAX_HELD_FRAGMENTS, Queued, Step};
use crate::error::ClientError;
use crate::event::Event;
use crate::store::Outgoing;

impl ClientCore {
    /// Accepts `name`'s changed certificate (after its safety number was
    /// shown) and pins it. What was held for it goes on at once: the
    /// messages it sent meanwhile are read (the step's events and, through
    /// [`ClientCore::take_acks`], acknowledgements) and the messages
    /// waiting for it are sent.
    pub fn accept_key(
        &mut self,
        name: &UserName,
        now_ms: u64,
    ) -> Result<(String, Step), ClientError> {
        let fp = self.peers.accept_key(self.store.as_mut(), name, now_ms)?;
        let mut step = Step::default();
        let (theirs, others): (VecDeque<Routed>, VecDeque<Routed>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|r| r.header.sender == *name);
        self.held = others;
        for r in theirs {
            self.deliver(r, now_ms, &mut step.events);
        }
        self.release_waiting();
        Ok((fp, step))
    }

    /// The recipients of `m` to wait for: never listed by the relay (no
    /// certificate yet), or with a changed key the user has not accepted.
    /// (A refused certificate is not waited for: sealing says why.)
    pub(super) fn missing_keys(&self, m: &Outgoing) -> Vec<UserName> {
        m.recipients
            .iter()
            .filter(|n| matches!(self.peers.trust(n), Trust::Unknown | Trust::Pending))
            .cloned()
            .collect()
    }

    /// Moves the waiting messages whose recipients all have usable keys
    /// now to the resend queue.
    pub(super) fn release_waiting(&mut self) {
        let ready: Vec<MessageId> = self
            .waiting
            .iter()
            .filter(|(_, m)| self.missing_keys(m).is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            if let Some(m) = self.waiting.remove(&id) {
                self.resend.push_back(m);
            }
        }
    }

    /// One DELIVER fragment through the receive pipeline.
    pub(super) fn deliver(&mut self, r: Routed, now_ms: u64, events: &mut Vec<Event>) {
        let received = self.inbox.receive(
            Context {
                me: &self.me,
                peers: &self.peers,
                store: self.store.as_mut(),
                receipts: &mut self.receipts,
            },
            r,
            now_ms,
        );
        self.acks.extend(received.ack);
        events.extend(received.event);
        if let Some(r) = received.held {
            if self.held.len() >= MAX_HELD_FRAGMENTS {
                self.held.pop_front();
            }
            self.held.push_back(r);
        }
    }

    /// Queues `text` to leave as soon as the send window has room (after
    /// the messages already waiting), instead of sealing it now: what a
    /// command to send becomes while the relay's budget is spent, so that
    /// the client never stops answering its user.
    pub fn send_later(
        &mut self,
        to: &[UserName],
        text: &str,
        room: bool,
        now_ms: u64,
    ) -> Result<Queued, ClientError> {
        let m = self.queue_text(to, text, room, now_ms)?;
        let msg_id = m.msg_id;
        let waiting = self.missing_keys(&m);
        if waiting.is_empty() {
            self.resend.push_back(m);
        } else {
            self.waiting.insert(msg_id, m);
        }
        Ok(Queued {
            msg_id,
            frames: Vec::new(),
            waiting,
        })
    }

    /// Who a queued message is still waiting for (see
    /// [`Queued::waiting`]), for a message queued while offline.
    pub fn waiting_for(&self, m: &Outgoing) -> Vec<UserName> {
        self.missing_keys(m)
    }
}
