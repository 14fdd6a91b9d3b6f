//! The receive pipeline: from a DELIVER fragment to what the user sees and
//! what the relay may forget.
//!
//! In order: the sender must be trusted (fragments from strangers are never
//! buffered), the fragments are reassembled, the envelope is parsed, its id
//! must be the relay's, the replay cache is consulted, the envelope is
//! verified and opened (signature, recipient, freshness, key commitment),
//! the id is recorded, and the content must match its routing label.
//!
//! The outcome is a `Received`: at most one acknowledgement for the
//! relay, and at most one event for the user. A message is acknowledged
//! once it is *decided*, shown or rejected for good; it is left on the
//! relay when a later copy could be accepted (a live copy too old or too
//! new, which the store may deliver again within its longer window), when
//! the sender's new key awaits the user, and when the local database
//! failed.

use blindrelay_e2e::fragment::ReassemblyLimits;
use blindrelay_e2e::{
    Content, Envelope, Freshness, Lane, LocalIdentity, OpenError, Reassembler, open,
};
use blindrelay_wire::{MessageId, Routed, UserName};
use tracing::debug;

use super::peers::{Peers, Trust};
use super::receipts::Receipts;
use crate::event::Event;
use crate::store::{ClientStore, HistoryEntry, MAX_SEEN_ENTRIES};

/// Longest freshness window accepted for messages from the relay's store,
/// whatever TTL the relay announces.
pub const MAX_STORED_AGE_MS: u64 = 30 * 24 * 3600 * 1000;

/// What one DELIVER fragment comes to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// The relay may forget this message (sender, id).
    pub ack: Option<(UserName, MessageId)>,
    /// What to show.
    pub event: Option<Event>,
}

impl Received {
    fn nothing() -> Self {
        Self::default()
    }

    fn show(event: Event) -> Self {
        Self {
            ack: None,
            event: Some(event),
        }
    }
}

/// What the pipeline reads and writes besides its own state.
pub(crate) struct Context<'a> {
    pub me: &'a LocalIdentity,
    pub peers: &'a Peers,
    pub store: &'a mut dyn ClientStore,
    pub receipts: &'a mut Receipts,
}

/// The receiving side's own state: partial messages and the windows.
pub(crate) struct Inbox {
    reassembler: Reassembler,
    freshness: Freshness,
    store_ttl_ms: u64,
}

impl Inbox {
    pub(crate) fn new(freshness: Freshness) -> Self {
        Self {
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            freshness,
            store_ttl_ms: 7 * 24 * 3600 * 1000,
        }
    }

    /// The relay announced how long it stores messages (capped).
    pub(crate) fn set_store_ttl(&mut self, store_ttl_s: u32) {
        self.store_ttl_ms = (u64::from(store_ttl_s) * 1000).min(MAX_STORED_AGE_MS);
    }

    /// How long outbox rows are kept.
    pub(crate) fn store_ttl_ms(&self) -> u64 {
        self.store_ttl_ms
    }

    /// How long replay-cache entries are kept: a message can come back
    /// from the store up to a TTL after a resend that itself happened up to
    /// a TTL after the first copy, so twice the TTL.
    pub(crate) fn replay_horizon_ms(&self) -> u64 {
        self.freshness
            .max_age_ms
            .max(self.store_ttl_ms.saturating_mul(2))
            + self.freshness.max_future_ms
    }

    /// Drops partial messages that timed out; returns their senders.
    pub(crate) fn expire(&mut self, now_ms: u64) -> Vec<UserName> {
        self.reassembler
            .expire(now_ms)
            .into_iter()
            .map(|(from, _)| from)
            .collect()
    }

