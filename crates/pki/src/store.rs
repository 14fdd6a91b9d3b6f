//! The PKI's directory layout.
//!
//! ```text
//! DIR/ca.pem            root CA certificate
//! DIR/ca-key.pem        root CA private key            (0600)
//! DIR/server.pem        relay certificate
//! DIR/server-key.pem    relay private key              (0600)
//! DIR/crl.pem           certificate revocation list
//! DIR/users/NAME.pem      user certificate
//! DIR/users/NAME-key.pem  user private key             (0600)
//! ```
//!
//! Every file is written to a temporary name and renamed into place, so a
//! reader (the relay watching `crl.pem`) never sees half a file.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use blindrelay_wire::UserName;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use zeroize::Zeroizing;

use crate::ca::{CertificateAuthority, UserCertOptions};
use crate::cert::{CertInfo, CertStatus, crl_number, normalize_serial, revoked_serials};
use crate::{PkiError, PrivateKeyPem};

/// Mode of private key files.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of certificates and the CRL.
pub const PUBLIC_FILE_MODE: u32 = 0o644;

/// A user certificate that was just issued.
#[derive(Debug, Clone)]
pub struct IssuedUser {
    /// `users/NAME.pem`.
    pub cert_path: PathBuf,
    /// `users/NAME-key.pem`.
    pub key_path: PathBuf,
    /// The certificate's serial.
    pub serial: Vec<u8>,
}

/// A PKI data directory.
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

