//! The receive pipeline: from a DELIVER fragment to what the user sees and
//! what the relay may forget.
//!
//! In order: the sender must be trusted (fragments from strangers are never
//! buffered), the fragments are reassembled, the envelope is parsed, its id
//! must be the relay's, the replay cache is consulted and the sender's
//! share of it checked, the envelope is verified and opened (signature,
//! recipient, age against the client's policy, key commitment), the content
//! (authenticated) must match its routing label, and only then is the id
//! recorded: a message refused at any step leaves no trace that could make
//! a later, genuine copy look like a replay.
//!
//! Nothing the relay chose decides: the age windows are the client's
//! [`Policy`](crate::Policy), the time is the sender's signed timestamp, and
//! what a message is comes from its decrypted content. The relay's STORED
//! flag only keeps copies apart during reassembly and makes a duplicate
//! from the store quiet.
//!
//! The outcome is a `Received`: at most one acknowledgement for the
//! relay, and at most one event for the user. A message is acknowledged
//! once it is *decided*, shown or rejected for good; it is left on the
//! relay when a later copy could be accepted (dated in the future, or its
//! sender over its share of the replay cache), when the sender's new key
//! awaits the user, and when the local database failed.

use blindrelay_e2e::fragment::ReassemblyLimits;
use blindrelay_e2e::{Content, Envelope, Lane, LocalIdentity, OpenError, Reassembler, open};
use blindrelay_wire::{MessageId, Routed, UserName};
use tracing::debug;

use super::peers::{Peers, Trust};
use super::receipts::Receipts;
use crate::event::Event;
use crate::policy::Policy;
use crate::store::{ClientStore, HistoryEntry};

/// What one DELIVER fragment comes to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// The relay may forget this message (sender, id).
    pub ack: Option<(UserName, MessageId)>,
    /// What to show.
    pub event: Option<Event>,
    /// A fragment from a sender whose changed key awaits the user: the core
    /// keeps it and runs it through again once the key is accepted.
    pub held: Option<Routed>,
}

impl Received {
    fn nothing() -> Self {
        Self::default()
    }

    fn show(event: Event) -> Self {
        Self {
            ack: None,
            event: Some(event),
            held: None,
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

/// The receiving side's own state: partial messages and the policy.
pub(crate) struct Inbox {
    reassembler: Reassembler,
    policy: Policy,
}

impl Inbox {
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            policy,
        }
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
                // Not acknowledged, and kept: once the user accepts the new
                // key the core runs it through again (and, should the
                // client stop first, the relay delivers it again).
                let event = h.fragment.is_last().then(|| {
                    Event::Warning(format!(
                        "held a message from {from}: their certificate changed; compare safety numbers (/verify {from}), then /accept {from} to read it"
                    ))
                });
                return Received {
                    ack: None,
                    event,
                    held: Some(r),
                };
            }
            Trust::Untrusted | Trust::Unknown => {
                return Received {
                    ack: Some((from.clone(), h.msg_id)),
                    event: h.fragment.is_first().then(|| {
                        Event::Warning(format!(
                            "rejected a message from {from}: unknown or unverified sender"
                        ))
                    }),
                    held: None,
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
            held: None,
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
            // (The relay sets the flag; it only chooses how loud a refusal
            // is.)
            Ok(true) if stored => {
                debug!(%from, msg = %h.msg_id.to_hex(), "duplicate from the store dropped");
                return Received {
                    ack: Some((from.clone(), h.msg_id)),
                    event: None,
                    held: None,
                };
            }
            Ok(true) => return decided(reject("replayed message")),
            Ok(false) => {}
            Err(e) => return keep(Event::Warning(format!("replay cache: {e}"))),
        }
        // Each sender has its own share of the replay cache: one that fills
        // it is refused, nobody else.
        let horizon = self.policy.replay_horizon(now_ms);
        match cx.store.seen_count(&from, horizon) {
            Ok(n) if n >= self.policy.max_seen_per_sender => {
                return keep(reject(
                    "too many recent messages from this sender; not accepted for now",
                ));
            }
            Ok(_) => {}
            Err(e) => return keep(Event::Warning(format!("replay cache: {e}"))),
        }
        let count = h.fragment.count();
        let acceptance = self.policy.acceptance();
        let opened = match open(&env, &from, count, &sender, cx.me, &acceptance, now_ms) {
            Ok(o) => o,
            Err(OpenError::Stale { age_ms }) => {
                return decided(reject(&format!(
                    "too old (written {} s ago)",
                    age_ms / 1000
                )));
            }
            // It may become acceptable when the clocks agree: leave it on
            // the relay.
            Err(OpenError::Future { ahead_ms }) => {
                return keep(reject(&format!(
                    "timestamp {} s in the future",
                    ahead_ms / 1000
                )));
            }
            Err(OpenError::NotForMe) => return decided(reject("not addressed to me")),
            Err(OpenError::SenderMismatch) => return decided(reject("sender does not match")),
            Err(_) => return decided(reject("could not be authenticated or decrypted")),
        };
        // What the message is comes from its authenticated content; the
        // relay's label must agree, or the copy is refused (nothing
        // recorded, so a genuine copy is still accepted).
        let receipt_label = h.flags.is_receipt();
        if matches!(opened.content, Content::Receipt(_)) != receipt_label {
            return decided(reject("content does not match its label"));
        }
        match cx
            .store
            .record_seen(&from, &h.msg_id, opened.header.timestamp_ms)
        {
            Ok(true) => {}
            Ok(false) => return decided(reject("replayed message")),
            Err(e) => return keep(Event::Warning(format!("replay cache: {e}"))),
        }
        let ts = opened.header.timestamp_ms;
        match opened.content {
            Content::Text(text) => {
                cx.receipts.owe(&from, h.msg_id);
                let _ = cx.store.history_add(&HistoryEntry {
                    msg_id: h.msg_id,
                    ts_ms: opened.header.timestamp_ms,
                    outgoing: false,
                    peer: from.to_string(),
                    room: opened.header.is_room(),
                    text: text.clone(),
                    group: None,
                });
                decided(Event::Message {
                    msg_id: h.msg_id,
                    from: from.clone(),
                    room: opened.header.is_room(),
                    recipients: opened.header.recipients,
                    timestamp_ms: ts,
                    late: self.policy.is_late(ts, now_ms),
                    text,
                })
            }
            Content::Receipt(ids) => {
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
                    held: None,
                }
            }
        }
    }
}
