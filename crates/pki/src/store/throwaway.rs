//! Keys made on the CA's machine for someone else: for tests, the demo and
//! throwaway setups only (`blindrelay pki issue` says so when used). A user
//! or a relay makes its own key everywhere else ([`crate::layout`]).

use std::fs;

use blindrelay_wire::UserName;

use super::{
    IssuedUser, PRIVATE_KEY_MODE, PUBLIC_FILE_MODE, PkiDir, SignedRecord, io_err, write_file,
};
use crate::PkiError;
use crate::ca::UserCertOptions;
use crate::cert::CertInfo;
use crate::request::{CheckedRequest, Subject};

impl PkiDir {
    /// For tests and throwaway setups: issues a certificate for `name` with
    /// a key made here, in `users/NAME/` (laid out as the user's own
    /// directory, with `ca.pem`), and records it. Refuses to replace a
    /// certificate in force unless `force`; a replaced certificate is
    /// revoked.
    pub fn issue(
        &self,
        name: &UserName,
        opts: &UserCertOptions,
        force: bool,
    ) -> Result<IssuedUser, PkiError> {
        let subject = Subject::Identity(name.clone());
        let record = self.record_path(&subject, &[]);
        let current = self.live_record(&record)?;
        if current.is_some() && !force {
            return Err(PkiError::NameTaken(subject.to_string()));
        }
        let ca = self.load_ca()?;
        let issued = ca.issue_user(name, opts)?;
        let dir = self.user_dir(name);
        crate::files::private_dir(&self.users_dir())?;
        crate::files::private_dir(dir.root())?;
        write_file(
            &dir.key_path(),
            issued.key.expose_pem().as_bytes(),
            PRIVATE_KEY_MODE,
        )?;
        write_file(
            &dir.cert_path(),
            issued.cert_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        write_file(&dir.ca_path(), ca.cert_pem().as_bytes(), PUBLIC_FILE_MODE)?;
        crate::files::private_dir(&self.issued_dir())?;
        write_file(&record, issued.cert_pem.as_bytes(), PUBLIC_FILE_MODE)?;
        if let Some(old) = current {
            self.revoke_serial(&ca, &old.serial)?;
        }
        let serial = CertInfo::from_der(&issued.cert_der)?.serial;
        Ok(IssuedUser {
            cert_path: dir.cert_path(),
            key_path: dir.key_path(),
            serial,
        })
    }

    /// For tests and throwaway setups: renews the certificate of a user
    /// made by [`PkiDir::issue`] for the key already in `users/NAME/`, the
    /// way `enroll --renew` and `pki sign --renew` do.
    pub fn renew(&self, name: &UserName, days: u32) -> Result<SignedRecord, PkiError> {
        let dir = self.user_dir(name);
        dir.enroll(&Subject::Identity(name.clone()), true)?;
        let request = CheckedRequest::from_pem(
            &fs::read(dir.request_path()).map_err(io_err(&dir.request_path()))?,
            crate::request::Expect::User,
        )?;
        let signed = self.sign(&request, days, true)?;
        write_file(
            &dir.cert_path(),
            signed.cert_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        Ok(signed)
    }

    /// For tests and the demo: a relay certificate for `hosts` with a key
    /// made here, as `server.pem` and `server-key.pem` in this directory.
    pub fn issue_relay(&self, hosts: &[String]) -> Result<(), PkiError> {
        let ca = self.load_ca()?;
        let server = ca.issue_server(hosts)?;
        write_file(
            &self.server_key_path(),
            server.key.expose_pem().as_bytes(),
            PRIVATE_KEY_MODE,
        )?;
        write_file(
            &self.server_cert_path(),
            server.cert_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )
    }
}
