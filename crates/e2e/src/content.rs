//! What a message carries once decrypted.
//!
//! ```text
//! type: u8 | body
//! 1 = text: body is UTF-8 (at most 64 KiB)
//! 2 = receipt: count: u16 (1..=MAX_RECEIPT_IDS) | msg_id[16] * count
//! ```

use blindrelay_wire::MessageId;

/// The largest text a message may carry, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// The most message ids one receipt may confirm.
pub const MAX_RECEIPT_IDS: usize = 100;

/// Decrypted message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A chat message.
    Text(String),
    /// A delivery receipt: the recipient has these messages.
    Receipt(Vec<MessageId>),
}

/// Content type byte of [`Content::Text`].
pub const CONTENT_TEXT: u8 = 1;
/// Content type byte of [`Content::Receipt`].
pub const CONTENT_RECEIPT: u8 = 2;

impl Content {
    /// Encodes to plaintext bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Content::Text(t) => {
                let mut v = Vec::with_capacity(1 + t.len());
                v.push(CONTENT_TEXT);
                v.extend_from_slice(t.as_bytes());
                v
            }
            Content::Receipt(ids) => {
                let mut v = Vec::with_capacity(3 + 16 * ids.len());
                v.push(CONTENT_RECEIPT);
                v.extend_from_slice(&(ids.len() as u16).to_be_bytes());
                for id in ids {
                    v.extend_from_slice(&id.0);
                }
                v
            }
        }
    }

    /// Decodes plaintext bytes; `None` for unknown types or invalid text.
    pub fn decode(b: &[u8]) -> Option<Self> {
        match b.split_first() {
            Some((&CONTENT_TEXT, rest)) if rest.len() <= MAX_TEXT_LEN => std::str::from_utf8(rest)
                .ok()
                .map(|s| Content::Text(s.to_owned())),
            Some((&CONTENT_RECEIPT, rest)) => {
                let (n, ids) = rest.split_at_checked(2)?;
                let n = usize::from(u16::from_be_bytes([*n.first()?, *n.get(1)?]));
                if n == 0 || n > MAX_RECEIPT_IDS || ids.len() != 16 * n {
                    return None;
                }
                Some(Content::Receipt(
                    ids.chunks_exact(16)
                        .map(|c| {
                            let mut id = [0u8; 16];
                            id.copy_from_slice(c);
                            MessageId(id)
                        })
                        .collect(),
                ))
            }
            _ => None,
        }
    }

    /// Length of the encoded plaintext.
    pub fn encoded_len(&self) -> usize {
        match self {
            Content::Text(t) => 1 + t.len(),
            Content::Receipt(ids) => 3 + 16 * ids.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed() {
        for c in [
            Content::Text("héllo".into()),
            Content::Receipt(vec![MessageId([1; 16]), MessageId([2; 16])]),
        ] {
            assert_eq!(Content::decode(&c.encode()), Some(c.clone()));
            assert_eq!(c.encode().len(), c.encoded_len());
        }
        assert_eq!(Content::decode(&[2, 0, 1, 1, 2]), None);
        assert_eq!(Content::decode(&[2, 0, 0]), None);
        assert_eq!(Content::decode(&[1, 0xff]), None);
        assert_eq!(Content::decode(&[9]), None);
        assert_eq!(Content::decode(&[]), None);
    }

    #[test]
    fn the_limits_are_exact() {
        let longest = Content::Text("x".repeat(MAX_TEXT_LEN));
        assert_eq!(Content::decode(&longest.encode()), Some(longest));
        let mut too_long = vec![CONTENT_TEXT];
        too_long.resize(MAX_TEXT_LEN + 2, b'x');
        assert_eq!(Content::decode(&too_long), None);
        let ids = |n: usize| Content::Receipt(vec![MessageId([7; 16]); n]);
        let most = ids(MAX_RECEIPT_IDS);
        assert_eq!(Content::decode(&most.encode()), Some(most));
        assert_eq!(Content::decode(&ids(MAX_RECEIPT_IDS + 1).encode()), None);
    }
}
