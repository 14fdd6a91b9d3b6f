//! Publishing each epoch's GroupInfo, and re-joining a group whose missing
//! commit never comes (PROTOCOL.md 11.7, PUBLISH and GROUP_INFO).
//!
//! * After each of its commits the relay accepts, a device publishes the
//!   group's GroupInfo for the new epoch (the relay checks it and keeps the
//!   newest). A failure there costs the commit nothing: it is said, and the
//!   next commit publishes again.
//! * A device that has been behind in a group for [`REJOIN_AFTER`] (a held
//!   message proves a commit is missing, and waiting did not bring it)
//!   asks the relay for the GroupInfo and the tree, checks them
//!   (`blindrelay_mls::Device::rejoin`), and commits itself back in by an
//!   external commit that replaces its own leaf. Messages of the epochs it
//!   skipped stay unread and are counted for the user. If it cannot yet
//!   (nothing published, not listed any more, refused), it says why and
//!   tries again after [`REJOIN_RETRY`].
//! * A re-join whose answer a connection lost is settled like a pending
//!   commit: if the relay ordered it, it comes back in the mailbox and is
//!   taken as accepted; otherwise it is dropped at the next connection.

use std::collections::BTreeSet;
use std::time::Duration;

use blindrelay_ds::{Down, Refusal, RefusalCode, Request, Submission};
use blindrelay_mls::MlsError;

use super::events::{RejoinBlocked, V2Event};
pub use super::member::REJOIN_AFTER;
use super::member::{Member, device_id};
use crate::error::ClientError;

/// How long after a re-join that could not be made the device tries again.
pub const REJOIN_RETRY: Duration = Duration::from_secs(300);

impl Member {
    /// Publishes the group's GroupInfo of its current epoch (after this
    /// device's commit was accepted).
    pub(super) async fn publish(&mut self, group: &[u8]) {
        let (epoch, group_info) = match self.device.group_info(group) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "making the group's GroupInfo failed; the next commit publishes it");
                return;
            }
        };
        let request = Request::Publish {
            group_id: group.to_vec(),
            epoch,
            group_info,
        };
        match self.link.request(request).await {
            Ok(Down::Accepted { .. }) => {}
            Ok(other) => {
                tracing::info!(answer = ?other, "the relay did not keep the group's GroupInfo");
            }
            Err(e) => {
                tracing::warn!(error = %e, "publishing the group's GroupInfo failed");
            }
        }
    }

    /// Notes that the device is behind in `group` (from now, if it was
    /// not already): it re-joins once [`REJOIN_AFTER`] has passed.
    pub(super) fn note_behind(&mut self, group: &[u8]) {
        let at = tokio::time::Instant::now() + self.rejoin_after;
        self.rejoin_at.entry(group.to_vec()).or_insert(at);
    }

    /// Re-joins every group where the device has been behind for long
    /// enough (see the module documentation).
    pub(super) async fn rejoin_due(
        &mut self,
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        let now = tokio::time::Instant::now();
        let due: Vec<Vec<u8>> = self
            .rejoin_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(g, _)| g.clone())
            .collect();
        for group in due {
            // Caught up (or gone) meanwhile: nothing to do.
            if !matches!(self.device.behind(&group), Ok(Some(_))) {
                self.rejoin_at.remove(&group);
                continue;
            }
            match self.rejoin(&group, events).await? {
                None => {
                    self.rejoin_at.remove(&group);
                }
                Some(why) => {
                    tracing::warn!(target: "blindrelay::security", why = why.describe(),
                        "this device is behind in a group and cannot re-join yet; it tries again later");
                    events.push(V2Event::RejoinBlocked {
                        group: group.clone(),
                        why,
                    });
                    self.rejoin_at
                        .insert(group, tokio::time::Instant::now() + REJOIN_RETRY);
                }
            }
        }
        Ok(())
    }

    /// One re-join attempt: `None` if it succeeded.
    async fn rejoin(
        &mut self,
        group: &[u8],
        events: &mut Vec<V2Event>,
    ) -> Result<Option<RejoinBlocked>, ClientError> {
        let (group_info, tree) = match self
            .link
            .request(Request::GroupInfo(group.to_vec()))
            .await?
        {
            Down::GroupInfo {
                group_info, tree, ..
            } => (group_info, tree),
            Down::Refused {
                why: Refusal::Rules(RefusalCode::NoGroupInfo),
                ..
            } => return Ok(Some(RejoinBlocked::NotPublished)),
            _ => return Ok(Some(RejoinBlocked::Refused)),
        };
        let (out, members) = match self.device.rejoin(group, &group_info, &tree) {
            Ok(v) => v,
            Err(MlsError::NotListed) => return Ok(Some(RejoinBlocked::NotListed)),
            Err(MlsError::Refused | MlsError::NotBehind) => {
                return Ok(Some(RejoinBlocked::Refused));
            }
            Err(e) => return Err(e.into()),
        };
        let members: BTreeSet<_> = members
            .iter()
            .filter_map(|m| device_id(&m.user, &m.device))
            .collect();
        let sub = Submission::Commit {
            group_id: group.to_vec(),
            epoch: out.epoch,
            members,
            commit: out.commit,
            welcome: None,
            group_info: None,
        };
        // On a connection error the re-join stays pending: the mailbox
        // tells whether the relay ordered it (see `settle_rejoins`).
        match self.link.request(Request::Submit(sub)).await? {
            Down::Accepted { .. } => {
                self.rejoined(group, events)?;
                Ok(None)
            }
            // Another commit came first: its author publishes the next
            // GroupInfo, and the next try uses it.
            Down::Refused {
                why: Refusal::Rules(RefusalCode::StaleEpoch),
                ..
            } => {
                self.device.rejoin_refused(group);
                Ok(Some(RejoinBlocked::NotPublished))
            }
            _ => {
                self.device.rejoin_refused(group);
                Ok(Some(RejoinBlocked::Refused))
            }
        }
    }

    /// The relay ordered this device's re-join of `group`.
    pub(super) fn rejoined(
        &mut self,
        group: &[u8],
        events: &mut Vec<V2Event>,
    ) -> Result<(), ClientError> {
        let (at, unread) = self.device.rejoin_accepted(group)?;
        self.rejoin_at.remove(group);
        self.publish_due.insert(group.to_vec());
        tracing::warn!(target: "blindrelay::security", at, unread,
            "re-joined a group by external commit after a commit was withheld; messages of the skipped epochs are unread");
        events.push(V2Event::Rejoined {
            group: group.to_vec(),
            at,
            unread,
        });
        Ok(())
    }

    /// Drops re-joins the relay never ordered (called once a connection
    /// has read its whole mailbox, as for pending commits).
    pub(super) fn settle_rejoins(&mut self) {
        for g in self.device.pending_rejoins() {
            tracing::info!("a re-join the relay never took is dropped");
            self.device.rejoin_refused(&g);
        }
    }
}
