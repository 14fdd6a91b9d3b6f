//! The private PKI of blindrelay.
//!
//! This crate owns every certificate and key the system uses, and the rules
//! for reading them back:
//!
//! * [`request`]: keys are born where they are used: a user or a relay
//!   makes its key and a PKCS#10 request; the CA checks the request and
//!   decides everything the certificate says.
//! * [`ca`]: the root CA (ECDSA P-384) and what it signs: relay
//!   certificates, user certificates (RSA, `digitalSignature` +
//!   `keyEncipherment`, `clientAuth`), device certificates (P-256, or
//!   Ed25519 for the hybrid post-quantum MLS suite), CRLs.
//! * [`store`]: the CA's directory (`ca.pem`, `ca-key.pem`, `crl.pem`, the
//!   records of what it signed); [`layout`]: a user's and a relay's own
//!   directories. All PEM, readable by `openssl`; private keys 0600.
//! * [`cert`]: reading certificates and CRLs: the identity (CN) of a user
//!   certificate, serials, validity, revoked serials.
//! * [`key`]: private keys as a type without `Debug` that is zeroized on drop.
//! * [`crl`]: a CRL that holds: signed by the CA, current (with a grace
//!   after `nextUpdate`), and never replaced by an older one.
//! * [`encrypted_key`]: private keys encrypted at rest with a passphrase
//!   (PKCS#8, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, as OpenSSL
//!   writes them).
//! * [`files`]: private directories and files (0700, 0600), for the keys and
//!   for the client's and the relay's databases.
//!
//! The crate does file I/O but no network I/O.
#![forbid(unsafe_code)]

pub mod ca;
pub mod cert;
pub mod crl;
pub mod encrypted_key;
pub mod files;
pub mod key;
pub mod layout;
pub mod request;
pub mod store;

pub use ca::{CertificateAuthority, UserCertOptions};
pub use cert::{CertInfo, CertStatus, device_from_cert, identity_from_cert, revoked_serials};
pub use key::PrivateKeyPem;
pub use layout::{Enrolled, RelayDir, UserDir};
pub use request::{CheckedRequest, DeviceKeyKind, DeviceName, Enrolment, Expect, Subject};
pub use store::{IssuedUser, PkiDir, Record, SignedRecord};

use std::path::PathBuf;

/// Everything that can go wrong in the PKI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A file does not contain the PEM object expected.
    #[error("{path}: not a valid PEM {what}")]
    Pem {
        /// The file concerned.
        path: PathBuf,
        /// What was expected ("certificate", "private key", "CRL").
        what: &'static str,
    },
    /// A certificate or CRL could not be parsed or lacks a required field.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// Certificate generation or signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// A user name outside the allowed alphabet or length.
    #[error(
        "invalid user name {0:?}: use 1-32 characters a-z 0-9 . _ -, starting with a letter or digit"
    )]
    InvalidName(String),
    /// Refusing to overwrite something that exists.
    #[error("{0} already exists (use --force to replace it)")]
    Exists(PathBuf),
    /// No PKI in the directory.
    #[error("no CA in {0} (run `blindrelay pki init` first)")]
    NoCa(PathBuf),
    /// The scan for stray private keys met more entries than it checks:
    /// the directory cannot be shown to hold none.
    #[error(
        "{0} holds more than {1} files and folders: too many to check for private keys; give the relay a directory of its own"
    )]
    ScanTooLarge(PathBuf, usize),
    /// The name (or device) is held by a certificate still in force.
    #[error("{0} already has a certificate in force (sign with --renew to replace it)")]
    NameTaken(String),
    /// The private key is encrypted and no passphrase was given.
    #[error("{0} is encrypted: give its passphrase (BLINDRELAY_PASSPHRASE or --passphrase-file)")]
    PassphraseNeeded(PathBuf),
    /// An encrypted private key could not be written or read.
    #[error(transparent)]
    KeyFile(#[from] crate::encrypted_key::KeyFileError),
    /// A certificate request was refused.
    #[error("request refused: {0}")]
    Request(#[from] crate::request::RequestError),
    /// The named user (or device) has no certificate.
    #[error("no certificate issued for {0}")]
    UnknownUser(String),
    /// A validity that cannot be represented.
    #[error("invalid validity: {0}")]
    Validity(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e.to_string())
    }
}
