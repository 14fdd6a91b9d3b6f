//! What a protocol v2 application message carries (PROTOCOL.md 11.9).
//!
//! MLS authenticates the sender and keeps each message's keys apart, but
//! it says nothing of *which* message this is: a device that sends again
//! after a lost answer makes a second ciphertext of the same message. So
//! every application message starts with the sender's own id and time:
//!
//! ```text
//! version: u8 (= 1) | msg_id[16] | written_ms: u64 | content
//! ```
//!
//! `content` is the same layout as protocol v1's
//! ([`blindrelay_e2e::content::Content`]: a text or a receipt), so a
//! message is one concept in both protocols. The id and time are the
//! sender's (inside the encrypted, signed MLS message, not the relay's):
//! the receiver shows a message once per (sender, id) and dates it by
//! `written_ms`. The decoder is strict: the version is checked first, then
//! the length, and the content must decode.

use blindrelay_e2e::content::{Content, MAX_TEXT_LEN};
use blindrelay_wire::MESSAGE_ID_LEN;
use blindrelay_wire::MessageId;

/// The layout this code writes and the only one it reads.
pub const PAYLOAD_VERSION: u8 = 1;
/// Bytes before the content: version, id, time.
pub const PAYLOAD_HEADER_LEN: usize = 1 + MESSAGE_ID_LEN + 8;
/// The largest payload: a text of [`MAX_TEXT_LEN`] bytes (as in v1).
pub const MAX_PAYLOAD_LEN: usize = PAYLOAD_HEADER_LEN + 1 + MAX_TEXT_LEN;

/// Why an application message's plaintext is not a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The first byte is not [`PAYLOAD_VERSION`] (or there is none).
    #[error("payload version: not {PAYLOAD_VERSION}")]
    Version,
    /// Shorter than the header, or longer than [`MAX_PAYLOAD_LEN`].
    #[error("payload length")]
    Length,
    /// The content does not decode.
    #[error("payload content")]
    Content,
}

/// One application message: the sender's id and time, and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The sender's id of the message (kept across resends).
    pub id: MessageId,
    /// When the sender's user wrote it, Unix ms (the sender's clock).
    pub written_ms: u64,
    /// What it says.
    pub content: Content,
}

impl Payload {
    /// The bytes to encrypt.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(PAYLOAD_HEADER_LEN + self.content.encoded_len());
        v.push(PAYLOAD_VERSION);
        v.extend_from_slice(&self.id.0);
        v.extend_from_slice(&self.written_ms.to_be_bytes());
        v.extend_from_slice(&self.content.encode());
        v
    }

    /// Reads decrypted bytes (strict: one encoding per payload).
    pub fn decode(b: &[u8]) -> Result<Self, PayloadError> {
        let (&version, rest) = b.split_first().ok_or(PayloadError::Version)?;
        if version != PAYLOAD_VERSION {
            return Err(PayloadError::Version);
        }
        if b.len() > MAX_PAYLOAD_LEN {
            return Err(PayloadError::Length);
        }
        let (id, rest) = rest
            .split_first_chunk::<MESSAGE_ID_LEN>()
            .ok_or(PayloadError::Length)?;
        let (ms, rest) = rest.split_first_chunk::<8>().ok_or(PayloadError::Length)?;
        let content = Content::decode(rest).ok_or(PayloadError::Content)?;
        Ok(Self {
            id: MessageId(*id),
            written_ms: u64::from_be_bytes(*ms),
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(id: u8, t: &str) -> Payload {
        Payload {
            id: MessageId([id; 16]),
            written_ms: 1_700_000_000_123,
            content: Content::Text(t.into()),
        }
    }

    #[test]
    fn the_layout_is_version_id_time_content() {
        let b = text(7, "hi").encode();
        let mut want = vec![1];
        want.extend_from_slice(&[7; 16]);
        want.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
        want.extend_from_slice(&[1, b'h', b'i']);
        assert_eq!(b, want);
        assert_eq!(Payload::decode(&b), Ok(text(7, "hi")));
    }

    #[test]
    fn each_malformed_field_is_named() {
        let good = text(1, "x").encode();
        assert_eq!(Payload::decode(&[]), Err(PayloadError::Version));
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(Payload::decode(&v2), Err(PayloadError::Version));
        // Raw text (what a device sent before payloads) is refused.
        assert_eq!(Payload::decode(b"hello"), Err(PayloadError::Version));
        assert_eq!(
            Payload::decode(&good[..PAYLOAD_HEADER_LEN - 1]),
            Err(PayloadError::Length)
        );
        assert_eq!(
            Payload::decode(&good[..PAYLOAD_HEADER_LEN]),
            Err(PayloadError::Content)
        );
        let mut bad_utf8 = good[..PAYLOAD_HEADER_LEN + 1].to_vec();
        bad_utf8.push(0xff);
        assert_eq!(Payload::decode(&bad_utf8), Err(PayloadError::Content));
    }

    #[test]
    fn the_length_bound_is_exact() {
        let longest = text(3, &"x".repeat(MAX_TEXT_LEN)).encode();
        assert_eq!(longest.len(), MAX_PAYLOAD_LEN);
        assert!(Payload::decode(&longest).is_ok());
        let mut over = longest;
        over.push(b'x');
        assert_eq!(Payload::decode(&over), Err(PayloadError::Length));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_what_decodes_re_encodes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Payload::decode(&b) {
                prop_assert_eq!(p.encode(), b);
            }
        }

        #[test]
        fn texts_and_receipts_round_trip(id in any::<[u8; 16]>(), ms in any::<u64>(), t in ".{0,100}", n in 1usize..5) {
            for content in [Content::Text(t.clone()), Content::Receipt(vec![MessageId(id); n])] {
                let p = Payload { id: MessageId(id), written_ms: ms, content };
                prop_assert_eq!(Payload::decode(&p.encode()), Ok(p));
            }
        }
    }
}
