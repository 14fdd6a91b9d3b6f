//! Per-device mailboxes: what each device has yet to read, in the order
//! the relay decided, until it acknowledges it.

use std::collections::{BTreeMap, VecDeque};

use crate::{DeviceId, DsError, Limits};

/// One item for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A group's message (commit, proposal or application), in the group's
    /// order.
    Group {
        /// The group.
        group_id: Vec<u8>,
        /// The MLS message.
        message: Vec<u8>,
    },
    /// A Welcome into a group.
    Welcome {
        /// The group.
        group_id: Vec<u8>,
        /// The MLS Welcome.
        welcome: Vec<u8>,
    },
}

#[derive(Default)]
struct Queue {
    next_seq: u64,
    items: VecDeque<(u64, Delivery)>,
    /// Bytes of `items` (see [`Delivery::size`]).
    bytes: usize,
}

impl Delivery {
    /// What an item counts against the byte limits: its group id and its
    /// MLS bytes.
    pub fn size(&self) -> usize {
        match self {
            Delivery::Group { group_id, message } => group_id.len().saturating_add(message.len()),
            Delivery::Welcome { group_id, welcome } => group_id.len().saturating_add(welcome.len()),
        }
    }
}

/// Every device's mailbox.
pub struct Mailboxes {
    limits: Limits,
    queues: BTreeMap<DeviceId, Queue>,
    /// Bytes in all queues.
    total_bytes: usize,
    /// Items appended since [`Mailboxes::take_appended`] last ran: what
    /// the I/O layer must store before it confirms anything.
    appended: Vec<(DeviceId, u64, Delivery)>,
}

impl Mailboxes {
    /// No mailboxes yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            queues: BTreeMap::new(),
            total_bytes: 0,
            appended: Vec::new(),
        }
    }

    /// Puts back an item read from storage (at start-up), in order.
    pub fn restore(&mut self, device: &DeviceId, seq: u64, item: Delivery) {
        let q = self.queues.entry(device.clone()).or_default();
        let size = item.size();
        q.bytes = q.bytes.saturating_add(size);
        self.total_bytes = self.total_bytes.saturating_add(size);
        q.items.push_back((seq, item));
        q.next_seq = q.next_seq.max(seq.saturating_add(1));
    }

    /// Sets where a device's numbering resumes (at start-up: one past the
    /// highest sequence number it was ever given, so numbers never repeat).
    pub fn restore_next(&mut self, device: &DeviceId, next_seq: u64) {
        let q = self.queues.entry(device.clone()).or_default();
        q.next_seq = q.next_seq.max(next_seq);
    }

    /// The items appended since the last call, with their devices and
    /// sequence numbers.
    pub fn take_appended(&mut self) -> Vec<(DeviceId, u64, Delivery)> {
        std::mem::take(&mut self.appended)
    }

    /// Up to `max` items of `device`'s mailbox from `from_seq` on.
    pub fn pending_from(
        &self,
        device: &DeviceId,
        from_seq: u64,
        max: usize,
    ) -> Vec<(u64, Delivery)> {
        self.queues
            .get(device)
            .map(|q| {
                q.items
                    .iter()
                    .filter(|(s, _)| *s >= from_seq)
                    .take(max)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The next sequence number `device` will be given.
    pub fn next_seq(&self, device: &DeviceId) -> u64 {
        self.queues.get(device).map_or(0, |q| q.next_seq)
    }

    /// Whether the mailboxes can take all of `adds` (a device and the size
    /// of an item for it; a device may come more than once): every
    /// device's item and byte limits, and the limit on all bytes together.
    pub fn fits<'a>(&self, adds: impl IntoIterator<Item = (&'a DeviceId, usize)>) -> bool {
        let mut per: BTreeMap<&DeviceId, (usize, usize)> = BTreeMap::new();
        let mut total = self.total_bytes;
        for (d, size) in adds {
            let e = per.entry(d).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(size);
            total = total.saturating_add(size);
        }
        total <= self.limits.total_mailbox_bytes
            && per.iter().all(|(d, (n, b))| {
                let (items, bytes) = self
                    .queues
                    .get(*d)
                    .map_or((0, 0), |q| (q.items.len(), q.bytes));
                items.saturating_add(*n) <= self.limits.mailbox_messages
                    && bytes.saturating_add(*b) <= self.limits.mailbox_bytes
            })
    }

    /// Appends `item` to each device's mailbox: all of them or, if one
    /// has no room, none.
    pub fn deliver<'a>(
        &mut self,
        devices: impl IntoIterator<Item = &'a DeviceId> + Clone,
        item: &Delivery,
    ) -> Result<(), DsError> {
        let size = item.size();
        if !self.fits(devices.clone().into_iter().map(|d| (d, size))) {
            return Err(DsError::Capacity("a recipient's mailbox is full"));
        }
        for d in devices {
            let q = self.queues.entry(d.clone()).or_default();
            q.items.push_back((q.next_seq, item.clone()));
            q.bytes = q.bytes.saturating_add(size);
            self.total_bytes = self.total_bytes.saturating_add(size);
            self.appended.push((d.clone(), q.next_seq, item.clone()));
            q.next_seq += 1;
        }
        Ok(())
    }

    /// What `device` has not acknowledged, oldest first, with sequence
    /// numbers.
    pub fn pending(&self, device: &DeviceId) -> Vec<(u64, Delivery)> {
        self.queues
            .get(device)
            .map(|q| q.items.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// `device` has read everything up to and including `seq`.
    pub fn ack(&mut self, device: &DeviceId, seq: u64) {
        if let Some(q) = self.queues.get_mut(device) {
            while q.items.front().is_some_and(|(s, _)| *s <= seq) {
                if let Some((_, item)) = q.items.pop_front() {
                    let size = item.size();
                    q.bytes = q.bytes.saturating_sub(size);
                    self.total_bytes = self.total_bytes.saturating_sub(size);
                }
            }
        }
    }
}
