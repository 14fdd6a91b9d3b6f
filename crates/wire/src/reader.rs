//! A bounds-checked cursor over a frame body. Every read either returns the
//! requested bytes or a [`WireError::Truncated`] naming the field.

use crate::WireError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        let b = self.take(1, field)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, field)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A field of the form `len: u8 | bytes[len]`.
    pub(crate) fn short_bytes(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.u8(field)?;
        self.take(usize::from(n), field)
    }

    /// A field of the form `len: u16 | bytes[len]`.
    pub(crate) fn long_bytes(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.u16(field)?;
        self.take(usize::from(n), field)
    }

    /// Fails unless every byte has been consumed.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes(self.buf.len()))
        }
    }
}
