//! The routed message (SEND and DELIVER): what clients exchange through the
//! relay. A visible [`RoutedHeader`] (message id, fragment position, flags,
//! sender, recipients) and an opaque payload that the relay forwards
//! without interpreting.
//!
//! ```text
//! msg_id[16] | frag_index u16 | frag_count u16 | flags u8 | sender name
//! | target u8 | recipient_count u8 | recipients name* | payload_len u16 | payload
//! ```
//!
//! A DELIVER body is a SEND body, byte for byte, except for the STORED flag
//! the relay may set. [`RoutedBody`] is how the relay uses that: it keeps
//! the bytes it received (shared, reference-counted) beside their decoded
//! header; the DELIVER frames, live or from the store, are written from
//! those bytes ([`write_deliver`]), the STORED flag being one byte. Nothing
//! is encoded twice.

use std::sync::Arc;

use crate::codec::{Reader, name_len, put_long_bytes, put_name};
use crate::frame::{FRAME_LEN, FrameType, MAX_BODY_LEN, write_frame};
use crate::{UserName, WireError};

/// Length of a message id.
pub const MESSAGE_ID_LEN: usize = 16;
/// The most fragments one message may be split into.
pub const MAX_FRAGMENTS: u16 = 64;
/// The most named recipients one routed message may carry.
pub const MAX_RECIPIENTS: usize = 64;
/// Offset of the flags byte in a routed body: after the id and the position.
const FLAGS_OFFSET: usize = MESSAGE_ID_LEN + 2 + 2;

/// A message id, chosen at random by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// Lower-case hex, for logs.
    pub fn to_hex(&self) -> String {
        crate::codec::hex(&self.0)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self(r.array("message id")?))
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

/// The flags of a routed message. Only the bits below exist; a decoder
/// refuses any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoutedFlags(u8);

impl RoutedFlags {
    /// No flag.
    pub const NONE: RoutedFlags = RoutedFlags(0);
    /// An end-to-end delivery receipt (set by the sender; single fragment;
    /// counted against the receipt budget).
    pub const RECEIPT: RoutedFlags = RoutedFlags(0x01);
    /// Delivered from the relay's store rather than live (set by the relay
    /// only; a client must not send it).
    pub const STORED: RoutedFlags = RoutedFlags(0x02);

    /// Validates a flags byte.
    pub fn from_bits(bits: u8) -> Result<Self, WireError> {
        if bits & !(Self::RECEIPT.0 | Self::STORED.0) != 0 {
            return Err(WireError::InvalidField("routed flags"));
        }
        Ok(Self(bits))
    }

    /// The flags byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// These flags and `other`'s.
    pub fn with(self, other: RoutedFlags) -> RoutedFlags {
        RoutedFlags(self.0 | other.0)
    }

    /// The RECEIPT flag is set.
    pub fn is_receipt(self) -> bool {
        self.0 & Self::RECEIPT.0 != 0
    }

    /// The STORED flag is set.
    pub fn is_stored(self) -> bool {
        self.0 & Self::STORED.0 != 0
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

/// The visible routing header of one fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedHeader {
    /// Random id shared by all fragments of one message.
    pub msg_id: MessageId,
    /// Position of this fragment.
    pub fragment: FragmentPos,
    /// Receipt and stored flags.
    pub flags: RoutedFlags,
    /// The declared sender; the relay drops the message unless it equals the
    /// connection's certificate identity.
    pub sender: UserName,
    /// The recipients.
    pub target: Target,
}

impl RoutedHeader {
    /// Bytes of header that precede the payload (its length prefix
    /// included).
    pub fn encoded_len(&self) -> usize {
        Self::len_for(&self.sender, &self.target)
    }

    /// Bytes of header for this sender and target.
    pub fn len_for(sender: &UserName, target: &Target) -> usize {
        let names: usize = match target {
            Target::Users(u) => u.iter().map(name_len).sum(),
            Target::Everyone => 0,
        };
        FLAGS_OFFSET + 1 + name_len(sender) + 1 + 1 + names + 2
    }

