//! What can fail.

use crate::credential::CredentialError;
use crate::storage::StorageError;

/// Errors of protocol v2.
///
/// Everything that goes wrong with a message from the network is
/// [`MlsError::Refused`], one error whatever the cause (a forged,
/// replayed, reordered or undecryptable message, or one from a revoked
/// device), as for version 1.
#[derive(Debug, thiserror::Error)]
pub enum MlsError {
    /// The device key is not a PKCS#8 ECDSA P-256 or Ed25519 key.
    #[error("the device key is not a usable ECDSA P-256 or Ed25519 key")]
    DeviceKey,
    /// The device key does not belong to the device certificate.
    #[error("the device key does not match the device certificate")]
    KeyMismatch,
    /// This device's own certificate fails the checks every member applies.
    #[error("this device's certificate is refused: {0}")]
    OwnCredential(#[from] CredentialError),
    /// The local database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// This device holds no group with that id.
    #[error("no such group on this device")]
    UnknownGroup,
    /// A commit of this device waits for the relay's answer.
    #[error("a commit of this device is waiting for the relay")]
    CommitPending,
    /// No commit of this device is waiting.
    #[error("no commit of this device is waiting")]
    NoPendingCommit,
    /// A KeyPackage offered for an add is unusable.
    #[error("a KeyPackage was refused")]
    KeyPackage,
    /// The named person has no device in the group.
    #[error("not a member of this group")]
    NotAMember,
    /// The application message is larger than [`crate::MAX_PLAINTEXT`].
    #[error("message too large")]
    TooLarge,
    /// A message from the network was refused (see the type's docs).
    #[error("message refused")]
    Refused,
    /// A Welcome named a group this device already holds: joining would
    /// replace the group's state (and its members) with whatever the
    /// Welcome's author chose, so it is refused and the held group stays
    /// as it was.
    #[error("a Welcome for a group this device already holds was refused")]
    GroupHeld,
    /// A message of this device's epoch that it cannot read carries the
    /// tag of another history of the group: the relay forked the group
    /// (or forged the tag of an unreadable message). See `device::fork`.
    #[error("a message from another history of the group (a fork) was refused")]
    Forked {
        /// The epoch both histories share the number of.
        epoch: u64,
    },
    /// The group has messages from an epoch this device has not reached:
    /// a commit is missing (withheld or reordered by the relay). Nothing
    /// is sent or committed in it until the gap fills.
    #[error(
        "this device is behind in the group (a commit is missing): nothing is sent until it arrives"
    )]
    Behind,
    /// A commit for this device's epoch that passes every check the relay
    /// can make, signed by `by`, could not be applied: its author made a
    /// commit only it can apply, and the group is stuck for everyone else
    /// (see `device::blame`). Nothing was changed.
    #[error("{} made a change to the group that no other member can apply", by.user)]
    BadCommit {
        /// The group's epoch on this device.
        epoch: u64,
        /// The member whose signature is on the commit.
        by: crate::types::Member,
    },
    /// A re-join was asked for a group this device is not behind in.
    #[error("this device is not behind in the group: there is nothing to re-join")]
    NotBehind,
    /// The group's newest GroupInfo does not list this device: as far as
    /// it can tell it was removed, and it does not push itself back in.
    #[error("the group's newest state no longer lists this device (it was probably removed)")]
    NotListed,
    /// This device has no key for the group's name (it joined without
    /// one), so it can neither read nor set it.
    #[error("this device has no key for the group's name")]
    NoNameKey,
    /// mls-rs refused a local operation.
    #[error("MLS operation failed: {0}")]
    Library(#[from] mls_rs::error::MlsError),
}
