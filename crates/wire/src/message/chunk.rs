//! DS_UP and DS_DOWN: protocol v2's messages, cut into frames.
//!
//! ```text
//! DS_UP / DS_DOWN: msg u32 | index u16 | count u16 (1..=MAX_DS_CHUNKS, index < count)
//!                  | len u16 (1..=DS_CHUNK_MAX) | bytes
//! ```
//!
//! A v2 message (a KeyPackage upload, a commit with its Welcome, a
//! mailbox delivery; `blindrelay-ds::proto` has their layouts) can be far
//! larger than a frame, so it travels as `count` chunks, sent one after
//! the other with no other DS chunk in between, `index` 0 to `count - 1`,
//! all with the same `msg` number. Frames of other types (PING, GOODBYE)
//! may come in between. [`Reassembly`] is the receiving side: it takes
//! chunks in that order only and holds at most the bound it was made
//! with, so a peer cannot make it hold more.

use crate::WireError;
use crate::codec::{Reader, put_long_bytes};
use crate::frame::MAX_BODY_LEN;

/// The most message bytes one DS frame carries.
pub const DS_CHUNK_MAX: usize = MAX_BODY_LEN - 10;
/// The most chunks one v2 message may be cut into (2.5 MiB).
pub const MAX_DS_CHUNKS: usize = 640;

/// One chunk of a v2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The sender's number for the message (any value; chunks of one
    /// message share it).
    pub msg: u32,
    /// This chunk's position, from 0.
    pub index: u16,
    /// How many chunks the message has.
    pub count: u16,
    /// 1 to [`DS_CHUNK_MAX`] bytes of the message.
    pub data: Vec<u8>,
}

fn check(index: u16, count: u16, len: usize) -> Result<(), WireError> {
    if count == 0 || usize::from(count) > MAX_DS_CHUNKS {
        return Err(WireError::InvalidField("ds chunk count"));
    }
    if index >= count {
        return Err(WireError::InvalidField("ds chunk index"));
    }
    if len == 0 || len > DS_CHUNK_MAX {
        return Err(WireError::InvalidField("ds chunk length"));
    }
    Ok(())
}

