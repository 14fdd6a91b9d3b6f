//! CRL: the relay hands clients the CA's current CRL, in chunks (relay to
//! client).
//!
//! ```text
//! CRL: index u8 | count u8 (1..=255, index < count) | len u16 (1..=CRL_CHUNK_MAX) | bytes
//! ```
//!
//! The chunks of one CRL are sent in order, `index` 0 to `count - 1`, in the
//! login sequence and again whenever the relay loads a new CRL. The bytes
//! are the CA's signed CRL (DER); a client checks the signature and that
//! the CRL is not older than its own, so the relay can neither forge one
//! nor roll one back.

use crate::codec::{Reader, put_long_bytes};
use crate::frame::MAX_BODY_LEN;
use crate::{Message, WireError};

/// The most CRL bytes one frame carries.
pub const CRL_CHUNK_MAX: usize = MAX_BODY_LEN - 4;
/// The most chunks one CRL may be cut into.
pub const CRL_MAX_CHUNKS: usize = u8::MAX as usize;

pub(crate) fn put_crl(
    b: &mut Vec<u8>,
    index: u8,
    count: u8,
    chunk: &[u8],
) -> Result<(), WireError> {
    check(index, count, chunk.len())?;
    b.push(index);
    b.push(count);
    put_long_bytes(b, chunk)
}

pub(crate) fn get_crl(r: &mut Reader<'_>) -> Result<(u8, u8, Vec<u8>), WireError> {
    let index = r.u8("crl index")?;
    let count = r.u8("crl count")?;
    let chunk = r.long_bytes("crl chunk")?;
    check(index, count, chunk.len())?;
    Ok((index, count, chunk.to_vec()))
}

fn check(index: u8, count: u8, len: usize) -> Result<(), WireError> {
    if count == 0 || index >= count {
        return Err(WireError::InvalidField("crl index"));
    }
    if len == 0 || len > CRL_CHUNK_MAX {
        return Err(WireError::InvalidField("crl chunk length"));
    }
    Ok(())
}

/// The CRL messages that carry `der`, in order. Fails if it is empty or
/// needs more than [`CRL_MAX_CHUNKS`] frames.
pub fn crl_messages(der: &[u8]) -> Result<Vec<Message>, WireError> {
    let chunks: Vec<&[u8]> = der.chunks(CRL_CHUNK_MAX).collect();
    let count = u8::try_from(chunks.len())
        .ok()
        .filter(|c| *c > 0)
        .ok_or(WireError::TooLarge(der.len()))?;
    Ok(chunks
        .into_iter()
        .zip(0u8..)
        .map(|(chunk, index)| Message::Crl {
            index,
            count,
            chunk: chunk.to_vec(),
        })
        .collect())
}
