//! MLS state in the client's own SQLite.
//!
//! mls-rs keeps a group as a snapshot (the current epoch) plus a few prior
//! epochs (to read messages sent just before a commit), and a device's
//! unused KeyPackages with their private keys. These are its three small
//! storage traits, implemented on one `rusqlite` connection that the client
//! may share with the rest of its database.
//! (`intake.rs` keeps what the device's intake needs beside them: digests
//! of what it processed, messages held across a gap, the newest CRL.)
//!
//! Forward secrecy depends on old secrets being *gone*, so:
//! * only [`MAX_EPOCH_RETENTION`] prior epochs are kept per group; older
//!   ones are deleted in the same transaction that adds a new one;
//! * `secure_delete` is on: SQLite overwrites deleted content with zeros
//!   instead of leaving it in free pages;
//! * a used KeyPackage's private keys are deleted when mls-rs says so.

use std::sync::{Arc, Mutex, MutexGuard};

use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use mls_rs_core::key_package::{KeyPackageData, KeyPackageStorage};
use mls_rs_core::mls_rs_codec::{MlsDecode, MlsEncode};
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

/// Prior epochs kept per group, to decrypt messages sent just before a
/// commit that the relay ordered after it. Each one kept is a window in
/// which a stolen state reads that epoch's remaining messages.
pub const MAX_EPOCH_RETENTION: u64 = 2;

/// What can fail in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed.
    #[error("MLS state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored KeyPackage does not decode.
    #[error("MLS state database holds an unreadable KeyPackage")]
    Corrupt,
    /// An epoch number beyond what SQLite stores.
    #[error("epoch number out of range")]
    EpochRange,
}

impl mls_rs_core::error::IntoAnyError for StorageError {}

fn epoch_sql(epoch: u64) -> Result<i64, StorageError> {
    i64::try_from(epoch).map_err(|_| StorageError::EpochRange)
}

mod intake;
mod name_key;

pub use intake::{Held, MAX_HELD_BYTES_PER_GROUP, MAX_HELD_PER_GROUP, MAX_SEEN};

