//! The client's state in memory: the same contract as the SQLite store
//! (checked by the same conformance tests), for the core's unit tests.

use std::collections::{BTreeMap, HashMap, VecDeque};

use blindrelay_wire::{MessageId, UserName};

use super::{
    ClientStore, HistoryEntry, MAX_HISTORY_ENTRIES, MAX_OUTBOX_ENTRIES, Outgoing, PinCheck,
    StoreError,
};

struct OutboxRow {
    /// Order of arrival (messages written in the same millisecond keep
    /// it, as SQLite's rowid does).
    n: u64,
    m: Outgoing,
    stored: bool,
    delivered_to: Vec<UserName>,
}

/// A [`ClientStore`] that forgets everything when dropped.
#[derive(Default)]
pub struct MemoryStore {
    pins: HashMap<UserName, [u8; 32]>,
    seen: HashMap<(UserName, MessageId), u64>,
    outbox: BTreeMap<MessageId, OutboxRow>,
    outbox_added: u64,
    history: VecDeque<HistoryEntry>,
    window: VecDeque<u64>,
    crl: Option<Vec<u8>>,
}

fn cap(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl ClientStore for MemoryStore {
    fn check_pin(
        &mut self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<PinCheck, StoreError> {
        match self.pins.get(name) {
            None => {
                self.pin(name, fingerprint, cert, now_ms)?;
                Ok(PinCheck::FirstUse)
            }
            Some(p) if p == fingerprint => Ok(PinCheck::Match),
            Some(p) => Ok(PinCheck::Changed { pinned: *p }),
        }
    }

    fn pin(
        &mut self,
        name: &UserName,
        fingerprint: &[u8; 32],
        _cert: &[u8],
        _now_ms: u64,
    ) -> Result<(), StoreError> {
        self.pins.insert(name.clone(), *fingerprint);
        Ok(())
    }

    fn seen(&self, sender: &UserName, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.seen.contains_key(&(sender.clone(), *id)))
    }

    fn record_seen(
        &mut self,
        sender: &UserName,
        id: &MessageId,
        ts_ms: u64,
    ) -> Result<bool, StoreError> {
        let key = (sender.clone(), *id);
        if self.seen.contains_key(&key) {
            return Ok(false);
        }
        self.seen.insert(key, ts_ms);
        Ok(true)
    }

    fn seen_count(&self, sender: &UserName, horizon_ms: u64) -> Result<u64, StoreError> {
        Ok(self
            .seen
            .iter()
            .filter(|((s, _), ts)| s == sender && **ts >= horizon_ms)
            .count() as u64)
    }

    fn prune_seen(&mut self, horizon_ms: u64) -> Result<(), StoreError> {
        self.seen.retain(|_, ts| *ts >= horizon_ms);
        Ok(())
    }

    fn outbox_add(&mut self, m: &Outgoing) -> Result<(), StoreError> {
        self.outbox_added += 1;
        let n = self.outbox_added;
        self.outbox.entry(m.msg_id).or_insert_with(|| OutboxRow {
            n,
            m: m.clone(),
            stored: false,
            delivered_to: Vec::new(),
        });
        Ok(())
    }

    fn outbox_stored(&mut self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(match self.outbox.get_mut(id) {
            Some(row) if !row.stored => {
                row.stored = true;
                true
            }
            _ => false,
        })
    }

    fn outbox_delivered(&mut self, id: &MessageId, by: &UserName) -> Result<bool, StoreError> {
        let Some(row) = self.outbox.get_mut(id) else {
            return Ok(false);
        };
        if !row.m.recipients.contains(by) || row.delivered_to.contains(by) {
            return Ok(false);
        }
        row.delivered_to.push(by.clone());
        Ok(true)
    }

    fn outbox_give_up(&mut self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(match self.outbox.get(id) {
            Some(row) if !row.stored => self.outbox.remove(id).is_some(),
            _ => false,
        })
    }

    fn outbox_group(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.outbox.get(id).and_then(|r| r.m.group.clone()))
    }

    fn outbox_waiting(&self) -> Result<u64, StoreError> {
        Ok(self.outbox.values().filter(|r| !r.stored).count() as u64)
    }

    fn outbox_unconfirmed(&self) -> Result<Vec<Outgoing>, StoreError> {
        let mut rows: Vec<&OutboxRow> = self.outbox.values().filter(|r| !r.stored).collect();
        rows.sort_by_key(|r| (r.m.created_ms, r.n));
        Ok(rows.into_iter().map(|r| r.m.clone()).collect())
    }

    fn prune_outbox(&mut self, before_ms: u64) -> Result<Vec<Outgoing>, StoreError> {
        let mut dropped: Vec<Outgoing> = self
            .outbox
            .values()
            .filter(|r| !r.stored && r.m.created_ms < before_ms)
            .map(|r| r.m.clone())
            .collect();
        dropped.sort_by_key(|m| m.created_ms);
        self.outbox.retain(|_, r| r.m.created_ms >= before_ms);
        let mut stored: Vec<(u64, MessageId)> = self
            .outbox
            .iter()
            .filter(|(_, r)| r.stored)
            .map(|(id, r)| (r.m.created_ms, *id))
            .collect();
        stored.sort_unstable_by(|a, b| b.cmp(a));
        for (_, id) in stored.iter().skip(cap(MAX_OUTBOX_ENTRIES)) {
            self.outbox.remove(id);
        }
        Ok(dropped)
    }

    fn history_add(&mut self, h: &HistoryEntry) -> Result<(), StoreError> {
        self.history.push_back(h.clone());
        while self.history.len() > cap(MAX_HISTORY_ENTRIES) {
            self.history.pop_front();
        }
        Ok(())
    }

    fn history_recent(&self, n: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let skip = self.history.len().saturating_sub(n);
        Ok(self.history.iter().skip(skip).cloned().collect())
    }

    fn window_add(&mut self, at_ms: u64, forget_before_ms: u64) -> Result<(), StoreError> {
        self.window.retain(|t| *t >= forget_before_ms);
        if self.window.len() >= super::MAX_WINDOW_ENTRIES {
            self.window.pop_front();
        }
        self.window.push_back(at_ms);
        Ok(())
    }

    fn window_since(&self, since_ms: u64) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .window
            .iter()
            .copied()
            .filter(|t| *t >= since_ms)
            .collect())
    }

    fn crl(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.crl.clone())
    }

    fn set_crl(&mut self, der: &[u8]) -> Result<(), StoreError> {
        self.crl = Some(der.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[test]
    fn the_memory_store_keeps_the_contract() {
        conformance::pins_and_replays(&mut MemoryStore::default());
        conformance::outbox_and_history(&mut MemoryStore::default());
        conformance::same_millisecond_order(&mut MemoryStore::default());
        conformance::send_window(&mut MemoryStore::default());
    }
}
