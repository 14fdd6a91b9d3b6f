//! Published GroupInfos (PROTOCOL.md 11.7, PUBLISH and GROUP_INFO): a
//! member hands the relay its group's GroupInfo after each commit, and a
//! member cut off from a commit asks for it, with the tree the relay
//! follows, to re-join by external commit (`blindrelay_mls::rules`).
//!
//! The relay keeps a GroupInfo only if it is exactly the group's current
//! public state, verifies, carries the key for external commits and is
//! signed by the device publishing it
//! ([`blindrelay_mls::Observer::check_group_info`]); it hands one out only
//! to a device it routes the group to, and only while it is of the
//! group's current epoch. Members check everything themselves again: the
//! relay could hand out an old or foreign one, and a re-joining device
//! refuses what does not fit (`blindrelay_mls::device::rejoin`).
//!
//! Like `check`, the verification runs without the lock; the store is
//! written under it only if the group is still at the epoch verified.

use blindrelay_ds::{DeviceId, Down, DsError, Refusal};
use tracing::{error, info, warn};

use super::{DeliveryService, lock, unix_now};
use crate::SECURITY;

/// The largest GroupInfo a member may publish, in bytes. One without the
/// tree (as members publish it) is a few hundred bytes: the group's
/// context, the key for external commits, a signature.
pub(crate) const MAX_GROUP_INFO_BYTES: usize = 16 * 1024;

impl DeliveryService {
    /// The group's epoch, if `device` is one of the devices it is routed
    /// to, and its public state.
    fn member_view(&self, device: &DeviceId, group_id: &[u8]) -> Result<(u64, Vec<u8>), Down> {
        let st = lock(&self.state);
        let Some((epoch, members)) = st.groups.get(group_id) else {
            return Err(Down::refused(0, &DsError::UnknownGroup));
        };
        if !members.contains(device) {
            return Err(Down::refused(0, &DsError::NotAMember));
        }
        match st.db.public_state(group_id) {
            Ok(Some(state)) => Ok((epoch, state)),
            Ok(None) => Err(Down::refused(0, &DsError::NoGroupInfo)),
            Err(e) => {
                error!(error = %e, "reading a group's public state failed");
                Err(Down::Refused {
                    req: 0,
                    why: Refusal::Storage,
                    epoch: 0,
                })
            }
        }
    }

    /// PUBLISH: keeps `info` as the group's GroupInfo of `epoch` if it
    /// passes (see the module documentation).
    pub(super) fn publish(
        &self,
        device: &DeviceId,
        req: u32,
        group_id: &[u8],
        epoch: u64,
        info: &[u8],
    ) -> Down {
        let answer = |d: Down| with_req(d, req);
        if self.broken.load(std::sync::atomic::Ordering::Acquire) {
            return Down::Refused {
                req,
                why: Refusal::Storage,
                epoch: 0,
            };
        }
        if info.len() > MAX_GROUP_INFO_BYTES {
            return answer(Down::refused(0, &DsError::TooLarge));
        }
        let (current, state) = match self.member_view(device, group_id) {
            Ok(v) => v,
            Err(d) => return answer(d),
        };
        if current != epoch {
            return answer(Down::refused(0, &DsError::StaleEpoch { current }));
        }
        self.observer.trust().set_now(unix_now());
        let names = (device.user.to_string(), device.device.to_string());
        match self.observer.check_group_info(&state, info, &names) {
            Ok(e) if e == epoch => {}
            Ok(_) | Err(_) => {
                warn!(target: SECURITY, %device,
                    "a published GroupInfo is not the group's current state signed by its publisher; refused");
                return answer(Down::refused(0, &DsError::Unverified));
            }
        }
        let mut st = lock(&self.state);
        match st.groups.get(group_id) {
            Some((now, _)) if now == epoch => {}
            Some((now, _)) => {
                return answer(Down::refused(0, &DsError::StaleEpoch { current: now }));
            }
            None => return answer(Down::refused(0, &DsError::UnknownGroup)),
        }
        if let Err(e) = st.db.set_group_info(group_id, epoch, info) {
            error!(error = %e, "storing a published GroupInfo failed");
            return answer(Down::Refused {
                req,
                why: Refusal::Storage,
                epoch: 0,
            });
        }
        Down::Accepted {
            req,
            epoch,
            recipients: 0,
        }
    }

    /// GROUP_INFO: the group's GroupInfo of its current epoch and its
    /// tree, for a device the group is routed to.
    pub(super) fn serve_group_info(&self, device: &DeviceId, req: u32, group_id: &[u8]) -> Down {
        let answer = |d: Down| with_req(d, req);
        let (current, state) = match self.member_view(device, group_id) {
            Ok(v) => v,
            Err(d) => return answer(d),
        };
        let stored = lock(&self.state).db.group_info(group_id);
        let info = match stored {
            Ok(Some((epoch, info))) if epoch == current => info,
            Ok(_) => return answer(Down::refused(0, &DsError::NoGroupInfo)),
            Err(e) => {
                error!(error = %e, "reading a published GroupInfo failed");
                return answer(Down::Refused {
                    req,
                    why: Refusal::Storage,
                    epoch: 0,
                });
            }
        };
        match self.observer.tree(&state) {
            Ok(tree) => {
                info!(target: SECURITY, %device, epoch = current,
                    "a device asked for its group's GroupInfo (to re-join after a missing commit)");
                Down::GroupInfo {
                    req,
                    epoch: current,
                    group_info: info,
                    tree,
                }
            }
            Err(e) => {
                error!(error = %e, "a group's public state cannot be read");
                answer(Down::refused(0, &DsError::NoGroupInfo))
            }
        }
    }
}

/// `d` (a refusal made without its request number) answering `req`.
fn with_req(d: Down, req: u32) -> Down {
    match d {
        Down::Refused { why, epoch, .. } => Down::Refused { req, why, epoch },
        other => other,
    }
}
