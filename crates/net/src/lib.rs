//! The async transport of blindrelay, shared by the relay and its clients.
//!
//! * [`tls`]: the only TLS configurations the system uses: TLS 1.3 only,
//!   aws-lc-rs, mutual authentication against the private CA (with its CRL),
//!   no session tickets, and records capped at one frame of plaintext.
//! * [`framed`]: reading and writing whole 4096-byte frames over any
//!   `AsyncRead`/`AsyncWrite`, with the timeouts and the write batching that
//!   keep exactly one frame per TLS record.
//! * [`explain`]: transport failures in words a person understands.
//! * [`clock`]: the wall clock in Unix milliseconds, read here and passed
//!   into the sans-I/O code.
//!
//! The frame format itself lives in the sans-I/O `blindrelay-wire` crate.
#![forbid(unsafe_code)]

pub mod clock;
pub mod explain;
pub mod framed;
pub mod tls;

pub use clock::unix_ms;
pub use explain::{explain_io, explain_tls};
pub use framed::{FrameReader, FrameWriter, WRITE_BATCH_FRAMES};
pub use tls::{
    ALPN_CRL, TLS_MAX_FRAGMENT_SIZE, client_config, client_config_from_files, load_certs,
    load_private_key, server_config,
};

use std::path::PathBuf;

/// Transport errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Socket error.
    #[error("{}", explain_io(.0))]
    Io(#[from] std::io::Error),
    /// A file could not be read or is not valid PEM.
    #[error("{path}: {error}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        error: rustls_pki_types::pem::Error,
    },
    /// A PEM file holds no certificate.
    #[error("{0}: no certificate in the file")]
    NoCertificate(PathBuf),
    /// TLS configuration error.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    /// The client verifier could not be built (bad CA or CRL).
    #[error("client certificate verifier: {0}")]
    Verifier(rustls::server::VerifierBuilderError),
    /// The peer sent bytes that are not a valid frame.
    #[error(transparent)]
    Wire(#[from] blindrelay_wire::WireError),
    /// Nothing arrived within the idle timeout.
    #[error("idle timeout")]
    Idle,
    /// A frame started but did not complete within the frame timeout.
    #[error("frame not completed in time (truncated frame)")]
    Truncated,
    /// A write did not complete within the write timeout.
    #[error("write timeout")]
    WriteTimeout,
}
