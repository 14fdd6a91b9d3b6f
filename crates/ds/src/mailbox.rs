//! Per-device mailboxes: what each device has yet to read, in the order
//! the relay decided, until it acknowledges it or the item expires.
//!
//! Every item is charged to the device that submitted it: one person may
//! fill at most a share of any one recipient's mailbox
//! ([`Limits::sender_share_divisor`]), and one device may have at most
//! [`Limits::queued_bytes_per_sender`] waiting in all mailboxes together,
//! so no device can use up what everyone shares. Items older than
//! [`Limits::mailbox_ttl_secs`] expire ([`Mailboxes::expire`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use blindrelay_wire::UserName;

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

/// One item waiting, with what it is charged to. The item is shared by
/// every recipient's queue (one copy in memory, however many devices it
/// goes to).
struct Waiting {
    seq: u64,
    item: Arc<Delivery>,
    /// The device that submitted it (unknown for items stored by an older
    /// relay: charged to nobody).
    sender: Option<DeviceId>,
    /// When it was accepted (Unix seconds, the relay's clock).
    at: u64,
}

#[derive(Default)]
struct Queue {
    next_seq: u64,
    items: VecDeque<Waiting>,
    /// Bytes of `items` (see [`Delivery::size`]).
    bytes: usize,
    /// Items and bytes in this queue per sending person.
    by_person: BTreeMap<UserName, (usize, usize)>,
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
    /// Bytes in all queues per sending device.
    by_sender: BTreeMap<DeviceId, usize>,
    /// The relay's clock (Unix seconds), set by the I/O layer.
    now: u64,
    /// Items appended since [`Mailboxes::take_appended`] last ran: what
    /// the I/O layer must store before it confirms anything.
    appended: Vec<(DeviceId, u64, Arc<Delivery>)>,
}

