//! Delivery receipts in protocol v2: a device that has shown a member's
//! message says so, end to end, with a receipt in the same group (a
//! payload of v1's receipt content: the ids it read); the sender's device
//! tells its user which device confirmed which of its messages.
//!
//! * A receipt is an MLS application message like any other: the relay
//!   can drop it, not forge it; who sent it is MLS's answer.
//! * Receipts owed are gathered (`owed`) and sent at most every
//!   [`super::owed::RECEIPT_INTERVAL`], a batch of ids per group, so a
//!   burst read costs a few requests of the device's budget.
//! * A receipt is taken only for ids of this device's own outbox in that
//!   group: a member cannot make it report another message as delivered.
//!   No receipt answers a receipt.

use blindrelay_ds::{Down, Request, Submission};
use blindrelay_e2e::content::Content;
use blindrelay_mls::Payload;
use blindrelay_wire::MessageId;

use super::member::{Member, V2Event};
use crate::error::ClientError;
use blindrelay_net::unix_ms;

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
                id: crate::core::random_id()?,
                written_ms: unix_ms(),
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
