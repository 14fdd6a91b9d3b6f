//! The CRL in use. The client takes a CRL from three places: the newest
//! one it accepted before (its store), the CRL file, and the relay (which
//! hands out the CA's current CRL in chunks). Whatever the source, only a
//! CRL the CA signed, and not older than the one in use, is taken; a new
//! one re-verifies every known peer; once the CRL in use is past its
//! `nextUpdate` and grace, no peer verifies and the user is told once.

use blindrelay_pki::crl::MAX_CRL_BYTES;

use super::ClientCore;
use crate::event::Event;

/// Where a CRL offered to the core came from (for what the user is told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlSource {
    /// The newest CRL this client accepted before (its database).
    Stored,
    /// The CRL file in the user's directory.
    File,
    /// Handed out by the relay (which cannot forge or roll it back).
    Relay,
}

impl std::fmt::Display for CrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrlSource::Stored => "the stored CRL",
            CrlSource::File => "crl.pem",
            CrlSource::Relay => "the relay's CRL",
        })
    }
}

/// The chunks of the CRL the relay is sending, in order. Anything out of
/// order starts over; more than [`MAX_CRL_BYTES`] is dropped.
#[derive(Default)]
pub struct CrlChunks {
    count: u8,
    next: u8,
    bytes: Vec<u8>,
}

impl CrlChunks {
    /// Adds chunk `index` of `count`; returns the whole CRL with the last.
    pub fn push(&mut self, index: u8, count: u8, chunk: &[u8]) -> Option<Vec<u8>> {
        if index == 0 {
            self.count = count;
            self.next = 0;
            self.bytes.clear();
        }
        if index != self.next
            || count != self.count
            || self.bytes.len() + chunk.len() > MAX_CRL_BYTES
        {
            *self = Self::default();
            return None;
        }
        self.bytes.extend_from_slice(chunk);
        self.next = self.next.saturating_add(1);
        if self.next < self.count {
            return None;
        }
        let done = std::mem::take(&mut self.bytes);
        *self = Self::default();
        Some(done)
    }
}

impl ClientCore {
    /// Offers a CRL (DER): taken if the CA signed it and it is not older
    /// than the one in use (a rollback is refused and said); kept in the
    /// store; every peer is verified again against it.
    pub fn offer_crl(&mut self, der: &[u8], source: CrlSource, now_ms: u64) -> Vec<Event> {
        let mut events = Vec::new();
        match self.peers.offer_crl(der) {
            Ok(None) => {}
            Ok(Some(crl)) => {
                if source != CrlSource::Stored
                    && let Err(e) = self.store.set_crl(crl.der())
                {
                    events.push(Event::Warning(format!("cannot keep the new CRL: {e}")));
                }
                self.crl_expiry_told = false;
                self.check_crl(now_ms, &mut events);
                self.peers.reverify(now_ms, &mut events);
            }
            Err(e) => events.push(Event::Warning(format!("{source} refused: {e}"))),
        }
        events
    }

    /// Takes the CRL kept in the store, if any.
    pub fn load_stored_crl(&mut self, now_ms: u64) -> Vec<Event> {
        match self.store.crl() {
            Ok(Some(der)) => self.offer_crl(&der, CrlSource::Stored, now_ms),
            Ok(None) => Vec::new(),
            Err(e) => vec![Event::Warning(format!("cannot read the stored CRL: {e}"))],
        }
    }

    /// Tells the user, once, when the CRL in use is no longer current.
    pub(super) fn check_crl(&mut self, now_ms: u64, events: &mut Vec<Event>) {
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        if let Some(Err(e)) = self.peers.crl().map(|c| c.current_at(now))
            && !self.crl_expiry_told
        {
            self.crl_expiry_told = true;
            events.push(Event::Warning(format!(
                "{e}: no certificate can be checked, so nobody is trusted until a fresh CRL arrives"
            )));
            self.peers.reverify(now_ms, events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_in_order_make_the_crl_and_anything_else_starts_over() {
        let mut c = CrlChunks::default();
        assert_eq!(c.push(0, 1, b"whole"), Some(b"whole".to_vec()));
        assert_eq!(c.push(0, 3, b"a"), None);
        assert_eq!(c.push(1, 3, b"b"), None);
        assert_eq!(c.push(2, 3, b"c"), Some(b"abc".to_vec()));
        // Out of order: dropped, and the next CRL starts cleanly.
        assert_eq!(c.push(0, 2, b"x"), None);
        assert_eq!(c.push(0, 2, b"a"), None);
        assert_eq!(c.push(1, 2, b"b"), Some(b"ab".to_vec()));
        for bad in [(1u8, 2u8), (2, 3)] {
            assert_eq!(c.push(0, 3, b"a"), None);
            assert_eq!(c.push(bad.0 + 1, bad.1, b"z"), None, "{bad:?}");
            assert_eq!(c.push(2, 3, b"c"), None, "{bad:?}: must not complete");
        }
        // Another count mid-way.
        assert_eq!(c.push(0, 2, b"a"), None);
        assert_eq!(c.push(1, 3, b"b"), None);
        assert!(c.bytes.is_empty());
    }

    #[test]
    fn a_crl_larger_than_the_bound_is_dropped() {
        let mut c = CrlChunks::default();
        let chunk = vec![0u8; 4000];
        let count = u8::try_from(MAX_CRL_BYTES / chunk.len() + 1).unwrap();
        let mut out = None;
        for i in 0..count {
            out = c.push(i, count, &chunk);
        }
        assert_eq!(out, None);
        assert!(c.bytes.len() <= MAX_CRL_BYTES);
        // Exactly at the bound it is whole.
        let last = MAX_CRL_BYTES - 4000 * 65;
        let mut c = CrlChunks::default();
        for i in 0..65u8 {
            assert_eq!(c.push(i, 66, &chunk), None);
        }
        assert_eq!(
            c.push(65, 66, &vec![0; last]).map(|v| v.len()),
            Some(MAX_CRL_BYTES)
        );
    }
}
