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
//! * [`attacks`]: the original report's attack scripts against a relay: no
//!   client certificate, an oversized payload, a forged sender, a flood.
#![forbid(unsafe_code)]

pub mod attacks;
pub mod evil_ds;
pub mod evil_relay;

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
}
