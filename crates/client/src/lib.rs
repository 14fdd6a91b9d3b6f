//! The blindrelay client library.
//!
//! It trusts the CA and nothing else: every certificate the relay hands out
//! is verified locally and pinned on first use; every message is sealed
//! end to end ([`blindrelay_e2e`]) and every received message is verified,
//! checked for freshness and replay, and decrypted before the user sees it.
//!
//! * [`core`]: the protocol logic without I/O ([`ClientCore`]).
//! * [`connection`]: the tokio task that drives it over mutual TLS, and the
//!   [`ClientHandle`] a user interface talks to.
//! * [`state`]: pins and the replay cache in SQLite.
//! * [`event`]: what the user interface shows.
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod core;
pub mod event;
pub mod state;

pub use config::ClientConfig;
pub use connection::{ClientHandle, connect};
pub use core::ClientCore;
pub use event::{Event, UndeliveredReason};
pub use state::ClientState;

/// Client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Local files (certificate, key, CA, state) are missing or unusable.
    #[error("{0}")]
    Setup(String),
    /// The local database failed.
    #[error("state: {0}")]
    State(String),
    /// No trusted key for a recipient.
    #[error("{0}")]
    NoKey(String),
    /// Sealing failed (too long, too many recipients).
    #[error("cannot send: {0}")]
    Seal(String),
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Connection(String),
    /// The CSPRNG failed.
    #[error("crypto failure")]
    Crypto,
}

/// Wall-clock time, Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
