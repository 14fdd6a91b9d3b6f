//! The authenticated header of an envelope: everything a recipient learns
//! before decrypting, all of it bound as the AEAD's additional data and
//! signed.
//!
//! ```text
//! version         u8      1
//! flags           u8      bit 0: room message; other bits 0
//! msg_id          [16]
//! timestamp_ms    u64     sender's clock, Unix milliseconds
//! fragment_count  u16     relay fragments carrying this envelope (1..=64)
//! key_commit      [32]    SHA-256(KEY_COMMIT_LABEL | message key)
//! sender          u8 len | name
//! recipient_count u8      1..=64, distinct names
//! recipients      (u8 len | name) * recipient_count
//! ```

use blindrelay_wire::codec::{Reader, name_len, put_name};
use blindrelay_wire::{MAX_FRAGMENTS, MAX_RECIPIENTS, MessageId, UserName, WireError};

/// Envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;
/// Flag: the message went to everyone online (the shared room).
pub const FLAG_ROOM: u8 = 1;

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

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENVELOPE_VERSION);
        out.push(self.flags);
        out.extend_from_slice(&self.msg_id.0);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.fragment_count.to_be_bytes());
        out.extend_from_slice(&self.key_commit);
        put_name(out, &self.sender);
        // At most MAX_RECIPIENTS (64): `seal` checks before encoding.
        out.push(u8::try_from(self.recipients.len()).unwrap_or(u8::MAX));
        for r in &self.recipients {
            put_name(out, r);
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        1 + 1
            + 16
            + 8
            + 2
            + 32
            + name_len(&self.sender)
            + 1
            + self.recipients.iter().map(name_len).sum::<usize>()
    }

    /// Reads a header, version first; any defect is a [`WireError`] naming
    /// the field.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        if r.u8("envelope version")? != ENVELOPE_VERSION {
            return Err(WireError::InvalidField("envelope version"));
        }
        let flags = r.u8("envelope flags")?;
        if flags & !FLAG_ROOM != 0 {
            return Err(WireError::InvalidField("envelope flags"));
        }
        let msg_id = MessageId(r.array("message id")?);
        let timestamp_ms = r.u64("timestamp")?;
        let fragment_count = r.u16("fragment count")?;
        if fragment_count == 0 || fragment_count > MAX_FRAGMENTS {
            return Err(WireError::InvalidField("fragment count"));
        }
        let key_commit = r.array("key commitment")?;
        let sender = r.name("sender")?;
        let n = usize::from(r.u8("recipient count")?);
        if n == 0 || n > MAX_RECIPIENTS {
            return Err(WireError::InvalidField("recipient count"));
        }
        let mut recipients = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.name("recipient")?;
            if recipients.contains(&name) {
                return Err(WireError::InvalidField("duplicate recipient"));
            }
            recipients.push(name);
        }
        Ok(Self {
            flags,
            msg_id,
            timestamp_ms,
            fragment_count,
            key_commit,
            sender,
            recipients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<UserName> {
        (0..n)
            .map(|i| UserName::new(&format!("user{i}")).unwrap())
            .collect()
    }

    fn header(flags: u8, fragment_count: u16, recipients: usize) -> Header {
        Header {
            flags,
            msg_id: MessageId([3; 16]),
            timestamp_ms: 1_800_000_000_000,
            fragment_count,
            key_commit: [9; 32],
            sender: UserName::new("alice").unwrap(),
            recipients: names(recipients),
        }
    }

    fn round_trip(h: &Header) -> Result<Header, WireError> {
        let mut b = Vec::new();
        h.encode(&mut b);
        assert_eq!(b.len(), h.encoded_len());
        Header::decode(&mut Reader::new(&b))
    }

    #[test]
    fn the_counts_are_checked_at_both_ends() {
        for (count, recipients) in [(1, 1), (MAX_FRAGMENTS, MAX_RECIPIENTS)] {
            let h = header(0, count, recipients);
            assert_eq!(round_trip(&h), Ok(h));
        }
        for count in [0, MAX_FRAGMENTS + 1] {
            assert_eq!(
                round_trip(&header(0, count, 1)),
                Err(WireError::InvalidField("fragment count"))
            );
        }
        for recipients in [0, MAX_RECIPIENTS + 1] {
            assert_eq!(
                round_trip(&header(0, 1, recipients)),
                Err(WireError::InvalidField("recipient count"))
            );
        }
    }

    #[test]
    fn the_room_flag_is_the_only_flag() {
        let room = header(FLAG_ROOM, 1, 1);
        assert!(room.is_room());
        assert_eq!(round_trip(&room).map(|h| h.is_room()), Ok(true));
        assert!(!header(0, 1, 1).is_room());
        assert_eq!(
            round_trip(&header(2, 1, 1)),
            Err(WireError::InvalidField("envelope flags"))
        );
    }
}
