//! Putting relay fragments back together into envelopes.
//!
//! A message larger than one frame travels as up to `MAX_FRAGMENTS`
//! fragments, each a full 4096-byte frame ([`crate::seal`](mod@crate::seal) cuts them). The
//! [`Reassembler`] holds partial
//! messages within fixed bounds, so no peer can make a client hold unbounded
//! data: a number of partial messages per sender and in total, a total byte
//! budget, and a time limit after which an incomplete message is dropped.
//! Fragments may arrive in any order; exact duplicates are ignored.

use std::collections::HashMap;

use blindrelay_wire::{FragmentPos, MessageId, UserName};

/// Which copy of a message a fragment belongs to. Copies of one message
/// that travel independently (live, and from the relay's store) are
/// reassembled apart, so they never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Delivered live.
    Live,
    /// Delivered from the relay's store.
    Stored,
}

/// Bounds of the reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Partial messages held at once, all senders together.
    pub max_partial: usize,
    /// Partial messages held at once for one sender.
    pub max_partial_per_sender: usize,
    /// Bytes held in partial messages, all together.
    pub max_bytes: usize,
    /// A partial message older than this is dropped.
    pub timeout_ms: u64,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        Self {
            max_partial: 32,
            max_partial_per_sender: 4,
            max_bytes: 2 * 1024 * 1024,
            timeout_ms: 30_000,
        }
    }
}

/// Why a fragment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// Too many partial messages (per sender or in total).
    #[error("too many incomplete messages")]
    TooManyPartial,
    /// The byte budget is exhausted.
    #[error("incomplete messages exceed the memory budget")]
    TooLarge,
    /// Fragment count differs from earlier fragments of the same message.
    #[error("inconsistent fragment count")]
    Inconsistent,
}

struct Partial {
    pieces: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
    started_ms: u64,
}

/// Reassembles fragments per (sender, message id).
#[derive(Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partial: HashMap<(UserName, MessageId, Lane), Partial>,
    bytes: usize,
}

