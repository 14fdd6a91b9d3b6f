//! The device's signature key, as mls-rs takes it.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use blindrelay_pki::{DeviceKeyKind, PrivateKeyPem};
use mls_rs_core::crypto::SignatureSecretKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use crate::error::MlsError;

/// A device's private key, ECDSA P-256 or Ed25519: the same key that signs
/// its TLS handshake and its MLS leaf. No `Debug`; mls-rs zeroizes its
/// copy.
///
/// ```compile_fail
/// fn leak(k: &blindrelay_mls::DeviceKey) -> String { format!("{k:?}") }
/// ```
pub struct DeviceKey {
    secret: SignatureSecretKey,
    public: Vec<u8>,
    kind: DeviceKeyKind,
}

impl DeviceKey {
    /// Reads a PKCS#8 P-256 or Ed25519 key (as `enroll --device` writes
    /// it).
    pub fn from_pem(pem: &PrivateKeyPem) -> Result<Self, MlsError> {
        let der = PrivateKeyDer::from_pem_slice(pem.expose_pem().as_bytes())
            .map_err(|_| MlsError::DeviceKey)?;
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(MlsError::DeviceKey);
        };
        let pkcs8 = pkcs8.secret_pkcs8_der();
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8) {
            let scalar = pair
                .private_key()
                .as_be_bytes()
                .map_err(|_| MlsError::DeviceKey)?;
            return Ok(Self {
                secret: SignatureSecretKey::new(scalar.as_ref().to_vec()),
                public: pair.public_key().as_ref().to_vec(),
                kind: DeviceKeyKind::P256,
            });
        }
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| MlsError::DeviceKey)?;
        let seed = pair.seed().map_err(|_| MlsError::DeviceKey)?;
        let seed = seed.as_be_bytes().map_err(|_| MlsError::DeviceKey)?;
        // mls-rs-crypto-awslc takes an Ed25519 secret as seed || public key.
        let mut secret = Zeroizing::new(seed.as_ref().to_vec());
        secret.extend_from_slice(pair.public_key().as_ref());
        Ok(Self {
            secret: SignatureSecretKey::new(secret.to_vec()),
            public: pair.public_key().as_ref().to_vec(),
            kind: DeviceKeyKind::Ed25519,
        })
    }

    /// P-256 or Ed25519.
    pub fn kind(&self) -> DeviceKeyKind {
        self.kind
    }

    /// The public key: an uncompressed SEC1 point, or 32 Ed25519 bytes.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    pub(crate) fn into_secret(self) -> SignatureSecretKey {
        self.secret
    }
}
