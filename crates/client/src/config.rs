//! Where the client finds its files and how it connects.

use std::path::{Path, PathBuf};

use blindrelay_e2e::{LocalIdentity, TrustRoot};
use blindrelay_pki::UserDir;
use blindrelay_wire::UserName;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::policy::Policy;

/// Default relay address.
pub const DEFAULT_SERVER: &str = "127.0.0.1:8443";

/// Everything needed to connect as one user.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The user.
    pub name: UserName,
    /// Relay address (`host:port`).
    pub server: String,
    /// Name in the relay's certificate to verify (default: the host part).
    pub server_name: String,
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Optional CRL (PEM) for checking peers.
    pub crl: Option<PathBuf>,
    /// User certificate (PEM).
    pub cert: PathBuf,
    /// User private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// Local database; `None` keeps state in memory only.
    pub state: Option<PathBuf>,
    /// How late a message may arrive, and how long the client remembers
    /// (its own policy, whatever the relay announces).
    pub policy: Policy,
}

impl ClientConfig {
    /// The user's own directory `dir` ([`UserDir`]: `key.pem`,
    /// `cert.pem`, `ca.pem`, `crl.pem` if present, `state.db`).
    pub fn from_dir(dir: &Path, name: UserName, server: &str) -> Self {
        let dir = UserDir::new(dir);
        let crl = dir.crl_path();
        Self {
            server: server.to_string(),
            server_name: host_of(server),
            ca: dir.ca_path(),
            crl: crl.exists().then_some(crl),
            cert: dir.cert_path(),
            key: dir.key_path(),
            state: Some(dir.state_path()),
            policy: Policy::default(),
            name,
        }
    }

    fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ClientError> {
        std::fs::read(path).map_err(|error| ClientError::ReadFile {
            what,
            path: path.to_path_buf(),
            error,
        })
    }

    /// Loads the CA the client trusts. The CRL is offered to the client
    /// core separately ([`ClientConfig::read_crl`]), which keeps the newest
    /// it accepted.
    pub fn trust_root(&self) -> Result<TrustRoot, ClientError> {
        let ca = blindrelay_pki::store::read_cert_der(&self.ca)?;
        Ok(TrustRoot::new(ca)?)
    }

    /// The CRL file's contents (DER), if a CRL file is configured and
    /// exists.
    pub fn read_crl(&self) -> Option<Result<Vec<u8>, ClientError>> {
        let path = self.crl.as_ref()?;
        if !path.exists() {
            return None;
        }
        Some(blindrelay_pki::store::read_crl_der(path).map_err(ClientError::from))
    }

    /// Loads and checks the user's certificate and key.
    pub fn identity(&self, root: &TrustRoot, now_s: u64) -> Result<LocalIdentity, ClientError> {
        let cert = Self::read(&self.cert, "certificate")?;
        let key = Zeroizing::new(Self::read(&self.key, "private key")?);
        LocalIdentity::from_pem(&self.name, &cert, &key, root, now_s).map_err(ClientError::Identity)
    }
}

/// The host part of `host:port` (or `[v6]:port`).
pub fn host_of(server: &str) -> String {
    let s = server.trim();
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match s.rsplit_once(':') {
        Some((h, _)) => h.to_string(),
        None => s.to_string(),
    }
}
