//! The sans-I/O wire format of blindrelay.
//!
//! This crate owns every byte that the relay server can see, and nothing else:
//!
//! * [`frame`]: the fixed-size frame. Every frame on the wire, in both
//!   directions, is exactly [`FRAME_LEN`] (4096) bytes: version, type, body
//!   length, body, zero padding. A capture therefore shows one record length
//!   for all application data. The list of frame types is kept in one place.
//! * [`message`]: the typed messages carried in frame bodies, one module per
//!   family (routed messages, statuses, login and presence, control), each
//!   with a strict decoder that checks version and lengths first and rejects
//!   trailing bytes.
//! * [`codec`]: the bounds-checked reader and field writers every decoder
//!   uses (the end-to-end envelope in `blindrelay-e2e` too).
//! * [`name`]: [`UserName`], the only form in which a user name exists after
//!   validation.
//! * [`text`]: which characters may reach a person's screen.
//!
//! There are no sockets, no async runtime and no cryptography here; the I/O
//! crates own buffers, timeouts and tasks. Every decoder returns a
//! [`WireError`] instead of panicking, whatever the input.
//!
//! The byte layout is specified in `PROTOCOL.md` at the repository root.
#![forbid(unsafe_code)]

pub mod codec;
pub mod frame;
pub mod message;
pub mod name;
pub mod text;

pub use frame::{FRAME_LEN, Frame, FrameType, HEADER_LEN, MAX_BODY_LEN, PROTOCOL_VERSION};
pub use message::{
    CERT_MAX_LEN, CRL_CHUNK_MAX, CRL_MAX_CHUNKS, Chunk, DS_CHUNK_MAX, FragmentPos, GoodbyeCode,
    MAX_ACK_IDS, MAX_DS_CHUNKS, MAX_FRAGMENTS, MAX_RECIPIENTS, MAX_STATUSES, MESSAGE_ID_LEN,
    Message, MessageId, PeerEvent, Reassembly, Routed, RoutedBody, RoutedFlags, RoutedHeader,
    StatusKind, Target, Welcome, chunks, crl_messages, write_deliver,
};
pub use name::UserName;

/// Everything that can be wrong with bytes received from a peer.
///
/// The variants name the reason so that the server can log it; none of them
/// carries attacker-controlled data beyond small integers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input is not exactly one frame long.
    #[error("frame must be exactly {expected} bytes, got {got}")]
    FrameLength {
        /// Always [`FRAME_LEN`].
        expected: usize,
        /// What was received.
        got: usize,
    },
    /// The version byte is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// The type byte names no known frame type.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// The declared body length exceeds [`MAX_BODY_LEN`].
    #[error("declared body length {0} exceeds the maximum")]
    BodyLength(usize),
    /// A padding byte after the body is not zero.
    #[error("non-zero padding")]
    Padding,
    /// A body ended before a field was complete.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A body has bytes after its last field.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A user name is empty, too long or outside the allowed alphabet.
    #[error("invalid user name")]
    InvalidName,
    /// A field has a value outside its documented range.
    #[error("invalid {0}")]
    InvalidField(&'static str),
    /// A message is too large to fit in one frame body.
    #[error("message of {0} bytes does not fit in one frame")]
    TooLarge(usize),
}
