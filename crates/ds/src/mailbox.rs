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
}

/// Every device's mailbox.
pub struct Mailboxes {
    limits: Limits,
    queues: BTreeMap<DeviceId, Queue>,
}

impl Mailboxes {
    /// No mailboxes yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            queues: BTreeMap::new(),
        }
    }

    /// Whether every one of `devices` has room for one more item.
    pub fn have_room<'a>(&self, devices: impl IntoIterator<Item = &'a DeviceId>) -> bool {
        devices.into_iter().all(|d| {
            self.queues
                .get(d)
                .is_none_or(|q| q.items.len() < self.limits.mailbox_messages)
        })
    }

    /// Appends `item` to each device's mailbox: all of them or, if one is
    /// full, none.
    pub fn deliver<'a>(
        &mut self,
        devices: impl IntoIterator<Item = &'a DeviceId> + Clone,
        item: &Delivery,
    ) -> Result<(), DsError> {
        if !self.have_room(devices.clone()) {
            return Err(DsError::Capacity("a recipient's mailbox is full"));
        }
        for d in devices {
            let q = self.queues.entry(d.clone()).or_default();
            q.items.push_back((q.next_seq, item.clone()));
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
                q.items.pop_front();
            }
        }
    }
}
