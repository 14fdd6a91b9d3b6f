//! The blindrelay relay server.
//!
//! The relay authenticates every client with mutual TLS against the private
//! CA, binds each connection to its certificate's Common Name, and forwards
//! opaque end-to-end-encrypted payloads between users. It can read none of
//! them. Following one message through it:
//!
//! * [`server`]: the accept loop (connection cap taken before `accept`,
//!   per-address handshake cap, handshake timeout) and graceful shutdown;
//!   `crl` reloads the CRL and disconnects revoked users.
//! * `session`: one authenticated connection's lifecycle (log in, serve
//!   frames, close); `session::rules` is the plain, synchronous rule book
//!   every SEND passes (sender binding, fragment order, flags), and
//!   `session::writer` drains the session's bounded queue to the socket.
//! * `registry`: who is online, presence, routing and the rate windows.
//! * `delivery`: everything that happens to a message after routing:
//!   write-behind, store commits and the sender's statuses, acknowledgements,
//!   and the backlog streamed at login.
//! * [`store`]: durable store-and-forward behind the small
//!   [`store::MessageStore`] trait (SQLite with group commit).
//! * `v2`: protocol v2, the relay as MLS Delivery Service: the rules of
//!   `blindrelay-ds` with their effects in SQLite, and device sessions
//!   (a certificate naming a device makes one).
//! * [`config`]: every limit, as a named, documented value; [`rate`]: the
//!   sliding-window limiter; `observe`: what the relay sees, for `--verbose`
//!   and the demo; `shared`: the state every task shares.
//!
//! Framing and message layouts are in `blindrelay-wire`; TLS settings and
//! frame I/O in `blindrelay-net`. The modules form layers, each importing
//! only from the layers below it:
//!
//! 1. `server`, `crl`: the accept loop and the CRL watcher;
//! 2. `session`, `v2::session`: one connection;
//! 3. `delivery`: a message after routing;
//! 4. `shared`: the state every task holds;
//! 5. `registry`, `store`, `v2` (the Delivery Service), `delivery::writebehind`, `observe`, `outbound`,
//!    `rate`, `config`: the components, which know nothing of the layers
//!    above.
#![forbid(unsafe_code)]

pub mod config;
mod crl;
mod delivery;
mod observe;
mod outbound;
pub mod rate;
mod registry;
pub mod server;
mod session;
mod shared;
pub mod store;
mod v2;

pub use config::{Config, ConfigError};
pub use observe::{OBSERVER_QUEUE, Observed};
pub use server::{Server, ServerHandle, V2Store};

use std::path::PathBuf;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration file cannot be read.
    #[error("config {path}: {error}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The configuration file is not valid TOML for [`Config`].
    #[error("config {path}: {message}")]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// What the parser said (one line).
        message: String,
    },
    /// A configuration value is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The PKI files could not be loaded.
    #[error(transparent)]
    Pki(#[from] blindrelay_pki::PkiError),
    /// The CRL is not usable (not from the CA, expired, a rollback).
    #[error("{path}: {error}")]
    Crl {
        /// The CRL file.
        path: PathBuf,
        /// Why it was refused.
        error: blindrelay_pki::crl::CrlError,
    },
    /// TLS material could not be loaded.
    #[error(transparent)]
    Net(#[from] blindrelay_net::NetError),
    /// The message store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The CA certificate cannot be a trust root for checking v2 commits.
    #[error("ca.pem cannot be used to check v2 commits: {0}")]
    TrustRoot(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
}

/// The tracing target of security events (refusals, attacks, disconnects
/// for cause). Filter on it with `RUST_LOG=blindrelay::security=warn`.
pub const SECURITY: &str = "blindrelay::security";
