//! The messages carried in frame bodies: everything the relay can see.
//!
//! Each [`Message`] maps to one [`FrameType`] and one body layout (see
//! `PROTOCOL.md`). Integers are big-endian. `name` fields are `len: u8 |
//! bytes`, validated as [`UserName`]s. Decoders reject truncated fields,
//! out-of-range values and trailing bytes.
//!
//! A [`Routed`] message is what clients exchange through the relay: a visible
//! routing header (message id, fragment position, sender, recipients) and an
//! opaque payload that the relay forwards without interpreting.

use crate::WireError;
use crate::frame::{FRAME_LEN, Frame, FrameType, MAX_BODY_LEN};
use crate::name::UserName;
use crate::reader::Reader;

/// Length of a message id.
pub const MESSAGE_ID_LEN: usize = 16;
/// The most fragments one message may be split into.
pub const MAX_FRAGMENTS: u16 = 64;
/// The most named recipients one routed message may carry.
pub const MAX_RECIPIENTS: usize = 64;
/// The largest DER certificate a `Peer` message may carry.
pub const CERT_MAX_LEN: usize = 3072;
/// The longest goodbye reason, in bytes.
pub const REASON_MAX_LEN: usize = 200;
/// The most messages one `Ack` may acknowledge (64 × (33 + 16) bytes fits
/// a frame).
pub const MAX_ACK_IDS: usize = 64;
/// The most statuses one `Statuses` message may carry (64 x at most 50
/// bytes fits a frame).
pub const MAX_STATUSES: usize = 64;
/// `Routed::flags`: this message is an end-to-end delivery receipt (set by
/// the sender; single fragment; counted against the receipt budget).
pub const ROUTED_RECEIPT: u8 = 0x01;
/// `Routed::flags`: delivered from the relay's store rather than live (set
/// by the relay only; a client must not send it).
pub const ROUTED_STORED: u8 = 0x02;

/// A message id, chosen at random by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// Lower-case hex, for logs.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a fragment sits in its message: `index < count <= MAX_FRAGMENTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentPos {
    index: u16,
    count: u16,
}

impl FragmentPos {
    /// A message that fits in one frame.
    pub const SINGLE: FragmentPos = FragmentPos { index: 0, count: 1 };

    /// Validates a position.
    pub fn new(index: u16, count: u16) -> Result<Self, WireError> {
        if count == 0 || count > MAX_FRAGMENTS || index >= count {
            return Err(WireError::InvalidField("fragment position"));
        }
        Ok(Self { index, count })
    }
    /// Zero-based index of this fragment.
    pub fn index(&self) -> u16 {
        self.index
    }
    /// Number of fragments in the message.
    pub fn count(&self) -> u16 {
        self.count
    }
    /// True for the first fragment.
    pub fn is_first(&self) -> bool {
        self.index == 0
    }
    /// True for the last fragment.
    pub fn is_last(&self) -> bool {
        self.index + 1 == self.count
    }
}

/// Who a routed message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// These users (1 to [`MAX_RECIPIENTS`], distinct).
    Users(Vec<UserName>),
    /// Everyone online except the sender (the shared room).
    Everyone,
}

/// A routed message (one fragment): visible header and opaque payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Random id shared by all fragments of one message.
    pub msg_id: MessageId,
    /// Position of this fragment.
    pub fragment: FragmentPos,
    /// [`ROUTED_RECEIPT`], [`ROUTED_STORED`]; other bits must be zero.
    pub flags: u8,
    /// The declared sender; the relay drops the message unless it equals the
    /// connection's certificate identity.
    pub sender: UserName,
    /// The recipients.
    pub target: Target,
    /// Opaque bytes; the relay never interprets them.
    pub payload: Vec<u8>,
}

impl Routed {
    /// Bytes of routing header that precede the payload for this sender and
    /// target; `MAX_BODY_LEN - header_len` is the room left for the payload.
    pub fn header_len(sender: &UserName, target: &Target) -> usize {
        let names = match target {
            Target::Users(u) => u.iter().map(|n| 1 + n.as_str().len()).sum(),
            Target::Everyone => 0,
        };
        MESSAGE_ID_LEN + 2 + 2 + 1 + 1 + sender.as_str().len() + 1 + 1 + names + 2
    }

