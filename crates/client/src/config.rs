//! Where the client finds its files and how it connects.

use std::path::{Path, PathBuf};

use blindrelay_e2e::{LocalIdentity, TrustRoot};
use blindrelay_pki::UserDir;
use blindrelay_pki::key::Passphrase;
use blindrelay_wire::UserName;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::policy::Policy;

/// Default relay address.
pub const DEFAULT_SERVER: &str = "127.0.0.1:8443";
/// The relay's port when an address names none.
pub const DEFAULT_PORT: u16 = 8443;

/// Everything needed to connect as one user.
#[derive(Clone)]
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
    /// User private key (PEM, PKCS#8, possibly encrypted).
    pub key: PathBuf,
    /// The passphrase of an encrypted key (never printed).
    pub passphrase: Option<Passphrase>,
    /// Local database; `None` keeps state in memory only.
    pub state: Option<PathBuf>,
    /// How late a message may arrive, and how long the client remembers
    /// (its own policy, whatever the relay announces).
    pub policy: Policy,
    /// If the relay cannot be reached at the start, keep trying in the
    /// background (with [`crate::Event::Reconnecting`]) instead of failing.
    pub retry_at_start: bool,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("server_name", &self.server_name)
            .field("ca", &self.ca)
            .field("crl", &self.crl)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .field("state", &self.state)
            .field("policy", &self.policy)
            .field("retry_at_start", &self.retry_at_start)
            .finish()
    }
}

impl ClientConfig {
    /// The user's own directory `dir` ([`UserDir`]: `key.pem`,
    /// `cert.pem`, `ca.pem`, `crl.pem` if present, `state.db`).
    pub fn from_dir(dir: &Path, name: UserName, server: &str) -> Self {
        let dir = UserDir::new(dir);
        let crl = dir.crl_path();
        Self {
            server: with_default_port(server),
            server_name: host_of(&with_default_port(server)),
            ca: dir.ca_path(),
            crl: crl.exists().then_some(crl),
            cert: dir.cert_path(),
            key: dir.key_path(),
            passphrase: None,
            state: Some(dir.state_path()),
            policy: Policy::default(),
            retry_at_start: false,
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

    /// The user's private key, PKCS#8 DER, decrypted with the passphrase
    /// if the file is encrypted. Wiped when dropped.
    pub fn load_key(&self) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let pem = Zeroizing::new(Self::read(&self.key, "private key")?);
        if blindrelay_pki::encrypted_key::is_encrypted(&pem) {
            let pass = self
                .passphrase
                .as_ref()
                .ok_or_else(|| blindrelay_pki::PkiError::PassphraseNeeded(self.key.clone()))?;
            return Ok(blindrelay_pki::encrypted_key::decrypt(&pem, pass.expose())
                .map_err(blindrelay_pki::PkiError::from)?);
        }
        use rustls_pki_types::PrivatePkcs8KeyDer;
        use rustls_pki_types::pem::PemObject;
        let der = Zeroizing::new(PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|_| {
            ClientError::Identity(blindrelay_e2e::E2eError::Pem("PKCS#8 PRIVATE KEY"))
        })?);
        Ok(Zeroizing::new(der.secret_pkcs8_der().to_vec()))
    }

    /// Checks the user's certificate against `root` and the key `pkcs8`
    /// (from [`ClientConfig::load_key`]) against it.
    pub fn identity(
        &self,
        root: &TrustRoot,
        pkcs8: Zeroizing<Vec<u8>>,
        now_s: u64,
    ) -> Result<LocalIdentity, ClientError> {
        let cert = blindrelay_pki::store::read_cert_der(&self.cert)?;
        LocalIdentity::new(&self.name, &cert, pkcs8, root, now_s).map_err(ClientError::Identity)
    }

    /// The TLS configuration: trusts only the CA, authenticates with the
    /// user's certificate and the key `pkcs8`.
    pub fn tls(&self, pkcs8: &[u8]) -> Result<rustls::ClientConfig, ClientError> {
        let ca = blindrelay_net::load_certs(&self.ca)?
            .into_iter()
            .next()
            .ok_or_else(|| blindrelay_net::NetError::NoCertificate(self.ca.clone()))?;
        let chain = blindrelay_net::load_certs(&self.cert)?;
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(pkcs8.to_vec().into());
        Ok(blindrelay_net::client_config(ca, chain, key)?)
    }
}

/// `server` with [`DEFAULT_PORT`] added if it names no port: `relay.example.org`
/// becomes `relay.example.org:8443`, `::1` and `[::1]` become `[::1]:8443`.
pub fn with_default_port(server: &str) -> String {
    let s = server.trim();
    if s.starts_with('[') {
        return if s.contains("]:") {
            s.to_string()
        } else {
            format!("{s}:{DEFAULT_PORT}")
        };
    }
    match s.matches(':').count() {
        0 => format!("{s}:{DEFAULT_PORT}"),
        1 => s.to_string(),
        // A bare IPv6 address.
        _ => format!("[{s}]:{DEFAULT_PORT}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_port_gets_the_default_port() {
        for (given, addr, host) in [
            (
                "relay.example.org",
                "relay.example.org:8443",
                "relay.example.org",
            ),
            (
                "relay.example.org:9000",
                "relay.example.org:9000",
                "relay.example.org",
            ),
            ("127.0.0.1", "127.0.0.1:8443", "127.0.0.1"),
            ("::1", "[::1]:8443", "::1"),
            ("[::1]", "[::1]:8443", "::1"),
            ("[::1]:9000", "[::1]:9000", "::1"),
        ] {
            assert_eq!(with_default_port(given), addr, "{given}");
            assert_eq!(host_of(&with_default_port(given)), host, "{given}");
        }
    }
}
