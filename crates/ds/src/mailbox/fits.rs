//! Whether a submission fits: every recipient's mailbox, the sending
//! person's share of each, and what the sender, its person and everyone
//! together may have waiting.

use std::collections::BTreeMap;

use super::Mailboxes;
use crate::{DeviceId, DsError};

impl Mailboxes {
    /// Whether the mailboxes can take, from `sender`, new bodies of
    /// `body_bytes` together and items `adds` (a device and the size of
    /// its item; a device may come more than once): every device's item
    /// and byte limits, the sender person's share of each, the sender's
    /// own limit across all mailboxes, and the limit on all bodies.
    pub fn fits<'a>(
        &self,
        sender: &DeviceId,
        adds: impl IntoIterator<Item = (&'a DeviceId, usize)>,
        body_bytes: usize,
    ) -> Result<(), DsError> {
        let mut per: BTreeMap<&DeviceId, (usize, usize)> = BTreeMap::new();
        for (d, size) in adds {
            let e = per.entry(d).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(size);
        }
        let l = &self.limits;
        let share = l.sender_share_divisor.max(1);
        for (d, (n, b)) in &per {
            let q = self.queues.get(*d);
            let (items, bytes) = q.map_or((0, 0), |q| (q.items.len(), q.bytes));
            if items.saturating_add(*n) > l.mailbox_messages
                || bytes.saturating_add(*b) > l.mailbox_bytes
            {
                return Err(DsError::Capacity("a recipient's mailbox is full"));
            }
            let (mine_n, mine_b) = q
                .and_then(|q| q.by_person.get(&sender.user))
                .copied()
                .unwrap_or((0, 0));
            if mine_n.saturating_add(*n) > l.mailbox_messages / share
                || mine_b.saturating_add(*b) > l.mailbox_bytes / share
            {
                return Err(DsError::Capacity(
                    "the sender's share of a recipient's mailbox is used up",
                ));
            }
        }
        if self.queued_by(sender).saturating_add(body_bytes) > l.queued_bytes_per_sender {
            return Err(DsError::Capacity(
                "the sender has too much waiting in mailboxes",
            ));
        }
        if self
            .queued_by_person(&sender.user)
            .saturating_add(body_bytes)
            > l.queued_bytes_per_person
        {
            return Err(DsError::Capacity(
                "the sender's person has too much waiting in mailboxes",
            ));
        }
        if self.total_bytes.saturating_add(body_bytes) > l.total_mailbox_bytes {
            return Err(DsError::Capacity("all mailboxes together are full"));
        }
        Ok(())
    }
}
