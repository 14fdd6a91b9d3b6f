//! One order per group.
//!
//! The relay keeps, per group, the current epoch and the devices it
//! delivers to. A commit is accepted only when made for the current epoch:
//! the first to arrive wins and moves the group to the next epoch; a later
//! one for the same epoch is refused with the current epoch, and its
//! author processes the winner and commits again. Every accepted message
//! is appended to each recipient's mailbox in acceptance order, so all
//! members see one history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use blindrelay_wire::UserName;

use crate::mailbox::{Delivery, Mailboxes};
use crate::{DeviceId, DsError, Limits};

/// Epochs before the current one for which application messages are still
/// carried: members keep this many prior epochs (`blindrelay-mls`'s
/// `MAX_EPOCH_RETENTION`) and refuse older ones anyway.
pub const CARRIED_PRIOR_EPOCHS: u64 = 2;

/// What a device hands the relay for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// A commit made at `epoch`.
    Commit {
        /// The group (a new one when `epoch` is 0 and the id is unknown).
        group_id: Vec<u8>,
        /// The epoch the commit was made at.
        epoch: u64,
        /// The group's devices once the commit applies, by the
        /// committer's word: for routing only.
        members: BTreeSet<DeviceId>,
        /// The commit, for every device that was a member before it.
        commit: Vec<u8>,
        /// A Welcome and the devices it is for: exactly the devices the
        /// commit adds (none: no Welcome).
        welcome: Option<(BTreeSet<DeviceId>, Vec<u8>)>,
        /// For a group the relay does not follow yet (a new one), the
        /// group's public state the commit was made on (a GroupInfo with
        /// the tree), from which the relay checks it.
        group_info: Option<Vec<u8>>,
    },
    /// A proposal or an application message made at `epoch`.
    Message {
        /// The group.
        group_id: Vec<u8>,
        /// The epoch it was made at.
        epoch: u64,
        /// The MLS message.
        message: Vec<u8>,
    },
}

/// What the relay answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted and in every recipient's mailbox; the group is at `epoch`.
    Accepted {
        /// The group's epoch after this submission.
        epoch: u64,
        /// How many devices it was delivered to.
        recipients: usize,
    },
}

struct Group {
    epoch: u64,
    members: BTreeSet<DeviceId>,
    /// The device whose first commit made it (unknown for groups stored by
    /// an older relay).
    creator: Option<DeviceId>,
}

/// Every group's order, and the mailboxes it delivers into.
pub struct Groups {
    limits: Limits,
    groups: HashMap<Vec<u8>, Group>,
    /// Groups each device created that still exist.
    created: BTreeMap<DeviceId, usize>,
    /// Groups each person's devices created that still exist.
    created_by_person: BTreeMap<UserName, usize>,
    /// Groups each device is a member of.
    held: BTreeMap<DeviceId, usize>,
    mailboxes: Mailboxes,
}

/// What forgetting a device changed (see [`Groups::forget_device`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Groups that lost the device and still have members: id, epoch and
    /// the members left.
    pub changed: Vec<(Vec<u8>, u64, BTreeSet<DeviceId>)>,
    /// Groups left with no member: gone.
    pub removed: Vec<Vec<u8>>,
}

