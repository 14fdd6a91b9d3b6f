//! Peer certificates: verification, fingerprints, safety numbers.
//!
//! The relay hands out certificates; a client believes none of them until
//! [`VerifiedPeer::verify`] has checked, itself, that the certificate chains
//! to the private CA, is valid now, carries `clientAuth`, `digitalSignature`
//! and `keyEncipherment`, holds an RSA key of at least 2048 bits, is not in
//! the CRL (when the client has one), and that its CN is exactly the name it
//! was offered for.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, SHA512, digest};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
use blindrelay_wire::UserName;
use blindrelay_wire::codec::hex;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{BorrowedCertRevocationList, CertRevocationList, RevocationOptionsBuilder};
use x509_parser::prelude::*;

use crate::error::{E2eError, PeerError};
use blindrelay_pki::crl::CheckedCrl;

/// What a client trusts: the CA certificate and, optionally, the CA's CRL.
/// With a CRL, every certificate is checked against it, and none is
/// accepted once the CRL is no longer current (see
/// `blindrelay_pki::crl`).
#[derive(Clone)]
pub struct TrustRoot {
    ca_der: Vec<u8>,
    crl: Option<CheckedCrl>,
}

impl TrustRoot {
    /// Trusts `ca_der` (DER).
    pub fn new(ca_der: Vec<u8>) -> Result<Self, PeerError> {
        webpki::anchor_from_trusted_cert(&CertificateDer::from(ca_der.as_slice()))
            .map_err(PeerError::TrustRoot)?;
        Ok(Self { ca_der, crl: None })
    }

    /// Also checks certificates against this CRL (DER), which must be
    /// signed by the CA. Whether it is current is checked at each
    /// verification.
    pub fn with_crl(self, crl_der: Vec<u8>) -> Result<Self, PeerError> {
        let crl = CheckedCrl::signed(&crl_der, &self.ca_der).map_err(PeerError::Crl)?;
        Ok(self.with_checked_crl(crl))
    }

    /// Checks certificates against `crl` (its signature already verified
    /// against this CA).
    pub fn with_checked_crl(mut self, crl: CheckedCrl) -> Self {
        self.crl = Some(crl);
        self
    }

    /// The CRL in use, if any.
    pub fn crl(&self) -> Option<&CheckedCrl> {
        self.crl.as_ref()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }
}

/// A certificate that passed every check for the name it carries. It can
/// only be built by [`VerifiedPeer::verify`].
#[derive(Clone)]
pub struct VerifiedPeer {
    name: UserName,
    cert_der: Vec<u8>,
    fingerprint: [u8; 32],
    /// The key wraps go to, parsed once at verification.
    wrap_key: PublicEncryptingKey,
    rsa_public: Vec<u8>,
}

impl fmt::Debug for VerifiedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedPeer({}, {})", self.name, hex(&self.fingerprint))
    }
}

/// The fingerprint of a key: SHA-256 of its SubjectPublicKeyInfo, DER.
pub fn key_fingerprint(spki_der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, spki_der).as_ref());
    out
}

/// The fingerprint of a certificate's key (see [`key_fingerprint`]): pins
/// and safety numbers are on keys, so a certificate renewed for the same
/// key is the same peer, and a new key is a change. Input that is not a
/// certificate is hashed whole (it then matches no certificate's key).
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    match X509Certificate::from_der(cert_der) {
        Ok((_, cert)) => key_fingerprint(cert.public_key().raw),
        Err(_) => key_fingerprint(cert_der),
    }
}