impl Reassembler {
    /// A reassembler with these bounds.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            partial: HashMap::new(),
            bytes: 0,
        }
    }

    /// Adds a fragment. Returns the whole envelope once every fragment is in.
    ///
    /// Copies in different [`Lane`]s never mix. Within a lane, a piece
    /// that contradicts the pieces held (a re-sealed resend) starts the
    /// message over from that piece.
    pub fn push(
        &mut self,
        sender: &UserName,
        msg_id: MessageId,
        lane: Lane,
        pos: FragmentPos,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Option<Vec<u8>>, ReassemblyError> {
        if pos.count() == 1 {
            return Ok(Some(payload.to_vec()));
        }
        let key = (sender.clone(), msg_id, lane);
        // A contradicting piece (another sealing of the same message)
        // replaces what was held.
        let conflict = self.partial.get(&key).is_some_and(|p| {
            p.pieces.len() != usize::from(pos.count())
                || p.pieces
                    .get(usize::from(pos.index()))
                    .is_some_and(|slot| slot.as_ref().is_some_and(|b| b.as_slice() != payload))
        });
        if conflict && let Some(old) = self.partial.remove(&key) {
            self.bytes -= old.bytes;
        }
        if !self.partial.contains_key(&key) {
            let per_sender = self.partial.keys().filter(|(s, _, _)| s == sender).count();
            if self.partial.len() >= self.limits.max_partial
                || per_sender >= self.limits.max_partial_per_sender
            {
                return Err(ReassemblyError::TooManyPartial);
            }
            self.partial.insert(
                key.clone(),
                Partial {
                    pieces: vec![None; usize::from(pos.count())],
                    received: 0,
                    bytes: 0,
                    started_ms: now_ms,
                },
            );
        }
        let Some(p) = self.partial.get_mut(&key) else {
            return Ok(None);
        };
        if p.pieces.len() != usize::from(pos.count()) {
            return Err(ReassemblyError::Inconsistent);
        }
        let Some(slot) = p.pieces.get_mut(usize::from(pos.index())) else {
            return Err(ReassemblyError::Inconsistent);
        };
        // The same piece again (a different one started the message over
        // above): nothing to add.
        if slot.is_some() {
            return Ok(None);
        }
        if self.bytes + payload.len() > self.limits.max_bytes {
            return Err(ReassemblyError::TooLarge);
        }
        *slot = Some(payload.to_vec());
        p.received += 1;
        p.bytes += payload.len();
        self.bytes += payload.len();
        if p.received < p.pieces.len() {
            return Ok(None);
        }
        let Some(done) = self.partial.remove(&key) else {
            return Ok(None);
        };
        self.bytes -= done.bytes;
        Ok(Some(done.pieces.into_iter().flatten().flatten().collect()))
    }

    /// Drops partial messages older than the timeout; returns them so the
    /// caller can warn.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(UserName, MessageId)> {
        let timeout = self.limits.timeout_ms;
        let old: Vec<(UserName, MessageId, Lane)> = self
            .partial
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.started_ms) > timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            if let Some(p) = self.partial.remove(k) {
                self.bytes -= p.bytes;
            }
        }
        old.into_iter().map(|(s, id, _)| (s, id)).collect()
    }

    /// Bytes currently held.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Partial messages currently held.
    pub fn partial_count(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alice() -> UserName {
        UserName::new("alice").unwrap()
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_reassembles_exactly(
            data in proptest::collection::vec(any::<u8>(), 1..20_000),
            room in 100usize..4000,
            seed in any::<u64>(),
        ) {
            let pieces: Vec<&[u8]> = data.chunks(room).collect();
            prop_assume!(pieces.len() <= 64);
            let count = pieces.len() as u16;
            let mut order: Vec<usize> = (0..pieces.len()).chain(0..pieces.len() / 2).collect();
            // Deterministic shuffle from the seed.
            let mut s = seed;
            for i in (1..order.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut r = Reassembler::default();
            let mut out = None;
            for i in order {
                let pos = FragmentPos::new(i as u16, count).unwrap();
                if let Some(full) = r.push(&alice(), MessageId([1; 16]), Lane::Live, pos, pieces[i], 0).unwrap() {
                    prop_assert!(out.is_none() || count == 1, "completed twice");
                    // A completed message holds no memory.
                    prop_assert_eq!((r.partial_count(), r.buffered_bytes()), (0, 0));
                    out = Some(full);
                }
            }
            prop_assert_eq!(out.unwrap(), data);
        }
    }

    #[test]
    fn lost_fragment_expires_and_frees_memory() {
        let mut r = Reassembler::default();
        let pos = FragmentPos::new(0, 3).unwrap();
        assert!(
            r.push(&alice(), MessageId([1; 16]), Lane::Live, pos, &[1; 100], 0)
                .unwrap()
                .is_none()
        );
        assert_eq!(r.buffered_bytes(), 100);
        // Exactly the timeout is still in time; a millisecond more is not.
        assert!(r.expire(30_000).is_empty());
        assert_eq!(r.expire(30_001), vec![(alice(), MessageId([1; 16]))]);
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.partial_count(), 0);
    }

    #[test]
    fn a_contradicting_piece_starts_the_message_over() {
        // A resend sealed again has the same id and count but other bytes:
        // its pieces replace the old ones, never mix with them.
        let mut r = Reassembler::default();
        let at = |i| FragmentPos::new(i, 2).unwrap();
        let id = MessageId([3; 16]);
        assert_eq!(r.push(&alice(), id, Lane::Live, at(0), b"old", 0), Ok(None));
        assert_eq!(r.push(&alice(), id, Lane::Live, at(0), b"new", 0), Ok(None));
        assert_eq!(
            r.push(&alice(), id, Lane::Live, at(1), b"!", 0),
            Ok(Some(b"new!".to_vec()))
        );
        assert_eq!((r.partial_count(), r.buffered_bytes()), (0, 0));
    }

    #[test]
    fn bounds_hold() {
        let mut r = Reassembler::default();
        for i in 0..4u8 {
            let pos = FragmentPos::new(0, 2).unwrap();
            r.push(&alice(), MessageId([i; 16]), Lane::Live, pos, &[0; 10], 0)
                .unwrap();
        }
        let pos = FragmentPos::new(0, 2).unwrap();
        assert_eq!(
            r.push(&alice(), MessageId([9; 16]), Lane::Live, pos, &[0; 10], 0),
            Err(ReassemblyError::TooManyPartial)
        );
        let bob = UserName::new("bob").unwrap();
        let mut r = Reassembler::new(ReassemblyLimits {
            max_bytes: 1000,
            ..Default::default()
        });
        r.push(
            &bob,
            MessageId([1; 16]),
            Lane::Live,
            FragmentPos::new(0, 3).unwrap(),
            &[0; 900],
            0,
        )
        .unwrap();
        // The budget is exact: 100 more bytes fit, 101 do not.
        let mut exact = Reassembler::new(ReassemblyLimits {
            max_bytes: 1000,
            ..Default::default()
        });
        for (i, len) in [(0, 900), (1, 100)] {
            let pos = FragmentPos::new(i, 3).unwrap();
            assert_eq!(
                exact.push(&bob, MessageId([1; 16]), Lane::Live, pos, &vec![0; len], 0),
                Ok(None)
            );
        }
        let last = FragmentPos::new(2, 3).unwrap();
        assert_eq!(
            exact.push(&bob, MessageId([1; 16]), Lane::Live, last, &[0], 0),
            Err(ReassemblyError::TooLarge)
        );
        assert_eq!(
            r.push(
                &bob,
                MessageId([1; 16]),
                Lane::Live,
                FragmentPos::new(1, 3).unwrap(),
                &[0; 200],
                0
            ),
            Err(ReassemblyError::TooLarge)
        );
        // A contradicting piece starts the message over (a re-sealed resend).
        assert_eq!(
            r.push(
                &bob,
                MessageId([1; 16]),
                Lane::Live,
                FragmentPos::new(0, 3).unwrap(),
                &[1; 900],
                0
            ),
            Ok(None)
        );
        assert_eq!(r.buffered_bytes(), 900);
        assert_eq!(
            r.push(
                &bob,
                MessageId([1; 16]),
                Lane::Live,
                FragmentPos::new(0, 4).unwrap(),
                &[2; 50],
                0
            ),
            Ok(None)
        );
        assert_eq!((r.partial_count(), r.buffered_bytes()), (1, 50));
        // Another lane (the stored copy) is kept apart.
        assert_eq!(
            r.push(
                &bob,
                MessageId([1; 16]),
                Lane::Stored,
                FragmentPos::new(1, 4).unwrap(),
                &[3; 50],
                0
            ),
            Ok(None)
        );
        assert_eq!(r.partial_count(), 2);
    }
}
