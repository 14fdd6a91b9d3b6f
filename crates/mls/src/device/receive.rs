//! Taking in what the network brings: Welcomes, commits, proposals and
//! application messages, each either applied whole or refused without a
//! trace.

use mls_rs::MlsMessage;
use mls_rs::group::proposal::Proposal;
use mls_rs::group::{CommitEffect, ProposalSender, ReceivedMessage};

use super::{Device, members, time};
use crate::error::MlsError;
use crate::name::GroupName;
use crate::types::{Member, Received};

impl Device {
    /// Joins a group from a Welcome: the tree inside it, and every
    /// member's credential, are checked before anything is kept. A Welcome
    /// for a group this device already holds is refused
    /// ([`MlsError::GroupHeld`]): the group id is the Welcome author's
    /// choice, and joining would replace the held group's state and
    /// members with the author's (a takeover of the conversation).
    pub fn join(&mut self, welcome: &[u8]) -> Result<Vec<u8>, MlsError> {
        let msg = MlsMessage::from_bytes(welcome).map_err(|_| MlsError::Refused)?;
        let (group, info) = self
            .client
            .join_group(None, &msg, Some(time(&self.trust)))
            .map_err(|_| MlsError::Refused)?;
        let id = group.group_id().to_vec();
        if self.groups.contains_key(&id) || self.store.holds_group(&id)? {
            return Err(MlsError::GroupHeld);
        }
        // The group's name key, if the Welcome carries one (without it the
        // name reads as none).
        if let Some(key) = crate::name::NameKey::from_extensions(&info.group_info_extensions) {
            self.store.keep_name_key(&id, &key)?;
        }
        let id = self.adopt(group)?;
        self.store.mark_seen(welcome)?;
        Ok(id)
    }

    /// Whether `bytes` (a message or Welcome) was processed before: a copy
    /// delivered again, to be dropped without a warning.
    pub fn already_processed(&self, bytes: &[u8]) -> Result<bool, MlsError> {
        Ok(self.store.seen(bytes)?)
    }

