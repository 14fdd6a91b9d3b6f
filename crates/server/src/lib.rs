//! The blindrelay relay server.
//!
//! The relay authenticates every client with mutual TLS against the private
//! CA, binds each connection to its certificate's Common Name, and forwards
//! opaque end-to-end-encrypted payloads between users. It can read none of
//! them. It owns:
//!
//! * [`config`]: every limit, as a named, documented value;
//! * [`server`]: the accept loop (connection cap taken before `accept`,
//!   handshake timeout), CRL reloading and graceful shutdown;
//! * `session`: one authenticated connection: identity binding, the rate
//!   limit, fragment sequencing, keep-alive and the bounded outgoing queue;
//! * `registry`: who is online, presence, routing and cool-downs;
//! * [`rate`]: the sliding-window limiter;
//! * [`store`]: durable store-and-forward, and `writebehind`, which spares
//!   the store messages their recipients acknowledge at once.
//!
//! Framing and message layouts are in `blindrelay-wire`; TLS settings and
//! frame I/O in `blindrelay-net`.
#![forbid(unsafe_code)]

pub mod config;
mod outbound;
pub mod rate;
mod registry;
pub mod server;
mod session;
pub mod store;
mod writebehind;

pub use config::Config;
pub use server::{Observed, Server, ServerHandle};

use std::path::PathBuf;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration file is unreadable or invalid.
    #[error("config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The PKI files could not be loaded.
    #[error(transparent)]
    Pki(#[from] blindrelay_pki::PkiError),
    /// TLS material could not be loaded.
    #[error(transparent)]
    Net(#[from] blindrelay_net::NetError),
    /// The message store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The tracing target of security events (refusals, attacks, disconnects
/// for cause). Filter on it with `RUST_LOG=blindrelay::security=warn`.
pub const SECURITY: &str = "blindrelay::security";
