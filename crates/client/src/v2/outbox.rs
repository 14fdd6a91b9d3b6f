//! What the user writes and what members send, as messages with an id.
//!
//! * Out: a text is written to the outbox (the client's database) and to
//!   the history before anything goes out ([`Member::queue`]); the outbox
//!   is sent in order whenever the device is connected
//!   ([`Member::flush`]), each message encrypted at the group's epoch of
//!   that moment, with its id and the time it was written
//!   ([`blindrelay_mls::Payload`]). A message whose answer was lost (a
//!   reconnect, a restart) is sent again with the same id. Each ends in
//!   exactly one event: [`V2Event::Sent`] once the relay has it in every
//!   member's mailbox, or [`V2Event::Undelivered`] if it never will. A
//!   limit (another member's commit came first, a full mailbox, the
//!   relay's storage) only makes it wait, as does a group this device is
//!   behind in; waiting messages of one group keep their order.
//! * In: a member's payload is read once per (sender, id): a copy sent
//!   again after a lost answer is not shown twice. Ids are kept for the
//!   client's maximum age, at most `max_seen_per_sender` per person (past
//!   it, that person's messages are refused, as in protocol v1).

use std::collections::BTreeSet;
use std::time::Duration;

use blindrelay_ds::{Refusal, RefusalCode};
use blindrelay_e2e::content::{Content, MAX_TEXT_LEN};
use blindrelay_mls::{MlsError, Payload};
use blindrelay_wire::{MessageId, UserName};

use super::events::Undelivered;
use super::member::{Member, V2Event};
use crate::error::ClientError;
use crate::store::{HistoryEntry, Outgoing};
use blindrelay_net::unix_ms;