impl Groups {
    /// No groups yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            groups: HashMap::new(),
            created: BTreeMap::new(),
            created_by_person: BTreeMap::new(),
            held: BTreeMap::new(),
            mailboxes: Mailboxes::new(limits),
        }
    }

    /// The mailboxes (to read and acknowledge).
    pub fn mailboxes(&mut self) -> &mut Mailboxes {
        &mut self.mailboxes
    }

    /// The mailboxes, to read.
    pub fn mailboxes_ref(&self) -> &Mailboxes {
        &self.mailboxes
    }

    /// Puts back a group read from storage (at start-up), its creator
    /// unknown.
    pub fn restore(&mut self, group_id: Vec<u8>, epoch: u64, members: BTreeSet<DeviceId>) {
        self.restore_with(group_id, epoch, members, None);
    }

    /// Puts back a group read from storage (at start-up) with the device
    /// that created it (counted against its [`Limits::groups_per_device`]).
    pub fn restore_with(
        &mut self,
        group_id: Vec<u8>,
        epoch: u64,
        members: BTreeSet<DeviceId>,
        creator: Option<DeviceId>,
    ) {
        if let Some(c) = &creator {
            self.count(c);
        }
        self.hold(members.iter(), true);
        if let Some(old) = self.groups.insert(
            group_id,
            Group {
                epoch,
                members,
                creator,
            },
        ) {
            self.uncount(old.creator.as_ref());
            self.hold(old.members.iter(), false);
        }
    }

    fn count(&mut self, creator: &DeviceId) {
        let n = self.created.entry(creator.clone()).or_default();
        *n = n.saturating_add(1);
        let n = self
            .created_by_person
            .entry(creator.user.clone())
            .or_default();
        *n = n.saturating_add(1);
    }

    fn uncount(&mut self, creator: Option<&DeviceId>) {
        if let Some(c) = creator {
            down(&mut self.created, c);
            down(&mut self.created_by_person, &c.user);
        }
    }

    /// Counts (or uncounts) one group for each of `devices`.
    fn hold<'a>(&mut self, devices: impl Iterator<Item = &'a DeviceId>, add: bool) {
        for d in devices {
            if add {
                let n = self.held.entry(d.clone()).or_default();
                *n = n.saturating_add(1);
            } else {
                down(&mut self.held, d);
            }
        }
    }

    /// Groups `device` is a member of.
    pub fn held_by(&self, device: &DeviceId) -> usize {
        self.held.get(device).copied().unwrap_or(0)
    }

    /// Groups the devices of `person` created that still exist.
    pub fn created_by_person(&self, person: &UserName) -> usize {
        self.created_by_person.get(person).copied().unwrap_or(0)
    }

    /// The device that created the group, if known.
    pub fn creator_of(&self, group_id: &[u8]) -> Option<&DeviceId> {
        self.groups.get(group_id).and_then(|g| g.creator.as_ref())
    }

    /// Groups `device` created that still exist.
    pub fn created_by(&self, device: &DeviceId) -> usize {
        self.created.get(device).copied().unwrap_or(0)
    }

    /// Takes a device out of every group (its certificate was revoked: it
    /// will never read or commit again); a group left with no member is
    /// forgotten, and the device's mailbox is emptied (the I/O layer
    /// deletes its items and the bodies released). What changed in the
    /// groups is returned for storage.
    pub fn forget_device(&mut self, device: &DeviceId) -> Forgotten {
        let mut out = Forgotten::default();
        self.mailboxes.forget(device);
        let ids: Vec<Vec<u8>> = self
            .groups
            .iter()
            .filter(|(_, g)| g.members.contains(device))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            g.members.remove(device);
            down(&mut self.held, device);
            if g.members.is_empty() {
                if let Some(g) = self.groups.remove(&id) {
                    self.uncount(g.creator.as_ref());
                }
                out.removed.push(id);
            } else {
                out.changed.push((id, g.epoch, g.members.clone()));
            }
        }
        out
    }

    /// A group's epoch and devices, as the relay knows them.
    pub fn get(&self, group_id: &[u8]) -> Option<(u64, &BTreeSet<DeviceId>)> {
        self.groups.get(group_id).map(|g| (g.epoch, &g.members))
    }

    /// A group's epoch and size, as the relay knows them.
    pub fn describe(&self, group_id: &[u8]) -> Option<(u64, usize)> {
        self.groups
            .get(group_id)
            .map(|g| (g.epoch, g.members.len()))
    }

    /// The devices a submission would bring into its group (a commit's
    /// members that the group does not have yet): the caller checks that
    /// the relay knows each ([`crate::Directory::knows`]).
    pub fn newcomers<'a>(&self, submission: &'a Submission) -> Vec<&'a DeviceId> {
        match submission {
            Submission::Commit {
                group_id, members, ..
            } => {
                let group = self.groups.get(group_id);
                members
                    .iter()
                    .filter(|d| group.is_none_or(|g| !g.members.contains(*d)))
                    .collect()
            }
            Submission::Message { .. } => Vec::new(),
        }
    }

    /// Takes `submission` from `sender`: accepted whole or refused with
    /// nothing changed.
    pub fn submit(
        &mut self,
        sender: &DeviceId,
        submission: Submission,
    ) -> Result<Verdict, DsError> {
        match submission {
            Submission::Commit {
                group_id,
                epoch,
                members,
                commit,
                welcome,
                ..
            } => self.commit(sender, group_id, epoch, members, commit, welcome),
            Submission::Message {
                group_id,
                epoch,
                message,
            } => self.message(sender, group_id, epoch, message),
        }
    }

    fn commit(
        &mut self,
        sender: &DeviceId,
        group_id: Vec<u8>,
        epoch: u64,
        members: BTreeSet<DeviceId>,
        commit: Vec<u8>,
        welcome: Option<(BTreeSet<DeviceId>, Vec<u8>)>,
    ) -> Result<Verdict, DsError> {
        let max = self.limits.message_bytes;
        if commit.len() > max || welcome.as_ref().is_some_and(|(_, w)| w.len() > max) {
            return Err(DsError::TooLarge);
        }
        if !members.contains(sender) || members.len() > self.limits.members_per_group {
            return Err(DsError::Membership);
        }
        let before: BTreeSet<DeviceId> = match self.groups.get(&group_id) {
            Some(g) => {
                if !g.members.contains(sender) {
                    return Err(DsError::NotAMember);
                }
                if g.epoch != epoch {
                    return Err(DsError::StaleEpoch { current: g.epoch });
                }
                g.members.clone()
            }
            None if epoch == 0 => {
                if self.groups.len() >= self.limits.groups {
                    return Err(DsError::Capacity("too many groups"));
                }
                if self.created_by(sender) >= self.limits.groups_per_device {
                    return Err(DsError::Capacity("this device created too many groups"));
                }
                if self.created_by_person(&sender.user) >= self.limits.groups_per_person {
                    return Err(DsError::Capacity("this person created too many groups"));
                }
                BTreeSet::from([sender.clone()])
            }
            None => return Err(DsError::UnknownGroup),
        };
        // The devices a commit adds join by its Welcome, and only they get
        // it; every device that was a member (the removed ones included)
        // gets the commit, the committer too: a committer that lost the
        // answer learns from its own mailbox that its commit was taken
        // (mls-rs applies a pending commit when it reads it back).
        let new: BTreeSet<&DeviceId> = members.iter().filter(|d| !before.contains(*d)).collect();
        // A new group counts for its creator too.
        let existed = self.groups.contains_key(&group_id);
        let joining = new.iter().copied().chain((!existed).then_some(sender));
        if joining
            .into_iter()
            .any(|d| self.held_by(d) >= self.limits.groups_per_member)
        {
            return Err(DsError::Capacity(
                "a device would be a member of too many groups",
            ));
        }
        match &welcome {
            Some((to, _)) if !new.is_empty() && to.iter().eq(new.iter().copied()) => {}
            None if new.is_empty() => {}
            _ => return Err(DsError::Membership),
        }
        let recipients: BTreeSet<&DeviceId> = before.iter().collect();
        let welcomed: Vec<&DeviceId> = welcome
            .as_ref()
            .map(|(to, _)| to.iter().collect())
            .unwrap_or_default();
        // The commit and the Welcome are checked together: both go in, or
        // neither.
        let commit_size = group_id.len().saturating_add(commit.len());
        let welcome_size = welcome
            .as_ref()
            .map_or(0, |(_, w)| group_id.len().saturating_add(w.len()));
        let adds = recipients
            .iter()
            .map(|d| (*d, commit_size))
            .chain(welcomed.iter().map(|d| (*d, welcome_size)));
        let bodies = if recipients.is_empty() {
            0
        } else {
            commit_size
        }
        .saturating_add(if welcomed.is_empty() { 0 } else { welcome_size });
        self.mailboxes.fits(sender, adds, bodies)?;
        let item = Delivery::Group {
            group_id: group_id.clone(),
            message: commit,
        };
        self.mailboxes
            .deliver(sender, recipients.iter().copied(), item)?;
        if let Some((to, w)) = &welcome {
            let item = Delivery::Welcome {
                group_id: group_id.clone(),
                welcome: w.clone(),
            };
            self.mailboxes.deliver(sender, to.iter(), item)?;
        }
        // Devices told, the committer's own copy not counted.
        let count = recipients.len().saturating_sub(1);
        let next = epoch.saturating_add(1);
        let creator = match self.groups.get(&group_id) {
            Some(g) => g.creator.clone(),
            None => {
                self.count(sender);
                Some(sender.clone())
            }
        };
        // Membership counts follow the new member list (the creator of a
        // new group was put in `before` but counted nowhere yet).
        if existed {
            self.hold(members.difference(&before), true);
            self.hold(before.difference(&members), false);
        } else {
            self.hold(members.iter(), true);
        }
        self.groups.insert(
            group_id,
            Group {
                epoch: next,
                members,
                creator,
            },
        );
        Ok(Verdict::Accepted {
            epoch: next,
            recipients: count,
        })
    }

    fn message(
        &mut self,
        sender: &DeviceId,
        group_id: Vec<u8>,
        epoch: u64,
        message: Vec<u8>,
    ) -> Result<Verdict, DsError> {
        if message.len() > self.limits.message_bytes {
            return Err(DsError::TooLarge);
        }
        let g = self.groups.get(&group_id).ok_or(DsError::UnknownGroup)?;
        if !g.members.contains(sender) {
            return Err(DsError::NotAMember);
        }
        if epoch > g.epoch || epoch.saturating_add(CARRIED_PRIOR_EPOCHS) < g.epoch {
            return Err(DsError::StaleEpoch { current: g.epoch });
        }
        let recipients: Vec<&DeviceId> = g.members.iter().filter(|d| *d != sender).collect();
        let item = Delivery::Group {
            group_id: group_id.clone(),
            message,
        };
        let (current, count) = (g.epoch, recipients.len());
        let recipients: Vec<DeviceId> = recipients.into_iter().cloned().collect();
        self.mailboxes.deliver(sender, recipients.iter(), item)?;
        Ok(Verdict::Accepted {
            epoch: current,
            recipients: count,
        })
    }
}

/// Takes one off `key`'s count, forgetting it at zero.
fn down<K: Ord + Clone>(counts: &mut BTreeMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}
