//! The blindrelay client library.
//!
//! It trusts the CA and nothing else: every certificate the relay hands out
//! is verified locally and pinned on first use; every message is sealed
//! end to end ([`blindrelay_e2e`]) and every received message is verified,
//! checked for freshness and replay, and decrypted before the user sees it.
//!
//! * [`core`]: the protocol logic without I/O ([`ClientCore`]), one module
//!   per concern: peers and trust, sending and its window, the receive
//!   pipeline, receipts.
//! * [`store`]: what the client remembers (pins, replay cache, outbox,
//!   history), behind the [`ClientStore`] trait: SQLite on disk, or memory.
//! * [`connection`]: the tokio task that moves the core's bytes and ticks
//!   its timers over mutual TLS, reconnecting by itself.
//! * [`handle`]: the [`ClientHandle`] a user interface talks to; `perform`
//!   carries its commands out on the core, connected or not.
//! * [`policy`]: the windows that protect the user (how late a message may
//!   be, how long the replay cache and the outbox keep their entries): the
//!   client's own, never the relay's.
//! * [`event`]: what the user interface shows; [`error`]: what can fail.
#![forbid(unsafe_code)]

mod backoff;
pub mod config;
pub mod connection;
pub mod core;
mod crl_file;
mod dial;
pub mod error;
pub mod event;
pub mod handle;
mod perform;
pub mod policy;
pub mod store;
pub mod v2;

pub use config::ClientConfig;
pub use connection::connect;
pub use core::peers::PeerInfo;
pub use core::{ClientCore, CrlSource, Queued};
pub use error::ClientError;
pub use event::{Event, UndeliveredReason};
pub use handle::{ClientHandle, MAX_TAG_LEN};
pub use policy::Policy;
pub use store::{ClientStore, HistoryEntry};
