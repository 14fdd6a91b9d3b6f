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

impl TestPki {
    /// Enrols device `device` of `user` in `dir` the way `blindrelay enroll
    /// USER --device DEVICE` and `pki sign` do: the P-256 key is made in
    /// `dir`, the CA signs the request; `dir` gets `cert.pem`, `ca.pem` and
    /// `crl.pem`. Returns the device's client configuration for `server`.
    pub fn device(
        &self,
        user: &str,
        device: &str,
        dir: &Path,
        server: &str,
    ) -> Result<blindrelay_client::ClientConfig, KitError> {
        use blindrelay_pki::{CheckedRequest, DeviceKeyKind, DeviceName, Expect, Subject, UserDir};
        let n = name(user)?;
        let d = DeviceName::new(device).map_err(|_| KitError::Name(device.into()))?;
        let subject = Subject::Device(n.clone(), d);
        let ud = UserDir::new(dir);
        ud.enroll_device_key(&subject, false, None, DeviceKeyKind::P256)?;
        let req = CheckedRequest::from_pem(&std::fs::read(ud.request_path())?, Expect::User)
            .map_err(blindrelay_pki::PkiError::from)?;
        let signed = self.pki.sign(&req, 1, false)?;
        std::fs::write(ud.cert_path(), signed.cert_pem.as_bytes())?;
        std::fs::copy(self.pki.ca_cert_path(), ud.ca_path())?;
        std::fs::copy(self.pki.crl_path(), ud.crl_path())?;
        Ok(blindrelay_client::ClientConfig::from_dir(dir, n, server))
    }

    /// Revokes device `device` of `user` (the CRL is rewritten; reload the
    /// relay's CRL after).
    pub fn revoke_device(&self, user: &str, device: &str) -> Result<(), KitError> {
        use blindrelay_pki::{DeviceName, Subject};
        let d = DeviceName::new(device).map_err(|_| KitError::Name(device.into()))?;
        self.pki.revoke(&Subject::Device(name(user)?, d))?;
        Ok(())
    }
}
