//! Sealing a message: a fresh AES-256-GCM key and nonce, the key wrapped
//! for every recipient with RSA-OAEP, the header bound as AAD, the whole
//! envelope signed; and cutting the envelope into the relay fragments
//! whose count the header commits to.
//!
//! The fragment count is decided here and only here: [`seal`] computes it
//! from the envelope's size and the payload room of one frame, writes it
//! into the signed header, and returns the pieces already cut and
//! positioned ([`Sealed::fragments`]).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use blindrelay_wire::{FragmentPos, MAX_FRAGMENTS, MAX_RECIPIENTS, MessageId};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::content::{Content, MAX_TEXT_LEN};
use crate::envelope::{MAX_PLAINTEXT_LEN, NONCE_LEN, TAG_LEN};
use crate::error::E2eError;
use crate::header::{FLAG_ROOM, Header};
use crate::identity::LocalIdentity;
use crate::peer::VerifiedPeer;
use crate::{AAD_LABEL, SIGN_LABEL};

/// A message key: 32 random bytes, used once, consumed by sealing, zeroized
/// on drop, never printed.
///
/// ```compile_fail
/// fn leak(k: &blindrelay_e2e::seal::MessageKey) -> String { format!("{k:?}") }
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MessageKey([u8; 32]);

impl MessageKey {
    /// A fresh random key.
    pub fn random() -> Result<Self, E2eError> {
        let mut k = [0u8; 32];
        aws_lc_rs::rand::fill(&mut k).map_err(|_| E2eError::Crypto)?;
        Ok(Self(k))
    }

    /// A fixed key, for known-answer tests only.
    #[doc(hidden)]
    pub fn from_bytes_for_test_vectors(k: [u8; 32]) -> Self {
        Self(k)
    }
}

/// SHA-256 of [`crate::KEY_COMMIT_LABEL`] and the message key.
pub fn key_commitment(key: &[u8; 32]) -> [u8; 32] {
    let mut input = Zeroizing::new(crate::KEY_COMMIT_LABEL.to_vec());
    input.extend_from_slice(key);
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input).as_ref());
    out
}

/// Re-signs an envelope's bytes (everything before `sig_len`) as `me`, for
/// tests that play a dishonest sender. It can only sign with one's own key.
#[doc(hidden)]
pub fn resign_for_tests(me: &LocalIdentity, signed_part: &[u8]) -> Result<Vec<u8>, E2eError> {
    let mut m = SIGN_LABEL.to_vec();
    m.extend_from_slice(signed_part);
    let sig = me.sign(&m)?;
    let mut out = signed_part.to_vec();
    out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Fills `b` from the system CSPRNG.
pub fn fill_random(b: &mut [u8]) -> Result<(), E2eError> {
    aws_lc_rs::rand::fill(b).map_err(|_| E2eError::Crypto)
}

/// What to seal.
pub struct SealParams<'a> {
    /// Random message id.
    pub msg_id: MessageId,
    /// Now, Unix ms.
    pub timestamp_ms: u64,
    /// Room message (sent to everyone online).
    pub room: bool,
    /// The recipients, each verified.
    pub recipients: &'a [VerifiedPeer],
    /// The content.
    pub content: &'a Content,
    /// Payload bytes available per relay fragment (from the routing header:
    /// `blindrelay_wire::RoutedHeader::max_payload_len`).
    pub fragment_room: usize,
}

/// A sealed envelope and the relay fragments that carry it.
#[derive(Debug, Clone)]
pub struct Sealed {
    envelope: Vec<u8>,
    room: usize,
    count: u16,
}

impl Sealed {
    /// The whole envelope.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }

    /// The whole envelope, by value.
    pub fn into_envelope(self) -> Vec<u8> {
        self.envelope
    }

    /// The number of fragments (the count bound in the header).
    pub fn fragment_count(&self) -> u16 {
        self.count
    }

    /// The fragments in order, each with its position: the pieces to put in
    /// the routed payloads, each at most `fragment_room` bytes.
    pub fn fragments(&self) -> impl Iterator<Item = (FragmentPos, &[u8])> {
        let count = self.count;
        self.envelope
            .chunks(self.room)
            .zip(0u16..)
            .filter_map(move |(piece, i)| FragmentPos::new(i, count).ok().map(|p| (p, piece)))
    }
}

/// Seals a message with a fresh random key and nonce.
pub fn seal(me: &LocalIdentity, p: &SealParams<'_>) -> Result<Sealed, E2eError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| E2eError::Crypto)?;
    seal_with(me, p, MessageKey::random()?, nonce)
}

/// Seals with a given key and nonce. Only for known-answer vectors: real
/// messages use [`seal`].
#[doc(hidden)]
pub fn seal_with(
    me: &LocalIdentity,
    p: &SealParams<'_>,
    key: MessageKey,
    nonce: [u8; NONCE_LEN],
) -> Result<Sealed, E2eError> {
    if p.recipients.is_empty() || p.recipients.len() > MAX_RECIPIENTS {
        return Err(E2eError::RecipientCount(p.recipients.len()));
    }
    let plaintext = Zeroizing::new(p.content.encode());
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(E2eError::TooLong {
            len: plaintext.len().saturating_sub(1),
            max: MAX_TEXT_LEN,
        });
    }
    let mut header = Header {
        flags: if p.room { FLAG_ROOM } else { 0 },
        msg_id: p.msg_id,
        timestamp_ms: p.timestamp_ms,
        fragment_count: 1,
        key_commit: key_commitment(&key.0),
        sender: me.name().clone(),
        recipients: p.recipients.iter().map(|r| r.name().clone()).collect(),
    };
    let mut names = header.recipients.clone();
    names.sort();
    names.dedup();
    if names.len() != header.recipients.len() {
        return Err(E2eError::DuplicateRecipient);
    }
    let total = header.encoded_len()
        + p.recipients
            .iter()
            .map(|r| 2 + r.wrapped_len())
            .sum::<usize>()
        + NONCE_LEN
        + 4
        + plaintext.len()
        + TAG_LEN
        + 2
        + me.signature_len();
    if p.fragment_room == 0 {
        return Err(E2eError::NoFragmentRoom);
    }
    let count = total.div_ceil(p.fragment_room);
    header.fragment_count = u16::try_from(count)
        .ok()
        .filter(|c| *c <= MAX_FRAGMENTS)
        .ok_or(E2eError::TooManyFragments(count))?;

    let mut out = Vec::with_capacity(total);
    header.encode(&mut out);
    let mut aad = AAD_LABEL.to_vec();
    aad.extend_from_slice(&out);
    for r in p.recipients {
        let w = r.wrap_key(&key.0)?;
        out.extend_from_slice(&(w.len() as u16).to_be_bytes());
        out.extend_from_slice(&w);
    }
    out.extend_from_slice(&nonce);
    let aead =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.0).map_err(|_| E2eError::Crypto)?);
    drop(key);
    let mut ct = plaintext.to_vec();
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&aad[..]),
        &mut ct,
    )
    .map_err(|_| E2eError::Crypto)?;
    out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    out.extend_from_slice(&ct);
    let mut signed = SIGN_LABEL.to_vec();
    signed.extend_from_slice(&out);
    let sig = me.sign(&signed)?;
    out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    out.extend_from_slice(&sig);
    debug_assert_eq!(out.len(), total);
    Ok(Sealed {
        envelope: out,
        room: p.fragment_room,
        count: header.fragment_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_random_fills() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, [0; 32]);
        assert_ne!(a, b);
    }
}