    /// The largest payload that fits in one frame for this sender and target.
    pub fn max_payload_len(sender: &UserName, target: &Target) -> usize {
        MAX_BODY_LEN.saturating_sub(Self::header_len(sender, target))
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        out.extend_from_slice(&self.msg_id.0);
        out.extend_from_slice(&self.fragment.index.to_be_bytes());
        out.extend_from_slice(&self.fragment.count.to_be_bytes());
        if self.flags & !(ROUTED_RECEIPT | ROUTED_STORED) != 0 {
            return Err(WireError::InvalidField("routed flags"));
        }
        out.push(self.flags);
        put_name(out, &self.sender);
        match &self.target {
            Target::Users(users) => {
                check_recipients(users)?;
                out.push(0);
                out.push(
                    u8::try_from(users.len()).map_err(|_| WireError::InvalidField("recipients"))?,
                );
                for u in users {
                    put_name(out, u);
                }
            }
            Target::Everyone => {
                out.push(1);
                out.push(0);
            }
        }
        let len = u16::try_from(self.payload.len())
            .map_err(|_| WireError::TooLarge(self.payload.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mut id = [0u8; MESSAGE_ID_LEN];
        id.copy_from_slice(r.take(MESSAGE_ID_LEN, "message id")?);
        let index = r.u16("fragment index")?;
        let count = r.u16("fragment count")?;
        let fragment = FragmentPos::new(index, count)?;
        let flags = r.u8("routed flags")?;
        if flags & !(ROUTED_RECEIPT | ROUTED_STORED) != 0 {
            return Err(WireError::InvalidField("routed flags"));
        }
        let sender = get_name(r, "sender")?;
        let tag = r.u8("target")?;
        let n = usize::from(r.u8("recipient count")?);
        let target = match tag {
            0 => {
                let mut users = Vec::with_capacity(n.min(MAX_RECIPIENTS));
                for _ in 0..n {
                    users.push(get_name(r, "recipient")?);
                }
                check_recipients(&users)?;
                Target::Users(users)
            }
            1 if n == 0 => Target::Everyone,
            _ => return Err(WireError::InvalidField("target")),
        };
        let payload = r.long_bytes("payload")?.to_vec();
        Ok(Self {
            msg_id: MessageId(id),
            fragment,
            flags,
            sender,
            target,
            payload,
        })
    }
}

fn check_recipients(users: &[UserName]) -> Result<(), WireError> {
    if users.is_empty() || users.len() > MAX_RECIPIENTS {
        return Err(WireError::InvalidField("recipient count"));
    }
    let mut sorted: Vec<&UserName> = users.iter().collect();
    sorted.sort();
    if sorted.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(WireError::InvalidField("duplicate recipient"));
    }
    Ok(())
}

/// What happened to a message the client sent (server to client).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusKind {
    /// The relay accepted the whole message and forwarded it to `delivered`
    /// online sessions.
    Accepted {
        /// Number of recipient sessions the message was written to.
        delivered: u16,
    },
    /// This recipient is known but has no session now; the message was not
    /// delivered to them.
    Offline(UserName),
    /// The relay has never seen this recipient.
    Unknown(UserName),
    /// The whole message is durably stored (committed) for this many
    /// recipients; it stays stored until each acknowledges it.
    Stored {
        /// Recipients it was stored for.
        recipients: u16,
    },
    /// This recipient's mailbox is full (message or byte quota): the message
    /// was not stored for them.
    QuotaExceeded(UserName),
}

/// Why a `Peer` message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// Part of the directory sent right after login.
    Listed = 0,
    /// The user has just come online.
    Joined = 1,
    /// Part of the directory: a known user who is offline.
    Offline = 2,
}

/// Why a connection is being closed. Values are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GoodbyeCode {
    /// Normal close (client quitting, or server shutting down).
    Normal = 0,
    /// The server is shutting down.
    Shutdown = 1,
    /// Too many messages in the rate window.
    RateLimited = 2,
    /// The identity is in its cool-down period after a rate-limit disconnect.
    CoolDown = 3,
    /// A newer session of the same identity replaced this one.
    SessionLimit = 4,
    /// The certificate was revoked.
    Revoked = 5,
    /// Nothing was received within the idle timeout.
    IdleTimeout = 6,
    /// A frame or message violated the protocol.
    ProtocolViolation = 7,
    /// Repeated messages with a forged sender.
    Spoofing = 8,
    /// The client did not read its frames fast enough.
    TooSlow = 9,
}

