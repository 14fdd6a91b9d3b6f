//! The CA's directory: what the administrator keeps, offline.
//!
//! ```text
//! DIR/ca.pem                    root CA certificate              (public)
//! DIR/ca-key.pem                root CA private key              (0600, secret)
//! DIR/crl.pem                   certificate revocation list      (public)
//! DIR/issued/NAME.pem           the certificate of user NAME     (public record)
//! DIR/issued/NAME@DEVICE.pem    the certificate of a device      (public record)
//! DIR/issued-relays/SERIAL.pem  a relay's certificate            (public record)
//! ```
//!
//! The CA directory holds no one's private key but the CA's: users and
//! relays make their own (see [`crate::request`] and [`crate::layout`]) and
//! the CA signs their requests ([`PkiDir::sign`]). Names cannot collide: a
//! user's record is `NAME.pem`, a device's `NAME@DEVICE.pem` (`@` is not in
//! the name alphabet), a relay's lives in its own directory.
//!
//! For tests and the demo only, [`PkiDir::issue`] and
//! [`PkiDir::issue_relay`] still make keys here, in the layout a user's or
//! relay's own directory has (`users/NAME/`, `server.pem` +
//! `server-key.pem`); `blindrelay pki issue` says so when used.
//!
//! Every file is written to a temporary name and renamed into place, so a
//! reader (the relay watching `crl.pem`) never sees half a file.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use blindrelay_wire::UserName;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use zeroize::Zeroizing;

use crate::ca::CertificateAuthority;
use crate::cert::{CertInfo, CertStatus, crl_number, normalize_serial, revoked_serials};
use crate::layout::UserDir;
use crate::request::{CheckedRequest, Subject};
use crate::{PkiError, PrivateKeyPem};

pub use crate::files::{PRIVATE_KEY_MODE, PUBLIC_FILE_MODE, write_file};

/// A user certificate that was just issued with a key made here (tests and
/// throwaway setups).
#[derive(Debug, Clone)]
pub struct IssuedUser {
    /// `users/NAME/cert.pem`.
    pub cert_path: PathBuf,
    /// `users/NAME/key.pem`.
    pub key_path: PathBuf,
    /// The certificate's serial.
    pub serial: Vec<u8>,
}

/// A certificate signed from a request.
#[derive(Debug, Clone)]
pub struct SignedRecord {
    /// The certificate, PEM: what goes back to its owner.
    pub cert_pem: String,
    /// Where the CA keeps its record of it.
    pub record_path: PathBuf,
    /// Its serial.
    pub serial: Vec<u8>,
    /// The serial of the certificate it replaced, revoked because the key
    /// changed (a renewal with the same key revokes nothing).
    pub revoked: Option<Vec<u8>>,
}

/// A certificate the CA issued, as `pki list` shows it.
#[derive(Debug, Clone)]
pub struct Record {
    /// `NAME`, `NAME@DEVICE` or `relay HOST`.
    pub label: String,
    /// Serial, validity and name.
    pub info: CertInfo,
    /// Its status now; [`CertStatus::OtherCa`] for a record the current CA
    /// did not sign (left from before a forced `init`).
    pub status: CertStatus,
}

/// The CA's directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct PkiDir {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |error| PkiError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn read_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_err(path))
}

/// Reads the first certificate of a PEM file as DER.
pub fn read_cert_der(path: &Path) -> Result<Vec<u8>, PkiError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    CertificateDer::from_pem_slice(&pem)
        .map(|c| c.to_vec())
        .map_err(|_| PkiError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
        })
}

/// Reads a PEM CRL as DER.
pub fn read_crl_der(path: &Path) -> Result<Vec<u8>, PkiError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    CertificateRevocationListDer::from_pem_slice(&pem)
        .map(|c| c.to_vec())
        .map_err(|_| PkiError::Pem {
            path: path.to_path_buf(),
            what: "CRL",
        })
}

/// A certificate in force, as far as replacing it is concerned.
pub(super) struct LiveRecord {
    pub(super) serial: Vec<u8>,
    pub(super) spki: Vec<u8>,
}

/// The files `init` creates or `init --force` replaces.
const CA_FILES: [&str; 3] = ["ca.pem", "ca-key.pem", "crl.pem"];

