//! The directories of a user and of a relay: where a key is born and stays.
//!
//! ```text
//! USER/key.pem          the user's private key          (0600, secret, made here)
//! USER/request.pem      the request sent to the CA      (public)
//! USER/cert.pem         the certificate the CA signed   (public)
//! USER/ca.pem           the CA certificate              (public)
//! USER/crl.pem          the CRL, optional               (public)
//! USER/state.db         pins, replay cache, history     (0600, private)
//!
//! RELAY/server-key.pem      the relay's private key     (0600, secret, made here)
//! RELAY/server-request.pem  the request sent to the CA  (public)
//! RELAY/server.pem          the relay's certificate     (public)
//! RELAY/ca.pem, crl.pem     from the CA                 (public)
//! RELAY/relay.db            the message store           (0600, private)
//! ```
//!
//! Both directories are mode 0700. A relay directory must hold no private
//! key but the relay's own: [`RelayDir::foreign_private_keys`] finds any,
//! and `blindrelay serve` refuses to start on them.

use std::fs;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::encrypted_key;
use crate::files::{PRIVATE_KEY_MODE, PUBLIC_FILE_MODE, write_file};
use crate::key::Passphrase;
use crate::request::{DeviceKeyKind, Enrolment, Subject, renewal_request};
use crate::{PkiError, PrivateKeyPem};

/// Files larger than this are not private keys; the scan does not read them.
const MAX_SCANNED_FILE: u64 = 256 * 1024;
/// Entries (files and folders, at any depth) the scan for stray private
/// keys looks at; a directory with more is refused rather than half
/// checked. Symbolic links are not followed.
pub const MAX_SCAN_ENTRIES: usize = 100_000;
/// The marker every PEM private key carries (PKCS#1, PKCS#8, SEC1, encrypted).
const PRIVATE_KEY_MARKER: &[u8] = b"PRIVATE KEY-----";

/// What `enroll` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// A new key and its request.
    NewKey,
    /// A request for the existing key (a renewal).
    SameKey,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |error| PkiError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Reads the private key at `key` as PEM, decrypting it with `passphrase`
/// if it is encrypted.
pub fn read_key(key: &Path, passphrase: Option<&Passphrase>) -> Result<PrivateKeyPem, PkiError> {
    let pem = Zeroizing::new(fs::read(key).map_err(io(key))?);
    if encrypted_key::is_encrypted(&pem) {
        let pass = passphrase.ok_or_else(|| PkiError::PassphraseNeeded(key.to_path_buf()))?;
        let der = encrypted_key::decrypt(&pem, pass.expose())?;
        return Ok(PrivateKeyPem::new(encrypted_key::to_pem(&der)?));
    }
    let text = String::from_utf8(pem.to_vec()).map_err(|_| PkiError::Pem {
        path: key.to_path_buf(),
        what: "private key",
    })?;
    Ok(PrivateKeyPem::new(Zeroizing::new(text)))
}

/// Makes a key and request at `key`/`request` for `subject`, or with
/// `renew` a request for the key already there. With a passphrase, a new
/// key is written encrypted, and an encrypted key is read with it.
fn enroll_at(
    dir: &Path,
    key: &Path,
    request: &Path,
    subject: &Subject,
    renew: bool,
    passphrase: Option<&Passphrase>,
    kind: DeviceKeyKind,
) -> Result<Enrolled, PkiError> {
    crate::files::private_dir(dir)?;
    if renew {
        let key_pem = read_key(key, passphrase)?;
        let req = renewal_request(&key_pem, subject)?;
        write_file(request, req.as_bytes(), PUBLIC_FILE_MODE)?;
        return Ok(Enrolled::SameKey);
    }
    if key.exists() {
        return Err(PkiError::Exists(key.to_path_buf()));
    }
    let e = Enrolment::with_device_key(subject, kind)?;
    match passphrase {
        Some(pass) => {
            use rustls_pki_types::PrivatePkcs8KeyDer;
            use rustls_pki_types::pem::PemObject;
            let der = Zeroizing::new(
                PrivatePkcs8KeyDer::from_pem_slice(e.key.expose_pem().as_bytes())
                    .map_err(|_| PkiError::Generate("the new key is not PKCS#8".into()))?,
            );
            let sealed = encrypted_key::encrypt(der.secret_pkcs8_der(), pass.expose())?;
            write_file(key, sealed.as_bytes(), PRIVATE_KEY_MODE)?;
        }
        None => write_file(key, e.key.expose_pem().as_bytes(), PRIVATE_KEY_MODE)?,
    }
    write_file(request, e.request_pem.as_bytes(), PUBLIC_FILE_MODE)?;
    Ok(Enrolled::NewKey)
}