impl GoodbyeCode {
    fn from_u8(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            0 => Self::Normal,
            1 => Self::Shutdown,
            2 => Self::RateLimited,
            3 => Self::CoolDown,
            4 => Self::SessionLimit,
            5 => Self::Revoked,
            6 => Self::IdleTimeout,
            7 => Self::ProtocolViolation,
            8 => Self::Spoofing,
            9 => Self::TooSlow,
            _ => return Err(WireError::InvalidField("goodbye code")),
        })
    }
}

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Keep-alive request carrying an opaque value to echo.
    Ping(u64),
    /// Keep-alive answer echoing the ping's value.
    Pong(u64),
    /// Client to server: one fragment of a routed message.
    Send(Routed),
    /// Client to server: these messages (sender, id) were received and
    /// decided; the relay may delete them from the store (1 to
    /// [`MAX_ACK_IDS`]). The sender is part of the key, so nobody can
    /// acknowledge away another sender's message by reusing its id.
    Ack(Vec<(UserName, MessageId)>),
    /// Server to client: one fragment of a routed message.
    Deliver(Routed),
    /// Server to client: the fate of a sent message.
    Status {
        /// The message concerned.
        msg_id: MessageId,
        /// What happened.
        kind: StatusKind,
    },
    /// Server to client: several statuses (2 to [`MAX_STATUSES`]), in the
    /// order they were produced. The relay packs the statuses waiting in a
    /// session's queue into one frame, so that a busy sender reads one
    /// frame instead of one per status.
    Statuses(Vec<(MessageId, StatusKind)>),
    /// Server to client: the first frame after the handshake.
    Welcome {
        /// The identity the server bound this connection to.
        identity: UserName,
        /// Messages allowed per rate window.
        rate_max: u16,
        /// Length of the rate window in milliseconds.
        rate_window_ms: u32,
        /// The client must send something at least this often (milliseconds).
        keepalive_ms: u32,
        /// The most fragments one message may have.
        max_fragments: u16,
        /// How long the relay stores undelivered messages, in seconds (the
        /// freshness window for messages delivered from the store).
        store_ttl_s: u32,
    },
    /// Server to client: a user and their DER certificate.
    Peer {
        /// Directory entry or join.
        event: PeerEvent,
        /// The user's name (the certificate CN, as the server saw it).
        name: UserName,
        /// The user's certificate, DER; clients verify it themselves.
        cert_der: Vec<u8>,
    },
    /// Server to client: the initial directory is complete.
    DirectoryEnd {
        /// How many `Peer` entries preceded it.
        count: u16,
    },
    /// Server to client: the user's last session ended.
    PeerLeft {
        /// Who left.
        name: UserName,
    },
    /// Either direction: the connection is closing.
    Goodbye {
        /// Why.
        code: GoodbyeCode,
        /// Human-readable detail: printable UTF-8, at most [`REASON_MAX_LEN`] bytes.
        reason: String,
    },
}

/// One status: `msg_id: 16 | code: u8 | fields`.
fn put_status(b: &mut Vec<u8>, msg_id: &MessageId, kind: &StatusKind) {
    b.extend_from_slice(&msg_id.0);
    match kind {
        StatusKind::Accepted { delivered } => {
            b.push(0);
            b.extend_from_slice(&delivered.to_be_bytes());
        }
        StatusKind::Offline(n) => {
            b.push(1);
            put_name(b, n);
        }
        StatusKind::Unknown(n) => {
            b.push(2);
            put_name(b, n);
        }
        StatusKind::Stored { recipients } => {
            b.push(3);
            b.extend_from_slice(&recipients.to_be_bytes());
        }
        StatusKind::QuotaExceeded(n) => {
            b.push(4);
            put_name(b, n);
        }
    }
}

fn get_status(r: &mut Reader<'_>) -> Result<(MessageId, StatusKind), WireError> {
    let mut id = [0u8; MESSAGE_ID_LEN];
    id.copy_from_slice(r.take(MESSAGE_ID_LEN, "message id")?);
    let kind = match r.u8("status code")? {
        0 => StatusKind::Accepted {
            delivered: r.u16("delivered")?,
        },
        1 => StatusKind::Offline(get_name(r, "recipient")?),
        2 => StatusKind::Unknown(get_name(r, "recipient")?),
        3 => StatusKind::Stored {
            recipients: r.u16("stored recipients")?,
        },
        4 => StatusKind::QuotaExceeded(get_name(r, "recipient")?),
        _ => return Err(WireError::InvalidField("status code")),
    };
    Ok((MessageId(id), kind))
}