impl Chunk {
    pub(crate) fn encode(&self, b: &mut Vec<u8>) -> Result<(), WireError> {
        check(self.index, self.count, self.data.len())?;
        b.extend_from_slice(&self.msg.to_be_bytes());
        b.extend_from_slice(&self.index.to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        put_long_bytes(b, &self.data)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let msg = r.u32("ds msg")?;
        let index = r.u16("ds chunk index")?;
        let count = r.u16("ds chunk count")?;
        let data = r.long_bytes("ds chunk")?;
        check(index, count, data.len())?;
        Ok(Self {
            msg,
            index,
            count,
            data: data.to_vec(),
        })
    }
}

/// Cuts `payload` into the chunks of message `msg`.
pub fn chunks(msg: u32, payload: &[u8]) -> Result<Vec<Chunk>, WireError> {
    let n = payload.len().div_ceil(DS_CHUNK_MAX);
    if n == 0 || n > MAX_DS_CHUNKS {
        return Err(WireError::TooLarge(payload.len()));
    }
    let count = u16::try_from(n).map_err(|_| WireError::TooLarge(payload.len()))?;
    Ok(payload
        .chunks(DS_CHUNK_MAX)
        .zip(0u16..)
        .map(|(data, index)| Chunk {
            msg,
            index,
            count,
            data: data.to_vec(),
        })
        .collect())
}

/// Puts a v2 message back together from its chunks, in order, holding at
/// most `max_bytes`.
#[derive(Debug)]
pub struct Reassembly {
    max_bytes: usize,
    open: Option<(u32, u16, u16, Vec<u8>)>,
}

impl Reassembly {
    /// Nothing received yet; messages up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            open: None,
        }
    }

    /// Takes the next chunk: the whole message once its last chunk came.
    /// A chunk out of order, of another message before the open one is
    /// complete, or past the bound is an error (the sender broke the
    /// protocol; the connection should end).
    pub fn push(&mut self, chunk: Chunk) -> Result<Option<Vec<u8>>, WireError> {
        let Chunk {
            msg,
            index,
            count,
            data,
        } = chunk;
        check(index, count, data.len())?;
        let (m, next, c, mut buf) = match self.open.take() {
            None if index == 0 => (msg, 0, count, Vec::new()),
            None => return Err(WireError::InvalidField("ds chunk index")),
            Some(open) => open,
        };
        if m != msg || c != count || next != index {
            return Err(WireError::InvalidField("ds chunk order"));
        }
        if buf.len().saturating_add(data.len()) > self.max_bytes {
            return Err(WireError::TooLarge(buf.len().saturating_add(data.len())));
        }
        buf.extend_from_slice(&data);
        if index + 1 == count {
            Ok(Some(buf))
        } else {
            self.open = Some((m, index + 1, c, buf));
            Ok(None)
        }
    }

    /// True while a message is partly received.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_message_is_cut_and_put_back_together() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let cs = chunks(7, &payload).unwrap();
        assert_eq!(cs.len(), 3);
        let mut r = Reassembly::new(10_000);
        assert_eq!(r.push(cs[0].clone()).unwrap(), None);
        assert!(r.is_open());
        assert_eq!(r.push(cs[1].clone()).unwrap(), None);
        assert_eq!(r.push(cs[2].clone()).unwrap(), Some(payload));
        assert!(!r.is_open());
    }

    #[test]
    fn chunks_out_of_order_interleaved_or_past_the_bound_are_refused() {
        let payload = vec![1u8; 3 * DS_CHUNK_MAX];
        let cs = chunks(1, &payload).unwrap();
        let other = chunks(2, &payload).unwrap();
        // Starting in the middle.
        assert!(Reassembly::new(usize::MAX).push(cs[1].clone()).is_err());
        // Skipping one.
        let mut r = Reassembly::new(usize::MAX);
        r.push(cs[0].clone()).unwrap();
        assert!(r.push(cs[2].clone()).is_err());
        // Another message before this one is complete.
        let mut r = Reassembly::new(usize::MAX);
        r.push(cs[0].clone()).unwrap();
        assert!(r.push(other[0].clone()).is_err());
        // Another count for the same message.
        let mut r = Reassembly::new(usize::MAX);
        r.push(cs[0].clone()).unwrap();
        let mut changed = cs[1].clone();
        changed.count = 4;
        assert!(r.push(changed).is_err());
        // More than the bound.
        let mut r = Reassembly::new(2 * DS_CHUNK_MAX);
        r.push(cs[0].clone()).unwrap();
        r.push(cs[1].clone()).unwrap();
        assert!(r.push(cs[2].clone()).is_err());
        // Empty and oversized messages cannot be cut.
        assert!(chunks(0, &[]).is_err());
        assert!(chunks(0, &vec![0; MAX_DS_CHUNKS * DS_CHUNK_MAX + 1]).is_err());
        assert_eq!(
            chunks(0, &vec![0; MAX_DS_CHUNKS * DS_CHUNK_MAX])
                .unwrap()
                .len(),
            MAX_DS_CHUNKS
        );
    }

    #[test]
    fn every_chunk_fits_one_frame_and_the_decoder_checks_each_field() {
        use crate::{Frame, FrameType, Message};
        // Full chunks fill a frame's body exactly.
        let payload = vec![7u8; 2 * DS_CHUNK_MAX + 1];
        for c in chunks(3, &payload).unwrap() {
            let m = Message::DsUp(c);
            assert_eq!(Message::decode(&m.encode().unwrap()[..]).unwrap(), m);
        }
        let full = Chunk {
            msg: 1,
            index: 0,
            count: 1,
            data: vec![0; DS_CHUNK_MAX],
        };
        let mut body = Vec::new();
        full.encode(&mut body).unwrap();
        assert_eq!(body.len(), crate::MAX_BODY_LEN);
        // Each field out of its range, written by hand, is refused.
        let raw = |msg: u32, index: u16, count: u16, len: u16, data: usize| {
            let mut b = Vec::new();
            b.extend_from_slice(&msg.to_be_bytes());
            b.extend_from_slice(&index.to_be_bytes());
            b.extend_from_slice(&count.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend(std::iter::repeat_n(0u8, data));
            Message::from_frame(&Frame::new(FrameType::DsDown, b).unwrap())
        };
        assert!(raw(1, 0, 1, 1, 1).is_ok());
        let max = u16::try_from(MAX_DS_CHUNKS).unwrap();
        assert!(raw(1, max - 1, max, 1, 1).is_ok());
        assert_eq!(
            raw(1, 0, 0, 1, 1),
            Err(WireError::InvalidField("ds chunk count"))
        );
        assert_eq!(
            raw(1, 0, max + 1, 1, 1),
            Err(WireError::InvalidField("ds chunk count"))
        );
        assert_eq!(
            raw(1, 1, 1, 1, 1),
            Err(WireError::InvalidField("ds chunk index"))
        );
        assert_eq!(
            raw(1, 0, 1, 0, 0),
            Err(WireError::InvalidField("ds chunk length"))
        );
        // The encoder refuses what the decoder would.
        let mut b = Vec::new();
        let over = Chunk {
            msg: 1,
            index: 0,
            count: 1,
            data: vec![0; DS_CHUNK_MAX + 1],
        };
        assert!(over.encode(&mut b).is_err());
        let empty = Chunk {
            msg: 1,
            index: 0,
            count: 1,
            data: vec![],
        };
        assert!(empty.encode(&mut b).is_err());
    }

    proptest! {
        #[test]
        fn any_payload_survives_chunking(payload in proptest::collection::vec(any::<u8>(), 1..20_000), msg in any::<u32>()) {
            let mut r = Reassembly::new(payload.len());
            let mut out = None;
            for c in chunks(msg, &payload).unwrap() {
                prop_assert!(out.is_none());
                out = r.push(c).unwrap();
            }
            prop_assert_eq!(out, Some(payload));
        }
    }
}
