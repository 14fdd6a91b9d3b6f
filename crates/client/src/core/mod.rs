//! The client's protocol logic, without I/O: it turns relay messages into
//! [`Event`]s to show and frames to send, and user intentions into frames.
//! It never touches a socket or a timer; the async [`crate::connection`]
//! moves its bytes and ticks its clocks, and it reaches its database only
//! through [`ClientStore`].
//!
//! One concern per module:
//! * [`peers`]: which certificates are trusted, pins, safety numbers;
//! * [`send`]: sealing into frames, and the window that keeps the client
//!   inside the relay's limits; `pacing`: the relay's answers, which move
//!   that window, and its memory across sessions and restarts;
//! * [`receive`]: the pipeline from a DELIVER fragment to what to show and
//!   what to acknowledge;
//! * [`receipts`]: the end-to-end receipts owed and sent;
//! * `pending`: messages waiting for a recipient's first key, and
//!   fragments held for a sender's changed key until it is accepted;
//! * [`revocation`]: the CRL in use: offered from the store, the file and
//!   the relay, never older than the one before.
//!
//! Delivery is at least once: every outgoing message goes to the outbox
//! before it is sent, and is sent again after a reconnect until the relay
//! confirms it is durably stored. Every received message is acknowledged
//! to the relay once it has been decided (shown or rejected), and answered
//! with an end-to-end receipt. Duplicates are dropped by the persistent
//! replay cache.

mod pacing;
pub mod peers;
mod pending;
pub mod receipts;
pub mod receive;
pub mod revocation;
pub mod send;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use blindrelay_e2e::{Content, LocalIdentity, TrustRoot};
use blindrelay_wire::{MAX_ACK_IDS, Message, MessageId, PeerEvent, Routed, RoutedFlags, UserName};

use crate::error::ClientError;
use crate::event::Event;
use crate::policy::Policy;
use crate::store::{ClientStore, HistoryEntry, Outgoing};
use peers::{Peers, Trust};
use receipts::Receipts;
use receive::Inbox;
pub use revocation::CrlSource;
use send::{SendWindow, joined, messages_in, seal_frames};

/// Fragments kept from senders whose changed key awaits the user (run
/// through again once it is accepted); past this the oldest is dropped,
/// and the relay delivers it again at the next login.
pub const MAX_HELD_FRAGMENTS: usize = 256;

/// A message just written to the outbox, and what leaves now.
#[derive(Debug)]
pub struct Queued {
    /// Its id.
    pub msg_id: MessageId,
    /// Frames to send now (none while a recipient has no usable key).
    pub frames: Vec<Message>,
    /// Recipients the relay has never listed (they never logged in to it,
    /// so there is no certificate yet): the message waits in the outbox and
    /// is sealed for them once their certificate arrives and verifies.
    pub waiting: Vec<UserName>,
}

/// What handling one input produced: events for the user, frames for the
/// relay.
#[derive(Debug, Default)]
pub struct Step {
    /// What to show, in order.
    pub events: Vec<Event>,
    /// What to send, in order.
    pub frames: Vec<Message>,
}

/// Client protocol state.
pub struct ClientCore {
    me: LocalIdentity,
    store: Box<dyn ClientStore>,
    peers: Peers,
    inbox: Inbox,
    receipts: Receipts,
    window: SendWindow,
    /// Acknowledgements not sent yet.
    acks: Vec<(UserName, MessageId)>,
    /// Outbox messages to send again in this session.
    resend: VecDeque<Outgoing>,
    /// Outbox messages that cannot be sealed yet in this session: a
    /// recipient has no verified key, or a changed one not accepted yet.
    /// Bounded by the outbox.
    waiting: BTreeMap<MessageId, Outgoing>,
    /// Fragments from senders whose changed key awaits the user.
    held: VecDeque<Routed>,
    keepalive_ms: u64,
    policy: Policy,
    /// True once the user was told that the CRL in use expired.
    crl_expiry_told: bool,
    /// The relay's CRL, as its chunks arrive.
    crl_chunks: revocation::CrlChunks,
}

