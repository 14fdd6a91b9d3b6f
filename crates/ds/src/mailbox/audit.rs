//! A recount of every charge the mailboxes keep, against their running
//! counts: the oracle of the tests and of the fuzz target `ds_request`.

use std::collections::BTreeMap;

use blindrelay_wire::UserName;

use super::{BodyId, Mailboxes};
use crate::DeviceId;

impl Mailboxes {
    /// Recounts every charge from the items and bodies and compares it
    /// with the running counts: the first one that differs, or a body no
    /// item points at. For tests and fuzzing; costs a pass over
    /// everything.
    pub fn audit(&self) -> Result<(), &'static str> {
        let mut refs: BTreeMap<BodyId, usize> = BTreeMap::new();
        for q in self.queues.values() {
            let mut bytes = 0usize;
            let mut persons: BTreeMap<&UserName, (usize, usize)> = BTreeMap::new();
            for w in &q.items {
                let b = self.bodies.get(&w.body).ok_or("an item without its body")?;
                *refs.entry(w.body).or_default() += 1;
                bytes += b.size;
                if let Some(s) = &b.sender {
                    let e = persons.entry(&s.user).or_default();
                    e.0 += 1;
                    e.1 += b.size;
                }
            }
            if bytes != q.bytes {
                return Err("a queue's bytes");
            }
            if !persons
                .into_iter()
                .eq(q.by_person.iter().map(|(k, v)| (k, *v)))
            {
                return Err("a queue's charges per person");
            }
        }
        let mut total = 0usize;
        let mut senders: BTreeMap<&DeviceId, usize> = BTreeMap::new();
        let mut persons: BTreeMap<&UserName, usize> = BTreeMap::new();
        for (id, b) in &self.bodies {
            if refs.get(id).copied().unwrap_or(0) != b.refs || b.refs == 0 {
                return Err("a body's count of items");
            }
            total += b.size;
            if let Some(s) = &b.sender {
                *senders.entry(s).or_default() += b.size;
                *persons.entry(&s.user).or_default() += b.size;
            }
        }
        if total != self.total_bytes {
            return Err("the bytes of all bodies");
        }
        if !senders
            .into_iter()
            .eq(self.by_sender.iter().map(|(k, v)| (k, *v)))
        {
            return Err("the bytes per sending device");
        }
        if !persons
            .into_iter()
            .eq(self.by_person.iter().map(|(k, v)| (k, *v)))
        {
            return Err("the bytes per sending person");
        }
        Ok(())
    }

    /// The next sequence number `device` will be given.
    pub fn next_seq(&self, device: &DeviceId) -> u64 {
        self.queues.get(device).map_or(0, |q| q.next_seq)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use blindrelay_pki::DeviceName;

    use super::*;
    use crate::{Delivery, Limits};

    fn dev(user: &str) -> DeviceId {
        DeviceId {
            user: UserName::new(user).unwrap(),
            device: DeviceName::new("l").unwrap(),
        }
    }

    fn two_items() -> Mailboxes {
        let mut m = Mailboxes::new(Limits::default());
        let (a, b, c) = (dev("a"), dev("b"), dev("c"));
        let to: BTreeSet<DeviceId> = BTreeSet::from([b, c]);
        let item = Delivery::Group {
            group_id: b"g".to_vec(),
            message: b"m".to_vec(),
        };
        assert_eq!(m.deliver(&a, to.iter(), item), Ok(()));
        m
    }

    #[test]
    fn the_audit_finds_every_running_count_that_drifted() {
        assert_eq!(two_items().audit(), Ok(()));
        let mut m = two_items();
        m.total_bytes += 1;
        assert_eq!(m.audit(), Err("the bytes of all bodies"));
        let mut m = two_items();
        for b in m.bodies.values_mut() {
            b.refs = 1;
        }
        assert_eq!(m.audit(), Err("a body's count of items"));
        let mut m = two_items();
        m.by_sender.clear();
        assert_eq!(m.audit(), Err("the bytes per sending device"));
        let mut m = two_items();
        m.by_person.clear();
        assert_eq!(m.audit(), Err("the bytes per sending person"));
        let mut m = two_items();
        for q in m.queues.values_mut() {
            q.bytes += 1;
        }
        assert_eq!(m.audit(), Err("a queue's bytes"));
        let mut m = two_items();
        for q in m.queues.values_mut() {
            q.by_person.clear();
        }
        assert_eq!(m.audit(), Err("a queue's charges per person"));
        let mut m = two_items();
        m.bodies.clear();
        assert_eq!(m.audit(), Err("an item without its body"));
    }
}