impl PkiDir {
    /// The PKI rooted at `root` (nothing is read yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `ca.pem`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    /// `ca-key.pem`.
    pub fn ca_key_path(&self) -> PathBuf {
        self.root.join("ca-key.pem")
    }
    /// `crl.pem`.
    pub fn crl_path(&self) -> PathBuf {
        self.root.join("crl.pem")
    }
    /// `server.pem`: a relay's certificate, when this directory is also a
    /// relay's (tests, the demo).
    pub fn server_cert_path(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    /// `server-key.pem`, likewise.
    pub fn server_key_path(&self) -> PathBuf {
        self.root.join("server-key.pem")
    }
    /// `issued/`: the records of user and device certificates.
    pub fn issued_dir(&self) -> PathBuf {
        self.root.join("issued")
    }
    /// `issued-relays/`: the records of relay certificates.
    pub fn relays_dir(&self) -> PathBuf {
        self.root.join("issued-relays")
    }
    /// `users/`: throwaway users' directories (tests, the demo).
    pub fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }
    /// `users/NAME/`: a throwaway user's directory, laid out as a user's
    /// own ([`UserDir`]).
    pub fn user_dir(&self, name: &UserName) -> UserDir {
        UserDir::new(self.users_dir().join(name.as_str()))
    }
    /// `users/NAME/cert.pem`.
    pub fn user_cert_path(&self, name: &UserName) -> PathBuf {
        self.user_dir(name).cert_path()
    }
    /// `users/NAME/key.pem`.
    pub fn user_key_path(&self, name: &UserName) -> PathBuf {
        self.user_dir(name).key_path()
    }

    /// Where the CA keeps the record of a certificate for `subject`.
    pub fn record_path(&self, subject: &Subject, serial: &[u8]) -> PathBuf {
        match subject {
            Subject::Identity(u) => self.issued_dir().join(format!("{u}.pem")),
            Subject::Device(u, d) => self.issued_dir().join(format!("{u}@{d}.pem")),
            Subject::Relay(_) => self
                .relays_dir()
                .join(format!("{}.pem", crate::cert::serial_hex(serial))),
        }
    }

    /// True if a CA certificate exists here.
    pub fn has_ca(&self) -> bool {
        self.ca_cert_path().exists()
    }