/// How often the outbox is swept for messages past the maximum age.
pub const OUTBOX_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// What became of one attempt at an outbox message.
enum Attempt {
    /// The relay has it.
    Accepted,
    /// Not now; try again at the next flush.
    Later(&'static str),
    /// Never.
    Never(Undelivered),
}

impl Member {
    /// Writes `text` to `group` into the outbox and the history; it is
    /// sent by the next [`Member::flush`]. Returns the message's id.
    pub fn queue(&mut self, group: &[u8], text: &str) -> Result<MessageId, ClientError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(ClientError::TooLong { max: MAX_TEXT_LEN });
        }
        // A group this device holds.
        self.device.epoch(group)?;
        let waiting = self.store.outbox_waiting()?;
        if waiting >= crate::store::MAX_OUTBOX_WAITING {
            return Err(ClientError::OutboxFull { waiting });
        }
        let now = unix_ms();
        let out = Outgoing {
            msg_id: crate::core::random_id()?,
            recipients: Vec::new(),
            text: text.to_owned(),
            room: false,
            created_ms: now,
            group: Some(group.to_vec()),
        };
        self.store.outbox_add(&out)?;
        if let Err(e) = self.store.history_add(&HistoryEntry {
            msg_id: out.msg_id,
            ts_ms: now,
            outgoing: true,
            peer: String::new(),
            room: false,
            text: out.text.clone(),
            group: out.group.clone(),
        }) {
            tracing::warn!(error = %e, "adding to the history failed");
        }
        Ok(out.msg_id)
    }

    /// Sends a text message to the group now: [`Member::queue`], then
    /// [`Member::flush`]. The message's id once the relay has it; if it
    /// has to wait, [`ClientError::Kept`] (it stays in the outbox). Other
    /// events of the flush come with the next [`Member::sync`].
    pub async fn send(&mut self, group: &[u8], text: &str) -> Result<MessageId, ClientError> {
        let id = self.queue(group, text)?;
        let mut outcome = Err(ClientError::Kept {
            id,
            why: "the group is behind, or the relay asked to wait",
        });
        for e in self.flush().await? {
            match &e {
                V2Event::Sent { id: i, .. } if *i == id => outcome = Ok(id),
                V2Event::Undelivered { id: i, why, .. } if *i == id => {
                    outcome = Err(match why {
                        Undelivered::Refused(code) => {
                            ClientError::RequestRefused(Refusal::Rules(*code))
                        }
                        Undelivered::NotInGroup => {
                            ClientError::Group("this device is no longer in the group")
                        }
                        Undelivered::TooOld => ClientError::Group("the message is too old"),
                    });
                }
                _ => self.early_events.push(e),
            }
        }
        outcome
    }

    /// Sends what the outbox holds, oldest first (see the module docs).
    /// If the connection fails part way, the events already collected are
    /// returned by the next [`Member::sync`]; what was not answered stays
    /// in the outbox.
    pub async fn flush(&mut self) -> Result<Vec<V2Event>, ClientError> {
        self.flush_into_events(usize::MAX, true).await
    }

    /// [`Member::flush`] for a front end that keeps reading its input:
    /// at most `max` messages reach the relay, and none waits for the
    /// relay's budget (it stops instead). [`Member::outbox_due`] says when
    /// the next could go.
    pub async fn flush_some(&mut self, max: usize) -> Result<Vec<V2Event>, ClientError> {
        self.flush_into_events(max, false).await
    }

    /// How long until the outbox's next message may go (zero: now); `None`
    /// if none can (empty, or each waits for its group or the relay), as
    /// the last flush found.
    pub fn outbox_due(&self) -> Option<Duration> {
        self.outbox_next
            .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
    }

    async fn flush_into_events(
        &mut self,
        max: usize,
        pace: bool,
    ) -> Result<Vec<V2Event>, ClientError> {
        let mut events = Vec::new();
        match self.flush_into(max, pace, &mut events).await {
            Ok(()) => Ok(events),
            Err(e) => {
                self.early_events.extend(events);
                Err(e)
            }
        }
    }

    /// Sends outbox messages, at most `max`; waits for the relay's budget
    /// if `pace`, else stops where it would have to wait.
    async fn flush_into(
        &mut self,
        max: usize,
        pace: bool,
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        self.outbox_next = None;
        let mut tried = 0;
        // Messages past the maximum age are given up at most once a
        // minute (a sweep reads every row).
        let due = self
            .last_outbox_sweep
            .is_none_or(|t| t.elapsed() >= OUTBOX_SWEEP_INTERVAL);
        let swept = if due {
            self.last_outbox_sweep = Some(tokio::time::Instant::now());
            self.store
                .prune_outbox(self.policy.outbox_horizon(unix_ms()))?
        } else {
            Vec::new()
        };
        for m in swept {
            if let Some(group) = m.group {
                tracing::warn!(id = %m.msg_id.to_hex(), "a message not sent within the maximum age was given up");
                events.push(V2Event::Undelivered {
                    group,
                    id: m.msg_id,
                    why: Undelivered::TooOld,
                });
            }
        }
        // Groups where a message waits: later ones of the group wait too.
        let mut waiting: BTreeSet<Vec<u8>> = BTreeSet::new();
        for m in self.store.outbox_unconfirmed()? {
            // (Protocol v1's rows name no group; a device's database has none.)
            let Some(group) = m.group.clone() else {
                continue;
            };
            if waiting.contains(&group) {
                continue;
            }
            if tried == max {
                self.outbox_next = Some(tokio::time::Instant::now());
                break;
            }
            let wait = self.link.pacing_wait();
            if !pace && !wait.is_zero() {
                self.outbox_next = Some(tokio::time::Instant::now() + wait);
                break;
            }
            tried += 1;
            let attempt = self.attempt(&group, &m).await;
            self.keep_pacing();
            match attempt? {
                Attempt::Accepted => {
                    self.store.outbox_stored(&m.msg_id)?;
                    events.push(V2Event::Sent {
                        group,
                        id: m.msg_id,
                    });
                }
                Attempt::Later(why) => {
                    tracing::debug!(id = %m.msg_id.to_hex(), why, "a message waits in the outbox");
                    waiting.insert(group);
                }
                Attempt::Never(why) => {
                    tracing::warn!(id = %m.msg_id.to_hex(), why = %why.describe(), "a message was given up");
                    self.store.outbox_give_up(&m.msg_id)?;
                    events.push(V2Event::Undelivered {
                        group,
                        id: m.msg_id,
                        why,
                    });
                }
            }
        }
        Ok(())
    }

    /// One try at sending `m` to `group`.
    async fn attempt(&mut self, group: &[u8], m: &Outgoing) -> Result<Attempt, ClientError> {
        let epoch = match self.device.epoch(group) {
            Ok(e) => e,
            Err(MlsError::UnknownGroup) => return Ok(Attempt::Never(Undelivered::NotInGroup)),
            Err(e) => return Err(e.into()),
        };
        if self.device.behind(group)?.is_some() {
            return Ok(Attempt::Later("the group is behind"));
        }
        let payload = Payload {
            id: m.msg_id,
            written_ms: m.created_ms,
            content: Content::Text(m.text.clone()),
        };
        let message = match self.device.encrypt(group, &payload.encode()) {
            Ok(message) => message,
            Err(MlsError::Behind) => return Ok(Attempt::Later("the group is behind")),
            Err(e) => return Err(e.into()),
        };
        match self.submit_message(group, epoch, message).await {
            Ok(()) => Ok(Attempt::Accepted),
            Err(ClientError::RequestRefused(why)) => Ok(match why {
                Refusal::Storage => Attempt::Later("the relay could not store it"),
                Refusal::Rules(RefusalCode::StaleEpoch) => {
                    Attempt::Later("another member's change came first")
                }
                Refusal::Rules(RefusalCode::Capacity) => {
                    Attempt::Later("a mailbox is full: the relay is over capacity")
                }
                Refusal::Rules(code) => Attempt::Never(Undelivered::Refused(code)),
            }),
            Err(e) => Err(e),
        }
    }

    /// Reads a member's application message (see the module docs).
    pub(super) fn read_payload(
        &mut self,
        group: Vec<u8>,
        from: (String, String),
        body: &[u8],
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        let payload = match Payload::decode(body) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "a member's message is not one this client reads; not shown");
                events.push(V2Event::Refused { group });
                return Ok(());
            }
        };
        let text = match payload.content {
            Content::Text(text) => text,
            Content::Receipt(ids) => return self.read_receipt(&group, from, &ids, events),
        };
        let Ok(sender) = UserName::new(&from.0) else {
            events.push(V2Event::Refused { group });
            return Ok(());
        };
        if self.store.seen(&sender, &payload.id)? {
            tracing::debug!("a message sent again after a lost answer: shown once");
            return Ok(());
        }
        let now = unix_ms();
        let horizon = self.policy.replay_horizon(now);
        if self.store.seen_count(&sender, horizon)? >= self.policy.max_seen_per_sender {
            tracing::warn!(target: "blindrelay::security", sender = %sender,
                "a sender is over the ids the client keeps per sender; their message is refused");
            events.push(V2Event::Refused { group });
            return Ok(());
        }
        // Kept from when it arrived (not the sender's time, which could
        // keep it for ever).
        self.store.record_seen(&sender, &payload.id, now)?;
        if let Err(e) = self.store.history_add(&HistoryEntry {
            msg_id: payload.id,
            ts_ms: payload.written_ms,
            outgoing: false,
            peer: format!("{}@{}", from.0, from.1),
            room: false,
            text: text.clone(),
            group: Some(group.clone()),
        }) {
            tracing::warn!(error = %e, "adding to the history failed");
        }
        self.owed.owe(&group, payload.id);
        events.push(V2Event::Message {
            group,
            from,
            id: payload.id,
            written_ms: payload.written_ms,
            late: self.policy.is_late(payload.written_ms, now),
            text,
        });
        Ok(())
    }

    /// The last `n` messages of this device's groups, oldest first.
    pub fn history(&self, n: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self
            .store
            .history_recent(n)?
            .into_iter()
            .filter(|h| h.group.is_some())
            .collect())
    }

    /// How many messages wait in the outbox (at most
    /// [`crate::store::MAX_OUTBOX_WAITING`]).
    pub fn outbox_waiting(&self) -> Result<u64, ClientError> {
        Ok(self.store.outbox_waiting()?)
    }

    /// The messages waiting in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<Outgoing>, ClientError> {
        Ok(self
            .store
            .outbox_unconfirmed()?
            .into_iter()
            .filter(|m| m.group.is_some())
            .collect())
    }

    /// Takes a waiting message out of the outbox (it will not be sent);
    /// false if it is not waiting (sent already, or unknown).
    pub fn cancel(&mut self, id: &MessageId) -> Result<bool, ClientError> {
        Ok(self.store.outbox_give_up(id)?)
    }
}
