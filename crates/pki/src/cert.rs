//! Reading certificates and CRLs.

use std::collections::HashSet;
use std::fmt;

use blindrelay_wire::UserName;
use x509_parser::prelude::*;

use crate::PkiError;

/// The identity a user certificate proves: its subject Common Name, which
/// must be a valid [`UserName`].
pub fn identity_from_cert(der: &[u8]) -> Result<UserName, PkiError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| PkiError::Certificate(format!("unparsable: {e}")))?;
    let mut cns = cert.subject().iter_common_name();
    let cn = cns
        .next()
        .ok_or_else(|| PkiError::Certificate("no Common Name".into()))?;
    if cns.next().is_some() {
        return Err(PkiError::Certificate("more than one Common Name".into()));
    }
    let cn = cn
        .as_str()
        .map_err(|_| PkiError::Certificate("Common Name is not a string".into()))?;
    UserName::new(cn).map_err(|_| PkiError::InvalidName(cn.chars().take(64).collect()))
}

/// A serial number, normalised (no leading zero bytes) for comparisons.
pub fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    raw.get(start..).unwrap_or_default().to_vec()
}

/// Hex form of a serial, as `openssl x509 -serial` prints it.
pub fn serial_hex(serial: &[u8]) -> String {
    blindrelay_wire::codec::hex(serial).to_ascii_uppercase()
}

/// The serials listed in a DER CRL.
pub fn revoked_serials(crl_der: &[u8]) -> Result<HashSet<Vec<u8>>, PkiError> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der)
        .map_err(|e| PkiError::Certificate(format!("unparsable CRL: {e}")))?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| normalize_serial(r.raw_serial()))
        .collect())
}

/// The CRL number of a DER CRL (0 if absent).
pub(crate) fn crl_number(crl_der: &[u8]) -> Result<u64, PkiError> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der)
        .map_err(|e| PkiError::Certificate(format!("unparsable CRL: {e}")))?;
    Ok(crl
        .crl_number()
        .and_then(|n| u64::try_from(n.clone()).ok())
        .unwrap_or(0))
}

/// True if `cert_der` carries a valid signature by the key of `ca_der`.
pub fn signed_by(cert_der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) = (
        X509Certificate::from_der(cert_der),
        X509Certificate::from_der(ca_der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// The SubjectPublicKeyInfo of a certificate, DER: what a pin is on, so
/// that a renewed certificate for the same key is the same pin.
pub fn spki_der(cert_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| PkiError::Certificate(format!("unparsable: {e}")))?;
    Ok(cert.public_key().raw.to_vec())
}

/// Whether a certificate may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Within its validity and not revoked.
    Valid,
    /// Listed in the CRL.
    Revoked,
    /// Past its notAfter.
    Expired,
    /// Before its notBefore.
    NotYetValid,
    /// Not signed by the current CA (a record from before a forced `init`).
    OtherCa,
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertStatus::Valid => "valid",
            CertStatus::Revoked => "revoked",
            CertStatus::Expired => "expired",
            CertStatus::NotYetValid => "not yet valid",
            CertStatus::OtherCa => "not from this CA",
        })
    }
}

/// What `pki list` shows about a certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Subject CN.
    pub name: String,
    /// Normalised serial.
    pub serial: Vec<u8>,
    /// notBefore, RFC 2822-ish text.
    pub not_before: String,
    /// notAfter.
    pub not_after: String,
    /// notAfter as a Unix timestamp.
    pub not_after_unix: i64,
    /// notBefore as a Unix timestamp.
    pub not_before_unix: i64,
}

impl CertInfo {
    /// Parses the fields `pki list` needs.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| PkiError::Certificate(format!("unparsable: {e}")))?;
        let name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_owned();
        let v = cert.validity();
        Ok(Self {
            name,
            serial: normalize_serial(cert.raw_serial()),
            not_before: v.not_before.to_string(),
            not_after: v.not_after.to_string(),
            not_after_unix: v.not_after.timestamp(),
            not_before_unix: v.not_before.timestamp(),
        })
    }

    /// Status at `now` (Unix seconds) given the revoked serials.
    pub fn status(&self, now: i64, revoked: &HashSet<Vec<u8>>) -> CertStatus {
        if revoked.contains(&self.serial) {
            CertStatus::Revoked
        } else if now > self.not_after_unix {
            CertStatus::Expired
        } else if now < self.not_before_unix {
            CertStatus::NotYetValid
        } else {
            CertStatus::Valid
        }
    }
}

/// The device a certificate names, if it is a device certificate: its
/// subjectAltName URIs with the device prefix. `None` for a certificate
/// without one (a protocol v1 user); an error if it names more than one
/// or an invalid one. The chain and validity are not checked here.
pub fn device_from_cert(der: &[u8]) -> Result<Option<crate::DeviceName>, PkiError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| PkiError::Certificate(format!("unparsable: {e}")))?;
    let Some(san) = cert
        .subject_alternative_name()
        .map_err(|_| PkiError::Certificate("bad subjectAltName".into()))?
    else {
        return Ok(None);
    };
    let mut devices = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(uri) => uri.strip_prefix(crate::request::DEVICE_URI_PREFIX),
        _ => None,
    });
    let Some(first) = devices.next() else {
        return Ok(None);
    };
    if devices.next().is_some() {
        return Err(PkiError::Certificate("more than one device URI".into()));
    }
    crate::DeviceName::new(first)
        .map(Some)
        .map_err(|_| PkiError::Certificate("invalid device name".into()))
}
