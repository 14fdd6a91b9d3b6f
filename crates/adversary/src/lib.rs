//! Hostile peers, for the demo and the tests. Nothing here is used by the
//! real relay or client.
//!
//! * [`evil_relay`]: a relay that holds the genuine server certificate (as
//!   a compromised relay would) and misbehaves on purpose: flips bits,
//!   replays envelopes, re-targets them, forges the sender, swaps a user's
//!   certificate. Clients must detect every one of these.
//! * [`attacks`]: the original report's attack scripts against a relay: no
//!   client certificate, an oversized payload, a forged sender, a flood.
#![forbid(unsafe_code)]

pub mod attacks;
pub mod evil_relay;

/// Errors of the adversary tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdversaryError {
    /// Setup failed.
    #[error("{0}")]
    Setup(String),
    /// I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