    /// Processes a message from the network: an application message or
    /// another member's commit. Any failure is [`MlsError::Refused`].
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, MlsError> {
        let msg = MlsMessage::from_bytes(bytes).map_err(|_| MlsError::Refused)?;
        let group_id = msg.group_id().ok_or(MlsError::Refused)?.to_vec();
        // Commits and proposals travel in the clear, where the relay checks
        // them before ordering them; one inside a PrivateMessage went past
        // that check (a member could desynchronise the group from the
        // relay's order) and is refused.
        if msg.wire_format() == mls_rs::WireFormat::PrivateMessage
            && !super::gap::describe(&msg).is_some_and(|(_, _, app)| app)
        {
            return Err(MlsError::Refused);
        }
        let name_key = self.store.name_key(&group_id)?;
        let now = time(&self.trust);
        let trust = self.trust.clone();
        let group = self.group(&group_id).map_err(|e| match e {
            MlsError::Storage(_) => e,
            _ => MlsError::Refused,
        })?;
        // The roster before the message matters for commits and proposals
        // only: an application message (the hot path) does not pay for
        // reading every member's certificate. The content type is bound to
        // the message (it is in the AAD of a PrivateMessage).
        let application = super::gap::describe(&msg).is_some_and(|(_, _, app)| app);
        let (before, name_before) = if application {
            (Vec::new(), None)
        } else {
            (
                members(group),
                group
                    .context()
                    .extensions
                    .get(crate::name::GROUP_NAME_EXTENSION)
                    .map(|e| e.extension_data().to_vec()),
            )
        };
        let received = group.process_incoming_message_with_time(msg, now);
        let received = match received {
            Ok(r) => r,
            Err(why) => {
                // mls-rs may have advanced a ratchet before the message
                // failed: forget the in-memory group so that the stored
                // state (the last good one) is used next, and a forged
                // message costs the genuine one nothing.
                let mine = group
                    .epoch_authenticator()
                    .map(|a| super::fork::tag(&a))
                    .ok();
                let current = group.current_epoch();
                self.groups.remove(&group_id);
                if let (Some(mine), Some((g, epoch, theirs))) =
                    (mine, super::fork::message_tag(bytes))
                    && g == group_id
                    && epoch == current
                    && theirs != mine
                {
                    return Err(MlsError::Forked { epoch });
                }
                if super::blame::attributable(&why)
                    && let Some(by) = self.blame(&group_id, bytes)
                {
                    return Err(MlsError::BadCommit { epoch: current, by });
                }
                return Err(MlsError::Refused);
            }
        };
        let result = match received {
            ReceivedMessage::ApplicationMessage(app) => {
                let Some(sender) = group.member_at_index(app.sender_index) else {
                    self.groups.remove(&group_id);
                    return Err(MlsError::Refused);
                };
                // The sender's certificate must still pass now.
                let device = trust
                    .verify_credential(&sender.signing_identity.credential)
                    .map_err(|_| MlsError::Refused);
                group.write_to_storage()?;
                let device = device?;
                Received::Message {
                    group_id,
                    sender: Member {
                        user: device.user().to_string(),
                        device: device.device().to_string(),
                        index: app.sender_index,
                    },
                    body: app.data().to_vec(),
                }
            }
            ReceivedMessage::Commit(commit) => {
                let removed_me = matches!(commit.effect, CommitEffect::Removed { .. });
                let epoch = group.current_epoch();
                let after = if removed_me {
                    Vec::new()
                } else {
                    members(group)
                };
                // A member's commit is signed by its leaf before the
                // commit; an external commit (a member re-joining in
                // place of its own leaf, `crate::rules`) by its new one.
                let signer = if commit.is_external {
                    after.iter().find(|m| m.index == commit.committer)
                } else {
                    before.iter().find(|m| m.index == commit.committer)
                };
                let Some(committer) = signer.cloned() else {
                    // Keep the stored state rather than a half-explained
                    // one.
                    self.groups.remove(&group_id);
                    return Err(MlsError::Refused);
                };
                // An external commit only replaces its committer's own
                // leaf (`crate::rules`): nobody is added or removed.
                let rejoined = commit.is_external;
                let (added, removed) = if rejoined {
                    (Vec::new(), Vec::new())
                } else {
                    (
                        after
                            .iter()
                            .filter(|m| !before.contains(m))
                            .cloned()
                            .collect(),
                        before
                            .iter()
                            .filter(|m| !after.contains(m))
                            .cloned()
                            .collect(),
                    )
                };
                let sealed_after = group
                    .context()
                    .extensions
                    .get(crate::name::GROUP_NAME_EXTENSION)
                    .map(|e| e.extension_data().to_vec());
                let renamed = if !removed_me && sealed_after != name_before {
                    GroupName::from_extensions(&group.context().extensions, name_key.as_ref())
                } else {
                    None
                };
                if removed_me {
                    self.groups.remove(&group_id);
                    self.store.forget_group(&group_id)?;
                } else {
                    group.write_to_storage()?;
                }
                Received::Commit {
                    group_id,
                    epoch,
                    committer,
                    added,
                    removed,
                    removed_me,
                    renamed,
                    rejoined,
                }
            }
            ReceivedMessage::Proposal(p) => {
                // Only a member's request to leave is taken: a Remove of
                // the proposer's own leaf. Anything else is refused (this
                // implementation's members send no other proposals) and
                // forgotten, so it cannot ride along in a later commit.
                let sender = match p.sender {
                    ProposalSender::Member(i) => i,
                    _ => u32::MAX,
                };
                let leaving = match &p.proposal {
                    Proposal::Remove(r) => r.to_remove() == sender,
                    _ => false,
                };
                let member = before.iter().find(|m| m.index == sender).cloned();
                match (leaving, member) {
                    (true, Some(member)) => {
                        group.write_to_storage()?;
                        Received::LeaveRequest { group_id, member }
                    }
                    _ => {
                        self.groups.remove(&group_id);
                        return Err(MlsError::Refused);
                    }
                }
            }
            _ => return Err(MlsError::Refused),
        };
        self.store.mark_seen(bytes)?;
        Ok(result)
    }

    /// Whether `bytes` is a commit or proposal of one of this device's
    /// groups for an epoch before the group's current one: already
    /// processed or superseded, most often this device's own commit
    /// handed back after it was applied. [`Device::receive`] refuses it
    /// like any other; this only tells the caller that there is nothing
    /// to warn about.
    pub fn is_past_handshake(&mut self, bytes: &[u8]) -> bool {
        self.position(bytes) == super::Position::PastHandshake
    }

    /// Whether this device has a commit in the group waiting for the
    /// relay's order.
    pub fn has_pending_commit(&mut self, group_id: &[u8]) -> Result<bool, MlsError> {
        Ok(self.group(group_id)?.has_pending_commit())
    }
}
