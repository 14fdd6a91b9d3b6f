//! What the client remembers, behind one small trait.
//!
//! [`ClientStore`] is everything the protocol core ever asks of its
//! database: the pinned certificate of each peer (trust on first use), the
//! replay cache, the outbox (messages not yet confirmed stored by the
//! relay, and who confirmed delivery end to end), and the local history.
//! The core reaches its state only through this trait, so it does no I/O
//! itself and its unit tests run on [`memory::MemoryStore`];
//! [`sqlite::SqliteStore`] is what a real client keeps on disk. (The
//! relay's `MessageStore` trait is the model.)
//!
//! Both implementations bound what they keep: replay entries by age (the
//! core prunes them at its policy's horizon) and per sender (the core
//! refuses a sender at its policy's `max_seen_per_sender`, so the table
//! holds at most that many per known peer); [`MAX_OUTBOX_ENTRIES`]
//! confirmed outbox rows; [`MAX_HISTORY_ENTRIES`] history lines;
//! [`MAX_WINDOW_ENTRIES`] of the send window's acceptances read back.

pub mod memory;
mod migrate;
pub mod sqlite;

use blindrelay_wire::{MessageId, UserName};

/// Most confirmed outgoing messages remembered (for delivery receipts).
pub const MAX_OUTBOX_ENTRIES: u64 = 10_000;
/// Most messages waiting in the outbox for the relay (written, not yet
/// confirmed). Past it a client takes no new message (the cores refuse
/// with [`crate::ClientError::OutboxFull`]) and `chat --json` reads no
/// further command until the relay has taken some: a script is slowed
/// down, the outbox does not grow without limit, and nothing handed over
/// is dropped.
pub const MAX_OUTBOX_WAITING: u64 = 1_000;
/// Most history entries kept.
pub const MAX_HISTORY_ENTRIES: u64 = 10_000;
/// Most acceptances of the send window read back at a start (the relay's
/// `rate_max` is a `u16`).
pub const MAX_WINDOW_ENTRIES: usize = u16::MAX as usize;

/// The store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file or its directory cannot be opened.
    #[error("{path}: {error}")]
    Open {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What failed.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process has this database open (a chat, or a `send`).
    #[error(
        "{path} is in use by another blindrelay client of this user (a chat or a send still running); one state file has one owner at a time"
    )]
    InUse {
        /// The database.
        path: std::path::PathBuf,
    },
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// An outgoing message, as the outbox keeps it until the relay stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its id (kept across resends).
    pub msg_id: MessageId,
    /// Recipients.
    pub recipients: Vec<UserName>,
    /// The text.
    pub text: String,
    /// Room message.
    pub room: bool,
    /// First attempt, Unix ms.
    pub created_ms: u64,
    /// The MLS group it goes to (protocol v2, where `recipients` is
    /// empty: the group's members are the recipients); `None` in v1.
    pub group: Option<Vec<u8>>,
}

/// One line of local history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Message id.
    pub msg_id: MessageId,
    /// Sender's timestamp.
    pub ts_ms: u64,
    /// Sent by us.
    pub outgoing: bool,
    /// The other side: sender, or comma-separated recipients.
    pub peer: String,
    /// Room message.
    pub room: bool,
    /// The text.
    pub text: String,
    /// The MLS group (protocol v2; `peer` is then the sending person and
    /// device, or empty for this device's own messages); `None` in v1.
    pub group: Option<Vec<u8>>,
}

/// What the pin store says about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// First time this name is seen: now pinned.
    FirstUse,
    /// Same certificate as pinned.
    Match,
    /// A different certificate than the pinned one.
    Changed {
        /// Fingerprint pinned before.
        pinned: [u8; 32],
    },
}