/// A user's own directory.
#[derive(Debug, Clone)]
pub struct UserDir {
    root: PathBuf,
}

impl UserDir {
    /// The directory at `root` (nothing is read yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `key.pem`.
    pub fn key_path(&self) -> PathBuf {
        self.root.join("key.pem")
    }
    /// `request.pem`.
    pub fn request_path(&self) -> PathBuf {
        self.root.join("request.pem")
    }
    /// `cert.pem`.
    pub fn cert_path(&self) -> PathBuf {
        self.root.join("cert.pem")
    }
    /// `ca.pem`.
    pub fn ca_path(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    /// `crl.pem`.
    pub fn crl_path(&self) -> PathBuf {
        self.root.join("crl.pem")
    }
    /// `state.db`.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// Creates the private key (never replacing one) and the request for
    /// `subject`; with `renew`, a request for the key already here.
    pub fn enroll(&self, subject: &Subject, renew: bool) -> Result<Enrolled, PkiError> {
        self.enroll_with(subject, renew, None)
    }

    /// [`UserDir::enroll`], with the key encrypted under `passphrase`
    /// (and an encrypted key read with it for a renewal).
    pub fn enroll_with(
        &self,
        subject: &Subject,
        renew: bool,
        passphrase: Option<&Passphrase>,
    ) -> Result<Enrolled, PkiError> {
        self.enroll_device_key(subject, renew, passphrase, DeviceKeyKind::P256)
    }

    /// [`UserDir::enroll_with`], with a new device key of `kind` (ignored
    /// for an identity, and for a renewal, which keeps the key).
    pub fn enroll_device_key(
        &self,
        subject: &Subject,
        renew: bool,
        passphrase: Option<&Passphrase>,
        kind: DeviceKeyKind,
    ) -> Result<Enrolled, PkiError> {
        enroll_at(
            &self.root,
            &self.key_path(),
            &self.request_path(),
            subject,
            renew,
            passphrase,
            kind,
        )
    }
}

/// A relay host's directory.
#[derive(Debug, Clone)]
pub struct RelayDir {
    root: PathBuf,
}

impl RelayDir {
    /// The directory at `root` (nothing is read yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `server-key.pem`.
    pub fn key_path(&self) -> PathBuf {
        self.root.join("server-key.pem")
    }
    /// `server-request.pem`.
    pub fn request_path(&self) -> PathBuf {
        self.root.join("server-request.pem")
    }
    /// `server.pem`.
    pub fn cert_path(&self) -> PathBuf {
        self.root.join("server.pem")
    }

    /// Creates the relay's private key (never replacing one) and the
    /// request for `hosts`; with `renew`, a request for the key already
    /// here.
    pub fn enroll(&self, hosts: &[String], renew: bool) -> Result<Enrolled, PkiError> {
        enroll_at(
            &self.root,
            &self.key_path(),
            &self.request_path(),
            &Subject::Relay(hosts.to_vec()),
            renew,
            None,
            DeviceKeyKind::P256,
        )
    }

