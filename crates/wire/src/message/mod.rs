//! The messages carried in frame bodies: everything the relay can see.
//!
//! Each [`Message`] maps to one [`FrameType`] and one body layout (see
//! `PROTOCOL.md` section 3). Integers are big-endian; `name` fields are
//! `len: u8 | bytes`, validated as [`UserName`]s. Decoders reject truncated
//! fields, out-of-range values and trailing bytes.
//!
//! One module per family of messages, each with its layout and its
//! encoder and decoder:
//! * [`routed`]: SEND and DELIVER, the routed message, and [`RoutedBody`],
//!   the relay's received-bytes form of it;
//! * [`status`]: STATUS and STATUSES, what happened to a message sent;
//! * [`login`]: WELCOME, PEER, DIRECTORY_END, PEER_LEFT;
//! * [`crl`]: CRL, the CA's signed CRL handed out in chunks;
//! * [`control`]: PING, PONG, ACK, GOODBYE;
//! * [`chunk`]: DS_UP and DS_DOWN, protocol v2's messages cut into frames.

pub mod chunk;
pub mod control;
pub mod crl;
pub mod login;
pub mod routed;
pub mod status;

#[cfg(test)]
mod tests;

pub use chunk::{Chunk, DS_CHUNK_MAX, MAX_DS_CHUNKS, Reassembly, chunks};
pub use control::{GoodbyeCode, MAX_ACK_IDS, REASON_MAX_LEN};
pub use crl::{CRL_CHUNK_MAX, CRL_MAX_CHUNKS, crl_messages};
pub use login::{CERT_MAX_LEN, PeerEvent, Welcome};
pub use routed::{
    FragmentPos, MAX_FRAGMENTS, MAX_RECIPIENTS, MESSAGE_ID_LEN, MessageId, Routed, RoutedBody,
    RoutedFlags, RoutedHeader, Target, write_deliver,
};
pub use status::{MAX_STATUSES, StatusKind};

use crate::codec::Reader;
use crate::frame::{FRAME_LEN, Frame, FrameType};
use crate::{UserName, WireError};

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    Welcome(Welcome),
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
    /// Server to client: one chunk of the CA's current CRL (DER). Clients
    /// verify the whole CRL against the CA themselves.
    Crl {
        /// This chunk's position, from 0.
        index: u8,
        /// How many chunks the CRL has (1 to [`CRL_MAX_CHUNKS`]).
        count: u8,
        /// 1 to [`CRL_CHUNK_MAX`] bytes of the CRL.
        chunk: Vec<u8>,
    },
    /// Client to server (protocol v2): one chunk of a Delivery Service
    /// request.
    DsUp(Chunk),
    /// Server to client (protocol v2): one chunk of a Delivery Service
    /// answer or mailbox delivery.
    DsDown(Chunk),
    /// Either direction: the connection is closing.
    Goodbye {
        /// Why.
        code: GoodbyeCode,
        /// Human-readable detail: printable UTF-8, at most [`REASON_MAX_LEN`] bytes.
        reason: String,
    },
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
            Message::Welcome(_) => FrameType::Welcome,
            Message::Peer { .. } => FrameType::Peer,
            Message::DirectoryEnd { .. } => FrameType::DirectoryEnd,
            Message::PeerLeft { .. } => FrameType::PeerLeft,
            Message::Crl { .. } => FrameType::Crl,
            Message::Goodbye { .. } => FrameType::Goodbye,
            Message::DsUp(_) => FrameType::DsUp,
            Message::DsDown(_) => FrameType::DsDown,
        }
    }

    /// True for messages a client may send to the server.
    pub fn is_client_to_server(&self) -> bool {
        self.frame_type().is_client_to_server()
    }

    /// Builds the frame for this message.
    pub fn to_frame(&self) -> Result<Frame, WireError> {
        let mut b = Vec::with_capacity(256);
        match self {
            Message::Ping(v) | Message::Pong(v) => b.extend_from_slice(&v.to_be_bytes()),
            Message::Send(r) | Message::Deliver(r) => r.encode(&mut b)?,
            Message::Ack(ids) => control::put_ack(&mut b, ids)?,
            Message::Status { msg_id, kind } => status::put_status(&mut b, msg_id, kind),
            Message::Statuses(list) => status::put_statuses(&mut b, list)?,
            Message::Welcome(w) => w.encode(&mut b),
            Message::Peer {
                event,
                name,
                cert_der,
            } => login::put_peer(&mut b, *event, name, cert_der)?,
            Message::DirectoryEnd { count } => b.extend_from_slice(&count.to_be_bytes()),
            Message::PeerLeft { name } => crate::codec::put_name(&mut b, name),
            Message::Crl {
                index,
                count,
                chunk,
            } => crl::put_crl(&mut b, *index, *count, chunk)?,
            Message::Goodbye { code, reason } => control::put_goodbye(&mut b, *code, reason)?,
            Message::DsUp(c) | Message::DsDown(c) => c.encode(&mut b)?,
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
            FrameType::Ack => Message::Ack(control::get_ack(&mut r)?),
            FrameType::Status => {
                let (msg_id, kind) = status::get_status(&mut r)?;
                Message::Status { msg_id, kind }
            }
            FrameType::Statuses => Message::Statuses(status::get_statuses(&mut r)?),
            FrameType::Welcome => Message::Welcome(Welcome::decode(&mut r)?),
            FrameType::Peer => {
                let (event, name, cert_der) = login::get_peer(&mut r)?;
                Message::Peer {
                    event,
                    name,
                    cert_der,
                }
            }
            FrameType::DirectoryEnd => Message::DirectoryEnd {
                count: r.u16("count")?,
            },
            FrameType::PeerLeft => Message::PeerLeft {
                name: r.name("peer name")?,
            },
            FrameType::Crl => {
                let (index, count, chunk) = crl::get_crl(&mut r)?;
                Message::Crl {
                    index,
                    count,
                    chunk,
                }
            }
            FrameType::Goodbye => {
                let (code, reason) = control::get_goodbye(&mut r)?;
                Message::Goodbye { code, reason }
            }
            FrameType::DsUp => Message::DsUp(Chunk::decode(&mut r)?),
            FrameType::DsDown => Message::DsDown(Chunk::decode(&mut r)?),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Decodes a message from the 4096 wire bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::from_frame(&Frame::decode(bytes)?)
    }
}
