//! Re-joining a group whose gap never fills.
//!
//! A device that holds a message from an epoch it has not reached knows a
//! commit is missing (`gap`); if the relay never hands it over (withheld,
//! or deleted), waiting does not help. The way back is an external commit
//! (RFC 9420 §12.4.3.2) that replaces the device's own leaf: members
//! publish each epoch's GroupInfo with the key for it ([`Device::group_info`]),
//! the relay hands the newest one and the group's tree to a member that asks,
//! and the device commits itself back in at the group's current epoch.
//! Members take such a commit only when it replaces a leaf of the same
//! device (`crate::rules`).
//!
//! What the device checks before it trusts a GroupInfo the relay chose:
//! * it is for this group, at an epoch past the device's own;
//! * it verifies: signature, tree hash, every leaf's certificate;
//! * its signer was a member at this device's epoch (so it is not a
//!   device the relay or an outsider enrolled to fake the group; a member
//!   at that epoch could fork the group with a commit anyway);
//! * it still lists this device (if not, the device was removed, as far as
//!   it can tell, and it does not push itself back in).
//!
//! What is lost: messages of the epochs the device skipped (their keys are
//! never sent to it); they are dropped and counted for the user. The new
//! state is kept only once the relay orders the commit
//! ([`Device::rejoin_accepted`]).

use mls_rs::MlsMessage;
use mls_rs::group::ExportedTree;

use super::{Device, members};
use crate::error::MlsError;
use crate::observer::Observer;
use crate::types::{Member, Outgoing};

impl Device {
    /// The group's GroupInfo for its current epoch, with the key for
    /// external commits and without the tree (the relay hands out the tree
    /// it follows): what a member publishes after each commit, so that a
    /// device cut off from a commit can re-join.
    pub fn group_info(&mut self, group_id: &[u8]) -> Result<(u64, Vec<u8>), MlsError> {
        let group = self.group(group_id)?;
        let msg = group.group_info_message_allowing_ext_commit(false)?;
        Ok((group.current_epoch(), msg.to_bytes()?))
    }

    /// An external commit that puts this device back in a group it is
    /// behind in, from a published GroupInfo and the group's tree (see
    /// the module documentation for what is checked). The commit is for
    /// the GroupInfo's epoch; the new state waits in memory for
    /// [`Device::rejoin_accepted`] or [`Device::rejoin_refused`]. Returns
    /// the commit and the group's devices after it.
    pub fn rejoin(
        &mut self,
        group_id: &[u8],
        group_info: &[u8],
        tree: &[u8],
    ) -> Result<(Outgoing, Vec<Member>), MlsError> {
        let Some((current, _)) = self.behind(group_id)? else {
            return Err(MlsError::NotBehind);
        };
        let before = self.members(group_id)?;
        let published = Observer::new(self.trust.clone())
            .inspect(group_info, tree)
            .map_err(|_| MlsError::Refused)?;
        if published.group_id != group_id || published.epoch <= current {
            return Err(MlsError::Refused);
        }
        let me = (self.me.user().to_string(), self.me.device().to_string());
        let was_member = |n: &(String, String)| {
            before
                .iter()
                .any(|m| m.user == n.0 && m.device == n.1 && *n != me)
        };
        if !published.signer.as_ref().is_some_and(was_member) {
            return Err(MlsError::Refused);
        }
        let Some(old_leaf) = published
            .members
            .iter()
            .find(|(n, _)| *n == me)
            .map(|(_, i)| *i)
        else {
            return Err(MlsError::NotListed);
        };
        let msg = MlsMessage::from_bytes(group_info).map_err(|_| MlsError::Refused)?;
        let tree = ExportedTree::from_bytes(tree).map_err(|_| MlsError::Refused)?;
        let (group, commit) = self
            .client
            .external_commit_builder()?
            .with_tree_data(tree)
            .with_removal(old_leaf)
            // Born an hour back, as every leaf of this device (see `born`).
            .commit_time(self.born())
            .build(msg)
            .map_err(|_| MlsError::Refused)?;
        let after = members(&group);
        let removed = before.into_iter().filter(|m| m.index == old_leaf).collect();
        let commit = commit.to_bytes()?;
        self.rejoining
            .insert(group_id.to_vec(), (group, commit.clone()));
        Ok((
            Outgoing {
                group_id: group_id.to_vec(),
                epoch: published.epoch,
                commit,
                group_info: None,
                welcome: None,
                removed,
            },
            after,
        ))
    }

    /// The relay ordered this device's re-join: the new state replaces the
    /// group's (its name key stays). Returns the group's epoch and how
    /// many held messages went unread with the old history.
    pub fn rejoin_accepted(&mut self, group_id: &[u8]) -> Result<(u64, usize), MlsError> {
        let (mut group, _) = self
            .rejoining
            .remove(group_id)
            .ok_or(MlsError::NoPendingCommit)?;
        group.write_to_storage()?;
        let epoch = group.current_epoch();
        let lost = self.store.rejoined(group_id, epoch)?;
        self.store.leaf_fresh(group_id, self.trust.now())?;
        self.groups.remove(group_id);
        self.keep(group_id.to_vec(), group);
        Ok((epoch, lost))
    }

    /// The relay did not order this device's re-join: it is dropped (the
    /// group stays as it was, behind).
    pub fn rejoin_refused(&mut self, group_id: &[u8]) {
        self.rejoining.remove(group_id);
    }

    /// Whether `bytes` is this device's own re-join commit for a group,
    /// still waiting: the relay ordered it (it came back in the mailbox)
    /// though its answer was lost with a connection.
    pub fn is_own_rejoin(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.rejoining
            .iter()
            .find(|(_, (_, commit))| commit.as_slice() == bytes)
            .map(|(g, _)| g.clone())
    }

    /// The groups with a re-join waiting for the relay's order.
    pub fn pending_rejoins(&self) -> Vec<Vec<u8>> {
        self.rejoining.keys().cloned().collect()
    }
}
