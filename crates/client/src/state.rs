//! The client's local state, in SQLite: pinned peer certificates and the
//! replay cache. Survives restarts.
//!
//! The replay cache is bounded: entries older than the freshness window can
//! never be accepted again anyway (the timestamp check refuses them), so
//! they are pruned; and the table never holds more than
//! [`MAX_SEEN_ENTRIES`] rows.

use std::path::Path;

use blindrelay_wire::{MessageId, UserName};
use rusqlite::{Connection, OptionalExtension, params};

use crate::ClientError;

/// Most replay-cache rows kept.
pub const MAX_SEEN_ENTRIES: i64 = 100_000;
/// Most confirmed outgoing messages remembered (for delivery receipts).
pub const MAX_OUTBOX_ENTRIES: i64 = 10_000;
/// Most history entries kept.
pub const MAX_HISTORY_ENTRIES: i64 = 10_000;

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
}

fn join(names: &[UserName]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",")
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
        /// Fingerprint pinned before (hex).
        pinned: String,
    },
}

/// The local database.
pub struct ClientState {
    db: Connection,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ClientState {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ClientError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ClientError::State(format!("{}: {e}", parent.display())))?;
        }
        let db = Connection::open(path)
            .map_err(|e| ClientError::State(format!("{}: {e}", path.display())))?;
        Self::init(db)
    }

    /// An in-memory database (tests, one-shot tools).
    pub fn in_memory() -> Result<Self, ClientError> {
        Self::init(Connection::open_in_memory().map_err(|e| ClientError::State(e.to_string()))?)
    }

    fn init(db: Connection) -> Result<Self, ClientError> {
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS pins (
                 name TEXT PRIMARY KEY,
                 fingerprint BLOB NOT NULL,
                 cert BLOB NOT NULL,
                 pinned_at_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS seen (
                 sender TEXT NOT NULL,
                 msg_id BLOB NOT NULL,
                 ts_ms INTEGER NOT NULL,
                 PRIMARY KEY (sender, msg_id)
             );
             CREATE INDEX IF NOT EXISTS seen_ts ON seen(ts_ms);
             CREATE TABLE IF NOT EXISTS outbox (
                 msg_id BLOB PRIMARY KEY,
                 recipients TEXT NOT NULL,
                 text TEXT NOT NULL,
                 room INTEGER NOT NULL,
                 created_ms INTEGER NOT NULL,
                 state TEXT NOT NULL,
                 delivered_to TEXT NOT NULL DEFAULT ''
             );
             CREATE TABLE IF NOT EXISTS history (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 msg_id BLOB NOT NULL,
                 ts_ms INTEGER NOT NULL,
                 outgoing INTEGER NOT NULL,
                 peer TEXT NOT NULL,
                 room INTEGER NOT NULL,
                 text TEXT NOT NULL
             );",
        )
        .map_err(|e| ClientError::State(e.to_string()))?;
        Ok(Self { db })
    }

    fn err(e: rusqlite::Error) -> ClientError {
        ClientError::State(e.to_string())
    }

    /// Checks `fingerprint` against the pin for `name`, pinning on first use.
    pub fn check_pin(
        &self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<PinCheck, ClientError> {
        let pinned: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT fingerprint FROM pins WHERE name = ?1",
                params![name.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(Self::err)?;
        match pinned {
            None => {
                self.pin(name, fingerprint, cert, now_ms)?;
                Ok(PinCheck::FirstUse)
            }
            Some(p) if p.as_slice() == fingerprint => Ok(PinCheck::Match),
            Some(p) => Ok(PinCheck::Changed { pinned: hex(&p) }),
        }
    }

    /// Pins (or re-pins, after the user accepted a change) a certificate.
    pub fn pin(
        &self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<(), ClientError> {
        self.db
            .execute(
                "INSERT INTO pins (name, fingerprint, cert, pinned_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET fingerprint = ?2, cert = ?3, pinned_at_ms = ?4",
                params![name.as_str(), &fingerprint[..], cert, now_ms as i64],
            )
            .map_err(Self::err)?;
        Ok(())
    }

    /// The pinned certificate of `name`, if any.
    pub fn pinned_cert(&self, name: &UserName) -> Result<Option<Vec<u8>>, ClientError> {
        self.db
            .query_row(
                "SELECT cert FROM pins WHERE name = ?1",
                params![name.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(Self::err)
    }

    /// True if this (sender, id) was already accepted.
    pub fn seen(&self, sender: &UserName, id: &MessageId) -> Result<bool, ClientError> {
        let n: i64 = self
            .db
            .query_row(
                "SELECT COUNT(*) FROM seen WHERE sender = ?1 AND msg_id = ?2",
                params![sender.as_str(), &id.0[..]],
                |r| r.get(0),
            )
            .map_err(Self::err)?;
        Ok(n > 0)
    }

    /// Records an accepted message. False if it was already there (replay).
    pub fn record_seen(
        &self,
        sender: &UserName,
        id: &MessageId,
        ts_ms: u64,
    ) -> Result<bool, ClientError> {
        let n = self
            .db
            .execute(
                "INSERT OR IGNORE INTO seen (sender, msg_id, ts_ms) VALUES (?1, ?2, ?3)",
                params![sender.as_str(), &id.0[..], ts_ms as i64],
            )
            .map_err(Self::err)?;
        Ok(n == 1)
    }

    /// Drops replay entries older than `horizon_ms` and keeps at most
    /// [`MAX_SEEN_ENTRIES`].
    pub fn prune_seen(&self, horizon_ms: u64) -> Result<(), ClientError> {
        self.db
            .execute(
                "DELETE FROM seen WHERE ts_ms < ?1",
                params![horizon_ms as i64],
            )
            .map_err(Self::err)?;
        self.db
            .execute(
                "DELETE FROM seen WHERE rowid IN (SELECT rowid FROM seen ORDER BY ts_ms DESC LIMIT -1 OFFSET ?1)",
                params![MAX_SEEN_ENTRIES],
            )
            .map_err(Self::err)?;
        Ok(())
    }

    /// Unexpired rows in the replay cache, to refuse new messages when the
    /// cache is full of entries that must not be evicted.
    pub fn seen_since(&self, horizon_ms: u64) -> Result<i64, ClientError> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM seen WHERE ts_ms >= ?1",
                params![horizon_ms as i64],
                |r| r.get(0),
            )
            .map_err(Self::err)
    }

    /// Records an outgoing message before it is sent.
    pub fn outbox_add(&self, m: &Outgoing) -> Result<(), ClientError> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO outbox (msg_id, recipients, text, room, created_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, 'sending')",
                params![&m.msg_id.0[..], join(&m.recipients), m.text, m.room as i64, m.created_ms as i64],
            )
            .map_err(Self::err)?;
        Ok(())
    }

    /// Marks an outgoing message as durably stored by the relay.
    pub fn outbox_stored(&self, id: &MessageId) -> Result<bool, ClientError> {
        let n = self
            .db
            .execute(
                "UPDATE outbox SET state = 'stored' WHERE msg_id = ?1 AND state != 'stored'",
                params![&id.0[..]],
            )
            .map_err(Self::err)?;
        Ok(n > 0)
    }

    /// Records that `by` confirmed (end to end) receiving `id`. Returns
    /// false if `id` is not ours to `by`, or already confirmed.
    pub fn outbox_delivered(&self, id: &MessageId, by: &UserName) -> Result<bool, ClientError> {
        let row: Option<(String, String)> = self
            .db
            .query_row(
                "SELECT recipients, delivered_to FROM outbox WHERE msg_id = ?1",
                params![&id.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Self::err)?;
        let Some((recipients, delivered)) = row else {
            return Ok(false);
        };
        if !recipients.split(',').any(|r| r == by.as_str())
            || delivered.split(',').any(|r| r == by.as_str())
        {
            return Ok(false);
        }
        let delivered = if delivered.is_empty() {
            by.to_string()
        } else {
            format!("{delivered},{by}")
        };
        self.db
            .execute(
                "UPDATE outbox SET delivered_to = ?2 WHERE msg_id = ?1",
                params![&id.0[..], delivered],
            )
            .map_err(Self::err)?;
        Ok(true)
    }

    /// Outgoing messages the relay has not confirmed as stored, oldest first.
    pub fn outbox_unconfirmed(&self) -> Result<Vec<Outgoing>, ClientError> {
        let mut q = self
            .db
            .prepare("SELECT msg_id, recipients, text, room, created_ms FROM outbox WHERE state = 'sending' ORDER BY created_ms")
            .map_err(Self::err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(Self::err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, recipients, text, room, created) = row.map_err(Self::err)?;
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
                continue;
            };
            out.push(Outgoing {
                msg_id: MessageId(id),
                recipients: recipients
                    .split(',')
                    .filter_map(|r| UserName::new(r).ok())
                    .collect(),
                text,
                room: room != 0,
                created_ms: created as u64,
            });
        }
        Ok(out)
    }

    /// The state of an outgoing message: sending, stored; and who confirmed it.
    pub fn outbox_state(
        &self,
        id: &MessageId,
    ) -> Result<Option<(String, Vec<String>)>, ClientError> {
        self.db
            .query_row(
                "SELECT state, delivered_to FROM outbox WHERE msg_id = ?1",
                params![&id.0[..]],
                |r| {
                    let d: String = r.get(1)?;
                    Ok((
                        r.get(0)?,
                        d.split(',')
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ))
                },
            )
            .optional()
            .map_err(Self::err)
    }

    /// Drops outbox rows older than `before_ms` and keeps at most
    /// [`MAX_OUTBOX_ENTRIES`] confirmed ones.
    pub fn prune_outbox(&self, before_ms: u64) -> Result<(), ClientError> {
        self.db
            .execute(
                "DELETE FROM outbox WHERE created_ms < ?1",
                params![before_ms as i64],
            )
            .map_err(Self::err)?;
        self.db
            .execute(
                "DELETE FROM outbox WHERE state = 'stored' AND msg_id IN (SELECT msg_id FROM outbox WHERE state = 'stored' ORDER BY created_ms DESC LIMIT -1 OFFSET ?1)",
                params![MAX_OUTBOX_ENTRIES],
            )
            .map_err(Self::err)?;
        Ok(())
    }

    /// Appends to the local conversation history (bounded).
    pub fn history_add(&self, h: &HistoryEntry) -> Result<(), ClientError> {
        self.db
            .execute(
                "INSERT INTO history (msg_id, ts_ms, outgoing, peer, room, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&h.msg_id.0[..], h.ts_ms as i64, h.outgoing as i64, h.peer, h.room as i64, h.text],
            )
            .map_err(Self::err)?;
        self.db
            .execute(
                "DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?1",
                params![MAX_HISTORY_ENTRIES],
            )
            .map_err(Self::err)?;
        Ok(())
    }

    /// The last `n` history entries, oldest first.
    pub fn history_recent(&self, n: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        let mut q = self
            .db
            .prepare("SELECT msg_id, ts_ms, outgoing, peer, room, text FROM history ORDER BY seq DESC LIMIT ?1")
            .map_err(Self::err)?;
        let rows = q
            .query_map(params![n as i64], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(Self::err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ts, outgoing, peer, room, text) = row.map_err(Self::err)?;
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
                continue;
            };
            out.push(HistoryEntry {
                msg_id: MessageId(id),
                ts_ms: ts as u64,
                outgoing: outgoing != 0,
                peer,
                room: room != 0,
                text,
            });
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_replays_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let bob = UserName::new("bob").unwrap();
        let id = MessageId([3; 16]);
        {
            let s = ClientState::open(&path).unwrap();
            assert_eq!(
                s.check_pin(&bob, &[1; 32], b"c1", 0).unwrap(),
                PinCheck::FirstUse
            );
            assert_eq!(
                s.check_pin(&bob, &[1; 32], b"c1", 0).unwrap(),
                PinCheck::Match
            );
            assert!(s.record_seen(&bob, &id, 1000).unwrap());
            assert!(!s.record_seen(&bob, &id, 1000).unwrap());
        }
        let s = ClientState::open(&path).unwrap();
        assert!(matches!(
            s.check_pin(&bob, &[2; 32], b"c2", 0).unwrap(),
            PinCheck::Changed { .. }
        ));
        assert!(s.seen(&bob, &id).unwrap());
        s.prune_seen(2000).unwrap();
        assert!(!s.seen(&bob, &id).unwrap());
        s.pin(&bob, &[2; 32], b"c2", 0).unwrap();
        assert_eq!(
            s.check_pin(&bob, &[2; 32], b"c2", 0).unwrap(),
            PinCheck::Match
        );
    }

    #[test]
    fn outbox_and_history_track_message_state() {
        let s = ClientState::in_memory().unwrap();
        let bob = UserName::new("bob").unwrap();
        let carol = UserName::new("carol").unwrap();
        let m = Outgoing {
            msg_id: MessageId([1; 16]),
            recipients: vec![bob.clone(), carol.clone()],
            text: "hi".into(),
            room: false,
            created_ms: 5,
        };
        s.outbox_add(&m).unwrap();
        assert_eq!(s.outbox_unconfirmed().unwrap(), vec![m.clone()]);
        assert!(s.outbox_stored(&m.msg_id).unwrap());
        assert!(s.outbox_unconfirmed().unwrap().is_empty());
        // Receipts count once per recipient, and only from recipients.
        assert!(s.outbox_delivered(&m.msg_id, &bob).unwrap());
        assert!(!s.outbox_delivered(&m.msg_id, &bob).unwrap());
        assert!(
            !s.outbox_delivered(&m.msg_id, &UserName::new("mallory").unwrap())
                .unwrap()
        );
        assert_eq!(
            s.outbox_state(&m.msg_id).unwrap(),
            Some(("stored".to_string(), vec!["bob".to_string()]))
        );
        for i in 0..30u8 {
            s.history_add(&HistoryEntry {
                msg_id: MessageId([i; 16]),
                ts_ms: u64::from(i),
                outgoing: i % 2 == 0,
                peer: "bob".into(),
                room: false,
                text: format!("line {i}"),
            })
            .unwrap();
        }
        let recent = s.history_recent(20).unwrap();
        assert_eq!(recent.len(), 20);
        assert_eq!(recent.first().unwrap().text, "line 10");
        assert_eq!(recent.last().unwrap().text, "line 29");
    }
}
