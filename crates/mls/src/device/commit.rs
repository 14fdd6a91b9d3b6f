//! Commits this device makes: adds, removals, self-updates, renames and
//! the removal of members whose certificate no longer passes, each held
//! pending until the relay orders it ([`Device::commit_accepted`]) or
//! another commit wins ([`Device::commit_refused`]). A group's first commit
//! goes with the group's public state (a GroupInfo of epoch 0) for the
//! relay's check, and a commit that adds devices hands them the group's
//! name key inside their Welcome.

use blindrelay_wire::UserName;
use mls_rs::{ExtensionList, MlsMessage};

use super::{Device, SELF_UPDATE_INTERVAL, failing_members, time};
use crate::credential::member_names;
use crate::error::MlsError;
use crate::types::{Member, Outgoing};

impl Device {
    fn commit(
        &mut self,
        group_id: &[u8],
        add: &[Vec<u8>],
        remove: &[u32],
    ) -> Result<Outgoing, MlsError> {
        self.commit_with(group_id, add, remove, None)
    }

    pub(super) fn commit_with(
        &mut self,
        group_id: &[u8],
        add: &[Vec<u8>],
        remove: &[u32],
        context: Option<ExtensionList>,
    ) -> Result<Outgoing, MlsError> {
        let now = time(&self.trust);
        let trust = self.trust.clone();
        self.not_behind(group_id)?;
        let name_key = self.store.name_key(group_id)?;
        let group = self.group(group_id)?;
        if group.has_pending_commit() {
            return Err(MlsError::CommitPending);
        }
        let epoch = group.current_epoch();
        let failing = failing_members(&trust, group);
        let mut removing: Vec<u32> = remove.iter().chain(failing.iter()).copied().collect();
        removing.sort_unstable();
        removing.dedup();
        // Only the removed members' certificates are read (a commit in a
        // large group must not parse every member's).
        let removed: Vec<Member> = removing
            .iter()
            .filter_map(|i| {
                let m = group.member_at_index(*i)?;
                let (user, device) = member_names(&m.signing_identity)?;
                Some(Member {
                    user,
                    device,
                    index: *i,
                })
            })
            .collect();
        let suite = group.cipher_suite();
        // A new group's first commit goes with the group's public state at
        // epoch 0, from which the relay starts checking its commits.
        let group_info = if epoch == 0 {
            Some(group.group_info_message(true)?.to_bytes()?)
        } else {
            None
        };
        let mut builder = group.commit_builder().commit_time(now);
        if let (false, Some(key)) = (add.is_empty(), name_key) {
            // Joiners get the name key inside their Welcome (encrypted for
            // them by MLS; never in what the relay reads). A device that
            // joined without one adds members without one.
            let mut info = ExtensionList::default();
            info.set(key.extension());
            builder = builder.set_group_info_ext(info);
        }
        if let Some(context) = context {
            builder = builder.set_group_context_ext(context)?;
        }
        for kp in add {
            let msg = MlsMessage::from_bytes(kp).map_err(|_| MlsError::KeyPackage)?;
            // A device of the other kind (suite) cannot be in this group.
            if msg.cipher_suite() != Some(suite) {
                return Err(MlsError::KeyPackage);
            }
            builder = builder.add_member(msg).map_err(|_| MlsError::KeyPackage)?;
        }
        for index in removing {
            builder = builder.remove_member(index)?;
        }
        let out = builder.build()?;
        // The pending commit is part of the stored state: after a crash,
        // the device can still apply it if the relay ordered it.
        group.write_to_storage()?;
        let welcome = match out.welcome_messages() {
            [] => None,
            [w] => Some(w.to_bytes()?),
            _ => {
                return Err(MlsError::Library(
                    mls_rs::error::MlsError::InvalidWelcomeMessage,
                ));
            }
        };
        Ok(Outgoing {
            group_id: group_id.to_vec(),
            epoch,
            commit: out.commit_message().to_bytes()?,
            group_info,
            welcome,
            removed,
        })
    }

    /// A commit adding the devices whose KeyPackages are given (and
    /// removing every member whose certificate no longer passes). It
    /// takes effect with [`Device::commit_accepted`].
    pub fn add(&mut self, group_id: &[u8], key_packages: &[Vec<u8>]) -> Result<Outgoing, MlsError> {
        self.commit(group_id, key_packages, &[])
    }

    /// A commit removing every device of `user`.
    pub fn remove(&mut self, group_id: &[u8], user: &UserName) -> Result<Outgoing, MlsError> {
        let indexes: Vec<u32> = self
            .members(group_id)?
            .into_iter()
            .filter(|m| m.user == user.as_str())
            .map(|m| m.index)
            .collect();
        if indexes.is_empty() {
            return Err(MlsError::NotAMember);
        }
        self.commit(group_id, &[], &indexes)
    }

    /// A commit that only refreshes this device's leaf (and removes
    /// members whose certificate no longer passes): after it, a copy of
    /// this device's earlier state reads nothing new.
    pub fn update(&mut self, group_id: &[u8]) -> Result<Outgoing, MlsError> {
        self.commit(group_id, &[], &[])
    }

    /// Whether the group has members (other than this device) whose
    /// certificate no longer passes: this device's next commit removes
    /// them, and it commits at once when it learns of a revocation.
    pub fn has_failing_members(&mut self, group_id: &[u8]) -> Result<bool, MlsError> {
        let trust = self.trust.clone();
        Ok(!failing_members(&trust, self.group(group_id)?).is_empty())
    }

    /// The relay ordered this device's pending commit: apply it.
    pub fn commit_accepted(&mut self, group_id: &[u8]) -> Result<u64, MlsError> {
        let group = self.group(group_id)?;
        if !group.has_pending_commit() {
            return Err(MlsError::NoPendingCommit);
        }
        group.apply_pending_commit()?;
        group.write_to_storage()?;
        let epoch = group.current_epoch();
        self.store.leaf_fresh(group_id, self.trust.now())?;
        Ok(epoch)
    }

    /// Groups where this device's leaf is older than
    /// [`SELF_UPDATE_INTERVAL`]: the caller sends [`Device::update`] in each.
    pub fn groups_due_for_update(&self) -> Result<Vec<Vec<u8>>, MlsError> {
        let before = self
            .trust
            .now()
            .saturating_sub(SELF_UPDATE_INTERVAL.as_secs());
        Ok(self.store.leaves_older_than(before)?)
    }

    /// The relay ordered another commit first: drop this device's pending
    /// commit (process the winner, then commit again).
    pub fn commit_refused(&mut self, group_id: &[u8]) -> Result<(), MlsError> {
        let group = self.group(group_id)?;
        group.clear_pending_commit();
        group.write_to_storage()?;
        Ok(())
    }
}
