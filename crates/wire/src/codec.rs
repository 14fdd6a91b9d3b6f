//! The byte-level codec every strict decoder of the workspace shares: a
//! bounds-checked [`Reader`] whose every read names the field it was
//! reading, and writers of the same field shapes.
//!
//! Field shapes (all integers big-endian):
//! * `u8`, `u16`, `u32`, `u64`;
//! * short bytes: `len: u8 | bytes[len]` (user names, goodbye reasons);
//! * long bytes: `len: u16 | bytes[len]` (payloads, certificates).
//!
//! The end-to-end envelope in `blindrelay-e2e` is parsed with the same
//! reader, so there is one implementation of "read a length, then that many
//! bytes" in the workspace.

use crate::{UserName, WireError};

/// A cursor over received bytes. Every read either returns the requested
/// bytes or a [`WireError::Truncated`] naming the field.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, consumed: 0 }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(WireError::Truncated(field))?;
        self.buf = tail;
        self.consumed += n;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A field of the form `len: u8 | bytes[len]`.
    pub fn short_bytes(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.u8(field)?;
        self.take(usize::from(n), field)
    }

    /// A field of the form `len: u16 | bytes[len]`.
    pub fn long_bytes(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.u16(field)?;
        self.take(usize::from(n), field)
    }

    /// A user name (`len: u8 | bytes`), validated.
    pub fn name(&mut self, field: &'static str) -> Result<UserName, WireError> {
        UserName::from_bytes(self.short_bytes(field)?)
    }

    /// Bytes read so far (the offset of the next field).
    pub fn position(&self) -> usize {
        self.consumed
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes(self.buf.len()))
        }
    }
}

/// Appends a user name as `len: u8 | bytes` (a [`UserName`] is at most 32
/// bytes, so its length always fits).
pub fn put_name(out: &mut Vec<u8>, name: &UserName) {
    let bytes = name.as_str().as_bytes();
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}

/// Bytes [`put_name`] writes for `name`.
pub fn name_len(name: &UserName) -> usize {
    1 + name.as_str().len()
}

/// Appends `len: u16 | bytes`; fails if `bytes` is longer than a `u16`.
pub fn put_long_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), WireError> {
    let len = u16::try_from(bytes.len()).map_err(|_| WireError::TooLarge(bytes.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Lower-case hex of `bytes` (message ids, fingerprints, serials in logs).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            s.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_names_its_field_and_nothing_is_read_past_the_end() {
        let mut r = Reader::new(&[0, 2, 0xaa]);
        assert_eq!(r.u8("a").unwrap(), 0);
        assert_eq!(r.position(), 1);
        assert_eq!(r.long_bytes("b"), Err(WireError::Truncated("b")));
        let mut r = Reader::new(&[3, b'b', b'o', b'b', 9]);
        assert_eq!(r.name("n").unwrap().as_str(), "bob");
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.clone().finish(), Err(WireError::TrailingBytes(1)));
        assert_eq!(r.u32("w"), Err(WireError::Truncated("w")));
    }

    #[test]
    fn names_and_long_bytes_round_trip() {
        let mut out = Vec::new();
        let bob = UserName::new("bob").unwrap();
        put_name(&mut out, &bob);
        put_long_bytes(&mut out, &[7; 300]).unwrap();
        assert_eq!(out.len(), name_len(&bob) + 2 + 300);
        let mut r = Reader::new(&out);
        assert_eq!(r.name("n").unwrap(), bob);
        assert_eq!(r.long_bytes("p").unwrap(), &[7; 300][..]);
        r.finish().unwrap();
        assert!(put_long_bytes(&mut out, &vec![0; 70_000]).is_err());
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}