impl Message {
    /// The frame type this message travels in.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Message::Ping(_) => FrameType::Ping,
            Message::Pong(_) => FrameType::Pong,
            Message::Send(_) => FrameType::Send,
            Message::Ack(_) => FrameType::Ack,
            Message::Deliver(_) => FrameType::Deliver,
            Message::Status { .. } => FrameType::Status,
            Message::Statuses(_) => FrameType::Statuses,
            Message::Welcome { .. } => FrameType::Welcome,
            Message::Peer { .. } => FrameType::Peer,
            Message::DirectoryEnd { .. } => FrameType::DirectoryEnd,
            Message::PeerLeft { .. } => FrameType::PeerLeft,
            Message::Goodbye { .. } => FrameType::Goodbye,
        }
    }

    /// True for messages a client may send to the server.
    pub fn is_client_to_server(&self) -> bool {
        matches!(
            self,
            Message::Ping(_)
                | Message::Pong(_)
                | Message::Send(_)
                | Message::Ack(_)
                | Message::Goodbye { .. }
        )
    }

    /// Builds the frame for this message.
    pub fn to_frame(&self) -> Result<Frame, WireError> {
        let mut b = Vec::with_capacity(256);
        match self {
            Message::Ping(v) | Message::Pong(v) => b.extend_from_slice(&v.to_be_bytes()),
            Message::Send(r) | Message::Deliver(r) => r.encode(&mut b)?,
            Message::Ack(ids) => {
                if ids.is_empty() || ids.len() > MAX_ACK_IDS {
                    return Err(WireError::InvalidField("ack count"));
                }
                b.push(ids.len() as u8);
                for (sender, id) in ids {
                    put_name(&mut b, sender);
                    b.extend_from_slice(&id.0);
                }
            }
            Message::Status { msg_id, kind } => put_status(&mut b, msg_id, kind),
            Message::Statuses(list) => {
                if list.len() < 2 || list.len() > MAX_STATUSES {
                    return Err(WireError::InvalidField("status count"));
                }
                b.push(list.len() as u8);
                for (msg_id, kind) in list {
                    put_status(&mut b, msg_id, kind);
                }
            }
            Message::Welcome {
                identity,
                rate_max,
                rate_window_ms,
                keepalive_ms,
                max_fragments,
                store_ttl_s,
            } => {
                put_name(&mut b, identity);
                b.extend_from_slice(&rate_max.to_be_bytes());
                b.extend_from_slice(&rate_window_ms.to_be_bytes());
                b.extend_from_slice(&keepalive_ms.to_be_bytes());
                b.extend_from_slice(&max_fragments.to_be_bytes());
                b.extend_from_slice(&store_ttl_s.to_be_bytes());
            }
            Message::Peer {
                event,
                name,
                cert_der,
            } => {
                if cert_der.is_empty() || cert_der.len() > CERT_MAX_LEN {
                    return Err(WireError::InvalidField("certificate length"));
                }
                b.push(*event as u8);
                put_name(&mut b, name);
                b.extend_from_slice(&(cert_der.len() as u16).to_be_bytes());
                b.extend_from_slice(cert_der);
            }
            Message::DirectoryEnd { count } => b.extend_from_slice(&count.to_be_bytes()),
            Message::PeerLeft { name } => put_name(&mut b, name),
            Message::Goodbye { code, reason } => {
                check_reason(reason)?;
                b.push(*code as u8);
                b.push(reason.len() as u8);
                b.extend_from_slice(reason.as_bytes());
            }
        }
        Frame::new(self.frame_type(), b)
    }

    /// Encodes straight to the 4096 wire bytes.
    pub fn encode(&self) -> Result<Box<[u8; FRAME_LEN]>, WireError> {
        Ok(self.to_frame()?.encode())
    }

    /// Decodes a message from a frame.
    pub fn from_frame(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let msg = match frame.kind() {
            FrameType::Ping => Message::Ping(r.u64("ping")?),
            FrameType::Pong => Message::Pong(r.u64("pong")?),
            FrameType::Send => Message::Send(Routed::decode(&mut r)?),
            FrameType::Deliver => Message::Deliver(Routed::decode(&mut r)?),
            FrameType::Ack => {
                let n = usize::from(r.u8("ack count")?);
                if n == 0 || n > MAX_ACK_IDS {
                    return Err(WireError::InvalidField("ack count"));
                }
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let sender = get_name(&mut r, "ack sender")?;
                    let mut id = [0u8; MESSAGE_ID_LEN];
                    id.copy_from_slice(r.take(MESSAGE_ID_LEN, "message id")?);
                    ids.push((sender, MessageId(id)));
                }
                Message::Ack(ids)
            }
            FrameType::Status => {
                let (msg_id, kind) = get_status(&mut r)?;
                Message::Status { msg_id, kind }
            }
            FrameType::Statuses => {
                let n = usize::from(r.u8("status count")?);
                if !(2..=MAX_STATUSES).contains(&n) {
                    return Err(WireError::InvalidField("status count"));
                }
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(get_status(&mut r)?);
                }
                Message::Statuses(list)
            }
            FrameType::Welcome => Message::Welcome {
                identity: get_name(&mut r, "identity")?,
                rate_max: r.u16("rate max")?,
                rate_window_ms: r.u32("rate window")?,
                keepalive_ms: r.u32("keepalive")?,
                max_fragments: r.u16("max fragments")?,
                store_ttl_s: r.u32("store ttl")?,
            },
            FrameType::Peer => {
                let event = match r.u8("peer event")? {
                    0 => PeerEvent::Listed,
                    1 => PeerEvent::Joined,
                    2 => PeerEvent::Offline,
                    _ => return Err(WireError::InvalidField("peer event")),
                };
                let name = get_name(&mut r, "peer name")?;
                let cert = r.long_bytes("certificate")?;
                if cert.is_empty() || cert.len() > CERT_MAX_LEN {
                    return Err(WireError::InvalidField("certificate length"));
                }
                Message::Peer {
                    event,
                    name,
                    cert_der: cert.to_vec(),
                }
            }
            FrameType::DirectoryEnd => Message::DirectoryEnd {
                count: r.u16("count")?,
            },
            FrameType::PeerLeft => Message::PeerLeft {
                name: get_name(&mut r, "peer name")?,
            },
            FrameType::Goodbye => {
                let code = GoodbyeCode::from_u8(r.u8("goodbye code")?)?;
                let raw = r.short_bytes("reason")?;
                let reason = std::str::from_utf8(raw)
                    .map_err(|_| WireError::InvalidField("reason"))?
                    .to_owned();
                check_reason(&reason)?;
                Message::Goodbye { code, reason }
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// Decodes a message from the 4096 wire bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::from_frame(&Frame::decode(bytes)?)
    }
}