    /// Takes one DELIVER fragment through the pipeline.
    pub(crate) fn receive(&mut self, cx: Context<'_>, r: Routed, now_ms: u64) -> Received {
        let h = &r.header;
        let from = h.sender.clone();
        // Fragments from users without a trusted key are never buffered.
        let sender = match cx.peers.trust(&from) {
            Trust::Trusted(t) => t.clone(),
            Trust::Pending => {
                // Not acknowledged: after the user accepts the new key the
                // message is delivered again from the store.
                return match h.fragment.is_last() {
                    true => Received::show(Event::Warning(format!(
                        "held a message from {from}: their certificate changed and has not been accepted"
                    ))),
                    false => Received::nothing(),
                };
            }
            Trust::Untrusted => {
                return Received {
                    ack: Some((from.clone(), h.msg_id)),
                    event: h.fragment.is_first().then(|| {
                        Event::Warning(format!(
                            "rejected a message from {from}: unknown or unverified sender"
                        ))
                    }),
                };
            }
        };
        let stored = h.flags.is_stored();
        let lane = if stored { Lane::Stored } else { Lane::Live };
        let env = match self
            .reassembler
            .push(&from, h.msg_id, lane, h.fragment, &r.payload, now_ms)
        {
            Ok(Some(env)) => env,
            Ok(None) => return Received::nothing(),
            Err(e) => {
                return Received::show(Event::Warning(format!(
                    "dropped a fragment from {from}: {e}"
                )));
            }
        };
        // From here on the message is decided, unless a step says it may
        // still change (`keep`).
        let decided = |event: Event| Received {
            ack: Some((from.clone(), h.msg_id)),
            event: Some(event),
        };
        let keep = |event: Event| Received::show(event);
        let reject = |why: &str| Event::Warning(format!("rejected a message from {from}: {why}"));

        let Ok(env) = Envelope::try_from(&env[..]) else {
            return decided(reject("malformed"));
        };
        if env.header().msg_id != h.msg_id {
            return decided(reject("message id does not match the relay's"));
        }
        match cx.store.seen(&from, &h.msg_id) {
            // A copy of a message already shown: expected after reconnects
            // and redelivery from the store. A live copy is worth a warning.
            Ok(true) if stored => {
                debug!(%from, msg = %h.msg_id.to_hex(), "duplicate from the store dropped");
                return Received {
                    ack: Some((from.clone(), h.msg_id)),
                    event: None,
                };
            }
            Ok(true) => return decided(reject("replayed message")),
            Ok(false) => {}
            Err(e) => return keep(Event::Warning(format!("replay cache: {e}"))),
        }
        let horizon = now_ms.saturating_sub(self.replay_horizon_ms());
        if cx
            .store
            .seen_since(horizon)
            .is_ok_and(|n| n >= MAX_SEEN_ENTRIES)
        {
            return keep(reject("replay cache full; message not accepted"));
        }
        let freshness = if stored {
            Freshness {
                max_age_ms: self.store_ttl_ms.max(self.freshness.max_age_ms),
                ..self.freshness
            }
        } else {
            self.freshness
        };
        let count = h.fragment.count();
        let opened = match open(&env, &from, count, &sender, cx.me, &freshness, now_ms) {
            Ok(o) => o,
            // A live copy that is too old or too new may still be fine from
            // the store (longer window): leave that copy on the relay.
            Err(OpenError::Stale { age_ms }) => {
                let event = reject(&format!("too old ({} s)", age_ms / 1000));
                return if stored { decided(event) } else { keep(event) };
            }
            Err(OpenError::Future { ahead_ms }) => {
                let event = reject(&format!("timestamp {} s in the future", ahead_ms / 1000));
                return if stored { decided(event) } else { keep(event) };
            }
            Err(OpenError::NotForMe) => return decided(reject("not addressed to me")),
            Err(OpenError::SenderMismatch) => return decided(reject("sender does not match")),
            Err(_) => return decided(reject("could not be authenticated or decrypted")),
        };
        match cx
            .store
            .record_seen(&from, &h.msg_id, opened.header.timestamp_ms)
        {
            Ok(true) => {}
            Ok(false) => return decided(reject("replayed message")),
            Err(e) => return keep(Event::Warning(format!("replay cache: {e}"))),
        }
        let receipt_flag = h.flags.is_receipt();
        match opened.content {
            Content::Text(text) if !receipt_flag => {
                cx.receipts.owe(&from, h.msg_id);
                let _ = cx.store.history_add(&HistoryEntry {
                    msg_id: h.msg_id,
                    ts_ms: opened.header.timestamp_ms,
                    outgoing: false,
                    peer: from.to_string(),
                    room: opened.header.is_room(),
                    text: text.clone(),
                });
                decided(Event::Message {
                    msg_id: h.msg_id,
                    from: from.clone(),
                    room: opened.header.is_room(),
                    recipients: opened.header.recipients,
                    timestamp_ms: opened.header.timestamp_ms,
                    text,
                })
            }
            Content::Receipt(ids) if receipt_flag => {
                let confirmed: Vec<MessageId> = ids
                    .into_iter()
                    .filter(|id| cx.store.outbox_delivered(id, &from).unwrap_or(false))
                    .collect();
                Received {
                    ack: Some((from.clone(), h.msg_id)),
                    event: (!confirmed.is_empty()).then(|| Event::Delivered {
                        msg_ids: confirmed,
                        by: from.clone(),
                    }),
                }
            }
            _ => decided(reject("content does not match its label")),
        }
    }
}
