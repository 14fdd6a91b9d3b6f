//! The client's protocol logic, without I/O: it turns relay messages into
//! [`Event`]s and user intentions into frames. The async
//! [`crate::connection`] drives it.
//!
//! Delivery is at least once: every outgoing message goes to the outbox
//! (the local database) before it is sent, and is sent again after a
//! reconnect until the relay confirms it is durably stored. Every received
//! message is acknowledged to the relay once it has been decided (shown or
//! rejected), and answered with an end-to-end receipt. Duplicates are
//! dropped by the persistent replay cache.

use std::collections::{BTreeMap, HashMap};

use blindrelay_e2e::content::MAX_RECEIPT_IDS;
use blindrelay_e2e::envelope::OpenError;
use blindrelay_e2e::fragment::ReassemblyLimits;
use blindrelay_e2e::{
    Content, Envelope, Freshness, LocalIdentity, Reassembler, SealParams, TrustRoot, VerifiedPeer,
    open, safety_number, seal, split,
};
use blindrelay_wire::{
    FragmentPos, MAX_ACK_IDS, Message, MessageId, PeerEvent, ROUTED_RECEIPT, ROUTED_STORED, Routed,
    StatusKind, Target, UserName,
};
use tracing::debug;

use crate::ClientError;
use crate::event::{Event, UndeliveredReason};
use crate::state::{ClientState, HistoryEntry, Outgoing, PinCheck};

/// Most peers remembered in memory.
pub const MAX_PEERS: usize = 10_000;
/// Own receipt ids remembered (to keep their statuses quiet).
pub const MAX_SENT_RECEIPTS: usize = 4096;
/// Receipts sealed per flush (one per sender, each confirming up to 100
/// messages).
pub const MAX_RECEIPTS_PER_FLUSH: usize = 10;
/// Longest freshness window accepted for messages from the relay's store,
/// whatever TTL the relay announces.
pub const MAX_STORED_AGE_MS: u64 = 30 * 24 * 3600 * 1000;

#[derive(Default)]
struct Peer {
    online: bool,
    trusted: Option<VerifiedPeer>,
    /// A verified certificate that differs from the pin, awaiting the user.
    pending: Option<VerifiedPeer>,
    /// The pending fingerprint whose safety number the user has seen.
    pending_checked: Option<[u8; 32]>,
}

/// Client protocol state.
pub struct ClientCore {
    me: LocalIdentity,
    root: TrustRoot,
    state: ClientState,
    peers: BTreeMap<UserName, Peer>,
    reassembler: Reassembler,
    freshness: Freshness,
    store_ttl_ms: u64,
    acks: Vec<(UserName, MessageId)>,
    receipts: HashMap<UserName, Vec<MessageId>>,
    /// Ids of our own receipts, whose relay statuses are not news to the user.
    sent_receipts: std::collections::HashSet<MessageId>,
    /// Keep-alive interval from the relay's Welcome.
    pub keepalive_ms: u64,
    /// The relay's message budget from its Welcome: (messages, window ms).
    pub rate: (u16, u64),
}

fn random_id() -> Result<MessageId, ClientError> {
    let mut id = [0u8; 16];
    blindrelay_e2e::envelope::fill_random(&mut id).map_err(|_| ClientError::Crypto)?;
    Ok(MessageId(id))
}

impl ClientCore {
    /// A core for `me`, trusting `root`, keeping state in `state`.
    pub fn new(
        me: LocalIdentity,
        root: TrustRoot,
        state: ClientState,
        freshness: Freshness,
    ) -> Self {
        Self {
            me,
            root,
            state,
            peers: BTreeMap::new(),
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            freshness,
            store_ttl_ms: 7 * 24 * 3600 * 1000,
            acks: Vec::new(),
            receipts: HashMap::new(),
            sent_receipts: std::collections::HashSet::new(),
            keepalive_ms: 20_000,
            rate: (10, 5_000),
        }
    }