/// A fresh message id (16 random bytes), for both protocols.
pub(crate) fn random_id() -> Result<MessageId, ClientError> {
    let mut id = [0u8; 16];
    blindrelay_e2e::seal::fill_random(&mut id).map_err(|_| ClientError::Crypto)?;
    Ok(MessageId(id))
}

impl ClientCore {
    /// A core for `me`, trusting `root`, keeping state in `store`, with the
    /// windows of `policy`.
    pub fn new(
        me: LocalIdentity,
        root: TrustRoot,
        store: Box<dyn ClientStore>,
        policy: Policy,
    ) -> Self {
        Self {
            peers: Peers::new(root, me.cert()),
            me,
            store,
            inbox: Inbox::new(policy),
            policy,
            receipts: Receipts::default(),
            window: SendWindow::default(),
            acks: Vec::new(),
            resend: VecDeque::new(),
            waiting: BTreeMap::new(),
            held: VecDeque::new(),
            keepalive_ms: 20_000,
            crl_expiry_told: false,
            crl_chunks: revocation::CrlChunks::default(),
        }
    }

    /// Our name.
    pub fn name(&self) -> &UserName {
        self.me.name()
    }

    /// The keep-alive interval the relay asked for.
    pub fn keepalive_ms(&self) -> u64 {
        self.keepalive_ms
    }

    /// Verified users online now (not those with a pending key change).
    pub fn online(&self) -> Vec<UserName> {
        self.peers.online()
    }

    /// Everyone the relay listed (who has ever logged in), online or not.
    pub fn peers(&self) -> Vec<peers::PeerInfo> {
        self.peers.list()
    }

    /// The safety number shared with `name` (of a changed certificate, if
    /// one is pending: displaying it is what allows accepting it).
    pub fn safety_number(&mut self, name: &UserName) -> Result<String, ClientError> {
        self.peers.safety_number(name)
    }

    /// Messages in the outbox the relay has not confirmed yet.
    pub fn outbox_waiting(&self) -> Result<u64, ClientError> {
        Ok(self.store.outbox_waiting()?)
    }