    /// The largest payload that fits in one frame for this sender and
    /// target.
    pub fn max_payload_len(sender: &UserName, target: &Target) -> usize {
        MAX_BODY_LEN.saturating_sub(Self::len_for(sender, target))
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        out.extend_from_slice(&self.msg_id.0);
        out.extend_from_slice(&self.fragment.index.to_be_bytes());
        out.extend_from_slice(&self.fragment.count.to_be_bytes());
        out.push(self.flags.bits());
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
            Target::Everyone => out.extend_from_slice(&[1, 0]),
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let msg_id = MessageId::read(r)?;
        let index = r.u16("fragment index")?;
        let count = r.u16("fragment count")?;
        let fragment = FragmentPos::new(index, count)?;
        let flags = RoutedFlags::from_bits(r.u8("routed flags")?)?;
        let sender = r.name("sender")?;
        let tag = r.u8("target")?;
        let n = usize::from(r.u8("recipient count")?);
        let target = match tag {
            0 => {
                let mut users = Vec::with_capacity(n.min(MAX_RECIPIENTS));
                for _ in 0..n {
                    users.push(r.name("recipient")?);
                }
                check_recipients(&users)?;
                Target::Users(users)
            }
            1 if n == 0 => Target::Everyone,
            _ => return Err(WireError::InvalidField("target")),
        };
        Ok(Self {
            msg_id,
            fragment,
            flags,
            sender,
            target,
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

/// A routed message (one fragment): visible header and opaque payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The routing header.
    pub header: RoutedHeader,
    /// Opaque bytes; the relay never interprets them.
    pub payload: Vec<u8>,
}

impl Routed {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.header.encode(out)?;
        put_long_bytes(out, &self.payload)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let header = RoutedHeader::decode(r)?;
        let payload = r.long_bytes("payload")?.to_vec();
        Ok(Self { header, payload })
    }
}

/// A SEND body as the relay received it: the header decoded once, the bytes
/// kept and shared (by the live DELIVER frames, the store's copies and the
/// write-behind holds). Nothing is encoded twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedBody {
    header: RoutedHeader,
    body: Arc<[u8]>,
}

impl RoutedBody {
    /// Decodes a SEND (or DELIVER) body with the same checks as
    /// [`crate::Message::from_frame`], keeping `body` as it is.
    pub fn decode(body: Arc<[u8]>) -> Result<Self, WireError> {
        let mut r = Reader::new(&body);
        let header = RoutedHeader::decode(&mut r)?;
        r.long_bytes("payload")?;
        r.finish()?;
        Ok(Self { header, body })
    }

    /// The decoded header.
    pub fn header(&self) -> &RoutedHeader {
        &self.header
    }

    /// The opaque payload.
    pub fn payload(&self) -> &[u8] {
        // The payload follows the header (whose length includes the
        // payload's length prefix) and runs to the end: decoding refused
        // trailing bytes.
        self.body
            .get(self.header.encoded_len()..)
            .unwrap_or_default()
    }

    /// The body as received, shared.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.body
    }

    /// Writes the DELIVER frame for this body into `out`; see
    /// [`write_deliver`].
    pub fn write_deliver(&self, stored: bool, out: &mut [u8; FRAME_LEN]) {
        // The body was decoded from one frame, so it fits one.
        let _ = write_deliver(&self.body, stored, out);
    }
}

/// Writes the DELIVER frame that carries the routed `body` (a SEND body as
/// received) into `out`: the same bytes, with the STORED flag added when
/// `stored`. Fails only if the body does not fit a frame.
pub fn write_deliver(
    body: &[u8],
    stored: bool,
    out: &mut [u8; FRAME_LEN],
) -> Result<(), WireError> {
    write_frame(FrameType::Deliver, body, out)?;
    if stored && let Some(flags) = out.get_mut(crate::frame::HEADER_LEN + FLAGS_OFFSET) {
        *flags |= RoutedFlags::STORED.bits();
    }
    Ok(())
}
