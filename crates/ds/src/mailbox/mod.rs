//! Per-device mailboxes: what each device has yet to read, in the order
//! the relay decided, until it acknowledges it or the item expires.
//!
//! Every item is charged to the device that submitted it: one person may
//! fill at most a share of any one recipient's mailbox
//! ([`Limits::sender_share_divisor`]), and one device may have at most
//! [`Limits::queued_bytes_per_sender`] waiting in all mailboxes together,
//! so no device can use up what everyone shares. Items older than
//! [`Limits::mailbox_ttl_secs`] expire ([`Mailboxes::expire`]).
//!
//! What is queued is not kept here: an item is a sequence number and a
//! [`BodyId`], and a body goes to every recipient as one stored copy. The
//! mailboxes number bodies and keep their sizes and charges; the I/O
//! layer stores the bytes ([`Mailboxes::take_appended`]) and deletes them
//! when no item points at them ([`Mailboxes::take_released`]). A body is
//! charged to its sender and to all mailboxes together once; each
//! recipient's mailbox is charged its whole size.

use std::collections::{BTreeMap, VecDeque};

use blindrelay_wire::UserName;

use crate::{DeviceId, DsError, Limits};

mod audit;
mod fits;

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

/// One stored body (a commit, message or Welcome), shared by every
/// mailbox item that points at it. Bodies are numbered by the mailboxes
/// and kept by the I/O layer (the relay: one SQLite row each); the
/// mailboxes hold only their numbers, sizes and charges, never their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BodyId(pub u64);

/// What the mailboxes know of one body: its size, who it is charged to,
/// when it was accepted, and how many items still point at it.
struct Body {
    size: usize,
    /// The device that submitted it (unknown for items stored by an older
    /// relay: charged to nobody).
    sender: Option<DeviceId>,
    /// When it was accepted (Unix seconds, the relay's clock).
    at: u64,
    refs: usize,
}

/// One item waiting: a sequence number and the body it delivers.
struct Waiting {
    seq: u64,
    body: BodyId,
}

#[derive(Default)]
struct Queue {
    next_seq: u64,
    items: VecDeque<Waiting>,
    /// Bytes of `items` (see [`Delivery::size`]): each recipient is
    /// charged the whole body.
    bytes: usize,
    /// Items and bytes in this queue per sending person.
    by_person: BTreeMap<UserName, (usize, usize)>,
}

/// What the mailboxes took in since [`Mailboxes::take_appended`] last
/// ran: what the I/O layer must store before it confirms anything.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Each new body once, however many devices it goes to.
    pub bodies: Vec<(BodyId, Delivery)>,
    /// Each new item: its device, its sequence number and its body.
    pub items: Vec<(DeviceId, u64, BodyId)>,
}

impl Appended {
    /// Nothing was taken in (a body never comes without an item).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
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
    /// Every body some item still points at.
    bodies: BTreeMap<BodyId, Body>,
    /// The number the next body gets.
    next_body: u64,
    /// Bytes of all bodies together (each body once).
    total_bytes: usize,
    /// Bytes of bodies per sending device (each body once).
    by_sender: BTreeMap<DeviceId, usize>,
    /// Bytes of bodies per sending person, all their devices together.
    by_person: BTreeMap<UserName, usize>,
    /// The relay's clock (Unix seconds), set by the I/O layer.
    now: u64,
    /// Taken in since [`Mailboxes::take_appended`] last ran.
    appended: Appended,
    /// Bodies no item points at any more, since
    /// [`Mailboxes::take_released`] last ran: the I/O layer deletes them.
    released: Vec<BodyId>,
}

