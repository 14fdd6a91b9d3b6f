//! What a message carries once decrypted.
//!
//! ```text
//! type: u8 | body
//! 1 = text: body is UTF-8
//! ```

/// The largest text a message may carry, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// Decrypted message content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// A chat message.
    Text(String),
}

/// Content type byte of [`Content::Text`].
pub const CONTENT_TEXT: u8 = 1;

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
        }
    }

    /// Decodes plaintext bytes; `None` for unknown types or invalid text.
    pub fn decode(b: &[u8]) -> Option<Self> {
        match b.split_first() {
            Some((&CONTENT_TEXT, rest)) if rest.len() <= MAX_TEXT_LEN => std::str::from_utf8(rest)
                .ok()
                .map(|s| Content::Text(s.to_owned())),
            _ => None,
        }
    }

    /// Length of the encoded plaintext.
    pub fn encoded_len(&self) -> usize {
        match self {
            Content::Text(t) => 1 + t.len(),
        }
    }
}