    /// Creates the CA (a P-384 root) and an empty CRL. Refuses, unless
    /// `force`, when any CA file exists. A forced re-init moves the old
    /// records aside (`issued.replaced-UNIXTIME/`), so the new CA lists
    /// none of the old CA's users; `list` also marks any record the current
    /// CA did not sign.
    pub fn init(&self, ca_name: &str, force: bool) -> Result<(), PkiError> {
        if !force {
            for f in CA_FILES {
                let path = self.root.join(f);
                if path.exists() {
                    return Err(PkiError::Exists(path));
                }
            }
        }
        if !self.root.exists() {
            crate::files::private_dir(&self.root)?;
        }
        if force {
            let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
            for dir in [self.issued_dir(), self.relays_dir()] {
                if dir.exists() {
                    let mut aside = dir.as_os_str().to_owned();
                    aside.push(format!(".replaced-{stamp}"));
                    fs::rename(&dir, &aside).map_err(io_err(&dir))?;
                }
            }
        }
        let ca = CertificateAuthority::create(ca_name)?;
        let crl = ca.sign_crl(&[], 1)?;
        write_file(
            &self.ca_key_path(),
            ca.key().expose_pem().as_bytes(),
            PRIVATE_KEY_MODE,
        )?;
        write_file(
            &self.ca_cert_path(),
            ca.cert_pem().as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        write_file(&self.crl_path(), crl.as_bytes(), PUBLIC_FILE_MODE)?;
        Ok(())
    }

    /// Loads the CA certificate and key.
    pub fn load_ca(&self) -> Result<CertificateAuthority, PkiError> {
        if !self.has_ca() {
            return Err(PkiError::NoCa(self.root.clone()));
        }
        let cert = read_string(&self.ca_cert_path())?;
        let key = Zeroizing::new(read_string(&self.ca_key_path())?);
        CertificateAuthority::from_pem(cert, PrivateKeyPem::new(key)).map_err(|e| match e {
            PkiError::Generate(m) => PkiError::Certificate(format!(
                "{} / {}: {m}",
                self.ca_cert_path().display(),
                self.ca_key_path().display()
            )),
            other => other,
        })
    }

    /// The record at `path`, if it exists, was signed by this CA and is
    /// still in force (not revoked, not expired).
    pub(super) fn live_record(&self, path: &Path) -> Result<Option<LiveRecord>, PkiError> {
        if !path.exists() {
            return Ok(None);
        }
        let der = read_cert_der(path)?;
        let ca_der = read_cert_der(&self.ca_cert_path())?;
        if !crate::cert::signed_by(&der, &ca_der) {
            return Ok(None);
        }
        let info = CertInfo::from_der(&der)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if info.status(now, &self.revoked()?) != CertStatus::Valid {
            return Ok(None);
        }
        Ok(Some(LiveRecord {
            spki: crate::cert::spki_der(&der)?,
            serial: info.serial,
        }))
    }

    /// Signs a checked request for `days` days and records it.
    ///
    /// A name (or device) already held by a certificate in force is refused
    /// unless `renew`. A renewal with the same key revokes nothing, so
    /// every contact's pin stays quiet; a renewal with a new key revokes
    /// the old certificate, so whoever holds the old key (a lost laptop)
    /// loses the identity.
    pub fn sign(
        &self,
        request: &CheckedRequest,
        days: u32,
        renew: bool,
    ) -> Result<SignedRecord, PkiError> {
        let ca = self.load_ca()?;
        let subject = request.subject();
        let current = match subject {
            Subject::Relay(_) => None,
            _ => self.live_record(&self.record_path(subject, &[]))?,
        };
        if current.is_some() && !renew {
            return Err(PkiError::NameTaken(subject.to_string()));
        }
        let signed = ca.sign_request(request, days)?;
        let serial = CertInfo::from_der(&signed.cert_der)?.serial;
        let record_path = self.record_path(subject, &serial);
        if let Some(dir) = record_path.parent() {
            crate::files::private_dir(dir)?;
        }
        write_file(&record_path, signed.cert_pem.as_bytes(), PUBLIC_FILE_MODE)?;
        let revoked = match current {
            Some(old) if old.spki != request.spki_der() => {
                self.revoke_serial(&ca, &old.serial)?;
                Some(old.serial)
            }
            _ => None,
        };
        Ok(SignedRecord {
            cert_pem: signed.cert_pem,
            record_path,
            serial,
            revoked,
        })
    }

    /// The revoked serials of the current CRL.
    pub fn revoked(&self) -> Result<HashSet<Vec<u8>>, PkiError> {
        revoked_serials(&read_crl_der(&self.crl_path())?)
    }

    pub(super) fn revoke_serial(
        &self,
        ca: &CertificateAuthority,
        serial: &[u8],
    ) -> Result<bool, PkiError> {
        let crl_der = read_crl_der(&self.crl_path())?;
        let mut revoked: Vec<Vec<u8>> = revoked_serials(&crl_der)?.into_iter().collect();
        let serial = normalize_serial(serial);
        if revoked.contains(&serial) {
            return Ok(false);
        }
        revoked.push(serial);
        revoked.sort();
        let pem = ca.sign_crl(&revoked, crl_number(&crl_der)?.saturating_add(1))?;
        write_file(&self.crl_path(), pem.as_bytes(), PUBLIC_FILE_MODE)?;
        Ok(true)
    }

    /// Signs the CRL again with the same entries, a higher number and a
    /// fresh `nextUpdate`. Returns the new CRL number.
    pub fn refresh_crl(&self) -> Result<u64, PkiError> {
        let ca = self.load_ca()?;
        let crl_der = read_crl_der(&self.crl_path())?;
        let mut revoked: Vec<Vec<u8>> = revoked_serials(&crl_der)?.into_iter().collect();
        revoked.sort();
        let number = crl_number(&crl_der)?.saturating_add(1);
        let pem = ca.sign_crl(&revoked, number)?;
        write_file(&self.crl_path(), pem.as_bytes(), PUBLIC_FILE_MODE)?;
        Ok(number)
    }

    /// Adds the current certificate of `subject` (a user or a device) to
    /// the CRL and re-signs it. Returns the serial, and whether it was
    /// newly revoked.
    pub fn revoke(&self, subject: &Subject) -> Result<(Vec<u8>, bool), PkiError> {
        let path = self.record_path(subject, &[]);
        if matches!(subject, Subject::Relay(_)) || !path.exists() {
            return Err(PkiError::UnknownUser(subject.to_string()));
        }
        let serial = CertInfo::from_der(&read_cert_der(&path)?)?.serial;
        let ca = self.load_ca()?;
        let new = self.revoke_serial(&ca, &serial)?;
        Ok((serial, new))
    }

    /// [`PkiDir::revoke`] of the identity certificate of `name`.
    pub fn revoke_user(&self, name: &UserName) -> Result<(Vec<u8>, bool), PkiError> {
        self.revoke(&Subject::Identity(name.clone()))
    }

    /// Every recorded certificate (users, devices, relays) with its status
    /// now, sorted by label.
    pub fn list(&self) -> Result<Vec<Record>, PkiError> {
        if !self.has_ca() {
            return Err(PkiError::NoCa(self.root.clone()));
        }
        let revoked = self.revoked()?;
        let ca_der = read_cert_der(&self.ca_cert_path())?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut out = Vec::new();
        for (dir, relay) in [(self.issued_dir(), false), (self.relays_dir(), true)] {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in entries {
                let path = entry.map_err(io_err(&dir))?.path();
                let Some(stem) = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .and_then(|f| f.strip_suffix(".pem"))
                else {
                    continue;
                };
                let der = read_cert_der(&path)?;
                let info = CertInfo::from_der(&der)?;
                let status = if crate::cert::signed_by(&der, &ca_der) {
                    info.status(now, &revoked)
                } else {
                    CertStatus::OtherCa
                };
                let label = if relay {
                    format!("relay {}", info.name)
                } else {
                    stem.to_owned()
                };
                out.push(Record {
                    label,
                    info,
                    status,
                });
            }
        }
        out.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(out)
    }
}

mod throwaway;

#[cfg(test)]
mod tests;