/// True for characters that can change how surrounding text is displayed:
/// controls (Cc) and the invisible format characters (bidirectional
/// overrides and isolates, zero-width characters, the BOM).
pub fn is_display_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

fn check_reason(reason: &str) -> Result<(), WireError> {
    if reason.len() > REASON_MAX_LEN || reason.chars().any(is_display_control) {
        return Err(WireError::InvalidField("reason"));
    }
    Ok(())
}

fn put_name(out: &mut Vec<u8>, name: &UserName) {
    // A UserName is at most 32 bytes, so the length fits in a u8.
    out.push(name.as_str().len() as u8);
    out.extend_from_slice(name.as_str().as_bytes());
}

fn get_name(r: &mut Reader<'_>, field: &'static str) -> Result<UserName, WireError> {
    UserName::from_bytes(r.short_bytes(field)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = UserName> {
        "[a-z0-9][a-z0-9._-]{0,31}".prop_map(|s| UserName::new(&s).unwrap())
    }

    fn target() -> impl Strategy<Value = Target> {
        prop_oneof![
            Just(Target::Everyone),
            proptest::collection::btree_set(name(), 1..6)
                .prop_map(|s| Target::Users(s.into_iter().collect())),
        ]
    }

    fn routed() -> impl Strategy<Value = Routed> {
        (
            any::<[u8; 16]>(),
            (1u16..=MAX_FRAGMENTS).prop_flat_map(|c| (0..c, Just(c))),
            name(),
            target(),
            proptest::collection::vec(any::<u8>(), 0..3000),
        )
            .prop_map(|(id, (i, c), sender, target, payload)| Routed {
                msg_id: MessageId(id),
                fragment: FragmentPos::new(i, c).unwrap(),
                flags: (id[0] & 3),
                sender,
                target,
                payload,
            })
    }

    fn status_kind() -> impl Strategy<Value = StatusKind> {
        prop_oneof![
            any::<u16>().prop_map(|d| StatusKind::Accepted { delivered: d }),
            name().prop_map(StatusKind::Offline),
            name().prop_map(StatusKind::Unknown),
            any::<u16>().prop_map(|n| StatusKind::Stored { recipients: n }),
            name().prop_map(StatusKind::QuotaExceeded),
        ]
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            any::<u64>().prop_map(Message::Ping),
            any::<u64>().prop_map(Message::Pong),
            routed().prop_map(Message::Send),
            routed().prop_map(Message::Deliver),
            proptest::collection::vec((name(), any::<[u8; 16]>()), 1..=MAX_ACK_IDS).prop_map(|v| {
                Message::Ack(v.into_iter().map(|(n, i)| (n, MessageId(i))).collect())
            }),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(id, n)| Message::Status {
                msg_id: MessageId(id),
                kind: StatusKind::Stored { recipients: n }
            }),
            (any::<[u8; 16]>(), name()).prop_map(|(id, n)| Message::Status {
                msg_id: MessageId(id),
                kind: StatusKind::QuotaExceeded(n)
            }),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(id, d)| Message::Status {
                msg_id: MessageId(id),
                kind: StatusKind::Accepted { delivered: d }
            }),
            (any::<[u8; 16]>(), name()).prop_map(|(id, n)| Message::Status {
                msg_id: MessageId(id),
                kind: StatusKind::Offline(n)
            }),
            (any::<[u8; 16]>(), name()).prop_map(|(id, n)| Message::Status {
                msg_id: MessageId(id),
                kind: StatusKind::Unknown(n)
            }),
            (
                name(),
                any::<u16>(),
                any::<u32>(),
                any::<u32>(),
                any::<u16>(),
                any::<u32>()
            )
                .prop_map(
                    |(
                        identity,
                        rate_max,
                        rate_window_ms,
                        keepalive_ms,
                        max_fragments,
                        store_ttl_s,
                    )| {
                        Message::Welcome {
                            identity,
                            rate_max,
                            rate_window_ms,
                            keepalive_ms,
                            max_fragments,
                            store_ttl_s,
                        }
                    }
                ),
            (
                0usize..3,
                name(),
                proptest::collection::vec(any::<u8>(), 1..=CERT_MAX_LEN)
            )
                .prop_map(|(j, name, cert_der)| Message::Peer {
                    event: [PeerEvent::Listed, PeerEvent::Joined, PeerEvent::Offline][j],
                    name,
                    cert_der
                }),
            any::<u16>().prop_map(|count| Message::DirectoryEnd { count }),
            name().prop_map(|name| Message::PeerLeft { name }),
            proptest::collection::vec((any::<[u8; 16]>(), status_kind()), 2..=MAX_STATUSES)
                .prop_map(|v| Message::Statuses(
                    v.into_iter().map(|(id, k)| (MessageId(id), k)).collect()
                )),
            (0u8..=9, "[ -~]{0,200}").prop_map(|(c, reason)| Message::Goodbye {
                code: GoodbyeCode::from_u8(c).unwrap(),
                reason
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips_in_one_full_frame(m in message()) {
            let bytes = m.encode().unwrap();
            prop_assert_eq!(bytes.len(), FRAME_LEN);
            prop_assert_eq!(Message::decode(&bytes[..]).unwrap(), m);
        }

        #[test]
        fn decode_never_panics_on_any_body(
            kind in prop::sample::select(vec![0x01u8, 0x02, 0x10, 0x11, 0x20, 0x21, 0x22, 0x30, 0x31, 0x32, 0x33, 0x34]),
            body in proptest::collection::vec(any::<u8>(), 0..=MAX_BODY_LEN),
        ) {
            let frame = Frame::new(FrameType::from_u8(kind).unwrap(), body).unwrap();
            let _ = Message::from_frame(&frame);
        }

        #[test]
        fn decode_never_panics_on_mutated_messages(
            m in message(),
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..4),
        ) {
            let mut bytes = m.encode().unwrap();
            for (pos, val) in flips {
                bytes[pos] = val;
            }
            let _ = Message::decode(&bytes[..]);
        }
    }

    fn alice() -> UserName {
        UserName::new("alice").unwrap()
    }

    fn send_to(users: Vec<UserName>) -> Message {
        Message::Send(Routed {
            msg_id: MessageId([7; 16]),
            fragment: FragmentPos::SINGLE,
            flags: 0,
            sender: alice(),
            target: Target::Users(users),
            payload: vec![1, 2, 3],
        })
    }

    #[test]
    fn rejects_bad_recipient_lists() {
        assert!(send_to(vec![]).encode().is_err());
        assert!(send_to(vec![alice(), alice()]).encode().is_err());
        let many: Vec<UserName> = (0..65)
            .map(|i| UserName::new(&format!("u{i}")).unwrap())
            .collect();
        assert!(send_to(many).encode().is_err());
    }

    #[test]
    fn statuses_carry_two_to_max_statuses_of_the_longest_kind() {
        let longest = UserName::new(&"n".repeat(UserName::MAX_LEN)).unwrap();
        let full: Vec<(MessageId, StatusKind)> = (0..MAX_STATUSES)
            .map(|i| {
                (
                    MessageId([i as u8; 16]),
                    StatusKind::QuotaExceeded(longest.clone()),
                )
            })
            .collect();
        let m = Message::Statuses(full.clone());
        assert_eq!(Message::decode(&m.encode().unwrap()[..]).unwrap(), m);
        let mut over = full.clone();
        over.push((MessageId([0; 16]), StatusKind::Stored { recipients: 1 }));
        assert!(Message::Statuses(over).encode().is_err());
        assert!(Message::Statuses(full[..1].to_vec()).encode().is_err());
        // A count the decoder must refuse, whatever follows.
        for n in [0u8, 1, MAX_STATUSES as u8 + 1] {
            let f = Frame::new(FrameType::Statuses, vec![n; 40]).unwrap();
            assert_eq!(
                Message::from_frame(&f),
                Err(WireError::InvalidField("status count"))
            );
        }
        assert!(!m.is_client_to_server());
    }

    #[test]
    fn rejects_trailing_bytes() {
        let frame = Message::Ping(1).to_frame().unwrap();
        let mut body = frame.body().to_vec();
        body.push(0);
        let f = Frame::new(FrameType::Ping, body).unwrap();
        assert_eq!(Message::from_frame(&f), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn rejects_bad_fragment_positions() {
        assert!(FragmentPos::new(0, 0).is_err());
        assert!(FragmentPos::new(1, 1).is_err());
        assert!(FragmentPos::new(0, MAX_FRAGMENTS + 1).is_err());
        let m = send_to(vec![UserName::new("bob").unwrap()]);
        let mut bytes = m.encode().unwrap();
        // index (offset 4 + 16) := 5 with count 1
        bytes[4 + 16..4 + 18].copy_from_slice(&5u16.to_be_bytes());
        assert_eq!(
            Message::decode(&bytes[..]),
            Err(WireError::InvalidField("fragment position"))
        );
    }

    #[test]
    fn rejects_invalid_names_on_the_wire() {
        let m = send_to(vec![UserName::new("bob").unwrap()]);
        let mut bytes = m.encode().unwrap();
        // sender name starts after header(4) + id(16) + pos(4) + flags(1) + len(1)
        bytes[4 + 16 + 4 + 1 + 1] = b'A';
        assert_eq!(Message::decode(&bytes[..]), Err(WireError::InvalidName));
    }

    #[test]
    fn rejects_bidi_overrides_in_reasons() {
        let m = Message::Goodbye {
            code: GoodbyeCode::Normal,
            reason: "abc\u{202E}fed".into(),
        };
        assert!(m.encode().is_err());
    }

    #[test]
    fn rejects_control_characters_in_reasons() {
        let m = Message::Goodbye {
            code: GoodbyeCode::Normal,
            reason: "\x1b[2J".into(),
        };
        assert!(m.encode().is_err());
    }

    #[test]
    fn payload_room_matches_the_header() {
        let t = Target::Users(vec![UserName::new("bob").unwrap()]);
        let room = Routed::max_payload_len(&alice(), &t);
        let fits = Message::Send(Routed {
            msg_id: MessageId([0; 16]),
            fragment: FragmentPos::SINGLE,
            flags: 0,
            sender: alice(),
            target: t.clone(),
            payload: vec![0; room],
        });
        assert!(fits.encode().is_ok());
        let too_big = Message::Send(Routed {
            msg_id: MessageId([0; 16]),
            fragment: FragmentPos::SINGLE,
            flags: 0,
            sender: alice(),
            target: t,
            payload: vec![0; room + 1],
        });
        assert!(too_big.encode().is_err());
    }
}
