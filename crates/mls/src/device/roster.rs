//! Who is in a group, with their certificates: for the per-device safety
//! numbers a person compares (`/verify`); and whose a KeyPackage is, so
//! that a device adds exactly the devices it asked for, whatever the relay
//! handed out.

use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;
use mls_rs::MlsMessage;

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

    /// The person and device a KeyPackage is for, its certificate verified
    /// now (chain to the CA, validity, CRL, key usage) and its suite this
    /// device's. The caller checks that it is the device it asked for:
    /// the relay hands out KeyPackages, and could hand out anyone's.
    pub fn key_package_owner(
        &self,
        key_package: &[u8],
    ) -> Result<(UserName, DeviceName), MlsError> {
        let msg = MlsMessage::from_bytes(key_package).map_err(|_| MlsError::KeyPackage)?;
        if msg.cipher_suite() != Some(self.cipher_suite()) {
            return Err(MlsError::KeyPackage);
        }
        let kp = msg.into_key_package().ok_or(MlsError::KeyPackage)?;
        let device = self
            .trust
            .verify_credential(&kp.signing_identity().credential)
            .map_err(|_| MlsError::KeyPackage)?;
        Ok((device.user().clone(), device.device().clone()))
    }
}
