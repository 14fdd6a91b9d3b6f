//! The local user's identity: certificate and RSA private key.

use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::RSA_PSS_SHA256;
use blindrelay_wire::UserName;
use zeroize::Zeroizing;

use crate::error::E2eError;
use crate::peer::{TrustRoot, VerifiedPeer};

/// The user's own certificate (verified like any peer's) and private key.
/// No `Debug`; the PKCS#8 bytes are zeroized when dropped, and aws-lc
/// clears its key copies when freeing them.
///
/// ```compile_fail
/// fn leak(k: &blindrelay_e2e::LocalIdentity) -> String { format!("{k:?}") }
/// ```
pub struct LocalIdentity {
    cert: VerifiedPeer,
    signer: RsaKeyPair,
    decrypter: OaepPrivateDecryptingKey,
    _pkcs8: Zeroizing<Vec<u8>>,
}

impl LocalIdentity {
    /// Builds an identity from a certificate (DER) and its PKCS#8 private key
    /// (DER). The certificate must verify against `root` for `name`, and the
    /// key must match it.
    pub fn new(
        name: &UserName,
        cert_der: &[u8],
        pkcs8: Zeroizing<Vec<u8>>,
        root: &TrustRoot,
        now_unix: u64,
    ) -> Result<Self, E2eError> {
        let cert = VerifiedPeer::verify(name, cert_der, root, now_unix)
            .map_err(E2eError::OwnCertificate)?;
        let signer = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| E2eError::PrivateKey)?;
        let decrypter = PrivateDecryptingKey::from_pkcs8(&pkcs8)
            .ok()
            .and_then(|k| OaepPrivateDecryptingKey::new(k).ok())
            .ok_or(E2eError::PrivateKey)?;
        // The key must belong to the certificate: sign and verify a probe.
        let probe = b"blindrelay/v1/key-check";
        let mut sig = vec![0u8; signer.public_modulus_len()];
        signer
            .sign(
                &RSA_PSS_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                probe,
                &mut sig,
            )
            .map_err(|_| E2eError::Crypto)?;
        if !cert.verify_signature(probe, &sig) {
            return Err(E2eError::KeyMismatch);
        }
        Ok(Self {
            cert,
            signer,
            decrypter,
            _pkcs8: pkcs8,
        })
    }

    /// Builds an identity from PEM text: the certificate and a PKCS#8
    /// `PRIVATE KEY`.
    pub fn from_pem(
        name: &UserName,
        cert_pem: &[u8],
        key_pem: &[u8],
        root: &TrustRoot,
        now_unix: u64,
    ) -> Result<Self, E2eError> {
        use rustls_pki_types::pem::PemObject;
        let cert = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem)
            .map_err(|_| E2eError::Pem("certificate"))?;
        let key = Zeroizing::new(
            rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem)
                .map_err(|_| E2eError::Pem("PKCS#8 PRIVATE KEY"))?,
        );
        let pkcs8 = Zeroizing::new(key.secret_pkcs8_der().to_vec());
        Self::new(name, &cert, pkcs8, root, now_unix)
    }

    /// The user name (certificate CN).
    pub fn name(&self) -> &UserName {
        self.cert.name()
    }

    /// The user's own verified certificate.
    pub fn cert(&self) -> &VerifiedPeer {
        &self.cert
    }

    /// RSA-PSS-SHA-256 signature of `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, E2eError> {
        let mut sig = vec![0u8; self.signer.public_modulus_len()];
        self.signer
            .sign(
                &RSA_PSS_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                msg,
                &mut sig,
            )
            .map_err(|_| E2eError::Crypto)?;
        Ok(sig)
    }

    /// Length of this identity's signatures.
    pub(crate) fn signature_len(&self) -> usize {
        self.signer.public_modulus_len()
    }

    /// RSA-OAEP unwrap of a message key. Any failure is `None`, with no detail.
    pub(crate) fn unwrap_key(&self, wrapped: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new(vec![0u8; self.decrypter.min_output_size()]);
        let pt = self
            .decrypter
            .decrypt(
                &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
                wrapped,
                &mut out,
                Some(crate::WRAP_LABEL),
            )
            .ok()?;
        let mut key = Zeroizing::new([0u8; 32]);
        if pt.len() != key.len() {
            return None;
        }
        key.copy_from_slice(pt);
        Some(key)
    }
}
