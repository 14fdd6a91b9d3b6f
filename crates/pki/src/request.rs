//! Certificate requests: a key is born where it is used.
//!
//! `blindrelay enroll` creates a private key on the user's machine and a
//! PKCS#10 request for it ([`Enrolment`]); the key never leaves that
//! machine. The CA checks the request ([`CheckedRequest::from_pem`]) and
//! signs it ([`crate::CertificateAuthority::sign_request`]).
//!
//! A request proves possession of its key (its signature) and names who it
//! is for; nothing else in it is trusted. The CA decides the key usages, the
//! extended key usage, the validity and the serial, so a request that asks
//! to be a CA, or a relay, gets nothing of the kind. A request may carry
//! only the subject Common Name and, for a device or a relay, a Subject
//! Alternative Name; any other attribute or extension is refused, named.
//!
//! Three kinds of request are accepted:
//!
//! | kind | key | subject | usages |
//! |---|---|---|---|
//! | identity (the report's protocol) | RSA 2048 to 4096 bits, e = 65537 | CN = user | digitalSignature, keyEncipherment; clientAuth |
//! | device (MLS) | ECDSA P-256, or Ed25519 for the hybrid post-quantum suite | CN = user, one SAN URI `urn:blindrelay:device:DEVICE` | digitalSignature; clientAuth |
//! | relay (only with `pki sign --relay`) | ECDSA P-256 | SAN = the relay's DNS names and IP addresses | digitalSignature; serverAuth |

use std::fmt;
use std::net::IpAddr;

use blindrelay_wire::UserName;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, KeyPair, SanType,
};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;
use zeroize::Zeroizing;

use crate::PrivateKeyPem;

/// Largest request accepted, PEM or DER (a 4096-bit RSA request is about
/// 1.7 KiB of PEM).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Smallest RSA modulus accepted (the report's protocol needs RSA-2048).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted: larger keys cost every sender an
/// encryption per message for no protection the protocol can use.
pub const MAX_RSA_BITS: usize = 4096;
/// The only RSA public exponent accepted.
pub const RSA_EXPONENT: u32 = 65_537;
/// Most host names a relay request may carry.
pub const MAX_RELAY_HOSTS: usize = 16;
/// Prefix of the SAN URI that names a device.
pub const DEVICE_URI_PREFIX: &str = "urn:blindrelay:device:";

/// The OID of a P-256 public key's curve (secp256r1).
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// The OID of an Ed25519 public key.
const OID_ED25519: &str = "1.3.101.112";
/// The OID of the subject Common Name.
const OID_CN: &str = "2.5.4.3";

/// Why a request was refused. Every variant names what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// More than [`MAX_REQUEST_BYTES`].
    #[error("the request is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// Not a PEM `CERTIFICATE REQUEST`.
    #[error("not a PEM certificate request")]
    NotPem,
    /// Not a parsable PKCS#10 request.
    #[error("the request cannot be parsed")]
    Unparsable,
    /// The request's signature does not verify with its own key: it was
    /// altered, or made by someone without the key.
    #[error("the request's signature does not verify: it was altered or not made with its key")]
    BadSignature,
    /// The request asks for an extension this CA does not grant.
    #[error("the request asks for an extension the CA does not grant ({0})")]
    Extension(String),
    /// The subject is not exactly one Common Name.
    #[error("the request's subject must be exactly one Common Name: {0}")]
    Subject(&'static str),
    /// The Common Name is not a valid user name.
    #[error(
        "the request's name {0:?} is not a valid user name (1-32 characters a-z 0-9 . _ -, starting with a letter or digit)"
    )]
    Name(String),
    /// A key of a type or size this kind of request does not allow.
    #[error("the request's key is not accepted: {0}")]
    Key(String),
    /// The Subject Alternative Names do not fit the kind of request.
    #[error("the request's alternative names are not accepted: {0}")]
    AltName(String),
}

/// A device name: 1-32 characters from `a-z 0-9 . _ -`, starting with a
/// letter or a digit (the alphabet of user names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceName(String);