/// Writes `bytes` to `path` atomically with the given mode.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))
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
    /// `server.pem`.
    pub fn server_cert_path(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    /// `server-key.pem`.
    pub fn server_key_path(&self) -> PathBuf {
        self.root.join("server-key.pem")
    }
    /// `crl.pem`.
    pub fn crl_path(&self) -> PathBuf {
        self.root.join("crl.pem")
    }
    /// `users/`.
    pub fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }
    /// `users/NAME.pem`.
    pub fn user_cert_path(&self, name: &UserName) -> PathBuf {
        self.users_dir().join(format!("{name}.pem"))
    }
    /// `users/NAME-key.pem`.
    pub fn user_key_path(&self, name: &UserName) -> PathBuf {
        self.users_dir().join(format!("{name}-key.pem"))
    }

    /// Creates the directories that hold private keys with mode 0700: the
    /// data directory if it is missing (an existing one is the operator's
    /// to choose) and `users/` (tightened if found open).
    fn private_dirs(&self) -> Result<(), PkiError> {
        if !self.root.exists() {
            crate::files::private_dir(&self.root)?;
        }
        crate::files::private_dir(&self.users_dir())?;
        Ok(())
    }

    /// True if a CA certificate exists here.
    pub fn has_ca(&self) -> bool {
        self.ca_cert_path().exists()
    }

    /// Creates the CA, the server certificate for `hosts`, an empty CRL and
    /// `users/`. Refuses to replace an existing CA unless `force`.
    pub fn init(&self, ca_name: &str, hosts: &[String], force: bool) -> Result<(), PkiError> {
        if self.has_ca() && !force {
            return Err(PkiError::Exists(self.ca_cert_path()));
        }
        self.private_dirs()?;
        let ca = CertificateAuthority::create(ca_name)?;
        let server = ca.issue_server(hosts)?;
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
        write_file(
            &self.server_key_path(),
            server.key.expose_pem().as_bytes(),
            PRIVATE_KEY_MODE,
        )?;
        write_file(
            &self.server_cert_path(),
            server.cert_pem.as_bytes(),
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

    /// Issues a certificate and key for `name`. Refuses to replace an
    /// existing certificate unless `force`.
    pub fn issue(
        &self,
        name: &UserName,
        opts: &UserCertOptions,
        force: bool,
    ) -> Result<IssuedUser, PkiError> {
        let cert_path = self.user_cert_path(name);
        let key_path = self.user_key_path(name);
        if cert_path.exists() && !force {
            return Err(PkiError::Exists(cert_path));
        }
        let ca = self.load_ca()?;
        // A replaced certificate is revoked: whoever holds the old key (a
        // stolen laptop) must not keep a valid identity.
        let replaced = if cert_path.exists() {
            read_cert_der(&cert_path)
                .ok()
                .and_then(|d| CertInfo::from_der(&d).ok())
                .map(|i| i.serial)
        } else {
            None
        };
        let issued = ca.issue_user(name, opts)?;
        self.private_dirs()?;
        write_file(
            &key_path,
            issued.key.expose_pem().as_bytes(),
            PRIVATE_KEY_MODE,
        )?;
        write_file(&cert_path, issued.cert_pem.as_bytes(), PUBLIC_FILE_MODE)?;
        if let Some(old) = replaced {
            self.revoke_serial(&ca, &old)?;
        }
        let serial = CertInfo::from_der(&issued.cert_der)?.serial;
        Ok(IssuedUser {
            cert_path,
            key_path,
            serial,
        })
    }

    /// The revoked serials of the current CRL.
    pub fn revoked(&self) -> Result<HashSet<Vec<u8>>, PkiError> {
        revoked_serials(&read_crl_der(&self.crl_path())?)
    }

    fn revoke_serial(&self, ca: &CertificateAuthority, serial: &[u8]) -> Result<bool, PkiError> {
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

    /// Adds `name`'s current certificate to the CRL and re-signs it.
    /// Returns the serial, and whether it was newly revoked.
    pub fn revoke(&self, name: &UserName) -> Result<(Vec<u8>, bool), PkiError> {
        let cert_path = self.user_cert_path(name);
        if !cert_path.exists() {
            return Err(PkiError::UnknownUser(name.to_string()));
        }
        let serial = CertInfo::from_der(&read_cert_der(&cert_path)?)?.serial;
        let ca = self.load_ca()?;
        let new = self.revoke_serial(&ca, &serial)?;
        Ok((serial, new))
    }

    /// Every issued user certificate with its status now, sorted by name.
    pub fn list(&self) -> Result<Vec<(CertInfo, CertStatus)>, PkiError> {
        if !self.has_ca() {
            return Err(PkiError::NoCa(self.root.clone()));
        }
        let revoked = self.revoked()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let dir = self.users_dir();
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err(&dir))?.path();
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            if !file.ends_with(".pem") || file.ends_with("-key.pem") {
                continue;
            }
            let info = CertInfo::from_der(&read_cert_der(&path)?)?;
            let status = info.status(now, &revoked);
            out.push((info, status));
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn name(s: &str) -> UserName {
        UserName::new(s).unwrap()
    }

    #[test]
    fn init_issue_revoke_list() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDir::new(dir.path().join("pki"));
        pki.init("Test CA", &["localhost".into(), "127.0.0.1".into()], false)
            .unwrap();
        for d in [dir.path().join("pki"), pki.users_dir()] {
            let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        assert!(matches!(
            pki.init("Test CA", &["localhost".into()], false),
            Err(PkiError::Exists(_))
        ));
        for p in [pki.ca_key_path(), pki.server_key_path()] {
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let first = pki
            .issue(&name("alice"), &UserCertOptions::valid_for_days(30), false)
            .unwrap();
        // Re-issuing (--force) revokes the replaced certificate.
        let alice = pki
            .issue(&name("alice"), &UserCertOptions::valid_for_days(30), true)
            .unwrap();
        assert!(pki.revoked().unwrap().contains(&first.serial));
        assert!(!pki.revoked().unwrap().contains(&alice.serial));
        let mode = fs::metadata(&alice.key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            pki.issue(&name("alice"), &UserCertOptions::valid_for_days(30), false),
            Err(PkiError::Exists(_))
        ));
        pki.issue(&name("bob"), &UserCertOptions::valid_for_days(30), false)
            .unwrap();
        let der = read_cert_der(&alice.cert_path).unwrap();
        assert_eq!(crate::identity_from_cert(&der).unwrap().as_str(), "alice");

        let (serial, new) = pki.revoke(&name("alice")).unwrap();
        assert!(new);
        assert_eq!(serial, alice.serial);
        assert!(!pki.revoke(&name("alice")).unwrap().1);
        assert!(pki.revoked().unwrap().contains(&alice.serial));
        assert_eq!(
            crl_number(&read_crl_der(&pki.crl_path()).unwrap()).unwrap(),
            3
        );

        let list = pki.list().unwrap();
        let statuses: Vec<(String, CertStatus)> =
            list.iter().map(|(i, s)| (i.name.clone(), *s)).collect();
        assert_eq!(
            statuses,
            vec![
                ("alice".into(), CertStatus::Revoked),
                ("bob".into(), CertStatus::Valid)
            ]
        );
        assert!(matches!(
            pki.revoke(&name("carol")),
            Err(PkiError::UnknownUser(_))
        ));
    }

    #[test]
    fn no_ca_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDir::new(dir.path());
        assert!(matches!(pki.load_ca(), Err(PkiError::NoCa(_))));
        assert!(matches!(
            pki.issue(&name("alice"), &UserCertOptions::valid_for_days(1), false),
            Err(PkiError::NoCa(_))
        ));
    }

    #[test]
    fn corrupt_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDir::new(dir.path());
        pki.init("Test CA", &["localhost".into()], false).unwrap();
        fs::write(pki.ca_key_path(), "garbage").unwrap();
        assert!(pki.load_ca().is_err());
    }
}
