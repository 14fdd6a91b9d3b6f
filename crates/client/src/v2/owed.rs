//! Receipts a device owes for members' messages it has shown, by group
//! (sent by `receipts`): gathered, sent at most every
//! [`RECEIPT_INTERVAL`] with at most [`MAX_RECEIPT_IDS`] ids per group, and
//! at most [`MAX_OWED_RECEIPTS`] waiting (past it the newest are not
//! confirmed: a receipt is a courtesy, never needed for delivery).

use std::collections::BTreeMap;
use std::time::Duration;

use blindrelay_e2e::content::MAX_RECEIPT_IDS;
use blindrelay_wire::MessageId;

/// Receipts are sent at most this often.
pub const RECEIPT_INTERVAL: Duration = Duration::from_secs(1);
/// Most message ids waiting for a receipt, all groups together.
pub const MAX_OWED_RECEIPTS: usize = 4096;

/// Receipts this device owes, by group.
#[derive(Debug, Default)]
pub(crate) struct Owed {
    by_group: BTreeMap<Vec<u8>, Vec<MessageId>>,
    count: usize,
    last_sent: Option<tokio::time::Instant>,
}

impl Owed {
    /// A member's message `id` in `group` was shown.
    pub(super) fn owe(&mut self, group: &[u8], id: MessageId) {
        if self.count >= MAX_OWED_RECEIPTS {
            tracing::debug!("too many receipts owed; this one is not sent");
            return;
        }
        self.by_group.entry(group.to_vec()).or_default().push(id);
        self.count += 1;
    }

    /// The receipts due now (at most one per group, each at most
    /// [`MAX_RECEIPT_IDS`] ids); the rest wait for the next time.
    pub(super) fn due(&mut self) -> Vec<(Vec<u8>, Vec<MessageId>)> {
        if self.count == 0
            || self
                .last_sent
                .is_some_and(|t| t.elapsed() < RECEIPT_INTERVAL)
        {
            return Vec::new();
        }
        self.last_sent = Some(tokio::time::Instant::now());
        let mut out = Vec::new();
        for (group, ids) in &mut self.by_group {
            let n = ids.len().min(MAX_RECEIPT_IDS);
            out.push((group.clone(), ids.drain(..n).collect::<Vec<_>>()));
            self.count -= n;
        }
        self.by_group.retain(|_, ids| !ids.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn receipts_are_gathered_per_group_bounded_and_sent_at_most_once_a_second() {
        let mut o = Owed::default();
        for i in 0..150u8 {
            o.owe(b"a", MessageId([i; 16]));
        }
        o.owe(b"b", MessageId([1; 16]));
        let due = o.due();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].1.len(), MAX_RECEIPT_IDS);
        assert_eq!(due[1].1, [MessageId([1; 16])]);
        assert!(o.due().is_empty(), "not again within the interval");
        o.last_sent = None;
        assert_eq!(o.due()[0].1.len(), 50);
        for _ in 0..MAX_OWED_RECEIPTS + 5 {
            o.owe(b"c", MessageId([0; 16]));
        }
        assert_eq!(o.count, MAX_OWED_RECEIPTS);
    }
}