impl Mailboxes {
    /// No mailboxes yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            queues: BTreeMap::new(),
            total_bytes: 0,
            by_sender: BTreeMap::new(),
            now: 0,
            appended: Vec::new(),
        }
    }

    /// Sets the clock new items are stamped with and expiry is judged by.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Puts back an item read from storage (at start-up), in order, with
    /// no sender and stamped now.
    pub fn restore(&mut self, device: &DeviceId, seq: u64, item: Delivery) {
        let now = self.now;
        self.restore_with(device, seq, item, None, now);
    }

    /// Puts back an item read from storage (at start-up), in order, with
    /// its sender and when it was accepted.
    pub fn restore_with(
        &mut self,
        device: &DeviceId,
        seq: u64,
        item: Delivery,
        sender: Option<DeviceId>,
        at: u64,
    ) {
        self.push(device, seq, Arc::new(item), sender, at);
        if let Some(q) = self.queues.get_mut(device) {
            q.next_seq = q.next_seq.max(seq.saturating_add(1));
        }
    }

    fn push(
        &mut self,
        device: &DeviceId,
        seq: u64,
        item: Arc<Delivery>,
        sender: Option<DeviceId>,
        at: u64,
    ) {
        let q = self.queues.entry(device.clone()).or_default();
        let size = item.size();
        q.bytes = q.bytes.saturating_add(size);
        self.total_bytes = self.total_bytes.saturating_add(size);
        if let Some(s) = &sender {
            let e = q.by_person.entry(s.user.clone()).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(size);
            let t = self.by_sender.entry(s.clone()).or_default();
            *t = t.saturating_add(size);
        }
        q.items.push_back(Waiting {
            seq,
            item,
            sender,
            at,
        });
    }

    /// Takes one item's charges off its queue, its sender and the total.
    fn uncharge(&mut self, device: &DeviceId, w: &Waiting) {
        let size = w.item.size();
        self.total_bytes = self.total_bytes.saturating_sub(size);
        if let Some(q) = self.queues.get_mut(device) {
            q.bytes = q.bytes.saturating_sub(size);
            if let Some(s) = &w.sender
                && let Some(e) = q.by_person.get_mut(&s.user)
            {
                e.0 = e.0.saturating_sub(1);
                e.1 = e.1.saturating_sub(size);
                if e.0 == 0 {
                    q.by_person.remove(&s.user);
                }
            }
        }
        if let Some(s) = &w.sender
            && let Some(t) = self.by_sender.get_mut(s)
        {
            *t = t.saturating_sub(size);
            if *t == 0 {
                self.by_sender.remove(s);
            }
        }
    }

    /// Bytes `sender` has waiting in all mailboxes together.
    pub fn queued_by(&self, sender: &DeviceId) -> usize {
        self.by_sender.get(sender).copied().unwrap_or(0)
    }

    /// Drops every item accepted more than [`Limits::mailbox_ttl_secs`]
    /// before `now`; returns, per device, the highest sequence number
    /// dropped (the I/O layer deletes up to it: expired items are always
    /// the oldest of a queue).
    pub fn expire(&mut self, now: u64) -> Vec<(DeviceId, u64)> {
        let ttl = self.limits.mailbox_ttl_secs;
        let devices: Vec<DeviceId> = self.queues.keys().cloned().collect();
        devices
            .into_iter()
            .filter_map(|d| {
                let last = self.drop_front_while(&d, |w| w.at.saturating_add(ttl) < now)?;
                Some((d, last))
            })
            .collect()
    }

    /// Drops the oldest items of `device`'s queue while `old` holds for
    /// them, with their charges; the last sequence number dropped.
    fn drop_front_while(
        &mut self,
        device: &DeviceId,
        old: impl Fn(&Waiting) -> bool,
    ) -> Option<u64> {
        let mut last = None;
        loop {
            let due = self
                .queues
                .get(device)
                .and_then(|q| q.items.front())
                .is_some_and(&old);
            if !due {
                return last;
            }
            let w = self
                .queues
                .get_mut(device)
                .and_then(|q| q.items.pop_front())?;
            last = Some(w.seq);
            self.uncharge(device, &w);
        }
    }

    /// Sets where a device's numbering resumes (at start-up: one past the
    /// highest sequence number it was ever given, so numbers never repeat).
    pub fn restore_next(&mut self, device: &DeviceId, next_seq: u64) {
        let q = self.queues.entry(device.clone()).or_default();
        q.next_seq = q.next_seq.max(next_seq);
    }

    /// The items appended since the last call, with their devices and
    /// sequence numbers (an item for several devices is shared, not copied:
    /// `Arc::ptr_eq` tells the I/O layer it is one body).
    pub fn take_appended(&mut self) -> Vec<(DeviceId, u64, Arc<Delivery>)> {
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
                    .filter(|w| w.seq >= from_seq)
                    .take(max)
                    .map(|w| (w.seq, Delivery::clone(&w.item)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The next sequence number `device` will be given.
    pub fn next_seq(&self, device: &DeviceId) -> u64 {
        self.queues.get(device).map_or(0, |q| q.next_seq)
    }

    /// Whether the mailboxes can take all of `adds` from `sender` (a
    /// device and the size of an item for it; a device may come more than
    /// once): every device's item and byte limits, the sender person's
    /// share of each, the sender's own limit across all mailboxes, and the
    /// limit on all bytes together.
    pub fn fits<'a>(
        &self,
        sender: &DeviceId,
        adds: impl IntoIterator<Item = (&'a DeviceId, usize)>,
    ) -> Result<(), DsError> {
        let mut per: BTreeMap<&DeviceId, (usize, usize)> = BTreeMap::new();
        let mut added = 0usize;
        for (d, size) in adds {
            let e = per.entry(d).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(size);
            added = added.saturating_add(size);
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
        if self.queued_by(sender).saturating_add(added) > l.queued_bytes_per_sender {
            return Err(DsError::Capacity(
                "the sender has too much waiting in mailboxes",
            ));
        }
        if self.total_bytes.saturating_add(added) > l.total_mailbox_bytes {
            return Err(DsError::Capacity("all mailboxes together are full"));
        }
        Ok(())
    }

    /// Appends `item` from `sender` to each device's mailbox: all of them
    /// or, if one has no room, none.
    pub fn deliver<'a>(
        &mut self,
        sender: &DeviceId,
        devices: impl IntoIterator<Item = &'a DeviceId> + Clone,
        item: Delivery,
    ) -> Result<(), DsError> {
        let size = item.size();
        self.fits(sender, devices.clone().into_iter().map(|d| (d, size)))?;
        let now = self.now;
        let shared = Arc::new(item);
        for d in devices {
            let seq = self.next_seq(d);
            self.push(d, seq, shared.clone(), Some(sender.clone()), now);
            if let Some(q) = self.queues.get_mut(d) {
                q.next_seq = seq.saturating_add(1);
            }
            self.appended.push((d.clone(), seq, shared.clone()));
        }
        Ok(())
    }

    /// What `device` has not acknowledged, oldest first, with sequence
    /// numbers.
    pub fn pending(&self, device: &DeviceId) -> Vec<(u64, Delivery)> {
        self.queues
            .get(device)
            .map(|q| {
                q.items
                    .iter()
                    .map(|w| (w.seq, Delivery::clone(&w.item)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `device` has read everything up to and including `seq`.
    pub fn ack(&mut self, device: &DeviceId, seq: u64) {
        self.drop_front_while(device, |w| w.seq <= seq);
    }
}
