//! What a device hands its caller: members, commits waiting for the
//! relay's order, and what a message from the network turned out to be.

use crate::name::GroupName;

/// A member of a group: one device of one person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// The person (the certificate's CN).
    pub user: String,
    /// The device (the certificate's device URI).
    pub device: String,
    /// The member's leaf index: stable while it stays in the group.
    pub index: u32,
}

/// A commit this device made, waiting for the relay to order it.
pub struct Outgoing {
    /// The group.
    pub group_id: Vec<u8>,
    /// The epoch the commit applies to (the relay accepts it only if that
    /// is still the group's epoch).
    pub epoch: u64,
    /// The commit (a PublicMessage), for every member.
    pub commit: Vec<u8>,
    /// For a group's first commit (epoch 0), the group's public state
    /// before it (a GroupInfo with the tree): the relay checks the commit
    /// against it, and every later commit against the state before it.
    pub group_info: Option<Vec<u8>>,
    /// The Welcome, for the devices it adds.
    pub welcome: Option<Vec<u8>>,
    /// The members it removes: those asked for, and those whose
    /// certificate no longer passes (removed unasked).
    pub removed: Vec<Member>,
}

/// What a message from the network turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An application message, decrypted.
    Message {
        /// The group.
        group_id: Vec<u8>,
        /// Who sent it (verified just now).
        sender: Member,
        /// The plaintext.
        body: Vec<u8>,
    },
    /// A commit of another member, applied.
    Commit {
        /// The group.
        group_id: Vec<u8>,
        /// The new epoch.
        epoch: u64,
        /// Who committed.
        committer: Member,
        /// Devices that joined.
        added: Vec<Member>,
        /// Devices that left or were removed.
        removed: Vec<Member>,
        /// This device was removed: the group is gone from it.
        removed_me: bool,
        /// The group's new name, if the commit renamed it.
        renamed: Option<GroupName>,
        /// The committer re-joined by an external commit in place of its
        /// own leaf (it had been cut off from a commit): it is neither in
        /// `added` nor in `removed`.
        rejoined: bool,
    },
    /// A member asks to leave (a proposal to remove its own device). Any
    /// member's next commit carries it out; until then nobody in the group
    /// can send (RFC 9420), so the receiving client should commit at once
    /// ([`crate::Device::update`]).
    LeaveRequest {
        /// The group.
        group_id: Vec<u8>,
        /// The device that asks to go.
        member: Member,
    },
}
