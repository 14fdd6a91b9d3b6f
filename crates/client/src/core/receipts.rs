//! End-to-end delivery receipts the client owes, and the ones it sent.
//!
//! Every text message shown is answered with a sealed receipt to its
//! sender, batched per sender (up to `MAX_RECEIPT_IDS` ids in one receipt)
//! and paced ([`MAX_RECEIPTS_PER_FLUSH`] per flush) to stay well under the
//! relay's receipt budget. The relay's statuses for our own receipts are
//! not news to the user, so their ids are remembered (bounded).

use std::collections::{HashMap, HashSet};

use blindrelay_e2e::content::MAX_RECEIPT_IDS;
use blindrelay_wire::{MessageId, UserName};

/// Own receipt ids remembered (to keep their statuses quiet).
pub const MAX_SENT_RECEIPTS: usize = 4096;
/// Receipts sealed per flush (one per sender, each confirming up to 100
/// messages).
pub const MAX_RECEIPTS_PER_FLUSH: usize = 10;

/// Receipts owed and sent.
#[derive(Default)]
pub(crate) struct Receipts {
    owed: HashMap<UserName, Vec<MessageId>>,
    sent: HashSet<MessageId>,
}

impl Receipts {
    /// `from`'s message `id` was shown: it is owed a receipt.
    pub(crate) fn owe(&mut self, from: &UserName, id: MessageId) {
        self.owed.entry(from.clone()).or_default().push(id);
    }

    /// The next batch to seal: at most [`MAX_RECEIPTS_PER_FLUSH`] senders,
    /// at most `MAX_RECEIPT_IDS` ids each; the rest waits.
    pub(crate) fn take_batch(&mut self) -> Vec<(UserName, Vec<MessageId>)> {
        let mut senders: Vec<UserName> = self.owed.keys().cloned().collect();
        senders.sort();
        senders.truncate(MAX_RECEIPTS_PER_FLUSH);
        let mut out = Vec::with_capacity(senders.len());
        for to in senders {
            let Some(mut ids) = self.owed.remove(&to) else {
                continue;
            };
            if ids.len() > MAX_RECEIPT_IDS {
                let rest = ids.split_off(MAX_RECEIPT_IDS);
                self.owed.insert(to.clone(), rest);
            }
            out.push((to, ids));
        }
        out
    }

    /// Remembers the id of a receipt we send.
    pub(crate) fn sent(&mut self, id: MessageId) {
        if self.sent.len() >= MAX_SENT_RECEIPTS {
            self.sent.clear();
        }
        self.sent.insert(id);
    }

    /// True for the id of one of our own receipts.
    pub(crate) fn is_ours(&self, id: &MessageId) -> bool {
        self.sent.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_batched_per_sender_and_paced() {
        let mut r = Receipts::default();
        for s in 0..12 {
            let from = UserName::new(&format!("u{s:02}")).unwrap();
            r.owe(&from, MessageId([s; 16]));
        }
        let alice = UserName::new("alice").unwrap();
        for i in 0..(MAX_RECEIPT_IDS + 5) {
            r.owe(&alice, MessageId([i as u8; 16]));
        }
        let first = r.take_batch();
        assert_eq!(first.len(), MAX_RECEIPTS_PER_FLUSH);
        assert_eq!(first[0].0, alice);
        assert_eq!(first[0].1.len(), MAX_RECEIPT_IDS);
        let second = r.take_batch();
        assert_eq!(
            second[0],
            (
                alice,
                (MAX_RECEIPT_IDS..MAX_RECEIPT_IDS + 5)
                    .map(|i| MessageId([i as u8; 16]))
                    .collect()
            )
        );
        assert_eq!(second.len(), 4);
        assert!(r.take_batch().is_empty());
        r.sent(MessageId([9; 16]));
        assert!(r.is_ours(&MessageId([9; 16])));
    }

    #[test]
    fn a_full_batch_leaves_nothing_behind_and_own_receipts_are_all_remembered() {
        let mut r = Receipts::default();
        let alice = UserName::new("alice").unwrap();
        for i in 0..MAX_RECEIPT_IDS {
            r.owe(&alice, MessageId([i as u8; 16]));
        }
        assert_eq!(r.take_batch()[0].1.len(), MAX_RECEIPT_IDS);
        // No receipt without ids follows.
        assert!(r.take_batch().is_empty());
        for i in 0..3u8 {
            r.sent(MessageId([i; 16]));
        }
        assert!((0..3u8).all(|i| r.is_ours(&MessageId([i; 16]))));
        // The memory is bounded: past the cap it starts over.
        for i in 0..MAX_SENT_RECEIPTS {
            r.sent(MessageId((i as u128 + 1000).to_be_bytes()));
        }
        assert!(!r.is_ours(&MessageId([0; 16])));
        assert!(r.sent.len() <= MAX_SENT_RECEIPTS);
    }
}
