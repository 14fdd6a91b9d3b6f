//! The root CA and everything it signs.
//!
//! The root key is ECDSA P-384 (SHA-384): a 192-bit security level for the
//! one key that must outlive every other, signatures and keys a fraction of
//! RSA-3072's size, and verified by every TLS stack and by webpki. It signs
//! certificates and CRLs only; what the users' keys are (RSA for the
//! report's protocol, P-256 for devices) is independent of it.

use blindrelay_wire::UserName;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::request::{CheckedRequest, DEVICE_URI_PREFIX, Subject};
use crate::{PkiError, PrivateKeyPem};

/// Validity of the root CA: ten years, for a P-384 key kept offline.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Default validity of a relay certificate.
pub const SERVER_VALIDITY_DAYS: u32 = 365;
/// Default validity of a user or device certificate: short, and renewed
/// with the same key (`enroll --renew`), as step-ca does.
pub const DEFAULT_USER_VALIDITY_DAYS: u32 = 90;
/// Longest validity `pki sign --days` accepts.
pub const MAX_VALIDITY_DAYS: u32 = 825;
/// How long a freshly signed CRL claims to be current (its `nextUpdate`).
/// Relays and clients use it until [`crate::crl::CRL_GRACE_SECS`] later,
/// then refuse it: sign a fresh one (`pki crl`) before.
pub const CRL_VALIDITY_DAYS: i64 = 30;
/// notBefore is set this far in the past to tolerate clock skew.
pub const BACKDATE: Duration = Duration::minutes(5);

/// A certificate signed from a request (the key stays with its owner).
pub struct Signed {
    /// PEM certificate.
    pub cert_pem: String,
    /// DER certificate.
    pub cert_der: Vec<u8>,
}

/// A freshly issued certificate and its key.
pub struct Issued {
    /// PEM certificate.
    pub cert_pem: String,
    /// DER certificate.
    pub cert_der: Vec<u8>,
    /// The private key.
    pub key: PrivateKeyPem,
}

/// Options for a user certificate. The defaults are what `pki issue` uses;
/// the others exist so tests can build certificates the relay must refuse.
#[derive(Debug, Clone)]
pub struct UserCertOptions {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// Use the serverAuth EKU instead of clientAuth (a server-only certificate).
    pub server_auth_only: bool,
}

impl UserCertOptions {
    /// Valid from now (minus [`BACKDATE`]) for `days` days.
    pub fn valid_for_days(days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - BACKDATE,
            not_after: now + Duration::days(i64::from(days)),
            server_auth_only: false,
        }
    }
}

/// The root CA: its certificate and private key.
pub struct CertificateAuthority {
    cert_pem: String,
    key: PrivateKeyPem,
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::Generate("RNG failure".into()))?;
    // Positive and without a leading zero byte, so DER keeps all 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The root's key: ECDSA P-384 with SHA-384 (see `PkiDir::init`).
fn root_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?)
}

fn rsa_2048() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_rsa_for(
        &rcgen::PKCS_RSA_SHA256,
        rcgen::RsaKeySize::_2048,
    )?)
}

