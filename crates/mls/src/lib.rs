//! Protocol v2 of blindrelay: MLS (RFC 9420), sans I/O.
//!
//! This crate owns what makes a group secure, and nothing that touches a
//! socket:
//!
//! * [`device`]: one device's MLS client ([`Device`]) around mls-rs and
//!   mls-rs-crypto-awslc: the ciphersuite, KeyPackages, groups, commits
//!   waiting for the relay's order, Welcome, encryption, and the rules
//!   (no out-of-order keys, re-checked credentials, local time).
//! * [`credential`]: the identity provider every member runs:
//!   mls-rs-identity-x509 over `blindrelay_e2e::VerifiedDevice` (chain to
//!   the organisation's CA, validity, key usage, CN and device URI, CRL).
//! * [`storage`]: mls-rs's storage traits on the client's own SQLite, with
//!   bounded epoch retention and `secure_delete`.
//! * [`key`]: the device key as mls-rs takes it.
//! * [`name`]: a group's name, carried inside the group.
//! * [`observer`]: the relay's check of each group's handshake against
//!   its public state (so it never orders a commit members would refuse).
//! * [`payload`]: what an application message carries (the sender's id
//!   and time, then v1's content layout), strictly decoded.
//! * [`types`]: what a device hands its caller (members, commits waiting
//!   for the relay, what a received message turned out to be).
//!
//! MLS itself, and every primitive, is mls-rs's and aws-lc's; nothing here
//! implements cryptography.
#![forbid(unsafe_code)]

pub mod credential;
pub mod device;
pub mod error;
pub mod key;
pub mod name;
pub mod observer;
pub mod payload;
pub mod rules;
pub mod storage;
pub mod types;

pub use credential::{CredentialError, Trust};
pub use device::{CIPHER_SUITE, Device, MAX_PLAINTEXT, PQ_CIPHER_SUITE, Position, suite_for};
pub use error::MlsError;
pub use key::DeviceKey;
pub use name::{GroupName, NameError};
pub use observer::{Checked, ObserveError, Observer, Published};
pub use payload::{MAX_PAYLOAD_LEN, Payload, PayloadError};
pub use storage::{Held, MAX_EPOCH_RETENTION, MlsStore, StorageError};
pub use types::{Member, Outgoing, Received};
