//! Who is in a group, with their certificates: for the per-device safety
//! numbers a person compares (`/verify`).

use super::{Device, member_names};
use crate::error::MlsError;
use crate::types::Member;

impl Device {
    /// Each member with its certificate (DER), for safety numbers: the
    /// certificates were verified when their members entered the group.
    pub fn member_certificates(
        &mut self,
        group_id: &[u8],
    ) -> Result<Vec<(Member, Vec<u8>)>, MlsError> {
        let group = self.group(group_id)?;
        Ok(group
            .roster()
            .members_iter()
            .filter_map(|m| {
                let (user, device) = member_names(&m.signing_identity)?;
                let chain = m.signing_identity.credential.as_x509()?;
                let leaf = chain.as_slice().first()?;
                Some((
                    Member {
                        user,
                        device,
                        index: m.index,
                    },
                    leaf.to_vec(),
                ))
            })
            .collect())
    }
}