/// Everything the client core keeps between runs.
pub trait ClientStore: Send {
    /// Checks `fingerprint` against the pin for `name`, pinning on first use.
    fn check_pin(
        &mut self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<PinCheck, StoreError>;
    /// Pins (or re-pins, after the user accepted a change) a certificate.
    fn pin(
        &mut self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// True if this (sender, id) was already accepted.
    fn seen(&self, sender: &UserName, id: &MessageId) -> Result<bool, StoreError>;
    /// Records an accepted message. False if it was already there (replay).
    fn record_seen(
        &mut self,
        sender: &UserName,
        id: &MessageId,
        ts_ms: u64,
    ) -> Result<bool, StoreError>;
    /// `sender`'s replay entries with a timestamp at or after `horizon_ms`.
    fn seen_count(&self, sender: &UserName, horizon_ms: u64) -> Result<u64, StoreError>;
    /// Drops replay entries with a timestamp before `horizon_ms`.
    fn prune_seen(&mut self, horizon_ms: u64) -> Result<(), StoreError>;

    /// Records an outgoing message before it is sent.
    fn outbox_add(&mut self, m: &Outgoing) -> Result<(), StoreError>;
    /// Marks an outgoing message as durably stored by the relay; false if it
    /// was not waiting.
    fn outbox_stored(&mut self, id: &MessageId) -> Result<bool, StoreError>;
    /// Records that `by` confirmed (end to end) receiving `id`. False if
    /// `id` is not ours to `by`, or already confirmed.
    fn outbox_delivered(&mut self, id: &MessageId, by: &UserName) -> Result<bool, StoreError>;
    /// Drops a message the relay will never take (refused for good), so
    /// that it is not sent again; false if it was not waiting.
    fn outbox_give_up(&mut self, id: &MessageId) -> Result<bool, StoreError>;
    /// The MLS group of outbox message `id` (sent or waiting; `None`: not
    /// in the outbox, or protocol v1).
    fn outbox_group(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError>;
    /// How many outgoing messages the relay has not confirmed yet.
    fn outbox_waiting(&self) -> Result<u64, StoreError>;
    /// Outgoing messages the relay has not confirmed as stored, oldest first.
    fn outbox_unconfirmed(&self) -> Result<Vec<Outgoing>, StoreError>;
    /// Drops outbox rows created before `before_ms` and keeps at most
    /// [`MAX_OUTBOX_ENTRIES`] confirmed ones; returns the dropped rows the
    /// relay never confirmed.
    fn prune_outbox(&mut self, before_ms: u64) -> Result<Vec<Outgoing>, StoreError>;

    /// Appends to the local conversation history (bounded).
    fn history_add(&mut self, h: &HistoryEntry) -> Result<(), StoreError>;
    /// The last `n` history entries, oldest first.
    fn history_recent(&self, n: usize) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Records that the relay accepted one of our messages at `at_ms`
    /// (wall clock), forgetting those before `forget_before_ms`: the send
    /// window's memory across restarts, since the relay's rate window is
    /// the identity's and outlives this process.
    fn window_add(&mut self, at_ms: u64, forget_before_ms: u64) -> Result<(), StoreError>;
    /// The acceptances recorded at or after `since_ms`, oldest first (at
    /// most [`MAX_WINDOW_ENTRIES`]).
    fn window_since(&self, since_ms: u64) -> Result<Vec<u64>, StoreError>;

    /// The newest CRL the client accepted (DER), kept so that an older one
    /// is never taken after a restart.
    fn crl(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keeps `der` as the newest CRL (the caller checked it may replace
    /// the one kept).
    fn set_crl(&mut self, der: &[u8]) -> Result<(), StoreError>;
}

/// Runs the same checks against any [`ClientStore`]: both implementations
/// must behave alike.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    fn n(s: &str) -> UserName {
        UserName::new(s).unwrap()
    }

    pub(crate) fn pins_and_replays(s: &mut dyn ClientStore) {
        let bob = n("bob");
        let id = MessageId([3; 16]);
        assert_eq!(
            s.check_pin(&bob, &[1; 32], b"c1", 0).unwrap(),
            PinCheck::FirstUse
        );
        assert_eq!(
            s.check_pin(&bob, &[1; 32], b"c1", 0).unwrap(),
            PinCheck::Match
        );
        assert_eq!(
            s.check_pin(&bob, &[2; 32], b"c2", 0).unwrap(),
            PinCheck::Changed { pinned: [1; 32] }
        );
        s.pin(&bob, &[2; 32], b"c2", 0).unwrap();
        assert_eq!(
            s.check_pin(&bob, &[2; 32], b"c2", 0).unwrap(),
            PinCheck::Match
        );
        assert!(s.record_seen(&bob, &id, 1000).unwrap());
        assert_eq!(s.crl().unwrap(), None);
        s.set_crl(b"first").unwrap();
        s.set_crl(b"second").unwrap();
        assert_eq!(s.crl().unwrap().as_deref(), Some(&b"second"[..]));
        assert!(!s.record_seen(&bob, &id, 1000).unwrap());
        assert!(s.seen(&bob, &id).unwrap());
        assert!(!s.seen(&n("carol"), &id).unwrap());
        assert!(
            s.record_seen(&n("carol"), &MessageId([4; 16]), 3000)
                .unwrap()
        );
        assert_eq!(s.seen_count(&bob, 1000).unwrap(), 1);
        assert_eq!(s.seen_count(&bob, 1001).unwrap(), 0);
        assert_eq!(s.seen_count(&n("carol"), 0).unwrap(), 1);
        s.prune_seen(2000).unwrap();
        assert!(!s.seen(&bob, &id).unwrap());
        assert!(s.seen(&n("carol"), &MessageId([4; 16])).unwrap());
    }

    pub(crate) fn outbox_and_history(s: &mut dyn ClientStore) {
        let (bob, carol) = (n("bob"), n("carol"));
        let m = Outgoing {
            msg_id: MessageId([1; 16]),
            recipients: vec![bob.clone(), carol.clone()],
            text: "hi".into(),
            room: false,
            created_ms: 5,
            group: None,
        };
        s.outbox_add(&m).unwrap();
        assert_eq!(s.outbox_unconfirmed().unwrap(), vec![m.clone()]);
        assert_eq!(s.outbox_waiting().unwrap(), 1);
        assert!(s.outbox_stored(&m.msg_id).unwrap());
        assert!(!s.outbox_stored(&m.msg_id).unwrap());
        assert!(s.outbox_unconfirmed().unwrap().is_empty());
        assert_eq!(s.outbox_waiting().unwrap(), 0);
        // Receipts count once per recipient, and only from recipients.
        assert!(s.outbox_delivered(&m.msg_id, &bob).unwrap());
        assert!(!s.outbox_delivered(&m.msg_id, &bob).unwrap());
        assert!(!s.outbox_delivered(&m.msg_id, &n("mallory")).unwrap());
        assert!(s.outbox_delivered(&m.msg_id, &carol).unwrap());
        let unsent = Outgoing {
            msg_id: MessageId([2; 16]),
            created_ms: 4,
            ..m.clone()
        };
        s.outbox_add(&unsent).unwrap();
        // Only the row the relay never confirmed is reported as dropped.
        assert_eq!(s.prune_outbox(6).unwrap(), vec![unsent]);
        assert!(!s.outbox_delivered(&m.msg_id, &carol).unwrap());
        assert!(s.outbox_unconfirmed().unwrap().is_empty());
        // A v2 message keeps its group; one given up is not sent again.
        let to_group = Outgoing {
            msg_id: MessageId([9; 16]),
            recipients: Vec::new(),
            created_ms: 7,
            group: Some(vec![1, 2, 3]),
            ..m.clone()
        };
        s.outbox_add(&to_group).unwrap();
        assert_eq!(s.outbox_unconfirmed().unwrap(), vec![to_group.clone()]);
        assert_eq!(
            s.outbox_group(&to_group.msg_id).unwrap(),
            Some(vec![1, 2, 3])
        );
        assert_eq!(s.outbox_group(&m.msg_id).unwrap(), None);
        assert_eq!(s.outbox_group(&MessageId([0x55; 16])).unwrap(), None);
        assert!(s.outbox_give_up(&to_group.msg_id).unwrap());
        assert!(!s.outbox_give_up(&to_group.msg_id).unwrap());
        assert!(s.outbox_unconfirmed().unwrap().is_empty());
        for i in 0..30u8 {
            s.history_add(&HistoryEntry {
                msg_id: MessageId([i; 16]),
                ts_ms: u64::from(i),
                outgoing: i % 2 == 0,
                peer: "bob".into(),
                room: false,
                text: format!("line {i}"),
                group: (i == 29).then(|| vec![4; 32]),
            })
            .unwrap();
        }
        let recent = s.history_recent(20).unwrap();
        assert_eq!(recent.len(), 20);
        assert_eq!(recent.first().unwrap().text, "line 10");
        assert_eq!(recent.last().unwrap().text, "line 29");
        assert_eq!(recent.last().unwrap().group, Some(vec![4; 32]));
        assert_eq!(recent.first().unwrap().group, None);
    }

    /// Messages written in one millisecond leave in the order they were
    /// written.
    pub(crate) fn same_millisecond_order(s: &mut dyn ClientStore) {
        let ids: Vec<u8> = vec![9, 3, 7, 1, 5];
        for i in &ids {
            s.outbox_add(&Outgoing {
                msg_id: MessageId([*i; 16]),
                recipients: Vec::new(),
                text: format!("{i}"),
                room: false,
                created_ms: 42,
                group: Some(vec![1]),
            })
            .unwrap();
        }
        let order: Vec<u8> = s
            .outbox_unconfirmed()
            .unwrap()
            .iter()
            .map(|m| m.msg_id.0[0])
            .collect();
        assert_eq!(order, ids);
    }

    pub(crate) fn send_window(s: &mut dyn ClientStore) {
        assert!(s.window_since(0).unwrap().is_empty());
        for at in [100, 200, 300] {
            s.window_add(at, 0).unwrap();
        }
        assert_eq!(s.window_since(150).unwrap(), vec![200, 300]);
        // Adding forgets what is older than the window.
        s.window_add(400, 250).unwrap();
        assert_eq!(s.window_since(0).unwrap(), vec![300, 400]);
    }
}