impl Mailboxes {
    /// No mailboxes yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            queues: BTreeMap::new(),
            bodies: BTreeMap::new(),
            next_body: 0,
            total_bytes: 0,
            by_sender: BTreeMap::new(),
            by_person: BTreeMap::new(),
            now: 0,
            appended: Appended::default(),
            released: Vec::new(),
        }
    }

    /// Sets the clock new items are stamped with and expiry is judged by.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Puts back a body read from storage (at start-up), before the items
    /// that point at it: its size, its sender and when it was accepted.
    /// Bodies no item points at are released again at the first
    /// [`Mailboxes::take_released`] after [`Mailboxes::restored`].
    pub fn restore_body(&mut self, id: BodyId, size: usize, sender: Option<DeviceId>, at: u64) {
        self.next_body = self.next_body.max(id.0.saturating_add(1));
        if self.bodies.contains_key(&id) {
            return;
        }
        if let Some(s) = &sender {
            self.charge(s, size);
        } else {
            self.total_bytes = self.total_bytes.saturating_add(size);
        }
        self.bodies.insert(
            id,
            Body {
                size,
                sender,
                at,
                refs: 0,
            },
        );
    }

    /// Puts back an item read from storage (at start-up), in order. An
    /// item whose body was not restored is skipped (`false`).
    pub fn restore_item(&mut self, device: &DeviceId, seq: u64, body: BodyId) -> bool {
        if !self.bodies.contains_key(&body) {
            return false;
        }
        self.push(device, seq, body);
        if let Some(q) = self.queues.get_mut(device) {
            q.next_seq = q.next_seq.max(seq.saturating_add(1));
        }
        true
    }

    /// The number the next body will get.
    pub fn next_body(&self) -> BodyId {
        BodyId(self.next_body)
    }

    /// Body numbers resume at `next` at the earliest (a state rebuilt
    /// while the relay runs must not give a number again that a reader may
    /// still look up).
    pub fn restore_next_body(&mut self, next: BodyId) {
        self.next_body = self.next_body.max(next.0);
    }

    /// Start-up is over: bodies that no restored item points at are
    /// released (the I/O layer deletes them).
    pub fn restored(&mut self) {
        let orphans: Vec<BodyId> = self
            .bodies
            .iter()
            .filter(|(_, b)| b.refs == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in orphans {
            self.release(id);
        }
    }

    /// Adds an item to `device`'s queue, charging it there.
    fn push(&mut self, device: &DeviceId, seq: u64, body: BodyId) {
        let Some(b) = self.bodies.get_mut(&body) else {
            return;
        };
        b.refs = b.refs.saturating_add(1);
        let (size, person) = (b.size, b.sender.as_ref().map(|s| s.user.clone()));
        let q = self.queues.entry(device.clone()).or_default();
        q.bytes = q.bytes.saturating_add(size);
        if let Some(p) = person {
            let e = q.by_person.entry(p).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(size);
        }
        q.items.push_back(Waiting { seq, body });
    }

    /// Takes one item's charges off its queue; its body is released when
    /// no item points at it any more.
    fn uncharge(&mut self, device: &DeviceId, w: &Waiting) {
        let Some(b) = self.bodies.get_mut(&w.body) else {
            return;
        };
        b.refs = b.refs.saturating_sub(1);
        let (size, refs) = (b.size, b.refs);
        let person = b.sender.as_ref().map(|s| s.user.clone());
        if let Some(q) = self.queues.get_mut(device) {
            q.bytes = q.bytes.saturating_sub(size);
            if let Some(p) = &person
                && let Some(e) = q.by_person.get_mut(p)
            {
                e.0 = e.0.saturating_sub(1);
                e.1 = e.1.saturating_sub(size);
                if e.0 == 0 {
                    q.by_person.remove(p);
                }
            }
        }
        if refs == 0 {
            self.release(w.body);
        }
    }

    /// Forgets a body and its charges; the I/O layer is told to delete it.
    fn release(&mut self, id: BodyId) {
        let Some(b) = self.bodies.remove(&id) else {
            return;
        };
        self.total_bytes = self.total_bytes.saturating_sub(b.size);
        if let Some(s) = &b.sender {
            down(&mut self.by_sender, s, b.size);
            down(&mut self.by_person, &s.user, b.size);
        }
        self.released.push(id);
    }

    /// Charges a new body of `size` to `sender`, its person and the total.
    fn charge(&mut self, sender: &DeviceId, size: usize) {
        self.total_bytes = self.total_bytes.saturating_add(size);
        let t = self.by_sender.entry(sender.clone()).or_default();
        *t = t.saturating_add(size);
        let t = self.by_person.entry(sender.user.clone()).or_default();
        *t = t.saturating_add(size);
    }

    /// Bytes the devices of `person` have waiting in all mailboxes
    /// together (each body once).
    pub fn queued_by_person(&self, person: &UserName) -> usize {
        self.by_person.get(person).copied().unwrap_or(0)
    }

    /// Bytes `sender` has waiting in all mailboxes together (each body
    /// once, however many devices it goes to).
    pub fn queued_by(&self, sender: &DeviceId) -> usize {
        self.by_sender.get(sender).copied().unwrap_or(0)
    }

    /// Bytes of all bodies waiting (each once).
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Bodies some item still points at.
    pub fn bodies(&self) -> usize {
        self.bodies.len()
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
                let last = self.drop_front_while(&d, |at, _| at.saturating_add(ttl) < now)?;
                Some((d, last))
            })
            .collect()
    }

    /// Drops the oldest items of `device`'s queue while `old` holds for
    /// them (given when each was accepted and its sequence number), with
    /// their charges; the last sequence number dropped.
    fn drop_front_while(
        &mut self,
        device: &DeviceId,
        old: impl Fn(u64, u64) -> bool,
    ) -> Option<u64> {
        let mut last = None;
        loop {
            let due = self
                .queues
                .get(device)
                .and_then(|q| q.items.front())
                .is_some_and(|w| {
                    let at = self.bodies.get(&w.body).map_or(0, |b| b.at);
                    old(at, w.seq)
                });
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

    /// The bodies and items taken in since the last call.
    pub fn take_appended(&mut self) -> Appended {
        std::mem::take(&mut self.appended)
    }

    /// The bodies no item points at any more, since the last call.
    pub fn take_released(&mut self) -> Vec<BodyId> {
        std::mem::take(&mut self.released)
    }

    /// Up to `max` items of `device`'s mailbox from `from_seq` on, and no
    /// more than `max_bytes` of bodies together (but always one item if
    /// there is one): their sequence numbers and bodies.
    pub fn pending_from(
        &self,
        device: &DeviceId,
        from_seq: u64,
        (max, max_bytes): (usize, usize),
    ) -> Vec<(u64, BodyId)> {
        let Some(q) = self.queues.get(device) else {
            return Vec::new();
        };
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for w in q.items.iter().filter(|w| w.seq >= from_seq).take(max) {
            let size = self.bodies.get(&w.body).map_or(0, |b| b.size);
            bytes = bytes.saturating_add(size);
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push((w.seq, w.body));
        }
        out
    }

    /// Drops every item of `device` (its certificate was revoked: it will
    /// never read them), with their charges; bodies no item points at any
    /// more are released. Its numbering is kept.
    pub fn forget(&mut self, device: &DeviceId) {
        self.drop_front_while(device, |_, _| true);
    }

    /// Appends `item` from `sender` to each device's mailbox, as one body
    /// they all point at: all of them or, if one has no room, none. No
    /// devices, no body.
    pub fn deliver<'a>(
        &mut self,
        sender: &DeviceId,
        devices: impl IntoIterator<Item = &'a DeviceId> + Clone,
        item: Delivery,
    ) -> Result<(), DsError> {
        let size = item.size();
        let mut devices = devices.into_iter().peekable();
        if devices.peek().is_none() {
            return Ok(());
        }
        let devices: Vec<&DeviceId> = devices.collect();
        self.fits(sender, devices.iter().map(|d| (*d, size)), size)?;
        let id = BodyId(self.next_body);
        self.next_body = self.next_body.saturating_add(1);
        self.charge(sender, size);
        self.bodies.insert(
            id,
            Body {
                size,
                sender: Some(sender.clone()),
                at: self.now,
                refs: 0,
            },
        );
        self.appended.bodies.push((id, item));
        for d in devices {
            let seq = self.next_seq(d);
            self.push(d, seq, id);
            if let Some(q) = self.queues.get_mut(d) {
                q.next_seq = seq.saturating_add(1);
            }
            self.appended.items.push((d.clone(), seq, id));
        }
        Ok(())
    }

    /// What `device` has not acknowledged, oldest first: sequence numbers
    /// and bodies.
    pub fn pending(&self, device: &DeviceId) -> Vec<(u64, BodyId)> {
        self.pending_from(device, 0, (usize::MAX, usize::MAX))
    }

    /// `device` has read everything up to and including `seq`.
    pub fn ack(&mut self, device: &DeviceId, seq: u64) {
        self.drop_front_while(device, |_, s| s <= seq);
    }
}

/// Takes `size` off `key`'s count, forgetting it at zero.
fn down<K: Ord>(counts: &mut BTreeMap<K, usize>, key: &K, size: usize) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(size);
        if *n == 0 {
            counts.remove(key);
        }
    }
}