    /// Every file under the directory that holds a private key other than
    /// the relay's own `server-key.pem`: the CA's key, a user's key. A relay
    /// host must never hold one.
    pub fn foreign_private_keys(&self) -> Result<Vec<PathBuf>, PkiError> {
        let mut found = Vec::new();
        let mut budget = MAX_SCAN_ENTRIES;
        scan(&self.root, &self.key_path(), &mut budget, &mut found).map_err(|e| match e {
            ScanError::Pki(e) => e,
            ScanError::TooLarge => PkiError::ScanTooLarge(self.root.clone(), MAX_SCAN_ENTRIES),
        })?;
        found.sort();
        Ok(found)
    }
}

fn holds_private_key(path: &Path) -> bool {
    // Unreadable files are skipped: the scan is a guard against a mistake,
    // and a file the relay cannot read it cannot leak either.
    fs::read(path)
        .map(|b| {
            b.windows(PRIVATE_KEY_MARKER.len())
                .any(|w| w == PRIVATE_KEY_MARKER)
        })
        .unwrap_or(false)
}

enum ScanError {
    Pki(PkiError),
    TooLarge,
}

/// Every file under `dir` at any depth (links not followed) that holds a
/// PEM private key, but `own`; at most `budget` entries are looked at.
fn scan(
    dir: &Path,
    own: &Path,
    budget: &mut usize,
    found: &mut Vec<PathBuf>,
) -> Result<(), ScanError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ScanError::Pki(io(dir)(e))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| ScanError::Pki(io(dir)(e)))?;
        *budget = budget.checked_sub(1).ok_or(ScanError::TooLarge)?;
        let path = entry.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            scan(&path, own, budget, found)?;
        } else if meta.is_file()
            && meta.len() <= MAX_SCANNED_FILE
            && path != own
            && holds_private_key(&path)
        {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindrelay_wire::UserName;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_user_key_is_private_never_replaced_and_renewal_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let u = UserDir::new(d.path().join("alice"));
        let alice = Subject::Identity(UserName::new("alice").unwrap());
        assert_eq!(u.enroll(&alice, false).unwrap(), Enrolled::NewKey);
        assert_eq!(mode(u.root()), 0o700);
        assert_eq!(mode(&u.key_path()), 0o600);
        let key = fs::read(u.key_path()).unwrap();
        let first = fs::read(u.request_path()).unwrap();
        assert!(matches!(u.enroll(&alice, false), Err(PkiError::Exists(_))));
        assert_eq!(u.enroll(&alice, true).unwrap(), Enrolled::SameKey);
        assert_eq!(fs::read(u.key_path()).unwrap(), key);
        let again = fs::read(u.request_path()).unwrap();
        let spki = |pem: &[u8]| {
            crate::request::CheckedRequest::from_pem(pem, crate::request::Expect::User)
                .unwrap()
                .spki_der()
                .to_vec()
        };
        assert_eq!(spki(&first), spki(&again));
        // Renewal without a key is an error, not a new key.
        let empty = UserDir::new(d.path().join("bob"));
        assert!(matches!(
            empty.enroll(&alice, true),
            Err(PkiError::Io { .. })
        ));
        assert!(!empty.key_path().exists());
    }

    #[test]
    fn the_scan_finds_every_private_key_but_the_relays_own() {
        let d = tempfile::tempdir().unwrap();
        let r = RelayDir::new(d.path());
        r.enroll(&["localhost".into()], false).unwrap();
        assert!(r.foreign_private_keys().unwrap().is_empty());
        let ca_key = d.path().join("ca-key.pem");
        fs::write(
            &ca_key,
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let nested = d.path().join("users").join("alice");
        fs::create_dir_all(&nested).unwrap();
        let user_key = nested.join("key.pem");
        fs::write(&user_key, "-----BEGIN RSA PRIVATE KEY-----\n").unwrap();
        fs::write(nested.join("cert.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        // Four folders down (and deeper) too.
        let deep = d.path().join("a").join("b").join("c").join("d").join("e");
        fs::create_dir_all(&deep).unwrap();
        let deep_key = deep.join("ca-key.pem");
        fs::write(&deep_key, "-----BEGIN EC PRIVATE KEY-----\n").unwrap();
        let mut want = vec![ca_key, user_key, deep_key];
        want.sort();
        assert_eq!(r.foreign_private_keys().unwrap(), want);
    }

    #[test]
    fn a_directory_too_large_to_check_is_refused_not_half_checked() {
        let d = tempfile::tempdir().unwrap();
        let r = RelayDir::new(d.path());
        r.enroll(&["localhost".into()], false).unwrap();
        let many = d.path().join("many");
        fs::create_dir_all(&many).unwrap();
        for i in 0..MAX_SCAN_ENTRIES {
            fs::File::create(many.join(i.to_string())).unwrap();
        }
        assert!(matches!(
            r.foreign_private_keys(),
            Err(PkiError::ScanTooLarge(_, MAX_SCAN_ENTRIES))
        ));
    }
}
