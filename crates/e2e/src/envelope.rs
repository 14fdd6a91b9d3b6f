//! The signed hybrid envelope: its layout and its strict parser.
//!
//! ```text
//! header           see [`crate::header`]; this exact byte string is the
//!                  AEAD's AAD, after AAD_LABEL
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
//!
//! Sealing is in [`crate::seal`](mod@crate::seal), opening in
//! [`crate::open`](mod@crate::open).

use blindrelay_wire::WireError;
use blindrelay_wire::codec::Reader;

use crate::error::OpenError;
use crate::header::Header;
use crate::{AAD_LABEL, SIGN_LABEL};

/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Largest wrapped key or signature accepted (RSA-4096).
pub const MAX_RSA_LEN: usize = 512;
/// Largest plaintext: a content byte plus [`crate::content::MAX_TEXT_LEN`].
pub const MAX_PLAINTEXT_LEN: usize = 1 + crate::content::MAX_TEXT_LEN;

/// A parsed (not yet verified) envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub(crate) header: Header,
    header_len: usize,
    pub(crate) wrapped: Vec<Vec<u8>>,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) ciphertext: Vec<u8>,
    signed_len: usize,
    pub(crate) signature: Vec<u8>,
    raw: Vec<u8>,
}

/// A length field that must lie in `range`.
fn bounded(
    value: usize,
    range: std::ops::RangeInclusive<usize>,
    field: &'static str,
) -> Result<usize, WireError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(WireError::InvalidField(field))
    }
}

fn parse(raw: &[u8]) -> Result<Envelope, WireError> {
    let mut r = Reader::new(raw);
    let header = Header::decode(&mut r)?;
    let header_len = r.position();
    let mut wrapped = Vec::with_capacity(header.recipients.len());
    for _ in &header.recipients {
        let len = bounded(
            usize::from(r.u16("wrapped key length")?),
            1..=MAX_RSA_LEN,
            "wrapped key length",
        )?;
        wrapped.push(r.take(len, "wrapped key")?.to_vec());
    }
    let nonce = r.array("nonce")?;
    let ct_len = usize::try_from(r.u32("ciphertext length")?)
        .map_err(|_| WireError::InvalidField("ciphertext length"))?;
    let ct_len = bounded(
        ct_len,
        // At least a content-type byte, and the tag.
        TAG_LEN + 1..=MAX_PLAINTEXT_LEN + TAG_LEN,
        "ciphertext length",
    )?;
    let ciphertext = r.take(ct_len, "ciphertext")?.to_vec();
    let signed_len = r.position();
    let sig_len = bounded(
        usize::from(r.u16("signature length")?),
        1..=MAX_RSA_LEN,
        "signature length",
    )?;
    let signature = r.take(sig_len, "signature")?.to_vec();
    r.finish()?;
    Ok(Envelope {
        header,
        header_len,
        wrapped,
        nonce,
        ciphertext,
        signed_len,
        signature,
        raw: raw.to_vec(),
    })
}

impl TryFrom<&[u8]> for Envelope {
    type Error = OpenError;

    /// Parses the layout, checking the version first and every length
    /// before use. No cryptography happens here. Every defect is the same
    /// [`OpenError::Malformed`].
    fn try_from(raw: &[u8]) -> Result<Self, OpenError> {
        parse(raw).map_err(|_| OpenError::Malformed)
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

    /// What the signature covers: [`SIGN_LABEL`] then every byte before
    /// `sig_len`.
    pub(crate) fn signed_data(&self) -> Vec<u8> {
        let mut m = SIGN_LABEL.to_vec();
        m.extend_from_slice(self.raw.get(..self.signed_len).unwrap_or_default());
        m
    }
}
