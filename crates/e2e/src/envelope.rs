//! The signed hybrid envelope.
//!
//! ```text
//! header (this exact byte string is the AEAD's AAD, after AAD_LABEL):
//!   version        u8      1
//!   flags          u8      bit 0: room message; other bits 0
//!   msg_id         [16]
//!   timestamp_ms   u64     sender's clock, Unix milliseconds
//!   fragment_count u16     relay fragments carrying this envelope (1..=64)
//!   key_commit     [32]    SHA-256(KEY_COMMIT_LABEL | message key)
//!   sender         u8 len | name
//!   recipient_count u8     1..=64, distinct names
//!   recipients     (u8 len | name) * recipient_count
//! wrapped keys     (u16 len | RSA-OAEP ciphertext) * recipient_count, same order
//! nonce            [12]
//! ct_len           u32
//! ciphertext       AES-256-GCM(key, nonce, plaintext, AAD_LABEL | header), tag last
//! sig_len          u16
//! signature        RSA-PSS-SHA-256 (salt 32) over SIGN_LABEL | every byte above
//! ```
//!
//! The fragment position of every piece is bound: the count is in the AAD
//! and signed, and a fragment's index fixes which signed bytes it carries,
//! so a moved, dropped, duplicated or foreign fragment changes the envelope
//! and it no longer verifies.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use blindrelay_wire::{MAX_FRAGMENTS, MAX_RECIPIENTS, MessageId, UserName};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::content::{Content, MAX_TEXT_LEN};
use crate::identity::LocalIdentity;
use crate::peer::VerifiedPeer;
use crate::{AAD_LABEL, E2eError, SIGN_LABEL};

/// Envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;
/// Flag: the message went to everyone online (the shared room).
pub const FLAG_ROOM: u8 = 1;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Largest wrapped key or signature accepted (RSA-4096).
pub const MAX_RSA_LEN: usize = 512;
/// Largest plaintext: a content byte plus [`MAX_TEXT_LEN`].
pub const MAX_PLAINTEXT_LEN: usize = 1 + MAX_TEXT_LEN;

/// Why a received envelope was not accepted. Every cryptographic failure
/// (signature, key unwrap, decryption) is the same [`OpenError::Undecryptable`],
/// so nothing tells which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a well-formed envelope.
    #[error("malformed envelope")]
    Malformed,
    /// The envelope's sender is not the one the relay delivered it from.
    #[error("sender in the envelope does not match the relay's sender")]
    SenderMismatch,
    /// The message is not addressed to this user.
    #[error("message not addressed to me")]
    NotForMe,
    /// Older than the maximum age.
    #[error("stale message ({age_ms} ms old)")]
    Stale {
        /// How old.
        age_ms: u64,
    },
    /// Timestamp too far in the future.
    #[error("message from the future ({ahead_ms} ms ahead)")]
    Future {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// Signature, key unwrap or decryption failed.
    #[error("message could not be authenticated or decrypted")]
    Undecryptable,
    /// Decrypted, but the content type is unknown.
    #[error("unsupported content")]
    UnknownContent,
}

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

/// The authenticated metadata of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Flags ([`FLAG_ROOM`]).
    pub flags: u8,
    /// Message id (also the relay's routing id).
    pub msg_id: MessageId,
    /// Sender's clock, Unix ms.
    pub timestamp_ms: u64,
    /// Relay fragments carrying the envelope.
    pub fragment_count: u16,
    /// Commitment to the message key: every recipient checks that the key
    /// it unwrapped is the one the sender signed, so one envelope cannot
    /// open to different texts for different recipients.
    pub key_commit: [u8; 32],
    /// Sender.
    pub sender: UserName,
    /// Every recipient.
    pub recipients: Vec<UserName>,
}

impl Header {
    /// True for room messages.
    pub fn is_room(&self) -> bool {
        self.flags & FLAG_ROOM != 0
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENVELOPE_VERSION);
        out.push(self.flags);
        out.extend_from_slice(&self.msg_id.0);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.fragment_count.to_be_bytes());
        out.extend_from_slice(&self.key_commit);
        put_name(out, &self.sender);
        out.push(self.recipients.len() as u8);
        for r in &self.recipients {
            put_name(out, r);
        }
    }

    fn encoded_len(&self) -> usize {
        1 + 1
            + 16
            + 8
            + 2
            + 32
            + 1
            + self.sender.as_str().len()
            + 1
            + self
                .recipients
                .iter()
                .map(|r| 1 + r.as_str().len())
                .sum::<usize>()
    }
}

fn put_name(out: &mut Vec<u8>, n: &UserName) {
    out.push(n.as_str().len() as u8);
    out.extend_from_slice(n.as_str().as_bytes());
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpenError> {
        let end = self.pos.checked_add(n).ok_or(OpenError::Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(OpenError::Malformed)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, OpenError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }
    fn u16(&mut self) -> Result<u16, OpenError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(u16::from_be_bytes(a))
    }
    fn u32(&mut self) -> Result<u32, OpenError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, OpenError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn name(&mut self) -> Result<UserName, OpenError> {
        let n = usize::from(self.u8()?);
        UserName::from_bytes(self.take(n)?).map_err(|_| OpenError::Malformed)
    }
}

