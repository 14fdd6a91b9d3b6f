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
             PRAGMA synchronous=FULL;
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
             CREATE INDEX IF NOT EXISTS seen_ts ON seen(ts_ms);",
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

    /// Rows in the replay cache.
    pub fn seen_count(&self) -> Result<i64, ClientError> {
        self.db
            .query_row("SELECT COUNT(*) FROM seen", [], |r| r.get(0))
            .map_err(Self::err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
}
