//! Commits through the relay's order: made, submitted, applied on
//! ACCEPTED, rebased and made again on STALE_EPOCH; and commits left
//! pending by a lost answer, settled at the next connection.

use std::collections::BTreeSet;
use std::time::Duration;

use blindrelay_ds::{DeviceId, Down, Refusal, RefusalCode, Request, Submission};
use blindrelay_mls::{Device, MlsError, Outgoing};

use super::member::{CATCH_UP_WAIT, COMMIT_ATTEMPTS, Member, V2Event, device_id};
use crate::error::ClientError;

impl Member {
    /// Makes a commit with `make`, submits it, and applies it once the
    /// relay accepts it; on a lost race processes the winner and tries
    /// again. `make` gets the group's devices as they are now (after the
    /// winner) and returns the commit and the devices it adds, or `None`
    /// if there is nothing left to do (another member's commit already
    /// did it). The relay is told the devices after the commit: the
    /// roster, less every member the commit removes (asked, or whose
    /// certificate no longer passes), plus the devices it adds.
    pub(super) async fn commit(
        &mut self,
        group: &[u8],
        make: impl Fn(
            &mut Device,
            &BTreeSet<DeviceId>,
        ) -> Result<Option<(Outgoing, BTreeSet<DeviceId>)>, MlsError>,
    ) -> Result<Vec<V2Event>, ClientError> {
        let mut events = Vec::new();
        match self.commit_into(group, make, &mut events).await {
            Ok(()) => Ok(events),
            Err(e) => {
                // What the winners' commits brought is not lost with the
                // error: the next sync returns it.
                self.early_events.extend(events);
                Err(e)
            }
        }
    }

    async fn commit_into(
        &mut self,
        group: &[u8],
        make: impl Fn(
            &mut Device,
            &BTreeSet<DeviceId>,
        ) -> Result<Option<(Outgoing, BTreeSet<DeviceId>)>, MlsError>,
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let present = self.routing(group)?;
            let Some((out, added)) = make(&mut self.device, &present)? else {
                return Ok(());
            };
            let mut members = present;
            for m in &out.removed {
                if let Some(d) = device_id(&m.user, &m.device) {
                    members.remove(&d);
                }
            }
            members.extend(added.iter().cloned());
            let welcome = out.welcome.map(|w| (added, w));
            let sub = Submission::Commit {
                group_info: out.group_info,
                group_id: group.to_vec(),
                epoch: out.epoch,
                members,
                commit: out.commit,
                welcome,
            };
            match self.link.request(Request::Submit(sub)).await {
                Ok(Down::Accepted { .. }) => {
                    self.device.commit_accepted(group)?;
                    self.leave_requests.remove(group);
                    // For a member that misses this commit for good.
                    self.publish(group).await;
                    return Ok(());
                }
                Ok(Down::Refused {
                    why: Refusal::Rules(RefusalCode::StaleEpoch),
                    epoch,
                    ..
                }) => {
                    self.device.commit_refused(group)?;
                    self.catch_up(group, epoch, events).await?;
                }
                Ok(Down::Refused { why, .. }) => {
                    self.device.commit_refused(group)?;
                    return Err(ClientError::RequestRefused(why));
                }
                Ok(_) => {
                    tracing::warn!("an answer to a commit that is none");
                    self.device.commit_refused(group)?;
                    return Err(ClientError::UnexpectedAnswer {
                        expected: "ACCEPTED or REFUSED",
                    });
                }
                Err(e) => {
                    // Unknown whether the relay took it: the pending commit
                    // stays stored, and the next connection's mailbox tells.
                    return Err(e);
                }
            }
        }
        Err(ClientError::CommitRaced {
            attempts: COMMIT_ATTEMPTS,
        })
    }

    /// Processes mailbox items until the group reaches `epoch` (the relay's
    /// word, used only to know when to stop waiting).
    pub(super) async fn catch_up(
        &mut self,
        group: &[u8],
        epoch: u64,
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        while self.device.epoch(group).is_ok_and(|e| e < epoch) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.link.next_delivery(left).await? {
                Some((seq, item)) => self.process(seq, item, events).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Settles commits left pending by a connection that failed before the
    /// relay's answer. The relay puts an accepted commit in its
    /// committer's mailbox too, in the same transaction, and sends a
    /// session's whole mailbox before it answers the session's first
    /// request: so after one answered request, a pending commit the relay
    /// took has been read back (mls-rs applies it), and one still pending
    /// was never taken and is dropped.
    pub(super) async fn settle_pending(&mut self) -> Result<(), ClientError> {
        let mut pending = Vec::new();
        for g in self.device.group_ids()? {
            if self.device.has_pending_commit(&g).unwrap_or(false) {
                pending.push(g);
            }
        }
        if pending.is_empty() && self.device.pending_rejoins().is_empty() {
            return Ok(());
        }
        let me = self.me.user.clone();
        match self.link.request(Request::Devices(me)).await? {
            Down::Devices { .. } => {}
            _ => {
                return Err(ClientError::UnexpectedAnswer {
                    expected: "DEVICES",
                });
            }
        }
        let events = self.sync(Duration::ZERO).await?;
        self.early_events.extend(events);
        for g in pending {
            if self.device.has_pending_commit(&g)? {
                tracing::info!("a commit the relay never took is dropped");
                self.device.commit_refused(&g)?;
            }
        }
        self.settle_rejoins();
        Ok(())
    }
}
