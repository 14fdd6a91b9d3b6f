//! What the client reports to its user interface.

use blindrelay_wire::{GoodbyeCode, MessageId, UserName};

/// Why a recipient did not get a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndeliveredReason {
    /// Known to the relay, not connected.
    Offline,
    /// Never seen by the relay.
    Unknown,
    /// The recipient's mailbox on the relay is full.
    QuotaExceeded,
}

/// Something the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Logged in; the directory is complete.
    Connected {
        /// The identity the relay bound us to.
        identity: UserName,
        /// Verified users online.
        online: Vec<UserName>,
    },
    /// A user came online (or was listed) and their certificate verified.
    Joined {
        /// Who.
        name: UserName,
        /// SHA-256 of their certificate, hex.
        fingerprint: String,
        /// First time we see this user: their key was pinned now.
        first_contact: bool,
    },
    /// A user's last session ended.
    Left {
        /// Who.
        name: UserName,
    },
    /// A verified, decrypted message.
    Message {
        /// Message id, hex.
        msg_id: MessageId,
        /// The authenticated sender.
        from: UserName,
        /// Every recipient (authenticated).
        recipients: Vec<UserName>,
        /// Sent to everyone online.
        room: bool,
        /// When the sender wrote it (signed), Unix ms.
        timestamp_ms: u64,
        /// It arrived later than the live window: show its date.
        late: bool,
        /// The text.
        text: String,
    },
    /// A message we wrote is in the outbox; it leaves now, or (`waiting`)
    /// once its recipients' keys are known, or after the next login.
    /// Comes before every other event about the message.
    Queued {
        /// Its id.
        msg_id: MessageId,
        /// Recipients.
        to: Vec<UserName>,
        /// Sent to everyone online.
        room: bool,
        /// The user interface's own label for the request, returned as given.
        tag: Option<String>,
        /// Recipients without a verified key yet: the message waits for
        /// their certificate (they have never logged in to the relay).
        waiting: Vec<UserName>,
        /// The text.
        text: String,
    },
    /// The relay accepted a message we sent.
    Sent {
        /// Which.
        msg_id: MessageId,
        /// Sessions it was forwarded to.
        delivered: u16,
    },
    /// The relay committed a message we sent to its store: it will reach
    /// its recipients even if they are offline now.
    Stored {
        /// Which.
        msg_id: MessageId,
        /// Recipients it was stored for.
        recipients: u16,
    },
    /// A recipient confirmed, end to end, that they received these messages.
    Delivered {
        /// Which.
        msg_ids: Vec<MessageId>,
        /// Who confirmed.
        by: UserName,
    },
    /// The connection dropped; the client reconnects by itself.
    Reconnecting {
        /// Why it dropped.
        reason: String,
        /// Delay before the next attempt.
        in_ms: u64,
    },
    /// A recipient did not get a message we sent.
    Undelivered {
        /// Which message.
        msg_id: MessageId,
        /// Which recipient.
        name: UserName,
        /// Why.
        reason: UndeliveredReason,
    },
    /// A user's certificate differs from the pinned one. Their messages are
    /// refused and nothing is sent to them until the user accepts the new key.
    KeyChanged {
        /// Who.
        name: UserName,
        /// Pinned fingerprint.
        pinned: String,
        /// Offered fingerprint.
        offered: String,
    },
    /// A rejected message, a refused certificate, a protocol oddity. Never
    /// message content.
    Warning(String),
    /// The connection ended.
    Closed {
        /// The relay's goodbye code, if it sent one.
        code: Option<GoodbyeCode>,
        /// Why.
        reason: String,
    },
}