impl VerifiedPeer {
    /// Verifies `cert_der` for `name` against `root` at `now_unix` (seconds).
    pub fn verify(
        name: &UserName,
        cert_der: &[u8],
        root: &TrustRoot,
        now_unix: u64,
    ) -> Result<Self, PeerError> {
        verify_chain(cert_der, root, now_unix)?;
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|_| PeerError::Rejected(webpki::Error::BadDer))?;
        let cn = blindrelay_pki::identity_from_cert(cert_der).map_err(|_| PeerError::NoIdentity)?;
        if cn != *name {
            return Err(PeerError::NameMismatch {
                offered: name.clone(),
                cn,
            });
        }
        let ku = cert.key_usage().ok().flatten().ok_or(PeerError::KeyUsage)?;
        if !(ku.value.digital_signature() && ku.value.key_encipherment()) {
            return Err(PeerError::KeyUsage);
        }
        let spki = cert.public_key();
        let rsa_public = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => {
                spki.subject_public_key.data.to_vec()
            }
            _ => return Err(PeerError::KeyType),
        };
        let wrap_key = PublicEncryptingKey::from_der(spki.raw).map_err(|_| PeerError::KeyType)?;
        Ok(Self {
            name: name.clone(),
            cert_der: cert_der.to_vec(),
            fingerprint: key_fingerprint(spki.raw),
            wrap_key,
            rsa_public,
        })
    }

    /// The verified name.
    pub fn name(&self) -> &UserName {
        &self.name
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The fingerprint of the certificate's key ([`key_fingerprint`]).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Fingerprint in lower-case hex.
    pub fn fingerprint_hex(&self) -> String {
        hex(&self.fingerprint)
    }

    /// RSA-OAEP (SHA-256, MGF1-SHA-256, label [`crate::WRAP_LABEL`]) of a
    /// message key under this peer's public key.
    pub(crate) fn wrap_key(&self, key: &[u8; 32]) -> Result<Vec<u8>, E2eError> {
        let pk = OaepPublicEncryptingKey::new(self.wrap_key.clone())
            .map_err(|_| E2eError::PeerKey(self.name.clone()))?;
        let mut out = vec![0u8; pk.ciphertext_size()];
        let n = pk
            .encrypt(
                &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
                key,
                &mut out,
                Some(crate::WRAP_LABEL),
            )
            .map_err(|_| E2eError::Crypto)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// Length of a key wrapped for this peer (the RSA modulus length).
    pub(crate) fn wrapped_len(&self) -> usize {
        self.wrap_key.key_size_bytes()
    }

    /// RSA-PSS-SHA-256 verification under this peer's key.
    pub(crate) fn verify_signature(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &self.rsa_public)
            .verify(msg, sig)
            .is_ok()
    }
}

/// The checks every certificate of a person passes, whatever its use:
/// it chains to the CA, is valid at `now_unix`, carries `clientAuth`, and
/// is not revoked by the CRL (which must itself be current).
pub(crate) fn verify_chain(
    cert_der: &[u8],
    root: &TrustRoot,
    now_unix: u64,
) -> Result<(), PeerError> {
    let ca_der = CertificateDer::from(root.ca_der.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).map_err(PeerError::TrustRoot)?;
    let ee_der = CertificateDer::from(cert_der);
    let ee = webpki::EndEntityCert::try_from(&ee_der).map_err(PeerError::Rejected)?;
    if let Some(crl) = &root.crl {
        let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
        crl.current_at(now).map_err(PeerError::Crl)?;
    }
    let crls = root
        .crl
        .iter()
        .map(|c| BorrowedCertRevocationList::from_der(c.der()).map(CertRevocationList::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PeerError::TrustRoot)?;
    let crl_refs: Vec<&CertRevocationList<'_>> = crls.iter().collect();
    let revocation = match RevocationOptionsBuilder::new(&crl_refs) {
        Ok(b) => Some(
            b.with_depth(webpki::RevocationCheckDepth::EndEntity)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .build(),
        ),
        Err(_) => None, // no CRLs
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(Duration::from_secs(now_unix)),
        webpki::KeyUsage::client_auth(),
        revocation,
        None,
    )
    .map_err(PeerError::Rejected)?;

    Ok(())
}

/// The safety number of two certificates' keys: 60 digits in 12 groups of
/// 5, the same whichever side computes it. Both users compare it over
/// another channel; equal numbers mean each holds the other's real key. A
/// renewed certificate for the same key keeps the number.
pub fn safety_number(cert_a: &[u8], cert_b: &[u8]) -> String {
    let (fa, fb) = (fingerprint(cert_a), fingerprint(cert_b));
    let (lo, hi) = if fa <= fb { (fa, fb) } else { (fb, fa) };
    let mut input = Vec::with_capacity(crate::SAFETY_LABEL.len() + 64);
    input.extend_from_slice(crate::SAFETY_LABEL);
    input.extend_from_slice(&lo);
    input.extend_from_slice(&hi);
    let h = digest(&SHA512, &input);
    h.as_ref()
        .chunks(5)
        .take(12)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}