/// Key usages, extended key usage and alternative names of a certificate
/// for `subject`: the CA's decision, whatever a request asked for.
fn end_entity_params(
    subject: &Subject,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    if not_after <= not_before {
        return Err(PkiError::Validity(
            "notAfter must be after notBefore".into(),
        ));
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    match subject {
        Subject::Identity(user) => {
            dn.push(DnType::CommonName, user.as_str());
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Subject::Device(user, device) => {
            dn.push(DnType::CommonName, user.as_str());
            let uri = format!("{DEVICE_URI_PREFIX}{device}")
                .try_into()
                .map_err(|_| PkiError::Generate("device URI".into()))?;
            params.subject_alt_names = vec![SanType::URI(uri)];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Subject::Relay(hosts) => {
            dn.push(
                DnType::CommonName,
                hosts.first().map(String::as_str).unwrap_or("relay"),
            );
            params.subject_alt_names = hosts
                .iter()
                .map(|h| crate::request::host_san(h))
                .collect::<Result<_, _>>()?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    params.distinguished_name = dn;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The validity window of a certificate signed now for `days` days.
pub fn validity_days(days: u32) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - BACKDATE, now + Duration::days(i64::from(days)))
}

fn key_pem(kp: &KeyPair) -> PrivateKeyPem {
    PrivateKeyPem::new(Zeroizing::new(kp.serialize_pem()))
}

impl CertificateAuthority {
    /// Creates a new self-signed root CA named `name`.
    pub fn create(name: &str) -> Result<Self, PkiError> {
        let key = root_key()?;
        let params = Self::ca_params(name)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key: key_pem(&key),
        })
    }

    fn ca_params(name: &str) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "blindrelay private PKI");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        params.serial_number = Some(random_serial()?);
        Ok(params)
    }

    /// Loads a CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: String, key: PrivateKeyPem) -> Result<Self, PkiError> {
        // Check that both parse and belong together before anything is signed.
        let kp = key.to_key_pair()?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, &kp)?;
        drop(issuer);
        Ok(Self { cert_pem, key })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key.
    pub fn key(&self) -> &PrivateKeyPem {
        &self.key
    }

    fn with_issuer<T>(
        &self,
        f: impl FnOnce(&Issuer<'_, &KeyPair>) -> Result<T, PkiError>,
    ) -> Result<T, PkiError> {
        let kp = self.key.to_key_pair()?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &kp)?;
        f(&issuer)
    }

    /// Signs a checked request: the certificate is the CA's decision for
    /// the request's subject and key (see [`crate::request`]), valid for
    /// `days` days from now.
    pub fn sign_request(&self, request: &CheckedRequest, days: u32) -> Result<Signed, PkiError> {
        let (not_before, not_after) = validity_days(days);
        let params = end_entity_params(&request.subject, not_before, not_after)?;
        let cert = self.with_issuer(|i| Ok(params.signed_by(&request.csr.public_key, i)?))?;
        Ok(Signed {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        })
    }

    /// Issues the relay's TLS certificate (ECDSA P-256, serverAuth) for the
    /// given DNS names and IP addresses, with a key made here. For tests
    /// and the demo: a relay host makes its own key (`enroll-relay`).
    pub fn issue_server(&self, hosts: &[String]) -> Result<Issued, PkiError> {
        if hosts.is_empty() {
            return Err(PkiError::Generate(
                "the server certificate needs at least one host".into(),
            ));
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let (not_before, not_after) = validity_days(SERVER_VALIDITY_DAYS);
        let params = end_entity_params(&Subject::Relay(hosts.to_vec()), not_before, not_after)?;
        let cert = self.with_issuer(|i| Ok(params.signed_by(&key, i)?))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key: key_pem(&key),
        })
    }

    /// Issues a user certificate (CN = `name`, RSA-2048, digitalSignature +
    /// keyEncipherment, clientAuth) with a key made here, on the CA's
    /// machine. For tests and throwaway setups only: a user makes their own
    /// key (`enroll`).
    pub fn issue_user(&self, name: &UserName, opts: &UserCertOptions) -> Result<Issued, PkiError> {
        let key = rsa_2048()?;
        let mut params = end_entity_params(
            &Subject::Identity(name.clone()),
            opts.not_before,
            opts.not_after,
        )?;
        if opts.server_auth_only {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        let cert = self.with_issuer(|i| Ok(params.signed_by(&key, i)?))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key: key_pem(&key),
        })
    }

    /// Signs a CRL listing `revoked` serials (normalised bytes) with the
    /// given CRL number. Returns PEM.
    pub fn sign_crl(&self, revoked: &[Vec<u8>], number: u64) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        self.sign_crl_for(
            revoked,
            number,
            now - BACKDATE,
            now + Duration::days(CRL_VALIDITY_DAYS),
        )
    }

    /// [`CertificateAuthority::sign_crl`] with explicit `thisUpdate` and
    /// `nextUpdate` (tests build stale and future-dated CRLs with it).
    pub fn sign_crl_for(
        &self,
        revoked: &[Vec<u8>],
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = self.with_issuer(|i| Ok(params.signed_by(i)?))?;
        Ok(crl.pem()?)
    }
}
