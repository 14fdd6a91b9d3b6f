//! The fixed-size frame.
//!
//! ```text
//! offset  size  field
//! 0       1     version      (PROTOCOL_VERSION = 1)
//! 1       1     type         (FrameType)
//! 2       2     body length  (big-endian, 0..=MAX_BODY_LEN)
//! 4       len   body
//! 4+len   ...   padding      (zero bytes up to FRAME_LEN)
//! ```
//!
//! Every frame is exactly [`FRAME_LEN`] bytes, so that message lengths leak
//! nothing (the original report's 4096-byte packets). Decoding is strict:
//! wrong length, unknown version or type, an out-of-range body length or any
//! non-zero padding byte is an error.

use crate::WireError;

/// The size of every frame on the wire, in both directions.
pub const FRAME_LEN: usize = 4096;
/// Version, type and body length.
pub const HEADER_LEN: usize = 4;
/// The largest body a frame can carry.
pub const MAX_BODY_LEN: usize = FRAME_LEN - HEADER_LEN;
/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Declares [`FrameType`] from one list: the enum, its byte values, the
/// decoder of the type byte and [`FrameType::ALL`] all come from here, so a
/// new type cannot be added to one and forgotten in another.
macro_rules! frame_types {
    ($($(#[doc = $doc:literal])* $name:ident = $value:literal,)+) => {
        /// The frame types. The numeric values are part of the protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum FrameType {
            $($(#[doc = $doc])* $name = $value,)+
        }

        impl FrameType {
            /// Every frame type, in protocol order.
            pub const ALL: &'static [FrameType] = &[$(FrameType::$name,)+];

            /// Maps a type byte to a frame type.
            pub fn from_u8(b: u8) -> Result<Self, WireError> {
                match b {
                    $($value => Ok(Self::$name),)+
                    other => Err(WireError::UnknownType(other)),
                }
            }
        }
    };
}

frame_types! {
    /// Keep-alive request (either direction).
    Ping = 0x01,
    /// Keep-alive answer (either direction).
    Pong = 0x02,
    /// Client to server: a routed message (one fragment).
    Send = 0x10,
    /// Client to server: acknowledges received messages.
    Ack = 0x11,
    /// Server to client: a routed message (one fragment) from another user.
    Deliver = 0x20,
    /// Server to client: the fate of a message the client sent.
    Status = 0x21,
    /// Server to client: several statuses in one frame.
    Statuses = 0x22,
    /// Server to client: first frame after the handshake.
    Welcome = 0x30,
    /// Server to client: a user and their certificate (directory or join).
    Peer = 0x31,
    /// Server to client: end of the initial directory listing.
    DirectoryEnd = 0x32,
    /// Server to client: a user's last session ended.
    PeerLeft = 0x33,
    /// Either direction: the sender is closing the connection, with a reason.
    Goodbye = 0x34,
    /// Server to client: one chunk of the CA's current CRL.
    Crl = 0x35,
    /// Client to server (v2): one chunk of a Delivery Service request.
    DsUp = 0x40,
    /// Server to client (v2): one chunk of a Delivery Service answer or
    /// delivery.
    DsDown = 0x41,
}

impl FrameType {
    /// True for the types a client may send to the relay.
    pub fn is_client_to_server(self) -> bool {
        matches!(
            self,
            Self::Ping | Self::Pong | Self::Send | Self::Ack | Self::Goodbye | Self::DsUp
        )
    }
}

/// One decoded frame: a type and a body of at most [`MAX_BODY_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    kind: FrameType,
    body: Vec<u8>,
}

impl Frame {
    /// Builds a frame; fails if the body does not fit.
    pub fn new(kind: FrameType, body: Vec<u8>) -> Result<Self, WireError> {
        if body.len() > MAX_BODY_LEN {
            return Err(WireError::TooLarge(body.len()));
        }
        Ok(Self { kind, body })
    }

    /// The frame type.
    pub fn kind(&self) -> FrameType {
        self.kind
    }

    /// The body, without padding.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, without padding, by value.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Encodes into exactly [`FRAME_LEN`] bytes.
    pub fn encode(&self) -> Box<[u8; FRAME_LEN]> {
        let mut out = Box::new([0u8; FRAME_LEN]);
        self.encode_into(&mut out);
        out
    }

    /// Encodes into a caller-provided buffer (the padding is zeroed).
    pub fn encode_into(&self, out: &mut [u8; FRAME_LEN]) {
        // `new` guarantees that the body fits.
        let _ = write_frame(self.kind, &self.body, out);
    }

    /// Decodes one frame. `bytes` must be exactly [`FRAME_LEN`] long.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (kind, body) = Self::parse(bytes)?;
        Ok(Self {
            kind,
            body: body.to_vec(),
        })
    }

    /// Checks one frame and returns its type and body, borrowed from
    /// `bytes` (nothing is copied). The same checks as [`Frame::decode`].
    pub fn parse(bytes: &[u8]) -> Result<(FrameType, &[u8]), WireError> {
        if bytes.len() != FRAME_LEN {
            return Err(WireError::FrameLength {
                expected: FRAME_LEN,
                got: bytes.len(),
            });
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let &[version, kind, len_hi, len_lo] = header else {
            return Err(WireError::Truncated("frame header"));
        };
        if version != PROTOCOL_VERSION {
            return Err(WireError::Version(version));
        }
        let kind = FrameType::from_u8(kind)?;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if len > MAX_BODY_LEN {
            return Err(WireError::BodyLength(len));
        }
        let (body, padding) = rest.split_at(len);
        if padding.iter().any(|&b| b != 0) {
            return Err(WireError::Padding);
        }
        Ok((kind, body))
    }
}

/// Writes a frame of type `kind` carrying `body` into `out` (the padding is
/// zeroed), without building a [`Frame`] first.
pub fn write_frame(
    kind: FrameType,
    body: &[u8],
    out: &mut [u8; FRAME_LEN],
) -> Result<(), WireError> {
    let len = u16::try_from(body.len())
        .ok()
        .filter(|l| usize::from(*l) <= MAX_BODY_LEN)
        .ok_or(WireError::TooLarge(body.len()))?;
    let (header, rest) = out.split_at_mut(HEADER_LEN);
    let [hi, lo] = len.to_be_bytes();
    header.copy_from_slice(&[PROTOCOL_VERSION, kind as u8, hi, lo]);
    let (dst, padding) = rest.split_at_mut(body.len());
    dst.copy_from_slice(body);
    padding.fill(0);
    Ok(())
}

impl TryFrom<&[u8]> for Frame {
    type Error = WireError;
    fn try_from(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_type() -> impl Strategy<Value = FrameType> {
        prop::sample::select(FrameType::ALL)
    }

    proptest! {
        #[test]
        fn round_trip_and_fixed_length(
            kind in any_type(),
            body in proptest::collection::vec(any::<u8>(), 0..=MAX_BODY_LEN),
        ) {
            let frame = Frame::new(kind, body).unwrap();
            let bytes = frame.encode();
            prop_assert_eq!(bytes.len(), FRAME_LEN);
            prop_assert_eq!(Frame::decode(&bytes[..]).unwrap(), frame);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
            let _ = Frame::decode(&bytes);
        }

        #[test]
        fn decode_of_mutated_frame_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..=MAX_BODY_LEN),
            pos in 0..FRAME_LEN,
            val in any::<u8>(),
        ) {
            let mut bytes = Frame::new(FrameType::Send, body).unwrap().encode();
            bytes[pos] = val;
            let _ = Frame::decode(&bytes[..]);
        }
    }

    #[test]
    fn every_type_byte_in_the_list_decodes_to_itself_and_no_other_byte_does() {
        for b in 0..=u8::MAX {
            match FrameType::from_u8(b) {
                Ok(t) => {
                    assert_eq!(t as u8, b);
                    assert!(FrameType::ALL.contains(&t));
                }
                Err(e) => assert_eq!(e, WireError::UnknownType(b)),
            }
        }
        assert_eq!(FrameType::ALL.len(), 15);
    }

    #[test]
    fn rejects_wrong_lengths() {
        for n in [0, 1, 4095, 4097, 5000] {
            assert_eq!(
                Frame::decode(&vec![0u8; n]),
                Err(WireError::FrameLength {
                    expected: FRAME_LEN,
                    got: n
                })
            );
        }
    }

    #[test]
    fn rejects_bad_header_fields() {
        let good = Frame::new(FrameType::Ping, vec![1; 8]).unwrap().encode();
        let mut b = good.clone();
        b[0] = 2;
        assert_eq!(Frame::decode(&b[..]), Err(WireError::Version(2)));
        let mut b = good.clone();
        b[1] = 0x7f;
        assert_eq!(Frame::decode(&b[..]), Err(WireError::UnknownType(0x7f)));
        let mut b = good.clone();
        b[2..4].copy_from_slice(&4093u16.to_be_bytes());
        assert_eq!(Frame::decode(&b[..]), Err(WireError::BodyLength(4093)));
        let mut b = good.clone();
        b[FRAME_LEN - 1] = 1;
        assert_eq!(Frame::decode(&b[..]), Err(WireError::Padding));
    }

    #[test]
    fn rejects_oversized_body() {
        assert_eq!(
            Frame::new(FrameType::Send, vec![0; MAX_BODY_LEN + 1]),
            Err(WireError::TooLarge(MAX_BODY_LEN + 1))
        );
        let mut out = [0u8; FRAME_LEN];
        assert_eq!(
            write_frame(FrameType::Send, &[0; MAX_BODY_LEN + 1], &mut out),
            Err(WireError::TooLarge(MAX_BODY_LEN + 1))
        );
    }
}
