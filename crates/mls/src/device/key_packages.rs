//! This device's KeyPackages: one-time ones (their private keys deleted
//! once a Welcome used them) and last-resort ones (kept, see
//! [`crate::MlsStore::mark_last_resort`]), backdated so that a member whose
//! clock is behind still accepts them.

use mls_rs::time::MlsTime;
use mls_rs::{ExtensionList, MlsMessage};
use mls_rs_core::crypto::CryptoProvider;
use mls_rs_crypto_awslc::AwsLcCryptoProvider;

use super::{Device, KEY_PACKAGE_BACKDATE};
use crate::error::MlsError;

impl Device {
    /// A fresh KeyPackage (backdated by [`KEY_PACKAGE_BACKDATE`]), its
    /// private keys stored.
    fn key_package(&self) -> Result<MlsMessage, MlsError> {
        let born = self
            .trust
            .now()
            .saturating_sub(KEY_PACKAGE_BACKDATE.as_secs());
        Ok(self.client.generate_key_package_message(
            ExtensionList::default(),
            ExtensionList::default(),
            Some(MlsTime::from(born)),
        )?)
    }

    /// `count` fresh one-time KeyPackages, their private keys stored.
    pub fn key_packages(&mut self, count: usize) -> Result<Vec<Vec<u8>>, MlsError> {
        (0..count)
            .map(|_| Ok(self.key_package()?.to_bytes()?))
            .collect()
    }

    /// A last-resort KeyPackage: the relay hands it out when the one-time
    /// ones are used up, possibly more than once, so its private key stays
    /// after a Welcome used it (until two newer last-resort ones exist).
    pub fn last_resort_key_package(&mut self) -> Result<Vec<u8>, MlsError> {
        let msg = self.key_package()?;
        let bytes = msg.to_bytes()?;
        let suite = self.cipher_suite();
        let provider = AwsLcCryptoProvider::with_enabled_cipher_suites(vec![suite])
            .cipher_suite_provider(suite)
            .ok_or(MlsError::KeyPackage)?;
        let kp = msg.into_key_package().ok_or(MlsError::KeyPackage)?;
        let id = kp.to_reference(&provider)?;
        self.store.mark_last_resort(&id)?;
        Ok(bytes)
    }
}
