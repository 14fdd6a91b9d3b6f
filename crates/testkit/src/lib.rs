//! blindrelay's test kit: one set of harnesses for the tests of every crate
//! and for the `demo` command (rustls keeps its test helpers in one crate
//! the same way).
//!
//! * [`pki`]: [`TestPki`], a throwaway CA with users, in a temporary
//!   directory.
//! * [`relay`]: [`TestRelay`], the real relay in this process on
//!   `127.0.0.1:0` (or a fixed address, to restart it), with an in-memory or
//!   durable store and an optional observer.
//! * [`user`]: [`User`], a real client ([`blindrelay_client`]) with waits on
//!   its events.
//! * [`raw`]: [`RawClient`], frames over real mutual TLS with no client
//!   logic, to play a misbehaving or precise client.
//! * [`process`]: [`RelayProcess`], the `blindrelay serve` binary as a
//!   child process with its output captured.
//! * [`proxy`]: a proxy that records TLS record lengths, and one whose
//!   connections can be cut.
//! * [`logs`]: the process's `tracing` output, captured for assertions.
//!
//! Nothing here panics: every helper returns a [`KitError`] that says what
//! it waited for, so the demo (a production command) can use the kit and a
//! test's `unwrap` points at the line that failed.
#![forbid(unsafe_code)]

pub mod logs;
pub mod pki;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod relay;
pub mod user;

pub use pki::TestPki;
pub use process::RelayProcess;
pub use proxy::{CutProxy, RecordProxy};
pub use raw::RawClient;
pub use relay::TestRelay;
pub use user::User;

use std::time::Duration;

use blindrelay_wire::UserName;

/// How long a helper waits for something expected before giving up.
pub const WAIT: Duration = Duration::from_secs(10);

/// What went wrong in a harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// A name the kit was given is not a valid user name.
    #[error("invalid user name {0:?}")]
    Name(String),
    /// The PKI could not be created or read.
    #[error(transparent)]
    Pki(#[from] blindrelay_pki::PkiError),
    /// The relay could not start.
    #[error(transparent)]
    Server(#[from] blindrelay_server::ServerError),
    /// The client failed.
    #[error(transparent)]
    Client(#[from] blindrelay_client::ClientError),
    /// TLS material or a frame transfer failed.
    #[error(transparent)]
    Net(#[from] blindrelay_net::NetError),
    /// A frame could not be encoded or decoded.
    #[error(transparent)]
    Wire(#[from] blindrelay_wire::WireError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Something expected did not happen in time.
    #[error("{who}: timed out waiting for {what}")]
    Timeout {
        /// Who waited.
        who: String,
        /// For what.
        what: String,
    },
    /// A stream or channel ended while something was expected.
    #[error("{who}: closed while waiting for {what}")]
    Closed {
        /// Who waited.
        who: String,
        /// For what.
        what: String,
    },
    /// Something arrived that should not have.
    #[error("{who}: expected {expected}, got {got}")]
    Unexpected {
        /// Who received it.
        who: String,
        /// What was expected.
        expected: String,
        /// What came, formatted.
        got: String,
    },
}

/// A validated user name.
pub fn name(s: &str) -> Result<UserName, KitError> {
    UserName::new(s).map_err(|_| KitError::Name(s.into()))
}

/// Validated user names.
pub fn names(list: &[&str]) -> Result<Vec<UserName>, KitError> {
    list.iter().map(|s| name(s)).collect()
}
