//! Device credentials, checked by every member.
//!
//! mls-rs asks an identity provider whether a member's credential is
//! acceptable each time a leaf enters or changes (a KeyPackage, an Add, an
//! Update, a Welcome's tree). Ours is mls-rs-identity-x509's
//! [`X509IdentityProvider`] over two small pieces that call the code
//! version 1 already trusts, [`VerifiedDevice::verify`]:
//!
//! * [`DeviceValidator`]: the credential is a chain of exactly one
//!   certificate (the CA is the trust anchor every member already holds;
//!   a chain that carries more is refused rather than half-read), and that
//!   certificate passes every device check at the *local* clock, against
//!   the CA and the CRL this client holds. The relay chooses neither.
//! * [`DeviceIdentity`]: a member's identity is `user@device`, so two
//!   devices of one person are two members, and a credential may replace
//!   another only for the same person *and* the same device.
//!
//! The clock and the trust root are shared ([`Trust`]) so that a newer
//! CRL, once accepted by the client, applies to every later check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::digest::{SHA256, digest};
use blindrelay_pki::crl::CRL_GRACE_SECS;

use blindrelay_e2e::{PeerError, TrustRoot, VerifiedDevice};
use mls_rs::time::MlsTime;
use mls_rs_core::crypto::SignaturePublicKey;
use mls_rs_core::identity::{Credential, SigningIdentity};
use mls_rs_identity_x509::{
    CertificateChain, X509CredentialValidator, X509IdentityExtractor, X509IdentityProvider,
};

/// The identity provider every blindrelay MLS client uses.
pub type DeviceIdentityProvider = X509IdentityProvider<DeviceIdentity, DeviceValidator>;

/// Why a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The credential is not a chain of exactly one certificate.
    #[error("a device credential is exactly one certificate")]
    ChainShape,
    /// The certificate failed a device check.
    #[error("device certificate refused: {0}")]
    Certificate(#[from] PeerError),
}

impl mls_rs_core::error::IntoAnyError for CredentialError {}

/// Most verified certificates remembered (see [`Trust`]); the memory is
/// emptied when full.
pub const MAX_REMEMBERED_CREDENTIALS: usize = 4096;

/// What every check trusts: the CA and CRL this client holds, and the
/// local clock. Cloning shares them.
///
/// A certificate that passed is remembered (by its SHA-256) until the
/// earlier of its notAfter and the CRL's last usable moment, and only
/// while the clock does not go back and the trust root is not replaced:
/// within those bounds a second verification would give the same answer,
/// and skipping it keeps a message's cost off the certificate chain.
#[derive(Clone)]
pub struct Trust {
    root: Arc<RwLock<TrustRoot>>,
    now: Arc<AtomicU64>,
    passed: Arc<Mutex<HashMap<[u8; 32], Remembered>>>,
}

#[derive(Clone)]
struct Remembered {
    verified_at: u64,
    until: i64,
    device: VerifiedDevice,
}