impl DeviceName {
    /// Checks `s`.
    pub fn new(s: &str) -> Result<Self, RequestError> {
        // The same rules as a user name; the check is shared.
        UserName::new(s)
            .map(|n| Self(n.as_str().to_owned()))
            .map_err(|_| RequestError::Name(s.chars().take(64).collect()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn uri(&self) -> String {
        format!("{DEVICE_URI_PREFIX}{}", self.0)
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user's identity key (RSA): the report's protocol.
    Identity(UserName),
    /// One device of a user (P-256, or Ed25519): MLS.
    Device(UserName, DeviceName),
    /// A relay reachable at these DNS names and IP addresses.
    Relay(Vec<String>),
}

impl Subject {
    /// The user, unless this is a relay.
    pub fn user(&self) -> Option<&UserName> {
        match self {
            Subject::Identity(u) | Subject::Device(u, _) => Some(u),
            Subject::Relay(_) => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Identity(u) => write!(f, "user {u}"),
            Subject::Device(u, d) => write!(f, "device {d} of user {u}"),
            Subject::Relay(hosts) => write!(f, "relay {}", hosts.join(", ")),
        }
    }
}

/// A private key and the request for it, made on the machine that will
/// use the key.
pub struct Enrolment {
    /// The new private key (PKCS#8 PEM).
    pub key: PrivateKeyPem,
    /// The request (PEM), to be sent to the CA.
    pub request_pem: String,
}

/// The Subject Alternative Name for a relay's host: an IP address or a
/// DNS name.
pub(crate) fn host_san(host: &str) -> Result<SanType, RequestError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => host
            .to_owned()
            .try_into()
            .map(SanType::DnsName)
            .map_err(|_| RequestError::AltName(format!("invalid host name {host:?}"))),
    }
}

fn request_params(subject: &Subject) -> Result<CertificateParams, RequestError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    match subject {
        Subject::Identity(user) => dn.push(DnType::CommonName, user.as_str()),
        Subject::Device(user, device) => {
            dn.push(DnType::CommonName, user.as_str());
            let uri = device
                .uri()
                .try_into()
                .map_err(|_| RequestError::AltName("device URI".into()))?;
            params.subject_alt_names = vec![SanType::URI(uri)];
        }
        Subject::Relay(hosts) => {
            if hosts.is_empty() || hosts.len() > MAX_RELAY_HOSTS {
                return Err(RequestError::AltName(format!(
                    "a relay needs 1 to {MAX_RELAY_HOSTS} host names"
                )));
            }
            dn.push(
                DnType::CommonName,
                hosts.first().map(String::as_str).unwrap_or("relay"),
            );
            params.subject_alt_names = hosts
                .iter()
                .map(|h| host_san(h))
                .collect::<Result<_, _>>()?;
        }
    }
    params.distinguished_name = dn;
    Ok(params)
}

/// The key a device is enrolled with; it decides the MLS ciphersuite of
/// the groups it can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKeyKind {
    /// ECDSA P-256 (the default): ciphersuite 2, classical.
    #[default]
    P256,
    /// Ed25519: the hybrid post-quantum ciphersuite (ML-KEM-768 + X25519),
    /// whose signatures are Ed25519.
    Ed25519,
}

fn new_key(subject: &Subject, device: DeviceKeyKind) -> Result<KeyPair, crate::PkiError> {
    Ok(match (subject, device) {
        (Subject::Identity(_), _) => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?
        }
        (Subject::Device(..), DeviceKeyKind::Ed25519) => {
            KeyPair::generate_for(&rcgen::PKCS_ED25519)?
        }
        (Subject::Device(..) | Subject::Relay(_), _) => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?
        }
    })
}

impl Enrolment {
    /// Creates a new key for `subject` (RSA-2048 for an identity, P-256 for
    /// a device or a relay) and the request for it.
    pub fn new(subject: &Subject) -> Result<Self, crate::PkiError> {
        Self::with_device_key(subject, DeviceKeyKind::P256)
    }

    /// [`Enrolment::new`], with a device key of `kind` when `subject` is a
    /// device (`kind` is ignored otherwise).
    pub fn with_device_key(
        subject: &Subject,
        kind: DeviceKeyKind,
    ) -> Result<Self, crate::PkiError> {
        let kp = new_key(subject, kind)?;
        let request_pem = request_with(&kp, subject)?;
        Ok(Self {
            key: PrivateKeyPem::new(Zeroizing::new(kp.serialize_pem())),
            request_pem,
        })
    }
}

/// A request for an existing key (renewal keeps the key, so every contact's
/// pin stays quiet).
pub fn renewal_request(key: &PrivateKeyPem, subject: &Subject) -> Result<String, crate::PkiError> {
    request_with(&key.to_key_pair()?, subject)
}

fn request_with(kp: &KeyPair, subject: &Subject) -> Result<String, crate::PkiError> {
    let params = request_params(subject).map_err(|e| crate::PkiError::Generate(e.to_string()))?;
    Ok(params.serialize_request(kp)?.pem()?)
}

/// A request whose signature verified and whose name, key and alternative
/// names follow the rules of its kind. It exists only once every check
/// passed.
pub struct CheckedRequest {
    pub(crate) subject: Subject,
    pub(crate) csr: CertificateSigningRequestParams,
    spki_der: Vec<u8>,
}

impl fmt::Debug for CheckedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedRequest")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What kind of request the CA expects: a user's (identity or device,
/// decided by the key) or a relay's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An identity (RSA) or a device (P-256) request.
    User,
    /// A relay's request (`pki sign --relay`).
    Relay,
}

enum KeyShape {
    Rsa,
    P256,
    Ed25519,
}

fn key_shape(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyShape, RequestError> {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(RequestError::Key(format!(
                    "RSA-{bits}; RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits"
                )));
            }
            if rsa.try_exponent().ok() != Some(u64::from(RSA_EXPONENT)) {
                return Err(RequestError::Key(format!(
                    "the RSA public exponent must be {RSA_EXPONENT}"
                )));
            }
            Ok(KeyShape::Rsa)
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if curve.as_deref() == Some(OID_P256) {
                Ok(KeyShape::P256)
            } else {
                Err(RequestError::Key(
                    "an elliptic-curve key must be on P-256".into(),
                ))
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == OID_ED25519 => Ok(KeyShape::Ed25519),
        _ => Err(RequestError::Key("only RSA, P-256 and Ed25519 keys".into())),
    }
}

