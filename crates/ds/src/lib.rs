//! The relay's part in protocol v2: an MLS Delivery Service, sans I/O.
//!
//! The relay cannot read MLS messages and does not try: it learns group
//! ids, epochs and sizes (PROTOCOL.md section 11.4) and decides only what
//! a Delivery Service must (RFC 9420 §14, RFC 9750):
//!
//! * [`directory`]: each device's KeyPackages: a batch of one-time ones and
//!   one last-resort one; a claim for a person returns one per device and
//!   consumes the one-time ones.
//! * [`groups`]: one order per group. A commit is accepted only for the
//!   group's current epoch (the first wins, later ones are told the
//!   current epoch, rebase and retry), and every member gets the group's
//!   messages in that one order, each in its device's mailbox.
//! * [`mailbox`]: per-device queues with sequence numbers, acknowledged by
//!   the device, bounded; they point at bodies the I/O layer stores, one
//!   copy per body ([`kept`] is an in-memory store for tests and tools).
//! * [`proto`]: the v2 requests and answers between a device and the
//!   relay, with strict decoders (they travel in DS_UP / DS_DOWN chunks).
//!
//! Nothing here is a security decision of a client: members check every
//! commit, Welcome and message themselves (crate `blindrelay-mls`). The
//! membership a submission names is, at the relay, read from the group's
//! verified public state (the server's check, with `blindrelay-mls`'s
//! observer) before it reaches [`Groups`]; here it serves routing only.
//! Limits are in [`Limits`]; the I/O layer owns storage, durability and
//! time.
#![forbid(unsafe_code)]

pub mod directory;
pub mod groups;
pub mod kept;
pub mod mailbox;
pub mod proto;

use std::fmt;

use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;

pub use directory::{Claimed, Directory};
pub use groups::{Forgotten, Groups, Submission, Verdict};
pub use kept::Kept;
pub use mailbox::{Appended, BodyId, Delivery, Mailboxes};
pub use proto::{Down, Refusal, RefusalCode, Request};

/// One device of one person, as the relay knows it: from the CN and the
/// device URI of the certificate its TLS session presented.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId {
    /// The person.
    pub user: UserName,
    /// The device.
    pub device: DeviceName,
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.device)
    }
}

/// Every bound a peer could otherwise push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One-time KeyPackages held per device.
    pub key_packages_per_device: usize,
    /// One-time KeyPackages of one device that one claimer may take
    /// between two uploads of that device; past it the claimer gets the
    /// device's last-resort KeyPackage (KeyPackage draining).
    pub one_time_claims_per_claimer: usize,
    /// One-time KeyPackages the devices of one person together may take
    /// of all devices per hour ([`directory::CLAIM_PERIOD_SECS`]); past
    /// it, they get last-resort ones, which still add the device. No
    /// claimer can drain everyone's one-time KeyPackages by spreading its
    /// claims, or by enrolling more devices.
    pub one_time_claims_per_hour: usize,
    /// Largest KeyPackage, bytes (an X-Wing one is about 2.7 KiB).
    pub key_package_bytes: usize,
    /// Devices in one group.
    pub members_per_group: usize,
    /// Groups the relay orders.
    pub groups: usize,
    /// Groups one device may have created that still exist: no device can
    /// use up the relay's [`Limits::groups`] for everyone.
    pub groups_per_device: usize,
    /// Groups the devices of one person together may have created that
    /// still exist: enrolling more devices does not multiply what one
    /// person may take of [`Limits::groups`].
    pub groups_per_person: usize,
    /// Groups one device may be a member of: a commit that would add a
    /// device past it is refused (a bound on what the relay keeps per
    /// device; above `groups_per_person`, so no one person can fill it).
    pub groups_per_member: usize,
    /// Messages waiting in one device's mailbox.
    pub mailbox_messages: usize,
    /// Bytes waiting in one device's mailbox.
    pub mailbox_bytes: usize,
    /// Bytes of all bodies waiting together, each body once however many
    /// devices it goes to (they are in the relay's database, not its
    /// memory).
    pub total_mailbox_bytes: usize,
    /// Largest MLS message or Welcome, bytes (a Welcome into a group of
    /// 1 000 P-256 devices is about 880 KiB).
    pub message_bytes: usize,
    /// One person may fill at most 1/this of any one recipient's mailbox
    /// (items and bytes), so that nobody can fill another's mailbox and
    /// cut everyone else off from them.
    pub sender_share_divisor: usize,
    /// Bytes one device may have waiting in all mailboxes together (its
    /// own bodies, each once, whoever they are for).
    pub queued_bytes_per_sender: usize,
    /// Bytes the devices of one person together may have waiting in all
    /// mailboxes (each body once): more devices do not multiply a
    /// person's share of [`Limits::total_mailbox_bytes`].
    pub queued_bytes_per_person: usize,
    /// How long an item waits for its device before it expires, seconds.
    pub mailbox_ttl_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            key_packages_per_device: 200,
            one_time_claims_per_claimer: 10,
            one_time_claims_per_hour: 500,
            key_package_bytes: 8 * 1024,
            members_per_group: 2_000,
            groups: 100_000,
            groups_per_device: 1_000,
            groups_per_person: 2_000,
            groups_per_member: 5_000,
            mailbox_messages: 10_000,
            mailbox_bytes: 64 * 1024 * 1024,
            total_mailbox_bytes: 1024 * 1024 * 1024,
            message_bytes: 2 * 1024 * 1024,
            sender_share_divisor: 4,
            queued_bytes_per_sender: 256 * 1024 * 1024,
            queued_bytes_per_person: 256 * 1024 * 1024,
            mailbox_ttl_secs: 14 * 24 * 3600,
        }
    }
}

/// What the Delivery Service refuses, and why. Every refusal leaves its
/// state as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsError {
    /// A KeyPackage or message is larger than its limit.
    #[error("too large")]
    TooLarge,
    /// A device would hold more KeyPackages than allowed.
    #[error("too many KeyPackages for one device")]
    TooManyKeyPackages,
    /// The group does not exist (and this is not its first commit).
    #[error("no such group")]
    UnknownGroup,
    /// The sender is not a member of the group, as far as the relay knows.
    #[error("not a member of this group")]
    NotAMember,
    /// A commit for an epoch that is not the group's current one: another
    /// commit won; process it and commit again.
    #[error("stale epoch: the group is at epoch {current}")]
    StaleEpoch {
        /// The group's current epoch.
        current: u64,
    },
    /// The membership a commit announces does not fit: empty, without the
    /// committer, too large, or a Welcome for devices that are not new.
    #[error("the announced membership does not fit the commit")]
    Membership,
    /// Too many groups, or a recipient's mailbox is full: nothing was
    /// delivered to anyone.
    #[error("over capacity: {0}")]
    Capacity(&'static str),
    /// A commit or proposal that does not verify against the group's
    /// public state (or for a group the relay has none for), or a message
    /// that is not an application `PrivateMessage` of its group and epoch:
    /// ordering it could leave members unable to follow the group.
    #[error("it does not verify against the group's public state")]
    Unverified,
    /// No member has published a GroupInfo for the group's current epoch
    /// (see [`Request::GroupInfo`]): ask again after the next commit.
    #[error("no GroupInfo of the group's current epoch is published")]
    NoGroupInfo,
}