/// The MLS tables of a client database. Cloning shares the connection.
#[derive(Clone)]
pub struct MlsStore {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
PRAGMA secure_delete = ON;
CREATE TABLE IF NOT EXISTS mls_group (
    group_id BLOB PRIMARY KEY,
    snapshot BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS mls_epoch (
    group_id BLOB NOT NULL,
    epoch_id INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch_id)
);
CREATE TABLE IF NOT EXISTS mls_key_package (
    id BLOB PRIMARY KEY,
    data BLOB NOT NULL,
    expiration INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mls_leaf_fresh (
    group_id BLOB PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mls_last_resort (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS mls_crl (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    der BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS mls_seen (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    digest BLOB NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS mls_held (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    message BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS mls_name_key (
    group_id BLOB PRIMARY KEY,
    key BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS mls_held_group ON mls_held (group_id, epoch, n);
";

/// Last-resort KeyPackages whose private keys are kept: the newest and the
/// one before it (an adder may still hold the older one, claimed from the
/// relay before the device replaced it).
pub const LAST_RESORT_KEPT: u64 = 2;

impl MlsStore {
    /// Uses `conn` (shared with the rest of the client), creating the MLS
    /// tables if needed.
    pub fn new(conn: Arc<Mutex<Connection>>) -> Result<Self, StorageError> {
        let store = Self { conn };
        store.lock().execute_batch(SCHEMA)?;
        Ok(store)
    }

    /// A database in memory (tests, benchmarks, throwaway devices).
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::new(Arc::new(Mutex::new(Connection::open_in_memory()?)))
    }

    /// Opens (or creates) a database file of its own.
    pub fn open(path: &std::path::Path) -> Result<Self, StorageError> {
        Self::new(Arc::new(Mutex::new(Connection::open(path)?)))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ids of every group this device holds.
    pub fn group_ids(&self) -> Result<Vec<Vec<u8>>, StorageError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT group_id FROM mls_group ORDER BY group_id")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Size of a group's current state (its snapshot), in bytes.
    pub fn snapshot_len(&self, group_id: &[u8]) -> Result<u64, StorageError> {
        let n: Option<i64> = self
            .lock()
            .query_row(
                "SELECT LENGTH(snapshot) FROM mls_group WHERE group_id = ?1",
                [group_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Prior epochs kept for a group.
    pub fn epoch_count(&self, group_id: &[u8]) -> Result<u64, StorageError> {
        let n: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM mls_epoch WHERE group_id = ?1",
            [group_id],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records that this device's leaf in the group was made fresh at
    /// `at` (Unix seconds): it created or joined the group, or one of its
    /// commits (each carries a new path) was applied.
    pub fn leaf_fresh(&self, group_id: &[u8], at: u64) -> Result<(), StorageError> {
        let at = i64::try_from(at).unwrap_or(i64::MAX);
        self.lock().execute(
            "INSERT INTO mls_leaf_fresh (group_id, at) VALUES (?1, ?2)
             ON CONFLICT(group_id) DO UPDATE SET at = excluded.at",
            params![group_id, at],
        )?;
        Ok(())
    }

    /// Groups whose leaf of this device was last made fresh before
    /// `before` (Unix seconds), oldest first.
    pub fn leaves_older_than(&self, before: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let before = i64::try_from(before).unwrap_or(i64::MAX);
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT f.group_id FROM mls_leaf_fresh f JOIN mls_group g USING (group_id)
             WHERE f.at < ?1 ORDER BY f.at",
        )?;
        let ids = stmt
            .query_map([before], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Whether this device holds the group.
    pub fn holds_group(&self, group_id: &[u8]) -> Result<bool, StorageError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM mls_group WHERE group_id = ?1",
                [group_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Keeps the private key of KeyPackage `id` after a Welcome used it
    /// (a last-resort KeyPackage may be handed out more than once, RFC
    /// 9420 section 16.8); only the newest [`LAST_RESORT_KEPT`] are kept,
    /// older ones are deleted.
    pub fn mark_last_resort(&self, id: &[u8]) -> Result<(), StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO mls_last_resort (id) VALUES (?1)",
            [id],
        )?;
        let keep = i64::try_from(LAST_RESORT_KEPT).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM mls_key_package WHERE id IN (SELECT id FROM mls_last_resort
             WHERE n NOT IN (SELECT n FROM mls_last_resort ORDER BY n DESC LIMIT ?1))",
            [keep],
        )?;
        tx.execute(
            "DELETE FROM mls_last_resort WHERE n NOT IN
             (SELECT n FROM mls_last_resort ORDER BY n DESC LIMIT ?1)",
            [keep],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a group and every epoch of it (after leaving or removal).
    pub fn forget_group(&self, group_id: &[u8]) -> Result<(), StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM mls_held WHERE group_id = ?1", [group_id])?;
        tx.execute("DELETE FROM mls_name_key WHERE group_id = ?1", [group_id])?;
        tx.execute("DELETE FROM mls_leaf_fresh WHERE group_id = ?1", [group_id])?;
        tx.execute("DELETE FROM mls_epoch WHERE group_id = ?1", [group_id])?;
        tx.execute("DELETE FROM mls_group WHERE group_id = ?1", [group_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Unused KeyPackages held (their private keys wait for a Welcome).
    pub fn key_package_count(&self) -> Result<u64, StorageError> {
        let n: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM mls_key_package", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes KeyPackages that expired before `now_unix`.
    pub fn purge_expired_key_packages(&self, now_unix: u64) -> Result<usize, StorageError> {
        let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
        Ok(self
            .lock()
            .execute("DELETE FROM mls_key_package WHERE expiration < ?1", [now])?)
    }

    /// KeyPackage ids whose private keys are held, for tests: a used
    /// one-time KeyPackage is gone, a last-resort one stays.
    pub fn key_package_ids(&self) -> Result<Vec<Vec<u8>>, StorageError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id FROM mls_key_package ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }
}

impl GroupStateStorage for MlsStore {
    type Error = StorageError;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self
            .lock()
            .query_row(
                "SELECT snapshot FROM mls_group WHERE group_id = ?1",
                [group_id],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(Zeroizing::new))
    }

    fn epoch(
        &self,
        group_id: &[u8],
        epoch_id: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self
            .lock()
            .query_row(
                "SELECT data FROM mls_epoch WHERE group_id = ?1 AND epoch_id = ?2",
                params![group_id, epoch_sql(epoch_id)?],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(Zeroizing::new))
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> Result<(), Self::Error> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO mls_group (group_id, snapshot) VALUES (?1, ?2)
             ON CONFLICT(group_id) DO UPDATE SET snapshot = excluded.snapshot",
            params![state.id, state.data.as_slice()],
        )?;
        for e in epoch_inserts.iter().chain(epoch_updates.iter()) {
            tx.execute(
                "INSERT INTO mls_epoch (group_id, epoch_id, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(group_id, epoch_id) DO UPDATE SET data = excluded.data",
                params![state.id, epoch_sql(e.id)?, e.data.as_slice()],
            )?;
        }
        let max: Option<i64> = tx.query_row(
            "SELECT MAX(epoch_id) FROM mls_epoch WHERE group_id = ?1",
            [&state.id],
            |r| r.get(0),
        )?;
        if let Some(max) = max {
            let keep_from = max.saturating_sub(epoch_sql(MAX_EPOCH_RETENTION)? - 1);
            tx.execute(
                "DELETE FROM mls_epoch WHERE group_id = ?1 AND epoch_id < ?2",
                params![state.id, keep_from],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, Self::Error> {
        let max: Option<i64> = self.lock().query_row(
            "SELECT MAX(epoch_id) FROM mls_epoch WHERE group_id = ?1",
            [group_id],
            |r| r.get(0),
        )?;
        Ok(max.and_then(|m| u64::try_from(m).ok()))
    }
}

impl KeyPackageStorage for MlsStore {
    type Error = StorageError;

    /// mls-rs deletes a KeyPackage's private key once a Welcome used it;
    /// a last-resort one is kept (see [`MlsStore::mark_last_resort`]), or
    /// the relay would keep handing out a KeyPackage nobody can join by.
    fn delete(&mut self, id: &[u8]) -> Result<(), Self::Error> {
        self.lock().execute(
            "DELETE FROM mls_key_package WHERE id = ?1
             AND id NOT IN (SELECT id FROM mls_last_resort)",
            [id],
        )?;
        Ok(())
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<(), Self::Error> {
        let data = Zeroizing::new(pkg.mls_encode_to_vec().map_err(|_| StorageError::Corrupt)?);
        let expiration = i64::try_from(pkg.expiration).unwrap_or(i64::MAX);
        self.lock().execute(
            "INSERT OR REPLACE INTO mls_key_package (id, data, expiration) VALUES (?1, ?2, ?3)",
            params![id, data.as_slice(), expiration],
        )?;
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, Self::Error> {
        let data = self
            .lock()
            .query_row(
                "SELECT data FROM mls_key_package WHERE id = ?1",
                [id],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?;
        data.map(|d| {
            let d = Zeroizing::new(d);
            KeyPackageData::mls_decode(&mut d.as_slice()).map_err(|_| StorageError::Corrupt)
        })
        .transpose()
    }
}
