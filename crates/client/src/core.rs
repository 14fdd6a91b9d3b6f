//! The client's protocol logic, without I/O: it turns relay messages into
//! [`Event`]s and user intentions into frames. The async
//! [`crate::connection`] drives it.

use std::collections::BTreeMap;

use blindrelay_e2e::envelope::OpenError;
use blindrelay_e2e::fragment::ReassemblyLimits;
use blindrelay_e2e::{
    Content, Envelope, Freshness, LocalIdentity, Reassembler, SealParams, TrustRoot, VerifiedPeer,
    open, safety_number, seal, split,
};
use blindrelay_wire::{
    FragmentPos, Message, MessageId, PeerEvent, Routed, StatusKind, Target, UserName,
};

use crate::ClientError;
use crate::event::{Event, UndeliveredReason};
use crate::state::{ClientState, PinCheck};

/// Most peers remembered in memory.
pub const MAX_PEERS: usize = 10_000;

#[derive(Default)]
struct Peer {
    online: bool,
    trusted: Option<VerifiedPeer>,
    /// A verified certificate that differs from the pin, awaiting the user.
    pending: Option<VerifiedPeer>,
}

/// Client protocol state.
pub struct ClientCore {
    me: LocalIdentity,
    root: TrustRoot,
    state: ClientState,
    peers: BTreeMap<UserName, Peer>,
    reassembler: Reassembler,
    freshness: Freshness,
    directory: Vec<UserName>,
    /// Keep-alive interval from the relay's Welcome.
    pub keepalive_ms: u64,
}

fn random_id() -> Result<MessageId, ClientError> {
    let mut id = [0u8; 16];
    aws_lc_rs_fill(&mut id)?;
    Ok(MessageId(id))
}

fn aws_lc_rs_fill(b: &mut [u8]) -> Result<(), ClientError> {
    blindrelay_e2e::envelope::fill_random(b).map_err(|_| ClientError::Crypto)
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
            directory: Vec::new(),
            keepalive_ms: 20_000,
        }
    }

    /// Our name.
    pub fn name(&self) -> &UserName {
        self.me.name()
    }

    /// Verified users online now.
    pub fn online(&self) -> Vec<UserName> {
        self.peers
            .iter()
            .filter(|(_, p)| p.online && p.trusted.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The safety number shared with `name`.
    pub fn safety_number(&self, name: &UserName) -> Result<String, ClientError> {
        let peer = self.trusted(name)?;
        Ok(safety_number(self.me.cert().cert_der(), peer.cert_der()))
    }

    /// Accepts a changed certificate for `name` (after the user checked the
    /// safety number) and pins it.
    pub fn accept_key(&mut self, name: &UserName, now_ms: u64) -> Result<String, ClientError> {
        let p = self
            .peers
            .get_mut(name)
            .ok_or_else(|| ClientError::NoKey(name.to_string()))?;
        let new = p
            .pending
            .take()
            .ok_or_else(|| ClientError::NoKey(format!("{name} has no changed key to accept")))?;
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
                "{name}'s certificate changed; compare safety numbers, then /accept {name}"
            ))),
            _ => Err(ClientError::NoKey(format!("no verified key for {name}"))),
        }
    }

    fn learn(&mut self, name: UserName, cert_der: &[u8], now_ms: u64, events: &mut Vec<Event>) {
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
                let p = self.peers.entry(name).or_default();
                p.online = true;
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
        p.online = true;
        match check {
            PinCheck::FirstUse | PinCheck::Match => {
                p.trusted = Some(verified);
                p.pending = None;
                events.push(Event::Joined {
                    name,
                    fingerprint: fp,
                    first_contact: check == PinCheck::FirstUse,
                });
            }
            PinCheck::Changed { pinned } => {
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
                ..
            } => {
                if identity != *self.me.name() {
                    events.push(Event::Warning(format!(
                        "the relay bound this connection to {identity}, not {}",
                        self.me.name()
                    )));
                }
                self.keepalive_ms = u64::from(keepalive_ms).max(1000);
            }
            Message::Peer {
                event,
                name,
                cert_der,
            } => {
                if event == PeerEvent::Listed {
                    self.directory.push(name.clone());
                }
                self.learn(name, &cert_der, now_ms, &mut events);
            }
            Message::DirectoryEnd { .. } => {
                self.directory.clear();
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
            Message::Status { msg_id, kind } => events.push(match kind {
                StatusKind::Accepted { delivered } => Event::Sent { msg_id, delivered },
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
                _ => Event::Warning("unknown status from the relay".into()),
            }),
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

    fn deliver(&mut self, r: Routed, now_ms: u64) -> Option<Event> {
        let from = r.sender.clone();
        let count = r.fragment.count();
        let env = match self
            .reassembler
            .push(&from, r.msg_id, r.fragment, &r.payload, now_ms)
        {
            Ok(Some(env)) => env,
            Ok(None) => return None,
            Err(e) => {
                return Some(Event::Warning(format!(
                    "dropped a fragment from {from}: {e}"
                )));
            }
        };
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
        let sender = match self.peers.get(&from) {
            Some(Peer {
                trusted: Some(t),
                pending: None,
                ..
            }) => t.clone(),
            Some(Peer {
                pending: Some(_), ..
            }) => {
                return reject("their certificate changed and has not been accepted");
            }
            _ => return reject("unknown or unverified sender"),
        };
        match self.state.seen(&from, &r.msg_id) {
            Ok(true) => return reject("replayed message"),
            Ok(false) => {}
            Err(e) => return Some(Event::Warning(format!("replay cache: {e}"))),
        }
        let opened = match open(
            &env,
            &from,
            count,
            &sender,
            &self.me,
            &self.freshness,
            now_ms,
        ) {
            Ok(o) => o,
            Err(OpenError::Stale { age_ms }) => {
                return reject(&format!("too old ({} s)", age_ms / 1000));
            }
            Err(OpenError::Future { ahead_ms }) => {
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
            Err(e) => return Some(Event::Warning(format!("replay cache: {e}"))),
        }
        let Content::Text(text) = opened.content else {
            return reject("unsupported content");
        };
        Some(Event::Message {
            msg_id: r.msg_id,
            from,
            room: opened.header.is_room(),
            recipients: opened.header.recipients,
            timestamp_ms: opened.header.timestamp_ms,
            text,
        })
    }

    /// Seals `text` for `to` and returns the frames to send.
    pub fn seal_text(
        &mut self,
        to: &[UserName],
        text: &str,
        room: bool,
        now_ms: u64,
    ) -> Result<(MessageId, Vec<Message>), ClientError> {
        if to.is_empty() {
            return Err(ClientError::NoKey("no recipient".into()));
        }
        let recipients = to
            .iter()
            .map(|n| self.trusted(n).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let msg_id = random_id()?;
        let target = Target::Users(to.to_vec());
        let room_len = Routed::max_payload_len(self.me.name(), &target);
        let content = Content::Text(text.to_owned());
        let env = seal(
            &self.me,
            &SealParams {
                msg_id,
                timestamp_ms: now_ms,
                room,
                recipients: &recipients,
                content: &content,
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
                sender: self.me.name().clone(),
                target: target.clone(),
                payload: p.to_vec(),
            }));
        }
        Ok((msg_id, out))
    }

    /// Periodic housekeeping: drops stale partial messages (with a warning)
    /// and prunes the replay cache.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Event> {
        let expired = self.reassembler.expire(now_ms);
        let horizon =
            now_ms.saturating_sub(self.freshness.max_age_ms + self.freshness.max_future_ms);
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
        ev
    }
}