    /// The last `n` messages of the local history, oldest first.
    pub fn history(&self, n: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self.store.history_recent(n)?)
    }

    /// Handles one message from the relay, now (see [`ClientCore::handle_at`]).
    pub fn handle(&mut self, msg: Message, now_ms: u64) -> Step {
        self.handle_at(msg, now_ms, Instant::now())
    }

    /// Handles one message from the relay that arrived at `now` (wall
    /// clock `now_ms`): the arrival time of the relay's answers is what
    /// the send window counts from.
    pub fn handle_at(&mut self, msg: Message, now_ms: u64, now: Instant) -> Step {
        let mut step = Step::default();
        match msg {
            Message::Welcome(w) => {
                if w.identity != *self.me.name() {
                    step.events.push(Event::Warning(format!(
                        "the relay bound this connection to {}, not {}",
                        w.identity,
                        self.me.name()
                    )));
                }
                self.keepalive_ms = u64::from(w.keepalive_ms).max(1000);
                // A new session: what to send again is read from the
                // outbox once the directory is in.
                self.resume_window(&w, now_ms, now);
                self.resend.clear();
                self.waiting.clear();
                self.held.clear();
                // `w.store_ttl_s` is informative: the client's windows are
                // its own policy.
                self.peers.all_offline();
            }
            Message::Peer {
                event,
                name,
                cert_der,
            } => {
                let online = event != PeerEvent::Offline;
                self.peers.learn(
                    self.store.as_mut(),
                    name,
                    &cert_der,
                    online,
                    now_ms,
                    &mut step.events,
                );
                // A first key (someone who never logged in before) lets
                // the messages waiting for it go.
                self.release_waiting();
            }
            Message::DirectoryEnd { .. } => {
                step.events.push(Event::Connected {
                    identity: self.me.name().clone(),
                    online: self.peers.online(),
                });
                // Everything the relay has not confirmed goes again,
                // re-sealed under the same id and with its original time,
                // a few at a time between reads (see `next_resend`).
                // (That includes what was waiting for a key: it waits
                // again, once, if it still has to.)
                self.waiting.clear();
                match self.store.outbox_unconfirmed() {
                    Ok(p) => self.resend = p.into(),
                    Err(e) => step.events.push(Event::Warning(format!("outbox: {e}"))),
                }
            }
            Message::Crl {
                index,
                count,
                chunk,
            } => {
                if let Some(der) = self.crl_chunks.push(index, count, &chunk) {
                    step.events
                        .extend(self.offer_crl(&der, CrlSource::Relay, now_ms));
                }
            }
            Message::PeerLeft { name } => {
                self.peers.left(&name);
                step.events.push(Event::Left { name });
            }
            Message::Status { msg_id, kind } => {
                self.status(msg_id, kind, now_ms, now, &mut step.events)
            }
            Message::Statuses(list) => {
                for (msg_id, kind) in list {
                    self.status(msg_id, kind, now_ms, now, &mut step.events);
                }
            }
            Message::Deliver(r) => self.deliver(r, now_ms, &mut step.events),
            Message::Ping(v) => step.frames.push(Message::Pong(v)),
            Message::Pong(_) => {}
            Message::Goodbye { code, reason } => step.events.push(Event::Closed {
                code: Some(code),
                reason,
            }),
            other
            @ (Message::Send(_) | Message::Ack(_) | Message::DsUp(_) | Message::DsDown(_)) => {
                step.events.push(Event::Warning(format!(
                    "unexpected {:?} from the relay",
                    other.frame_type()
                )))
            }
        }
        step
    }

    /// Records `text` for `to` in the outbox and history (before anything
    /// is sent) and returns it; [`ClientCore::seal`] makes its frames.
    pub fn queue_text(
        &mut self,
        to: &[UserName],
        text: &str,
        room: bool,
        now_ms: u64,
    ) -> Result<Outgoing, ClientError> {
        if to.is_empty() {
            return Err(ClientError::NoRecipient);
        }
        if text.is_empty() {
            return Err(ClientError::Empty);
        }
        // A changed key must be accepted first, a refused certificate is
        // refused; a recipient the relay never listed is waited for (see
        // [`Queued::waiting`]).
        for n in to {
            match self.peers.trust(n) {
                Trust::Pending => return Err(ClientError::KeyChanged(n.clone())),
                Trust::Untrusted => return Err(ClientError::NoKey(n.clone())),
                Trust::Trusted(_) | Trust::Unknown => {}
            }
        }
        let max = blindrelay_e2e::content::MAX_TEXT_LEN;
        if text.len() > max {
            return Err(ClientError::TooLong { max });
        }
        let waiting = self.store.outbox_waiting()?;
        if waiting >= crate::store::MAX_OUTBOX_WAITING {
            return Err(ClientError::OutboxFull { waiting });
        }
        let out = Outgoing {
            msg_id: random_id()?,
            recipients: to.to_vec(),
            text: text.to_owned(),
            room,
            created_ms: now_ms,
            group: None,
        };
        self.store.outbox_add(&out)?;
        let _ = self.store.history_add(&HistoryEntry {
            msg_id: out.msg_id,
            ts_ms: now_ms,
            outgoing: true,
            peer: joined(to),
            room,
            text: text.to_owned(),
            group: None,
        });
        Ok(out)
    }

    /// Seals an outbox message. A resend after a reconnect keeps the
    /// message's id and the time it was written, so that no number of
    /// reconnects makes an old message look fresh.
    pub fn seal(&self, m: &Outgoing) -> Result<Vec<Message>, ClientError> {
        let recipients = m
            .recipients
            .iter()
            .map(|n| self.peers.trusted(n).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        seal_frames(
            &self.me,
            &recipients,
            m.msg_id,
            &Content::Text(m.text.clone()),
            m.room,
            RoutedFlags::NONE,
            m.created_ms,
        )
    }

    /// Queues `text` and seals it: the frames to send now, unless a
    /// recipient has no verified key yet (then the message waits, see
    /// [`Queued::waiting`]). The message is in the outbox whatever happens
    /// to the frames.
    pub fn send_text(
        &mut self,
        to: &[UserName],
        text: &str,
        room: bool,
        now_ms: u64,
    ) -> Result<Queued, ClientError> {
        let m = self.queue_text(to, text, room, now_ms)?;
        let msg_id = m.msg_id;
        let waiting = self.missing_keys(&m);
        if !waiting.is_empty() {
            self.waiting.insert(msg_id, m);
            return Ok(Queued {
                msg_id,
                frames: Vec::new(),
                waiting,
            });
        }
        let frames = self.seal(&m)?;
        self.window.sent();
        Ok(Queued {
            msg_id,
            frames,
            waiting,
        })
    }

    /// The next outbox message to send again in this session, sealed, when
    /// the window has room. `Err` carries the id of a message that cannot
    /// be sealed now (it stays in the outbox).
    pub fn next_resend(
        &mut self,
        now: Instant,
    ) -> Option<Result<Vec<Message>, (MessageId, ClientError)>> {
        if !self.window.has_room(now) {
            return None;
        }
        loop {
            let m = self.resend.pop_front()?;
            // A recipient without a usable key: wait for it, quietly (the
            // user was told when the message was written).
            if !self.missing_keys(&m).is_empty() {
                self.waiting.insert(m.msg_id, m);
                continue;
            }
            return Some(match self.seal(&m) {
                Ok(frames) => {
                    self.window.sent();
                    Ok(frames)
                }
                Err(e) => Err((m.msg_id, e)),
            });
        }
    }

    /// True while outbox messages wait to be sent again.
    pub fn resend_pending(&self) -> bool {
        !self.resend.is_empty()
    }

    /// Pending acknowledgements, as frames (empty if none).
    pub fn take_acks(&mut self) -> Vec<Message> {
        let mut acks = std::mem::take(&mut self.acks);
        acks.sort();
        acks.dedup();
        acks.chunks(MAX_ACK_IDS)
            .map(|c| Message::Ack(c.to_vec()))
            .collect()
    }

    /// The next batch of delivery receipts, sealed (empty if none), and
    /// warnings for those that could not be sealed.
    pub fn take_receipts(&mut self, now_ms: u64) -> Step {
        let mut step = Step::default();
        for (to, ids) in self.receipts.take_batch() {
            let Ok(id) = random_id() else { continue };
            self.receipts.sent(id);
            let sealed = self.peers.trusted(&to).and_then(|peer| {
                seal_frames(
                    &self.me,
                    std::slice::from_ref(peer),
                    id,
                    &Content::Receipt(ids),
                    false,
                    RoutedFlags::RECEIPT,
                    now_ms,
                )
            });
            match sealed {
                Ok(f) => step.frames.extend(f),
                Err(e) => step.events.push(Event::Warning(format!(
                    "cannot send a receipt to {to}: {e}"
                ))),
            }
        }
        self.window.sent_receipts(messages_in(&step.frames));
        step
    }

    /// Periodic housekeeping: drops stale partial messages (with a warning)
    /// and prunes the replay cache and the outbox at the policy's horizons
    /// (saying which unconfirmed messages are given up).
    pub fn tick(&mut self, now_ms: u64) -> Vec<Event> {
        let mut events: Vec<Event> = self
            .inbox
            .expire(now_ms)
            .into_iter()
            .map(|from| {
                Event::Warning(format!(
                    "dropped an incomplete message from {from} (fragments missing)"
                ))
            })
            .collect();
        if let Err(e) = self.store.prune_seen(self.policy.replay_horizon(now_ms)) {
            events.push(Event::Warning(format!("replay cache: {e}")));
        }
        match self.store.prune_outbox(self.policy.outbox_horizon(now_ms)) {
            Ok(dropped) => events.extend(dropped.into_iter().map(|m| {
                Event::Warning(format!(
                    "gave up message {} to {}: the relay never confirmed it within {} days",
                    m.msg_id.to_hex(),
                    joined(&m.recipients),
                    self.policy.max_age_ms / (24 * 3600 * 1000)
                ))
            })),
            Err(e) => events.push(Event::Warning(format!("outbox: {e}"))),
        }
        self.check_crl(now_ms, &mut events);
        events
    }
}

#[cfg(test)]
mod tests;
