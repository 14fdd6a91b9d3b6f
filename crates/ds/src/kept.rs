//! Bodies kept in memory, for a Delivery Service that has no database:
//! the tests, the adversary's malicious Delivery Service and the fuzz
//! targets. The relay keeps its bodies in SQLite instead (its `v2::store`);
//! both follow [`Mailboxes`]' accounts the same way: store what
//! [`Mailboxes::take_appended`] gives, delete what
//! [`Mailboxes::take_released`] gives.

use std::collections::BTreeMap;

use crate::mailbox::{Appended, BodyId, Delivery, Mailboxes};

/// The bodies some mailbox item still points at.
#[derive(Default)]
pub struct Kept {
    bodies: BTreeMap<BodyId, Delivery>,
}

impl Kept {
    /// Nothing kept.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps what `mailboxes` took in and drops what they released since
    /// the last call; returns what was taken in.
    pub fn sync(&mut self, mailboxes: &mut Mailboxes) -> Appended {
        let appended = mailboxes.take_appended();
        for (id, body) in &appended.bodies {
            self.bodies.insert(*id, body.clone());
        }
        for id in mailboxes.take_released() {
            self.bodies.remove(&id);
        }
        appended
    }

    /// One body, if kept.
    pub fn get(&self, id: BodyId) -> Option<&Delivery> {
        self.bodies.get(&id)
    }

    /// How many bodies are kept.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether no body is kept.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// What `device` has not acknowledged, oldest first, with sequence
    /// numbers and bodies.
    pub fn pending(&self, mailboxes: &Mailboxes, device: &crate::DeviceId) -> Vec<(u64, Delivery)> {
        mailboxes
            .pending(device)
            .into_iter()
            .filter_map(|(seq, id)| self.get(id).map(|b| (seq, b.clone())))
            .collect()
    }
}
