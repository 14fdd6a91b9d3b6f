//! Protocol v2 on the client: a device in MLS groups through the relay as
//! Delivery Service.
//!
//! * [`link`]: the connection (device certificate, DS_UP / DS_DOWN
//!   chunks, requests matched to answers, mailbox items buffered);
//! * [`member`]: the device's MLS state driven by the relay's order:
//!   mailbox processing with acknowledgements, KeyPackage refill, the
//!   periodic work; `intake`, each mailbox item processed, held while
//!   its epoch is ahead, acknowledged after its events; `key_packages`,
//!   uploading and claiming them, checked; `commit`, commits with rebase and retry and the
//!   settling of a lost answer; `crl`, which CRL is taken from the relay;
//!   [`rejoin`], publishing each epoch's GroupInfo and re-joining a group
//!   whose missing commit never comes; `events`, what the user is told;
//!   `outbox`, what the user wrote, kept on disk until the relay has it,
//!   and what members sent, read once per id into the history;
//!   `receipts`, which device confirmed which message, end to end;
//! * [`groups`]: what a person does with groups (create, add, remove,
//!   leave, rename, send, self-update, a person's new devices added to
//!   their groups, per-device safety numbers).
//!
//! A user directory whose certificate names a device speaks v2; one with
//! an RSA user certificate keeps protocol v1 ([`crate::connect`]).

mod commit;
mod crl;
mod events;
pub mod groups;
mod intake;
mod key_packages;
pub mod link;
pub mod member;
mod outbox;
mod owed;
mod pace;
mod receipts;
pub mod rejoin;

pub use events::{RejoinBlocked, Undelivered, V2Event};
pub use groups::GroupInfo;
pub use link::Link;
pub use member::Member;

/// Whether the certificate file of `cfg` names a device (protocol v2).
pub fn is_device(cfg: &crate::ClientConfig) -> Result<bool, crate::ClientError> {
    let cert = blindrelay_pki::store::read_cert_der(&cfg.cert)?;
    Ok(blindrelay_pki::device_from_cert(&cert)?.is_some())
}
