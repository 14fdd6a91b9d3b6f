//! A device's KeyPackages at the relay: uploading a batch with a new
//! last-resort one, and claiming another person's, each checked (a
//! KeyPackage for anyone but the device the relay named refuses the claim;
//! one that does not verify leaves its device out, and that device is not
//! claimed for again for [`UNADDABLE_RETRY`](super::member::UNADDABLE_RETRY)).

use blindrelay_ds::{Claimed, Down, Request};
use blindrelay_wire::UserName;

use super::member::{KEY_PACKAGE_BATCH, MAX_UNADDABLE, Member};
use crate::error::ClientError;

impl Member {
    /// Uploads a batch of one-time KeyPackages and a new last-resort one.
    pub async fn upload_key_packages(&mut self) -> Result<u32, ClientError> {
        self.last_upload = Some(tokio::time::Instant::now());
        let kps = self.device.key_packages(KEY_PACKAGE_BATCH)?;
        let last_resort = Some(self.device.last_resort_key_package()?);
        match self
            .link
            .request(Request::Upload {
                one_time: kps,
                last_resort,
            })
            .await?
        {
            Down::Uploaded { key_packages, .. } => {
                self.key_packages_left = key_packages;
                Ok(key_packages)
            }
            Down::Refused { why, .. } => Err(ClientError::RequestRefused(why)),
            _ => Err(ClientError::UnexpectedAnswer {
                expected: "UPLOADED",
            }),
        }
    }

    /// One KeyPackage per device of `user`, each checked: a KeyPackage
    /// whose certificate does not verify now (a revoked or expired device,
    /// one of another suite) is left out with a warning; one for anybody
    /// but the device the relay named, of `user`, refuses the whole claim
    /// (the relay, or a device that uploaded another's KeyPackage, tried
    /// to slip someone in).
    pub(super) async fn claim(&mut self, user: &UserName) -> Result<Vec<Claimed>, ClientError> {
        let claimed = match self.link.request(Request::Claim(user.clone())).await? {
            Down::Claimed { key_packages, .. } => key_packages,
            Down::Refused { why, .. } => return Err(ClientError::RequestRefused(why)),
            _ => {
                return Err(ClientError::UnexpectedAnswer {
                    expected: "CLAIMED",
                });
            }
        };
        // A CRL that came before the answer is used on these KeyPackages
        // (a device it revokes is not added, and the relay, which has it,
        // would refuse the commit).
        self.take_crls();
        let mut out = Vec::new();
        for c in claimed {
            match self.device.key_package_owner(&c.key_package) {
                Ok((u, d)) if u == *user && c.device.user == *user && d == c.device.device => {
                    out.push(c);
                }
                Ok((u, d)) => {
                    tracing::warn!(target: "blindrelay::security", offered = %c.device, owner = %format!("{u}@{d}"),
                        "a KeyPackage offered for one device belongs to another; nothing is added");
                    return Err(ClientError::ForeignKeyPackage {
                        offered: c.device.to_string(),
                        owner: format!("{u}@{d}"),
                    });
                }
                Err(e) => {
                    tracing::warn!(device = %c.device, error = %e,
                        "a KeyPackage that does not verify now (revoked, expired or another suite); that device is left out");
                    if self.unaddable.len() >= MAX_UNADDABLE
                        && let Some(oldest) = self
                            .unaddable
                            .iter()
                            .min_by_key(|(_, t)| **t)
                            .map(|(d, _)| d.clone())
                    {
                        self.unaddable.remove(&oldest);
                    }
                    self.unaddable
                        .insert(c.device.clone(), tokio::time::Instant::now());
                }
            }
        }
        Ok(out)
    }
}
