//! Opening a received envelope: verify, check freshness, unwrap, check the
//! key commitment, decrypt.
//!
//! Every cryptographic failure (signature, key unwrap, commitment,
//! decryption) is the same [`OpenError::Undecryptable`], so nothing tells
//! which check failed. Replay protection needs persistent state, so
//! [`open`] hands the message id and timestamp back to the caller, which
//! checks and records them.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use blindrelay_wire::UserName;
use zeroize::Zeroizing;

use crate::content::Content;
use crate::envelope::Envelope;
use crate::error::OpenError;
use crate::header::Header;
use crate::identity::LocalIdentity;
use crate::peer::VerifiedPeer;
use crate::seal::key_commitment;

/// The freshness window applied to timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Messages older than this are stale (the report's 60 s for live delivery).
    pub max_age_ms: u64,
    /// Messages timestamped further than this in the future are refused.
    pub max_future_ms: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            max_age_ms: 60_000,
            max_future_ms: 30_000,
        }
    }
}

impl Freshness {
    /// Checks `ts` against `now` (both Unix ms).
    pub fn check(&self, ts: u64, now: u64) -> Result<(), OpenError> {
        if ts > now.saturating_add(self.max_future_ms) {
            return Err(OpenError::Future { ahead_ms: ts - now });
        }
        let age = now.saturating_sub(ts);
        if age > self.max_age_ms {
            return Err(OpenError::Stale { age_ms: age });
        }
        Ok(())
    }
}

/// A verified, decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The authenticated header. The caller must check `msg_id` against its
    /// replay cache and record it.
    pub header: Header,
    /// The content.
    pub content: Content,
}

/// Verifies and decrypts `env`, which the relay delivered from
/// `relay_sender` in `fragments` fragments. `sender` must be the verified
/// certificate of that user. Checks, in order: the sender names agree, the
/// fragment count agrees, the signature, that `me` is a recipient, the
/// timestamp, then unwraps the key, checks its commitment and decrypts.
pub fn open(
    env: &Envelope,
    relay_sender: &UserName,
    fragments: u16,
    sender: &VerifiedPeer,
    me: &LocalIdentity,
    freshness: &Freshness,
    now_ms: u64,
) -> Result<Opened, OpenError> {
    let h = &env.header;
    if h.sender != *relay_sender || h.sender != *sender.name() {
        return Err(OpenError::SenderMismatch);
    }
    if h.fragment_count != fragments {
        return Err(OpenError::Malformed);
    }
    if !sender.verify_signature(&env.signed_data(), &env.signature) {
        return Err(OpenError::Undecryptable);
    }
    let Some(idx) = h.recipients.iter().position(|r| r == me.name()) else {
        return Err(OpenError::NotForMe);
    };
    freshness.check(h.timestamp_ms, now_ms)?;
    let wrapped = env.wrapped.get(idx).ok_or(OpenError::Malformed)?;
    let key = me.unwrap_key(wrapped).ok_or(OpenError::Undecryptable)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(&key_commitment(&key), &h.key_commit)
        .is_err()
    {
        return Err(OpenError::Undecryptable);
    }
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key[..]).map_err(|_| OpenError::Undecryptable)?,
    );
    let mut buf = Zeroizing::new(env.ciphertext.clone());
    let aad = env.aad();
    let pt = aead
        .open_in_place(
            Nonce::assume_unique_for_key(env.nonce),
            Aad::from(&aad[..]),
            &mut buf,
        )
        .map_err(|_| OpenError::Undecryptable)?;
    let content = Content::decode(pt).ok_or(OpenError::UnknownContent)?;
    Ok(Opened {
        header: h.clone(),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_accepts_its_bounds_and_refuses_one_past_them() {
        let f = Freshness {
            max_age_ms: 1_000,
            max_future_ms: 500,
        };
        let now = 10_000;
        assert_eq!(f.check(now + 500, now), Ok(()));
        assert_eq!(f.check(now - 1_000, now), Ok(()));
        assert_eq!(
            f.check(now + 501, now),
            Err(OpenError::Future { ahead_ms: 501 })
        );
        assert_eq!(
            f.check(now - 1_001, now),
            Err(OpenError::Stale { age_ms: 1_001 })
        );
    }
}
