//! Delivery receipts in protocol v2: a device that has shown a member's
//! message says so, end to end, with a receipt in the same group (a
//! payload of v1's receipt content: the ids it read); the sender's device
//! tells its user which device confirmed which of its messages.
//!
//! * A receipt is an MLS application message like any other: the relay
//!   can drop it, not forge it; who sent it is MLS's answer.
//! * Receipts owed are gathered and sent at most every
//!   [`RECEIPT_INTERVAL`], at most [`MAX_RECEIPT_IDS`] ids each, so a
//!   burst read costs a few requests of the device's budget; at most
//!   [`MAX_OWED_RECEIPTS`] ids wait (past it the newest are not
//!   confirmed: a receipt is a courtesy, never needed for delivery).
//! * A receipt is taken only for ids of this device's own outbox in that
//!   group: a member cannot make it report another message as delivered.
//!   No receipt answers a receipt.

use std::collections::BTreeMap;
use std::time::Duration;

use blindrelay_ds::{Down, Request, Submission};
use blindrelay_e2e::content::{Content, MAX_RECEIPT_IDS};
use blindrelay_mls::Payload;
use blindrelay_wire::MessageId;

use super::member::{Member, V2Event, now_ms};
use crate::error::ClientError;

/// Receipts are sent at most this often.
pub const RECEIPT_INTERVAL: Duration = Duration::from_secs(1);
/// Most message ids waiting for a receipt, all groups together.
pub const MAX_OWED_RECEIPTS: usize = 4096;

/// Receipts this device owes, by group.
#[derive(Debug, Default)]
pub(super) struct Owed {
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
    fn due(&mut self) -> Vec<(Vec<u8>, Vec<MessageId>)> {
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

fn random_id() -> Result<MessageId, ClientError> {
    let mut id = [0u8; 16];
    blindrelay_e2e::seal::fill_random(&mut id).map_err(|_| ClientError::Crypto)?;
    Ok(MessageId(id))
}

impl Member {
    /// Sends the receipts that are due (see the module docs). A group this
    /// device cannot send in now (behind, left) drops its receipts.
    pub(super) async fn send_receipts(&mut self) -> Result<(), ClientError> {
        for (group, ids) in self.owed.due() {
            let Ok(epoch) = self.device.epoch(&group) else {
                continue;
            };
            if self.device.behind(&group)?.is_some() {
                continue;
            }
            let payload = Payload {
                id: random_id()?,
                written_ms: now_ms(),
                content: Content::Receipt(ids),
            };
            let message = match self.device.encrypt(&group, &payload.encode()) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "a receipt could not be made");
                    continue;
                }
            };
            let sub = Submission::Message {
                group_id: group,
                epoch,
                message,
            };
            match self.link.request(Request::Submit(sub)).await? {
                Down::Accepted { .. } => {}
                other => tracing::debug!(?other, "a receipt was not taken"),
            }
        }
        Ok(())
    }

    /// A member's receipt: which of this device's messages in `group`
    /// `by` confirms (ids of anything else are ignored).
    pub(super) fn read_receipt(
        &mut self,
        group: &[u8],
        by: (String, String),
        ids: &[MessageId],
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        let mut mine = Vec::new();
        for id in ids {
            if self.store.outbox_group(id)?.as_deref() == Some(group) && !mine.contains(id) {
                mine.push(*id);
            }
        }
        if !mine.is_empty() {
            events.push(V2Event::Delivered {
                group: group.to_vec(),
                ids: mine,
                by,
            });
        }
        Ok(())
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
