//! The device's signature key, as mls-rs takes it.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use blindrelay_pki::PrivateKeyPem;
use mls_rs_core::crypto::SignatureSecretKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use crate::error::MlsError;

/// A device's ECDSA P-256 private key: the same key that signs its TLS
/// handshake and its MLS leaf. No `Debug`; mls-rs zeroizes its copy.
///
/// ```compile_fail
/// fn leak(k: &blindrelay_mls::DeviceKey) -> String { format!("{k:?}") }
/// ```
pub struct DeviceKey {
    secret: SignatureSecretKey,
    public: Vec<u8>,
}

impl DeviceKey {
    /// Reads a PKCS#8 P-256 key (as `enroll --device` writes it).
    pub fn from_pem(pem: &PrivateKeyPem) -> Result<Self, MlsError> {
        let der = PrivateKeyDer::from_pem_slice(pem.expose_pem().as_bytes())
            .map_err(|_| MlsError::DeviceKey)?;
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(MlsError::DeviceKey);
        };
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.secret_pkcs8_der())
                .map_err(|_| MlsError::DeviceKey)?;
        let scalar = pair
            .private_key()
            .as_be_bytes()
            .map_err(|_| MlsError::DeviceKey)?;
        let secret = Zeroizing::new(scalar.as_ref().to_vec());
        Ok(Self {
            secret: SignatureSecretKey::new(secret.to_vec()),
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    /// The public key, an uncompressed SEC1 point.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    pub(crate) fn into_secret(self) -> SignatureSecretKey {
        self.secret
    }
}
