//! Ordering a submission that passed its check (`check`): under the
//! Delivery Service's lock, only if the group's public state is still the
//! one it was checked against; then the rules of `blindrelay-ds` (epoch,
//! membership, every budget), and one SQLite transaction for the group's
//! new order, its new public state and every mailbox item.

use std::collections::HashSet;

use blindrelay_ds::{DeviceId, Down, DsError, Submission, Verdict};
use tracing::{info, warn};

use super::check::Prepared;
use super::{DeliveryService, State};
use crate::SECURITY;

impl DeliveryService {
    /// Orders `p` from `device` (request `req`), holding the lock `st`.
    pub(super) fn order(
        &self,
        st: &mut State,
        device: &DeviceId,
        req: u32,
        p: Prepared,
        now: u64,
    ) -> Down {
        let rules = |e: &DsError| Down::refused(req, e);
        let Prepared {
            before,
            after,
            submission: sub,
        } = p;
        let (group_id, is_commit) = match &sub {
            Submission::Commit { group_id, .. } => (group_id.clone(), true),
            Submission::Message { group_id, .. } => (group_id.clone(), false),
        };
        if after.is_some() {
            // Another commit or proposal was ordered while this one was
            // checked: it was checked against a state that is gone.
            match st.db.public_state(&group_id) {
                Ok(now_state) if now_state == before => {}
                Ok(_) => {
                    let current = st.groups.get(&group_id).map_or(0, |(e, _)| e);
                    return rules(&DsError::StaleEpoch { current });
                }
                Err(e) => return self.storage_failed(st, e, req),
            }
        }
        // A commit brings in only devices the relay knows (they published
        // KeyPackages): nobody fills the mailboxes of made-up devices.
        let unknown = st
            .groups
            .newcomers(&sub)
            .into_iter()
            .find(|d| *d != device && !st.directory.knows(d))
            .cloned();
        if let Some(d) = unknown {
            warn!(target: SECURITY, %device, newcomer = %d,
                "a commit adds a device the relay does not know; refused");
            return rules(&DsError::Membership);
        }
        let verdict = st.groups.submit(device, sub);
        let appended = st.groups.mailboxes().take_appended();
        let Verdict::Accepted { epoch, recipients } = match verdict {
            Ok(v) => v,
            Err(e) => {
                info!(%device, reason = %e, "v2 submission refused");
                return rules(&e);
            }
        };
        let group = is_commit.then(|| {
            st.groups
                .get(&group_id)
                .map(|(e, m)| (group_id.as_slice(), e, m, st.groups.creator_of(&group_id)))
        });
        let public = after.as_deref().map(|a| (group_id.as_slice(), a));
        if let Err(e) = st
            .db
            .submit(group.flatten(), public, &appended, (device, now))
        {
            return self.storage_failed(st, e, req);
        }
        let woken: HashSet<&DeviceId> = appended.items.iter().map(|(d, _, _)| d).collect();
        self.wake(woken);
        Down::Accepted {
            req,
            epoch,
            recipients: u32::try_from(recipients).unwrap_or(u32::MAX),
        }
    }
}