impl Trust {
    /// Trusts `root`, with the clock at `now_unix`.
    pub fn new(root: TrustRoot, now_unix: u64) -> Self {
        Self {
            root: Arc::new(RwLock::new(root)),
            now: Arc::new(AtomicU64::new(now_unix)),
            passed: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Sets the clock every later check uses (Unix seconds).
    pub fn set_now(&self, now_unix: u64) {
        self.now.store(now_unix, Ordering::Relaxed);
    }

    /// The clock, Unix seconds.
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    /// Replaces the trust root (a newer CRL the client has accepted).
    /// Every remembered verification is forgotten.
    pub fn replace_root(&self, root: TrustRoot) {
        let mut current = self.root.write().unwrap_or_else(|p| p.into_inner());
        self.passed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *current = root;
    }

    /// Verifies a device certificate now.
    pub fn verify(&self, cert_der: &[u8]) -> Result<VerifiedDevice, PeerError> {
        let now = self.now();
        let key: [u8; 32] = {
            let mut k = [0u8; 32];
            k.copy_from_slice(digest(&SHA256, cert_der).as_ref());
            k
        };
        // The root lock is held throughout, so a replacement cannot slip
        // between the check and the memory of it.
        let root = self.root.read().unwrap_or_else(|p| p.into_inner());
        {
            let passed = self.passed.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = passed.get(&key) {
                let now_i = i64::try_from(now).unwrap_or(i64::MAX);
                if now >= r.verified_at && now_i < r.until {
                    return Ok(r.device.clone());
                }
            }
        }
        let device = VerifiedDevice::verify(cert_der, &root, now)?;
        let crl_until = root
            .crl()
            .map_or(i64::MAX, |c| c.next_update().saturating_add(CRL_GRACE_SECS));
        let mut passed = self.passed.lock().unwrap_or_else(|p| p.into_inner());
        if passed.len() >= MAX_REMEMBERED_CREDENTIALS {
            passed.clear();
        }
        passed.insert(
            key,
            Remembered {
                verified_at: now,
                until: device.not_after().min(crl_until),
                device: device.clone(),
            },
        );
        Ok(device)
    }

    /// Verifies the certificate in an MLS credential now.
    pub fn verify_credential(
        &self,
        credential: &Credential,
    ) -> Result<VerifiedDevice, CredentialError> {
        let chain = credential.as_x509().ok_or(CredentialError::ChainShape)?;
        self.verify_chain(chain)
    }

    fn verify_chain(&self, chain: &CertificateChain) -> Result<VerifiedDevice, CredentialError> {
        match chain.as_slice() {
            [leaf] => Ok(self.verify(leaf)?),
            _ => Err(CredentialError::ChainShape),
        }
    }

    /// The identity provider over this trust.
    pub fn identity_provider(&self) -> DeviceIdentityProvider {
        X509IdentityProvider::new(DeviceIdentity, DeviceValidator(self.clone()))
    }
}

/// Checks a credential's certificate with [`VerifiedDevice::verify`].
#[derive(Clone)]
pub struct DeviceValidator(Trust);

impl X509CredentialValidator for DeviceValidator {
    type Error = CredentialError;

    /// The timestamp mls-rs offers is ignored: validity is judged by the
    /// local clock ([`Trust::set_now`]), never by a time a peer or the
    /// relay could choose.
    fn validate_chain(
        &self,
        chain: &CertificateChain,
        _timestamp: Option<MlsTime>,
    ) -> Result<SignaturePublicKey, Self::Error> {
        let device = self.0.verify_chain(chain)?;
        Ok(SignaturePublicKey::from(device.public_key().to_vec()))
    }
}

/// A member's identity: `user@device`, read from its certificate.
#[derive(Clone, Copy)]
pub struct DeviceIdentity;

impl DeviceIdentity {
    fn of(chain: &CertificateChain) -> Result<(String, String), CredentialError> {
        let leaf = match chain.as_slice() {
            [leaf] => leaf,
            _ => return Err(CredentialError::ChainShape),
        };
        let (user, device) = blindrelay_e2e::device::names(leaf)?;
        Ok((user.to_string(), device.to_string()))
    }
}

impl X509IdentityExtractor for DeviceIdentity {
    type Error = CredentialError;

    fn identity(&self, chain: &CertificateChain) -> Result<Vec<u8>, Self::Error> {
        let (user, device) = Self::of(chain)?;
        Ok(format!("{user}@{device}").into_bytes())
    }

    /// A credential succeeds another only for the same person and device.
    fn valid_successor(
        &self,
        predecessor: &CertificateChain,
        successor: &CertificateChain,
    ) -> Result<bool, Self::Error> {
        Ok(Self::of(predecessor)? == Self::of(successor)?)
    }
}

/// The device named by a member's signing identity, if its credential
/// parses (it was verified when it entered the group).
pub fn member_names(identity: &SigningIdentity) -> Option<(String, String)> {
    let chain = identity.credential.as_x509()?;
    DeviceIdentity::of(chain).ok()
}
