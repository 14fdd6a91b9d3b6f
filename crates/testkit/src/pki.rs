//! A throwaway PKI: a CA, the relay's certificate for `localhost` and
//! `127.0.0.1`, and users valid for a day, in a directory removed when the
//! [`TestPki`] is dropped.

use std::path::Path;

use blindrelay_pki::{PkiDir, UserCertOptions};
use rustls::ClientConfig;

use crate::{KitError, name};

/// A CA and its users in a temporary directory.
pub struct TestPki {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The PKI in it.
    pub pki: PkiDir,
}

impl TestPki {
    /// A CA named "Test Root CA" and `users`.
    pub fn new(users: &[&str]) -> Result<Self, KitError> {
        Self::named("Test Root CA", users)
    }

    /// A CA named `ca_name` and `users`.
    pub fn named(ca_name: &str, users: &[&str]) -> Result<Self, KitError> {
        let dir = tempfile::tempdir()?;
        let pki = PkiDir::new(dir.path());
        pki.init(ca_name, false)?;
        pki.issue_relay(&["localhost".into(), "127.0.0.1".into()])?;
        let me = Self { dir, pki };
        for u in users {
            me.issue_with(u, &UserCertOptions::valid_for_days(1))?;
        }
        Ok(me)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Issues (or re-issues) `user`'s certificate with `opts`.
    pub fn issue_with(&self, user: &str, opts: &UserCertOptions) -> Result<(), KitError> {
        self.pki.issue(&name(user)?, opts, true)?;
        Ok(())
    }

    /// A relay host's directory (`relay/`) as `blindrelay serve` expects
    /// it: copies of `ca.pem`, `crl.pem`, and the relay's own certificate
    /// and key, and no other key. Call it again after a revocation.
    pub fn relay_dir(&self) -> Result<std::path::PathBuf, KitError> {
        let dir = self.dir.path().join("relay");
        blindrelay_pki::files::private_dir(&dir)?;
        for (from, to) in [
            (self.pki.ca_cert_path(), "ca.pem"),
            (self.pki.crl_path(), "crl.pem"),
            (self.pki.server_cert_path(), "server.pem"),
            (self.pki.server_key_path(), "server-key.pem"),
        ] {
            std::fs::copy(from, dir.join(to))?;
        }
        Ok(dir)
    }

    /// `user`'s certificate, DER.
    pub fn cert_der(&self, user: &str) -> Result<Vec<u8>, KitError> {
        Ok(blindrelay_pki::store::read_cert_der(
            &self.pki.user_cert_path(&name(user)?),
        )?)
    }

    /// A TLS client configuration for `user`, trusting this CA.
    pub fn client_config(&self, user: &str) -> Result<ClientConfig, KitError> {
        let n = name(user)?;
        Ok(blindrelay_net::client_config_from_files(
            &self.pki.ca_cert_path(),
            &self.pki.user_cert_path(&n),
            &self.pki.user_key_path(&n),
        )?)
    }
}
