//! The relay's check of a submission before it is ordered (issue 28 item
//! 1): a commit or proposal must verify against the group's public state
//! ([`blindrelay_mls::Observer`], mls-rs's `ExternalGroup`), signed by the
//! device whose session submitted it; an application message must be a
//! `PrivateMessage` of application content for the group and epoch it
//! names. The group's membership after a commit is read from the verified
//! tree, never taken from the committer's word.
//!
//! The check runs without the Delivery Service's lock (verifying a commit
//! that adds many devices checks each certificate): it reads the group's
//! state under the lock, verifies outside it, and the caller orders the
//! submission only if the state is still the one verified against
//! ([`Prepared::before`]); otherwise another commit won and the device is
//! told the current epoch, as for any commit that lost the race.

use std::collections::BTreeSet;

use blindrelay_ds::{DeviceId, DsError, Submission};
use blindrelay_mls::{ObserveError, Observer};
use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;
use tracing::warn;

use super::{DeliveryService, lock, unix_now};
use crate::SECURITY;
use crate::store::StoreError;

/// Why a submission is not ordered.
pub(crate) enum CheckError {
    /// Refused by the rules (the device is told why).
    Rules(DsError),
    /// The store could not be read (the device is told to retry).
    Storage(StoreError),
}

impl From<DsError> for CheckError {
    fn from(e: DsError) -> Self {
        Self::Rules(e)
    }
}

/// A submission that passed the check, with what ordering it must store.
pub(crate) struct Prepared {
    /// The group's public state the check started from (`None`: the
    /// group is new); ordering must find it unchanged.
    pub before: Option<Vec<u8>>,
    /// The group's public state once the submission is ordered (`None`:
    /// unchanged, an application message).
    pub after: Option<Vec<u8>>,
    /// The submission, its membership read from the verified tree.
    pub submission: Submission,
}

fn device_id((user, device): &(String, String)) -> Option<DeviceId> {
    Some(DeviceId {
        user: UserName::new(user).ok()?,
        device: DeviceName::new(device).ok()?,
    })
}

fn device_ids(names: &BTreeSet<(String, String)>) -> Result<BTreeSet<DeviceId>, DsError> {
    names
        .iter()
        .map(|n| device_id(n).ok_or(DsError::Unverified))
        .collect()
}

impl DeliveryService {
    /// Checks `submission` from `device` (blocking; without the lock but
    /// for reading the group's state).
    pub(crate) fn prepare(
        &self,
        device: &DeviceId,
        submission: Submission,
    ) -> Result<Prepared, CheckError> {
        let names = (device.user.to_string(), device.device.to_string());
        let refused = |e: ObserveError| {
            warn!(target: SECURITY, %device, reason = %e,
                "a v2 submission does not verify against its group's public state; refused");
            DsError::Unverified
        };
        match submission {
            Submission::Message {
                group_id,
                epoch,
                message,
            } => {
                if !Observer::is_proposal(&message, &group_id, epoch).map_err(refused)? {
                    return Ok(Prepared {
                        before: None,
                        after: None,
                        submission: Submission::Message {
                            group_id,
                            epoch,
                            message,
                        },
                    });
                }
                let (current, before) = self.public_state(&group_id)?;
                let before = before.ok_or(DsError::Unverified)?;
                if current != Some(epoch) {
                    return Err(DsError::StaleEpoch {
                        current: current.unwrap_or(0),
                    }
                    .into());
                }
                self.observer.trust().set_now(unix_now());
                let after = self
                    .observer
                    .proposal(&before, &group_id, epoch, &message, &names)
                    .map_err(refused)?;
                Ok(Prepared {
                    before: Some(before),
                    after: Some(after),
                    submission: Submission::Message {
                        group_id,
                        epoch,
                        message,
                    },
                })
            }
            Submission::Commit {
                group_id,
                epoch,
                commit,
                welcome,
                group_info,
                ..
            } => {
                let (current, before) = self.public_state(&group_id)?;
                if let Some(current) = current
                    && current != epoch
                {
                    return Err(DsError::StaleEpoch { current }.into());
                }
                self.observer.trust().set_now(unix_now());
                let checked = match (&before, current, &group_info) {
                    (Some(state), Some(_), _) => self
                        .observer
                        .commit(state, &group_id, epoch, &commit, &names),
                    (None, None, Some(info)) if epoch == 0 => {
                        self.observer.create(&group_id, info, &commit, &names)
                    }
                    // A group the relay knows but has no public state for
                    // (ordered by an older relay), or a new group without
                    // its GroupInfo: nothing to check against.
                    _ => Err(ObserveError::Shape("commit with its group's public state")),
                }
                .map_err(refused)?;
                let added = device_ids(&checked.added)?;
                let welcome = match (welcome, added.is_empty()) {
                    (Some((_, w)), false) => Some((added, w)),
                    (None, true) => None,
                    _ => return Err(DsError::Membership.into()),
                };
                Ok(Prepared {
                    before,
                    after: Some(checked.state),
                    submission: Submission::Commit {
                        group_id,
                        epoch,
                        members: device_ids(&checked.members)?,
                        commit,
                        welcome,
                        group_info: None,
                    },
                })
            }
        }
    }

    /// The group's epoch as ordered (`None`: unknown) and its stored
    /// public state.
    fn public_state(&self, group_id: &[u8]) -> Result<(Option<u64>, Option<Vec<u8>>), CheckError> {
        let st = lock(&self.state);
        let current = st.groups.get(group_id).map(|(e, _)| e);
        let state = st.db.public_state(group_id).map_err(CheckError::Storage)?;
        Ok((current, state))
    }
}
