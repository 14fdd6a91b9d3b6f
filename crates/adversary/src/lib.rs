//! Hostile peers, for the demo and the tests. Nothing here is used by the
//! real relay or client.
//!
//! * [`evil_relay`]: a relay that holds the genuine server certificate (as
//!   a compromised relay would) and misbehaves on purpose: flips bits,
//!   replays envelopes, re-targets them, forges the sender, swaps a user's
//!   certificate. Clients must detect every one of these.
//! * [`evil_ds`]: a malicious Delivery Service for protocol v2: the honest
//!   rules, plus keeping back any device's mailbox items and handing them
//!   over later, in any order, or never (withheld and reordered commits).
//! * [`forge`]: MLS framing a hostile device builds without keys (a
//!   well-formed PrivateMessage with made-up ciphertext), for floods the
//!   relay cannot tell from real messages.
//! * [`attacks`]: the original report's attack scripts against a relay: no
//!   client certificate, an oversized payload, a forged sender, a flood.
#![forbid(unsafe_code)]

pub mod attacks;
pub mod evil_ds;
pub mod evil_relay;
pub mod forge;

/// The certificate (DER) a connected client presented, if any.
pub(crate) fn client_cert(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Option<Vec<u8>> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
}

/// A TLS acceptor with the genuine relay certificate and key of `pki`, as
/// a compromised relay host holds them (client certificates from its CA
/// required).
pub(crate) fn relay_acceptor(
    pki: &blindrelay_pki::PkiDir,
) -> Result<tokio_rustls::TlsAcceptor, AdversaryError> {
    use blindrelay_net::{load_certs, load_private_key, server_config};
    let ca = load_certs(&pki.ca_cert_path())?
        .into_iter()
        .next()
        .ok_or_else(|| blindrelay_pki::PkiError::NoCa(pki.root().to_path_buf()))?;
    let crl = blindrelay_pki::store::read_crl_der(&pki.crl_path())?;
    let cfg = server_config(
        ca,
        vec![rustls_pki_types::CertificateRevocationListDer::from(crl)],
        load_certs(&pki.server_cert_path())?,
        load_private_key(&pki.server_key_path())?,
    )?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg)))
}

/// Errors of the adversary tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdversaryError {
    /// The PKI files cannot be read.
    #[error(transparent)]
    Pki(#[from] blindrelay_pki::PkiError),
    /// TLS material or a frame transfer failed.
    #[error(transparent)]
    Net(#[from] blindrelay_net::NetError),
    /// A TLS configuration cannot be built.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    /// A frame cannot be encoded.
    #[error(transparent)]
    Wire(#[from] blindrelay_wire::WireError),
    /// The relay's name is not a valid server name.
    #[error(transparent)]
    ServerName(#[from] rustls_pki_types::InvalidDnsNameError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The CA certificate is no trust anchor.
    #[error(transparent)]
    TrustRoot(#[from] blindrelay_e2e::PeerError),
}
