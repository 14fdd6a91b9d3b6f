//! Noticing a fork: a Delivery Service that shows members different
//! histories (two commits for one epoch, each delivered to some members).
//!
//! Members on different branches hold different epoch secrets, so each
//! other's messages simply fail to decrypt: without more, a fork looks like
//! noise. So every application message carries, in its MLS authenticated
//! data (sent in the clear, bound to the message by the AEAD), a tag of the
//! sender's epoch authenticator (RFC 9420 §8.7): `"BRF1"` followed by the
//! first 16 bytes of SHA-256 over it. A member that cannot read a message
//! of its own epoch compares the tag with its own: a different tag means
//! the sender is at the same epoch number in another history.
//!
//! What the relay learns: a one-way digest that is equal for members that
//! agree on the history; nothing about keys. What it can do: put a false
//! tag on a message nobody can read (an unreadable message's tag is not
//! authenticated), raising a false alarm; it could equally drop messages.

use mls_rs::group::ContentType;
use mls_rs_core::mls_rs_codec::{MlsDecode, byte_vec};

/// The tag's first bytes: this scheme, version 1.
const TAG_PREFIX: &[u8; 4] = b"BRF1";
/// Bytes of the epoch authenticator's digest in a tag.
const TAG_DIGEST: usize = 16;
/// MLS wire format of a PrivateMessage (RFC 9420 §6).
const PRIVATE_MESSAGE: u16 = 2;

/// The tag of an epoch authenticator.
pub(super) fn tag(epoch_authenticator: &[u8]) -> Vec<u8> {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, epoch_authenticator);
    let mut t = TAG_PREFIX.to_vec();
    t.extend_from_slice(d.as_ref().get(..TAG_DIGEST).unwrap_or_default());
    t
}

/// The group id, epoch and tag of an application PrivateMessage, read from
/// its clear header (`None` for anything else, or no tag).
pub(super) fn message_tag(bytes: &[u8]) -> Option<(Vec<u8>, u64, Vec<u8>)> {
    let mut r = bytes;
    let _version = u16::mls_decode(&mut r).ok()?;
    if u16::mls_decode(&mut r).ok()? != PRIVATE_MESSAGE {
        return None;
    }
    let group_id: Vec<u8> = byte_vec::mls_decode(&mut r).ok()?;
    let epoch = u64::mls_decode(&mut r).ok()?;
    if ContentType::mls_decode(&mut r).ok()? != ContentType::Application {
        return None;
    }
    let aad: Vec<u8> = byte_vec::mls_decode(&mut r).ok()?;
    let well_formed = aad.len() == TAG_PREFIX.len() + TAG_DIGEST && aad.starts_with(TAG_PREFIX);
    well_formed.then_some((group_id, epoch, aad))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A PrivateMessage header of group `g`, epoch 3, application content,
    /// with `aad` (lengths below 64 are one-byte varints).
    fn header(content_type: u8, aad: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 2, 1, b'g', 0, 0, 0, 0, 0, 0, 0, 3, content_type];
        b.push(u8::try_from(aad.len()).unwrap());
        b.extend_from_slice(aad);
        b.extend_from_slice(&[0, 0]);
        b
    }

    #[test]
    fn only_a_well_formed_tag_of_an_application_message_is_read() {
        let t = tag(b"authenticator");
        assert_eq!(t.len(), 20);
        assert_eq!(&t[..4], b"BRF1");
        assert_eq!(
            message_tag(&header(1, &t)),
            Some((b"g".to_vec(), 3, t.clone()))
        );
        // Not a tag: another prefix of the same length, a short tag, none.
        let mut other = t.clone();
        other[..4].copy_from_slice(b"XXXX");
        assert_eq!(message_tag(&header(1, &other)), None);
        assert_eq!(message_tag(&header(1, &t[..19])), None);
        assert_eq!(message_tag(&header(1, b"")), None);
        // A commit's header carries no tag that counts.
        assert_eq!(message_tag(&header(3, &t)), None);
        // Not a PrivateMessage.
        let mut public = header(1, &t);
        public[3] = 1;
        assert_eq!(message_tag(&public), None);
        assert_ne!(tag(b"a"), tag(b"b"));
    }
}
