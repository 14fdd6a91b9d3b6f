//! Device certificates (protocol v2): verification by every member.
//!
//! A device certificate names a person (CN = the user name) and one of
//! their devices (a single subjectAltName URI
//! `urn:blindrelay:device:NAME`), and holds the device's ECDSA P-256 key,
//! which signs both its TLS handshake and its MLS leaf. The relay hands
//! these certificates around inside MLS credentials; a client believes
//! none of them until [`VerifiedDevice::verify`] has checked, itself, the
//! chain to the CA, validity, `clientAuth`, the CRL (see
//! [`crate::peer::TrustRoot`]), `digitalSignature`, the key type and the
//! device name.
//!
//! A device key is ECDSA P-256 (the classical MLS suite) or Ed25519 (the
//! hybrid post-quantum suite, whose signatures are Ed25519); which one is
//! [`VerifiedDevice::kind`].

use std::fmt;

use blindrelay_pki::request::DEVICE_URI_PREFIX;
use blindrelay_pki::{DeviceKeyKind, DeviceName};
use blindrelay_wire::UserName;
use blindrelay_wire::codec::hex;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_SIG_ED25519};
use x509_parser::prelude::*;

use crate::error::PeerError;
use crate::peer::{TrustRoot, key_fingerprint, verify_chain};

/// A device certificate that passed every check. It can only be built by
/// [`VerifiedDevice::verify`].
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedDevice {
    user: UserName,
    device: DeviceName,
    cert_der: Vec<u8>,
    fingerprint: [u8; 32],
    public_key: Vec<u8>,
    kind: DeviceKeyKind,
    not_after: i64,
}

impl fmt::Debug for VerifiedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifiedDevice({}@{}, {})",
            self.user,
            self.device,
            hex(&self.fingerprint)
        )
    }
}

impl VerifiedDevice {
    /// Verifies the device certificate `cert_der` against `root` at
    /// `now_unix` (seconds): chain, validity, `clientAuth`, revocation,
    /// a CN that is a user name, `digitalSignature`, a P-256 or Ed25519 key,
    /// and exactly one subjectAltName, the device URI.
    pub fn verify(cert_der: &[u8], root: &TrustRoot, now_unix: u64) -> Result<Self, PeerError> {
        verify_chain(cert_der, root, now_unix)?;
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|_| PeerError::Rejected(webpki::Error::BadDer))?;
        let user =
            blindrelay_pki::identity_from_cert(cert_der).map_err(|_| PeerError::NoIdentity)?;
        let ku = cert.key_usage().ok().flatten().ok_or(PeerError::KeyUsage)?;
        if !ku.value.digital_signature() {
            return Err(PeerError::KeyUsage);
        }
        let device = device_name(&cert)?;
        let spki = cert.public_key();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let ed25519 = spki.algorithm.algorithm == OID_SIG_ED25519
            && spki.algorithm.parameters.is_none()
            && spki.subject_public_key.data.len() == 32;
        let (kind, public_key) = match (spki.parsed(), curve) {
            (Ok(x509_parser::public_key::PublicKey::EC(point)), Some(c)) if c == OID_EC_P256 => {
                (DeviceKeyKind::P256, point.data().to_vec())
            }
            _ if ed25519 => (
                DeviceKeyKind::Ed25519,
                spki.subject_public_key.data.to_vec(),
            ),
            _ => return Err(PeerError::DeviceKeyType),
        };
        Ok(Self {
            user,
            device,
            cert_der: cert_der.to_vec(),
            fingerprint: key_fingerprint(spki.raw),
            public_key,
            kind,
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// The person this device belongs to.
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// The device's name.
    pub fn device(&self) -> &DeviceName {
        &self.device
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The fingerprint of the certificate's key
    /// ([`crate::key_fingerprint`]): what `/verify` compares per device.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The certificate's notAfter, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The kind of key, which decides the MLS ciphersuite.
    pub fn kind(&self) -> DeviceKeyKind {
        self.kind
    }

    /// The device's public key: an uncompressed SEC1 P-256 point (65
    /// bytes), or the 32 bytes of an Ed25519 key.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
}

/// The device name: the certificate's only subjectAltName, a device URI.
fn device_name(cert: &X509Certificate<'_>) -> Result<DeviceName, PeerError> {
    let san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .ok_or(PeerError::DeviceName)?;
    match san.value.general_names.as_slice() {
        [GeneralName::URI(uri)] => uri
            .strip_prefix(DEVICE_URI_PREFIX)
            .and_then(|d| DeviceName::new(d).ok())
            .ok_or(PeerError::DeviceName),
        _ => Err(PeerError::DeviceName),
    }
}

/// The user and device a device certificate names, without any other
/// check: for reading back a credential that was verified when it was
/// accepted.
pub fn names(cert_der: &[u8]) -> Result<(UserName, DeviceName), PeerError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|_| PeerError::Rejected(webpki::Error::BadDer))?;
    let user = blindrelay_pki::identity_from_cert(cert_der).map_err(|_| PeerError::NoIdentity)?;
    Ok((user, device_name(&cert)?))
}
