//! A commit the relay ordered that this device cannot apply.
//!
//! The relay checks every commit against the group's public state before
//! ordering it (see `crate::observer`), but it cannot check what only
//! members can: the membership and confirmation tags and the path secrets
//! encrypted to each member. A member can sign a commit that passes the
//! relay and that nobody else can apply (or an older relay, or a bug, can
//! order one): the group is then stuck for everyone but its author. The
//! device tells such a commit from a forgery by running the relay's own
//! check on its own copy of the group's public state: if the commit passes
//! it, its signature names the member that made it, and that member is to
//! blame. A commit that does not pass it (garbage, a forgery, another
//! history) blames nobody and stays a plain refusal.
//!
//! Two parts of a commit are not signed: its membership tag and its
//! confirmation tag. Whoever carries it (the relay) can spoil either, so a
//! commit refused for one of them blames nobody either: the relay cannot
//! frame an honest member. Nor does a failure of this device's own
//! storage.

use mls_rs::error::MlsError as LibError;
use mls_rs::group::{ContentType, Sender};
use mls_rs::{MlsMessage, MlsMessageDescription};

use super::{Device, members};
use crate::observer::Observer;
use crate::types::Member;

/// Whether a commit refused with `why` can be the signer's doing: not a
/// tag that is not signed (anyone on the way could have changed it), not
/// this device's own storage.
pub(super) fn attributable(why: &LibError) -> bool {
    !matches!(
        why,
        LibError::InvalidMembershipTag
            | LibError::InvalidConfirmationTag
            | LibError::GroupStorageError(_)
            | LibError::KeyPackageRepoError(_)
            | LibError::PskStoreError(_)
    )
}

impl Device {
    /// The member whose signed commit `bytes`, for the group's current
    /// epoch, passes every public check yet could not be applied here.
    pub(super) fn blame(&mut self, group_id: &[u8], bytes: &[u8]) -> Option<Member> {
        let msg = MlsMessage::from_bytes(bytes).ok()?;
        let trust = self.trust.clone();
        let group = self.group(group_id).ok()?;
        let epoch = group.current_epoch();
        let is_commit = matches!(
            msg.description(),
            MlsMessageDescription::PublicProtocolMessage {
                epoch_id,
                content_type: ContentType::Commit,
                sender: Sender::Member(_),
                ..
            } if epoch_id == epoch
        );
        if !is_commit {
            return None;
        }
        let info = group.group_info_message(true).ok()?.to_bytes().ok()?;
        let me = group.current_member_index();
        let roster = members(group);
        let observer = Observer::new(trust);
        let state = observer.follow(&info).ok()?;
        let (user, device) = observer.signer(&state, group_id, epoch, bytes).ok()?;
        // A commit signed with this device's own leaf that it cannot apply
        // was made by another copy of its state (a stolen one, or one
        // restored from a backup): not another member's doing.
        roster
            .into_iter()
            .find(|m| m.user == user && m.device == device && m.index != me)
    }
}

impl Device {
    /// Forgets a group on this device (its state and everything kept for
    /// it): for a group that is stuck and was made again without the
    /// member to blame. Other members are not told; the relay keeps
    /// routing the old group's traffic, which this device then refuses.
    pub fn forget(&mut self, group_id: &[u8]) -> Result<(), crate::MlsError> {
        self.groups.remove(group_id);
        Ok(self.store.forget_group(group_id)?)
    }
}
