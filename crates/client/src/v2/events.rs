//! What a device tells its user about its groups: [`V2Event`].

use blindrelay_ds::RefusalCode;
use blindrelay_wire::MessageId;

/// Something that happened in a group, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Event {
    /// A message (shown once per sender and id: a copy sent again after
    /// a lost answer is not shown again).
    Message {
        /// The group.
        group: Vec<u8>,
        /// The sending person and device, as MLS verified them.
        from: (String, String),
        /// The sender's id of the message.
        id: MessageId,
        /// When the sender wrote it, Unix ms (the sender's clock).
        written_ms: u64,
        /// It arrived later than the client's live window after it was
        /// written (sent from an outbox, or held up).
        late: bool,
        /// The text.
        text: String,
    },
    /// The relay has a message of this device's outbox in the mailbox of
    /// every device of the group.
    Sent {
        /// The group.
        group: Vec<u8>,
        /// The message.
        id: MessageId,
    },
    /// A member's device confirmed, end to end, that it has shown these
    /// messages of this device (a receipt MLS authenticated).
    Delivered {
        /// The group.
        group: Vec<u8>,
        /// The messages.
        ids: Vec<MessageId>,
        /// The person and device that confirmed them.
        by: (String, String),
    },
    /// A message of this device's outbox will never be sent: it left the
    /// outbox.
    Undelivered {
        /// The group.
        group: Vec<u8>,
        /// The message.
        id: MessageId,
        /// Why.
        why: Undelivered,
    },
    /// This device joined a group.
    Joined {
        /// The group.
        group: Vec<u8>,
    },
    /// A member's commit changed the group.
    Changed {
        /// The group.
        group: Vec<u8>,
        /// Who committed.
        by: (String, String),
        /// Devices added.
        added: Vec<(String, String)>,
        /// Devices removed.
        removed: Vec<(String, String)>,
        /// The new name, if renamed.
        renamed: Option<String>,
    },
    /// This device was removed from a group.
    RemovedMe {
        /// The group.
        group: Vec<u8>,
    },
    /// A mailbox item MLS refused (a replay, a forgery, a commit that
    /// does not apply): nothing was read from it.
    Refused {
        /// The group the relay said it was for (informative only).
        group: Vec<u8>,
    },
    /// A message from an epoch this device has not reached: a commit
    /// before it is missing (withheld or reordered by the relay). The
    /// message is held and read once the commit arrives; until then this
    /// device sends nothing in the group. Said once per newest epoch seen.
    Behind {
        /// The group (from the MLS message).
        group: Vec<u8>,
        /// The group's epoch on this device.
        at: u64,
        /// The newest epoch a held message comes from.
        seen: u64,
    },
    /// The missing commits arrived: the group is no longer behind.
    CaughtUp {
        /// The group.
        group: Vec<u8>,
        /// Its epoch now.
        at: u64,
    },
    /// A message of this device's epoch came from another history of the
    /// group: the relay showed members different commits for one epoch (a
    /// fork), or forged the tag of a message nobody here can read. The
    /// message was not read; compare safety numbers with its members.
    Forked {
        /// The group (from the MLS message).
        group: Vec<u8>,
        /// The epoch.
        epoch: u64,
    },
    /// A commit the relay ordered for this device's epoch passes every
    /// check the relay makes and is signed by `by`, yet cannot be applied:
    /// its author made a change only it can apply, and the group is stuck
    /// for everyone else. Make the group again without that person
    /// ([`Member::recreate`]).
    BadCommit {
        /// The group (from the MLS message).
        group: Vec<u8>,
        /// The group's epoch on this device.
        epoch: u64,
        /// The person and device whose signature is on the commit.
        by: (String, String),
    },
    /// A Welcome for a group this device already holds was refused: it
    /// would have replaced the group's members with whoever its author
    /// chose (a takeover attempt by a member of another group, or the
    /// relay). The group stays as it was.
    TakeoverRefused {
        /// The group the Welcome was filed under (informative only).
        group: Vec<u8>,
    },
    /// This device was cut off from a commit for good (a gap that did
    /// not fill within [`crate::v2::rejoin::REJOIN_AFTER`]) and put itself
    /// back in the group by an external commit, from the GroupInfo a
    /// member published. Messages of the epochs it skipped cannot be read.
    Rejoined {
        /// The group.
        group: Vec<u8>,
        /// Its epoch now.
        at: u64,
        /// Held messages of the skipped epochs, dropped unread.
        unread: usize,
    },
    /// This device is behind in a group and cannot re-join yet; it tries
    /// again later. Until then it reads and sends nothing there.
    RejoinBlocked {
        /// The group.
        group: Vec<u8>,
        /// Why.
        why: RejoinBlocked,
    },
    /// Another member re-joined by an external commit in place of its own
    /// leaf (it had been cut off from a commit).
    MemberRejoined {
        /// The group.
        group: Vec<u8>,
        /// The person and device.
        who: (String, String),
    },
}

/// Why a message of the outbox was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// This device is no longer in the group.
    NotInGroup,
    /// The relay refused it for good (too large, not a member ...).
    Refused(RefusalCode),
    /// Not sent within the client's maximum age (`max_age_ms`).
    TooOld,
}

impl Undelivered {
    /// What it means, for a person.
    pub fn describe(self) -> String {
        match self {
            Self::NotInGroup => "this device is no longer in the group".into(),
            Self::Refused(c) => format!("the relay refused it: {}", c.describe()),
            Self::TooOld => "not sent within the maximum age of a message".into(),
        }
    }

    /// A short name, for programs (`chat --json`).
    pub fn code(self) -> &'static str {
        match self {
            Self::NotInGroup => "not_in_group",
            Self::Refused(_) => "refused",
            Self::TooOld => "too_old",
        }
    }
}

/// Why a device behind in a group cannot re-join yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejoinBlocked {
    /// No member has published the group's current state since its last
    /// commit: the next commit (by any member) publishes it.
    NotPublished,
    /// The group's newest state no longer lists this device: it was
    /// probably removed (ask a member to add it again).
    NotListed,
    /// What the relay handed out does not verify, or is not from a member
    /// of the group as this device knows it; or the relay refused the
    /// re-join.
    Refused,
}

impl RejoinBlocked {
    /// What it means, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotPublished => "no member has published the group's current state yet",
            Self::NotListed => {
                "the group's newest state no longer lists this device: ask a member to add it again"
            }
            Self::Refused => {
                "what the relay handed out does not verify, or the relay refused the re-join"
            }
        }
    }
}