    /// Our name.
    pub fn name(&self) -> &UserName {
        self.me.name()
    }

    /// The local database.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// Verified users online now (not those with a pending key change).
    pub fn online(&self) -> Vec<UserName> {
        self.peers
            .iter()
            .filter(|(_, p)| p.online && p.trusted.is_some() && p.pending.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The safety number shared with `name`. For a user whose certificate
    /// changed, it is the number of the *new* certificate (marked so), and
    /// computing it is what allows [`ClientCore::accept_key`].
    pub fn safety_number(&mut self, name: &UserName) -> Result<String, ClientError> {
        let mine = self.me.cert().cert_der().to_vec();
        let p = self
            .peers
            .get_mut(name)
            .ok_or_else(|| ClientError::NoKey(format!("no verified key for {name}")))?;
        if let Some(pending) = &p.pending {
            p.pending_checked = Some(pending.fingerprint());
            return Ok(format!(
                "{} (NEW certificate {}, not accepted yet)",
                safety_number(&mine, pending.cert_der()),
                &pending.fingerprint_hex()[..16]
            ));
        }
        let t = p
            .trusted
            .as_ref()
            .ok_or_else(|| ClientError::NoKey(format!("no verified key for {name}")))?;
        Ok(safety_number(&mine, t.cert_der()))
    }

    /// Accepts `name`'s changed certificate and pins it. Only the
    /// certificate whose safety number the user displayed can be accepted,
    /// so the relay cannot swap it in between.
    pub fn accept_key(&mut self, name: &UserName, now_ms: u64) -> Result<String, ClientError> {
        let p = self
            .peers
            .get_mut(name)
            .ok_or_else(|| ClientError::NoKey(name.to_string()))?;
        let pending = p
            .pending
            .as_ref()
            .ok_or_else(|| ClientError::NoKey(format!("{name} has no changed key to accept")))?;
        if p.pending_checked != Some(pending.fingerprint()) {
            return Err(ClientError::NoKey(format!(
                "compare the safety number first: /verify {name}"
            )));
        }
        let new = p
            .pending
            .take()
            .ok_or_else(|| ClientError::NoKey(name.to_string()))?;
        p.pending_checked = None;
        self.state
            .pin(name, &new.fingerprint(), new.cert_der(), now_ms)?;
        let fp = new.fingerprint_hex();
        p.trusted = Some(new);
        Ok(fp)
    }

    fn trusted(&self, name: &UserName) -> Result<&VerifiedPeer, ClientError> {
        match self.peers.get(name) {
            Some(Peer {
                trusted: Some(t),
                pending: None,
                ..
            }) => Ok(t),
            Some(Peer {
                pending: Some(_), ..
            }) => Err(ClientError::NoKey(format!(
                "{name}'s certificate changed; compare safety numbers (/verify {name}), then /accept {name}"
            ))),
            _ => Err(ClientError::NoKey(format!("no verified key for {name}"))),
        }
    }

    fn learn(
        &mut self,
        name: UserName,
        cert_der: &[u8],
        online: bool,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        if name == *self.me.name() {
            return;
        }
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&name) {
            events.push(Event::Warning(
                "too many peers; ignoring directory entry".into(),
            ));
            return;
        }
        let verified = match VerifiedPeer::verify(&name, cert_der, &self.root, now_ms / 1000) {
            Ok(v) => v,
            Err(e) => {
                events.push(Event::Warning(format!(
                    "REFUSED the certificate the relay offered for {name}: {e}. Nothing will be sent to or accepted from it."
                )));
                // Whatever was trusted before is not any more: the relay
                // now vouches for a bad certificate under this name.
                let p = self.peers.entry(name).or_default();
                p.online = online;
                p.trusted = None;
                p.pending = None;
                return;
            }
        };
        let check = match self
            .state
            .check_pin(&name, &verified.fingerprint(), cert_der, now_ms)
        {
            Ok(c) => c,
            Err(e) => {
                events.push(Event::Warning(format!(
                    "cannot check the pin of {name}: {e}"
                )));
                return;
            }
        };
        let fp = verified.fingerprint_hex();
        let p = self.peers.entry(name.clone()).or_default();
        p.online = online;
        match check {
            PinCheck::FirstUse | PinCheck::Match => {
                p.trusted = Some(verified);
                p.pending = None;
                if online {
                    events.push(Event::Joined {
                        name,
                        fingerprint: fp,
                        first_contact: check == PinCheck::FirstUse,
                    });
                }
            }
            PinCheck::Changed { pinned } => {
                if p.pending.as_ref().map(|v| v.fingerprint()) != Some(verified.fingerprint()) {
                    p.pending_checked = None;
                }
                p.pending = Some(verified);
                events.push(Event::KeyChanged {
                    name,
                    pinned,
                    offered: fp,
                });
            }
        }
    }

    /// Handles one message from the relay.
    pub fn handle(&mut self, msg: Message, now_ms: u64) -> Vec<Event> {
        let mut events = Vec::new();
        match msg {
            Message::Welcome {
                identity,
                keepalive_ms,
                store_ttl_s,
                rate_max,
                rate_window_ms,
                ..
            } => {
                if identity != *self.me.name() {
                    events.push(Event::Warning(format!(
                        "the relay bound this connection to {identity}, not {}",
                        self.me.name()
                    )));
                }
                self.keepalive_ms = u64::from(keepalive_ms).max(1000);
                self.rate = (rate_max, u64::from(rate_window_ms));
                self.store_ttl_ms = (u64::from(store_ttl_s) * 1000).min(MAX_STORED_AGE_MS);
                for p in self.peers.values_mut() {
                    p.online = false;
                }
            }
            Message::Peer {
                event,
                name,
                cert_der,
            } => {
                let online = event != PeerEvent::Offline;
                self.learn(name, &cert_der, online, now_ms, &mut events);
            }
            Message::DirectoryEnd { .. } => {
                events.push(Event::Connected {
                    identity: self.me.name().clone(),
                    online: self.online(),
                });
            }
            Message::PeerLeft { name } => {
                if let Some(p) = self.peers.get_mut(&name) {
                    p.online = false;
                }
                events.push(Event::Left { name });
            }
            Message::Status { msg_id, kind } => {
                if !self.sent_receipts.contains(&msg_id) {
                    events.push(self.status(msg_id, kind));
                }
            }
            Message::Statuses(list) => {
                for (msg_id, kind) in list {
                    if !self.sent_receipts.contains(&msg_id) {
                        events.push(self.status(msg_id, kind));
                    }
                }
            }
            Message::Deliver(r) => {
                if let Some(e) = self.deliver(r, now_ms) {
                    events.push(e);
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Goodbye { code, reason } => events.push(Event::Closed {
                code: Some(code),
                reason,
            }),
            other => events.push(Event::Warning(format!(
                "unexpected {:?} from the relay",
                other.frame_type()
            ))),
        }
        events
    }

    fn status(&mut self, msg_id: MessageId, kind: StatusKind) -> Event {
        match kind {
            StatusKind::Accepted { delivered } => Event::Sent { msg_id, delivered },
            StatusKind::Stored { recipients } => {
                let _ = self.state.outbox_stored(&msg_id);
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
            _ => Event::Warning("unknown status from the relay".into()),
        }
    }

    fn deliver(&mut self, r: Routed, now_ms: u64) -> Option<Event> {
        let from = r.sender.clone();
        // Fragments from users without a trusted key are never buffered.
        match self.peers.get(&from) {
            Some(Peer {
                trusted: Some(_),
                pending: None,
                ..
            }) => {}
            Some(Peer {
                pending: Some(_), ..
            }) => {
                // Not acknowledged: after the user accepts the new key the
                // message is delivered again from the store.
                return (r.fragment.is_last()).then(|| {
                    Event::Warning(format!(
                        "held a message from {from}: their certificate changed and has not been accepted"
                    ))
                });
            }
            _ => {
                self.acks.push((from.clone(), r.msg_id));
                return r.fragment.is_first().then(|| {
                    Event::Warning(format!(
                        "rejected a message from {from}: unknown or unverified sender"
                    ))
                });
            }
        }
        let count = r.fragment.count();
        let stored = r.flags & ROUTED_STORED != 0;
        let receipt_flag = r.flags & ROUTED_RECEIPT != 0;
        let env = match self.reassembler.push(
            &from,
            r.msg_id,
            u8::from(stored),
            r.fragment,
            &r.payload,
            now_ms,
        ) {
            Ok(Some(env)) => env,
            Ok(None) => return None,
            Err(e) => {
                return Some(Event::Warning(format!(
                    "dropped a fragment from {from}: {e}"
                )));
            }
        };
        // From here on the message is decided: acknowledge it whatever the
        // outcome, so that the relay deletes it (except for the outcomes
        // below that a later copy could change).
        self.acks.push((from.clone(), r.msg_id));
        let reject = |why: &str| {
            Some(Event::Warning(format!(
                "rejected a message from {from}: {why}"
            )))
        };
        let env = match Envelope::try_from(&env[..]) {
            Ok(e) => e,
            Err(_) => return reject("malformed"),
        };
        if env.header().msg_id != r.msg_id {
            return reject("message id does not match the relay's");
        }
        let sender = match self.trusted(&from) {
            Ok(t) => t.clone(),
            Err(_) => return reject("unknown or unverified sender"),
        };
        match self.state.seen(&from, &r.msg_id) {
            // A copy of a message already shown: expected after reconnects
            // and redelivery from the store. A live copy is worth a warning.
            Ok(true) if stored => {
                debug!(%from, msg = %r.msg_id.to_hex(), "duplicate from the store dropped");
                return None;
            }
            Ok(true) => return reject("replayed message"),
            Ok(false) => {}
            Err(e) => {
                self.acks.pop();
                return Some(Event::Warning(format!("replay cache: {e}")));
            }
        }
        let horizon = now_ms.saturating_sub(self.replay_horizon_ms());
        match self.state.seen_since(horizon) {
            Ok(n) if n >= crate::state::MAX_SEEN_ENTRIES => {
                self.acks.pop();
                return reject("replay cache full; message not accepted");
            }
            _ => {}
        }
        let freshness = if stored {
            Freshness {
                max_age_ms: self.store_ttl_ms.max(self.freshness.max_age_ms),
                ..self.freshness
            }
        } else {
            self.freshness
        };
        let opened = match open(&env, &from, count, &sender, &self.me, &freshness, now_ms) {
            Ok(o) => o,
            // A live copy that is too old or too new may still be fine from
            // the store (longer window): leave that copy on the relay.
            Err(OpenError::Stale { age_ms }) => {
                if !stored {
                    self.acks.pop();
                }
                return reject(&format!("too old ({} s)", age_ms / 1000));
            }
            Err(OpenError::Future { ahead_ms }) => {
                if !stored {
                    self.acks.pop();
                }
                return reject(&format!("timestamp {} s in the future", ahead_ms / 1000));
            }
            Err(OpenError::NotForMe) => return reject("not addressed to me"),
            Err(OpenError::SenderMismatch) => return reject("sender does not match"),
            Err(_) => return reject("could not be authenticated or decrypted"),
        };
        match self
            .state
            .record_seen(&from, &r.msg_id, opened.header.timestamp_ms)
        {
            Ok(true) => {}
            Ok(false) => return reject("replayed message"),
            Err(e) => {
                self.acks.pop();
                return Some(Event::Warning(format!("replay cache: {e}")));
            }
        }
        match opened.content {
            Content::Text(text) if !receipt_flag => {
                self.receipts
                    .entry(from.clone())
                    .or_default()
                    .push(r.msg_id);
                let peer = from.to_string();
                let _ = self.state.history_add(&HistoryEntry {
                    msg_id: r.msg_id,
                    ts_ms: opened.header.timestamp_ms,
                    outgoing: false,
                    peer,
                    room: opened.header.is_room(),
                    text: text.clone(),
                });
                Some(Event::Message {
                    msg_id: r.msg_id,
                    from,
                    room: opened.header.is_room(),
                    recipients: opened.header.recipients,
                    timestamp_ms: opened.header.timestamp_ms,
                    text,
                })
            }
            Content::Receipt(ids) if receipt_flag => {
                let confirmed: Vec<MessageId> = ids
                    .into_iter()
                    .filter(|id| self.state.outbox_delivered(id, &from).unwrap_or(false))
                    .collect();
                (!confirmed.is_empty()).then_some(Event::Delivered {
                    msg_ids: confirmed,
                    by: from,
                })
            }
            _ => reject("content does not match its label"),
        }
    }

    /// How long replay-cache entries are kept: a message can come back
    /// from the store up to a TTL after a resend that itself happened up to
    /// a TTL after the first copy, so twice the TTL.
    fn replay_horizon_ms(&self) -> u64 {
        self.freshness
            .max_age_ms
            .max(self.store_ttl_ms.saturating_mul(2))
            + self.freshness.max_future_ms
    }

    fn seal_frames(
        &self,
        msg_id: MessageId,
        to: &[UserName],
        content: &Content,
        room: bool,
        flags: u8,
        now_ms: u64,
    ) -> Result<Vec<Message>, ClientError> {
        let recipients = to
            .iter()
            .map(|n| self.trusted(n).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let target = Target::Users(to.to_vec());
        let room_len = Routed::max_payload_len(self.me.name(), &target);
        let env = seal(
            &self.me,
            &SealParams {
                msg_id,
                timestamp_ms: now_ms,
                room,
                recipients: &recipients,
                content,
                fragment_room: room_len,
            },
        )
        .map_err(|e| ClientError::Seal(e.to_string()))?;
        let pieces = split(&env, room_len);
        let count = u16::try_from(pieces.len())
            .map_err(|_| ClientError::Seal("too many fragments".into()))?;
        let mut out = Vec::with_capacity(pieces.len());
        for (i, p) in pieces.into_iter().enumerate() {
            let index =
                u16::try_from(i).map_err(|_| ClientError::Seal("too many fragments".into()))?;
            out.push(Message::Send(Routed {
                msg_id,
                fragment: FragmentPos::new(index, count)
                    .map_err(|e| ClientError::Seal(e.to_string()))?,
                flags,
                sender: self.me.name().clone(),
                target: target.clone(),
                payload: p.to_vec(),
            }));
        }
        Ok(out)
    }

    /// Records `text` for `to` in the outbox (before anything is sent) and
    /// returns its id. [`ClientCore::frames_for`] seals it.
    pub fn queue_text(
        &mut self,
        to: &[UserName],
        text: &str,
        room: bool,
        now_ms: u64,
    ) -> Result<Outgoing, ClientError> {
        if to.is_empty() {
            return Err(ClientError::NoKey("no recipient".into()));
        }
        // Fail early on what cannot be sent at all.
        for n in to {
            self.trusted(n)?;
        }
        if text.len() > blindrelay_e2e::content::MAX_TEXT_LEN {
            return Err(ClientError::Seal(format!(
                "message longer than {} bytes",
                blindrelay_e2e::content::MAX_TEXT_LEN
            )));
        }
        let out = Outgoing {
            msg_id: random_id()?,
            recipients: to.to_vec(),
            text: text.to_owned(),
            room,
            created_ms: now_ms,
        };
        self.state.outbox_add(&out)?;
        let _ = self.state.history_add(&HistoryEntry {
            msg_id: out.msg_id,
            ts_ms: now_ms,
            outgoing: true,
            peer: to.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
            room,
            text: text.to_owned(),
        });
        Ok(out)
    }

    /// Seals an outgoing message (again, with a fresh timestamp and the same
    /// id, after a reconnect).
    pub fn frames_for(&self, m: &Outgoing, now_ms: u64) -> Result<Vec<Message>, ClientError> {
        self.seal_frames(
            m.msg_id,
            &m.recipients,
            &Content::Text(m.text.clone()),
            m.room,
            0,
            now_ms,
        )
    }

    /// Seals `text` for `to` and returns the frames to send (outbox included).
    pub fn seal_text(
        &mut self,
        to: &[UserName],
        text: &str,
        room: bool,
        now_ms: u64,
    ) -> Result<(MessageId, Vec<Message>), ClientError> {
        let m = self.queue_text(to, text, room, now_ms)?;
        Ok((m.msg_id, self.frames_for(&m, now_ms)?))
    }

    /// Everything the outbox still has to get stored by the relay.
    pub fn unconfirmed(&self) -> Result<Vec<Outgoing>, ClientError> {
        self.state.outbox_unconfirmed()
    }

    /// Pending acknowledgements, as frames (empty if none).
    pub fn flush_acks(&mut self) -> (Vec<Message>, Vec<Event>) {
        let mut acks = std::mem::take(&mut self.acks);
        acks.sort();
        acks.dedup();
        let out = acks
            .chunks(MAX_ACK_IDS)
            .map(|c| Message::Ack(c.to_vec()))
            .collect();
        (out, Vec::new())
    }

    /// Pending acknowledgements and receipts, as frames (empty if none).
    pub fn flush(&mut self, now_ms: u64) -> (Vec<Message>, Vec<Event>) {
        let (mut out, mut events) = self.flush_acks();
        // At most MAX_RECEIPTS_PER_FLUSH receipts per flush keeps well under
        // the relay's receipt budget; the rest wait for the next flush.
        let mut senders: Vec<UserName> = self.receipts.keys().cloned().collect();
        senders.sort();
        senders.truncate(MAX_RECEIPTS_PER_FLUSH);
        for to in senders {
            let Some(mut ids) = self.receipts.remove(&to) else {
                continue;
            };
            if ids.len() > MAX_RECEIPT_IDS {
                let rest = ids.split_off(MAX_RECEIPT_IDS);
                self.receipts.insert(to.clone(), rest);
            }
            let Ok(id) = random_id() else { continue };
            if self.sent_receipts.len() >= MAX_SENT_RECEIPTS {
                self.sent_receipts.clear();
            }
            self.sent_receipts.insert(id);
            let receipt = Content::Receipt(ids);
            match self.seal_frames(
                id,
                std::slice::from_ref(&to),
                &receipt,
                false,
                ROUTED_RECEIPT,
                now_ms,
            ) {
                Ok(f) => out.extend(f),
                Err(e) => events.push(Event::Warning(format!(
                    "cannot send a receipt to {to}: {e}"
                ))),
            }
        }

        (out, events)
    }

    /// Periodic housekeeping: drops stale partial messages (with a warning)
    /// and prunes the replay cache and the outbox.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Event> {
        let expired = self.reassembler.expire(now_ms);
        let horizon = now_ms.saturating_sub(self.replay_horizon_ms());
        let mut ev: Vec<Event> = expired
            .into_iter()
            .map(|(from, _)| {
                Event::Warning(format!(
                    "dropped an incomplete message from {from} (fragments missing)"
                ))
            })
            .collect();
        if let Err(e) = self.state.prune_seen(horizon) {
            ev.push(Event::Warning(format!("replay cache: {e}")));
        }
        let _ = self
            .state
            .prune_outbox(now_ms.saturating_sub(self.store_ttl_ms));
        ev
    }
}
