//! TLS configurations.
//!
//! Both sides use TLS 1.3 only and the aws-lc-rs provider. The relay requires
//! a client certificate that chains to the private CA, carries the
//! `clientAuth` extended key usage, is within its validity and is not listed
//! in the CRL (all checked by rustls-webpki during the handshake). Session
//! tickets are disabled so that after the handshake every record on the wire
//! carries one frame.

use std::path::Path;
use std::sync::Arc;

use blindrelay_wire::FRAME_LEN;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::NetError;

/// TLS record header size, which rustls counts in `max_fragment_size`.
const TLS_RECORD_HEADER: usize = 5;
/// rustls' `max_fragment_size`: one frame of plaintext per record.
pub const TLS_MAX_FRAGMENT_SIZE: usize = FRAME_LEN + TLS_RECORD_HEADER;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let pem = |error| NetError::Pem {
        path: path.to_path_buf(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(NetError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, PKCS#1 or SEC1) from a PEM file. The file's
/// bytes are wiped once decoded. The DER returned goes to rustls, which
/// parses it into aws-lc's key and drops it: that copy is rustls' to wipe.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    let pem = |error| NetError::Pem {
        path: path.to_path_buf(),
        error,
    };
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| pem(rustls_pki_types::pem::Error::Io(e)))?);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(pem)
}

/// The ALPN protocol a client offers when it understands CRL frames
/// (PROTOCOL.md section 3). The relay sends CRL frames only to a client
/// that offered it, so a client written before them is never sent a frame
/// type it must reject; one that offers no ALPN at all is served as before.
pub const ALPN_CRL: &[u8] = b"blindrelay/1+crl";

/// The relay's configuration: mutual TLS against `ca` with `crls`.
pub fn server_config(
    ca: CertificateDer<'static>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, NetError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(NetError::Verifier)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.max_fragment_size = Some(TLS_MAX_FRAGMENT_SIZE);
    config.alpn_protocols = vec![ALPN_CRL.to_vec()];
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// A client's configuration from PEM files: the CA certificate to trust
/// (its first certificate), the client's certificate chain and its private
/// key.
pub fn client_config_from_files(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<ClientConfig, NetError> {
    let ca = load_certs(ca)?
        .into_iter()
        .next()
        .ok_or_else(|| NetError::NoCertificate(ca.to_path_buf()))?;
    client_config(ca, load_certs(cert)?, load_private_key(key)?)
}

/// A client's configuration: trusts only `ca`, authenticates with `chain`/`key`.
pub fn client_config(
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, NetError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.max_fragment_size = Some(TLS_MAX_FRAGMENT_SIZE);
    config.alpn_protocols = vec![ALPN_CRL.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}