/// A parsed (not yet verified) envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    header: Header,
    header_len: usize,
    wrapped: Vec<Vec<u8>>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
    signed_len: usize,
    signature: Vec<u8>,
    raw: Vec<u8>,
}

impl TryFrom<&[u8]> for Envelope {
    type Error = OpenError;

    /// Parses the layout, checking the version first and every length
    /// before use. No cryptography happens here.
    fn try_from(raw: &[u8]) -> Result<Self, OpenError> {
        let mut c = Cursor { buf: raw, pos: 0 };
        if c.u8()? != ENVELOPE_VERSION {
            return Err(OpenError::Malformed);
        }
        let flags = c.u8()?;
        if flags & !FLAG_ROOM != 0 {
            return Err(OpenError::Malformed);
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(c.take(16)?);
        let timestamp_ms = c.u64()?;
        let fragment_count = c.u16()?;
        if fragment_count == 0 || fragment_count > MAX_FRAGMENTS {
            return Err(OpenError::Malformed);
        }
        let mut key_commit = [0u8; 32];
        key_commit.copy_from_slice(c.take(32)?);
        let sender = c.name()?;
        let n = usize::from(c.u8()?);
        if n == 0 || n > MAX_RECIPIENTS {
            return Err(OpenError::Malformed);
        }
        let mut recipients = Vec::with_capacity(n);
        for _ in 0..n {
            let r = c.name()?;
            if recipients.contains(&r) {
                return Err(OpenError::Malformed);
            }
            recipients.push(r);
        }
        let header_len = c.pos;
        let mut wrapped = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(c.u16()?);
            if len == 0 || len > MAX_RSA_LEN {
                return Err(OpenError::Malformed);
            }
            wrapped.push(c.take(len)?.to_vec());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(c.take(NONCE_LEN)?);
        let ct_len = usize::try_from(c.u32()?).map_err(|_| OpenError::Malformed)?;
        if !(TAG_LEN..=MAX_PLAINTEXT_LEN + TAG_LEN).contains(&ct_len) {
            return Err(OpenError::Malformed);
        }
        let ciphertext = c.take(ct_len)?.to_vec();
        let signed_len = c.pos;
        let sig_len = usize::from(c.u16()?);
        if sig_len == 0 || sig_len > MAX_RSA_LEN {
            return Err(OpenError::Malformed);
        }
        let signature = c.take(sig_len)?.to_vec();
        if c.pos != raw.len() {
            return Err(OpenError::Malformed);
        }
        Ok(Self {
            header: Header {
                flags,
                msg_id: MessageId(id),
                timestamp_ms,
                fragment_count,
                key_commit,
                sender,
                recipients,
            },
            header_len,
            wrapped,
            nonce,
            ciphertext,
            signed_len,
            signature,
            raw: raw.to_vec(),
        })
    }
}

impl Envelope {
    /// The (unverified until opened) header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The wrapped keys, in recipient order.
    pub fn wrapped_keys(&self) -> &[Vec<u8>] {
        &self.wrapped
    }

    /// The AES-GCM nonce.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The AES-GCM ciphertext with its tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The additional authenticated data: [`AAD_LABEL`] then the header bytes.
    pub fn aad(&self) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        aad.extend_from_slice(self.raw.get(..self.header_len).unwrap_or_default());
        aad
    }

    fn signed_data(&self) -> Vec<u8> {
        let mut m = SIGN_LABEL.to_vec();
        m.extend_from_slice(self.raw.get(..self.signed_len).unwrap_or_default());
        m
    }
}

/// A message key: 32 random bytes, used once, consumed by sealing, zeroized
/// on drop, never printed.
///
/// ```compile_fail
/// fn leak(k: &blindrelay_e2e::envelope::MessageKey) -> String { format!("{k:?}") }
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
    /// Payload bytes available per relay fragment (from the routing header).
    pub fragment_room: usize,
}

/// Seals a message with a fresh random key and nonce.
pub fn seal(me: &LocalIdentity, p: &SealParams<'_>) -> Result<Vec<u8>, E2eError> {
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
) -> Result<Vec<u8>, E2eError> {
    if p.recipients.is_empty() || p.recipients.len() > MAX_RECIPIENTS {
        return Err(E2eError::Invalid(format!(
            "a message needs 1 to {MAX_RECIPIENTS} recipients"
        )));
    }
    let plaintext = Zeroizing::new(p.content.encode());
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(E2eError::Invalid(format!(
            "message longer than {MAX_TEXT_LEN} bytes"
        )));
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
        return Err(E2eError::Invalid("duplicate recipient".into()));
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
        return Err(E2eError::Invalid("no room for a payload".into()));
    }
    let count = total.div_ceil(p.fragment_room);
    header.fragment_count = u16::try_from(count)
        .ok()
        .filter(|c| *c <= MAX_FRAGMENTS)
        .ok_or_else(|| {
            E2eError::Invalid(format!(
                "message needs {count} fragments, more than {MAX_FRAGMENTS}"
            ))
        })?;

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
    Ok(out)
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
/// timestamp, then unwraps the key and decrypts.
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