fn common_name(req: &X509CertificationRequest<'_>) -> Result<String, RequestError> {
    let subject = &req.certification_request_info.subject;
    let mut attrs = subject.iter_attributes();
    let first = attrs.next().ok_or(RequestError::Subject("it is empty"))?;
    if attrs.next().is_some() {
        return Err(RequestError::Subject("it has other attributes"));
    }
    if first.attr_type().to_id_string() != OID_CN {
        return Err(RequestError::Subject("it is not a Common Name"));
    }
    first
        .as_str()
        .map(str::to_owned)
        .map_err(|_| RequestError::Subject("the Common Name is not a string"))
}

fn host_of(san: &SanType) -> Result<String, RequestError> {
    match san {
        SanType::DnsName(d) => Ok(d.as_str().to_owned()),
        SanType::IpAddress(ip) => Ok(ip.to_string()),
        _ => Err(RequestError::AltName(
            "a relay's names are DNS names and IP addresses only".into(),
        )),
    }
}

impl CheckedRequest {
    /// Parses and checks a PEM request of the kind `expect`.
    pub fn from_pem(pem: &[u8], expect: Expect) -> Result<Self, RequestError> {
        if pem.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge);
        }
        let der =
            CertificateSigningRequestDer::from_pem_slice(pem).map_err(|_| RequestError::NotPem)?;
        Self::from_der(&der, expect)
    }

    /// Parses and checks a DER request of the kind `expect`.
    pub fn from_der(
        der: &CertificateSigningRequestDer<'_>,
        expect: Expect,
    ) -> Result<Self, RequestError> {
        if der.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge);
        }
        let (rest, req) =
            X509CertificationRequest::from_der(der).map_err(|_| RequestError::Unparsable)?;
        if !rest.is_empty() {
            return Err(RequestError::Unparsable);
        }
        // The signature first: nothing of an unproven request is looked at.
        req.verify_signature()
            .map_err(|_| RequestError::BadSignature)?;
        let csr = CertificateSigningRequestParams::from_der(der).map_err(|e| match e {
            rcgen::Error::InvalidCertificationRequestSignature => RequestError::BadSignature,
            other => RequestError::Extension(other.to_string()),
        })?;
        if !csr.params.key_usages.is_empty()
            || !csr.params.extended_key_usages.is_empty()
            || csr.params.is_ca != rcgen::IsCa::NoCa
        {
            return Err(RequestError::Extension(
                "key usages and basic constraints are the CA's to decide".into(),
            ));
        }
        let spki = &req.certification_request_info.subject_pki;
        let shape = key_shape(spki)?;
        let sans = &csr.params.subject_alt_names;
        let subject = match expect {
            Expect::Relay => {
                if !matches!(shape, KeyShape::P256) {
                    return Err(RequestError::Key("a relay's key must be P-256".into()));
                }
                if sans.is_empty() || sans.len() > MAX_RELAY_HOSTS {
                    return Err(RequestError::AltName(format!(
                        "a relay needs 1 to {MAX_RELAY_HOSTS} host names"
                    )));
                }
                Subject::Relay(sans.iter().map(host_of).collect::<Result<_, _>>()?)
            }
            Expect::User => {
                let cn = common_name(&req)?;
                let user = UserName::new(&cn)
                    .map_err(|_| RequestError::Name(cn.chars().take(64).collect()))?;
                match (shape, sans.as_slice()) {
                    (KeyShape::Rsa, []) => Subject::Identity(user),
                    (KeyShape::Rsa, _) => {
                        return Err(RequestError::AltName(
                            "an identity (RSA) request carries no alternative names".into(),
                        ));
                    }
                    (KeyShape::Ed25519, []) => {
                        return Err(RequestError::Key(
                            "an Ed25519 key is for a device only (with its device URI)".into(),
                        ));
                    }
                    (KeyShape::P256 | KeyShape::Ed25519, [SanType::URI(uri)]) => {
                        let device =
                            uri.as_str()
                                .strip_prefix(DEVICE_URI_PREFIX)
                                .ok_or_else(|| {
                                    RequestError::AltName(format!(
                                        "a device is named by one URI {DEVICE_URI_PREFIX}DEVICE"
                                    ))
                                })?;
                        Subject::Device(user, DeviceName::new(device)?)
                    }
                    (KeyShape::P256 | KeyShape::Ed25519, _) => {
                        return Err(RequestError::AltName(format!(
                            "a device is named by one URI {DEVICE_URI_PREFIX}DEVICE"
                        )));
                    }
                }
            }
        };
        Ok(Self {
            subject,
            spki_der: spki.raw.to_vec(),
            csr,
        })
    }

    /// Who the request is for.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The requested key's SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}
