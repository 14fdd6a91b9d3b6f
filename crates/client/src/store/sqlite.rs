//! The client's state on disk, in SQLite: pins, replay cache, outbox and
//! history. Survives restarts.

use std::path::Path;

use blindrelay_wire::{MessageId, UserName};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    ClientStore, HistoryEntry, MAX_HISTORY_ENTRIES, MAX_OUTBOX_ENTRIES, Outgoing, PinCheck,
    StoreError,
};

pub use super::migrate::SCHEMA_VERSION;

/// The client's SQLite database.
pub struct SqliteStore {
    db: Connection,
    tightened: Vec<std::path::PathBuf>,
    /// The exclusive lock on `PATH.lock`, held while the store is open, so
    /// that one state file has one owner: two clients sharing the replay
    /// cache would each take the other's messages for replays.
    _lock: Option<std::fs::File>,
}

/// The lock file beside a database: `state.db` -> `state.db.lock`.
pub fn lock_path(db: &Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    p.into()
}

/// Takes the exclusive lock of the database at `path`, or says who holds it.
fn lock(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let lock = lock_path(path);
    let open_err = |e: std::io::Error| StoreError::Open {
        path: lock.clone(),
        error: Box::new(e),
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock)
        .map_err(open_err)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(open_err(e)),
    }
}

fn join(names: &[UserName]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// SQLite integers are signed; every value stored here is far below
/// `i64::MAX`, so the conversions saturate only on nonsense.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`. Its directory is
    /// made 0700 and the database and SQLite's side files 0600 before
    /// anything is written; see [`SqliteStore::tightened`]. Only one
    /// process at a time may have it open: a second gets
    /// [`StoreError::InUse`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let tightened =
            blindrelay_pki::files::private_database(path).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                error: Box::new(e),
            })?;
        let lock = lock(path)?;
        let db = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            error: Box::new(e),
        })?;
        Self::init(db, tightened, Some(lock))
    }

    /// An in-memory database (tests, one-shot tools).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, Vec::new(), None)
    }

    /// The files and directories that were readable by others when the
    /// database was opened, and are not any more (the user should know).
    pub fn tightened(&self) -> &[std::path::PathBuf] {
        &self.tightened
    }

    fn init(
        db: Connection,
        tightened: Vec<std::path::PathBuf>,
        lock: Option<std::fs::File>,
    ) -> Result<Self, StoreError> {
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
             CREATE INDEX IF NOT EXISTS seen_sender_ts ON seen(sender, ts_ms);
             CREATE TABLE IF NOT EXISTS outbox (
                 msg_id BLOB PRIMARY KEY,
                 recipients TEXT NOT NULL,
                 text TEXT NOT NULL,
                 room INTEGER NOT NULL,
                 created_ms INTEGER NOT NULL,
                 state TEXT NOT NULL,
                 delivered_to TEXT NOT NULL DEFAULT ''
             );
             -- The waiting messages are counted and read at every turn of
             -- a client's loop: without reading the confirmed ones kept.
             CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox(state, created_ms);
             CREATE TABLE IF NOT EXISTS history (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 msg_id BLOB NOT NULL,
                 ts_ms INTEGER NOT NULL,
                 outgoing INTEGER NOT NULL,
                 peer TEXT NOT NULL,
                 room INTEGER NOT NULL,
                 text TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS send_window (
                 at_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS crl (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 der BLOB NOT NULL
             );",
        )?;
        let mut me = Self {
            db,
            tightened,
            _lock: lock,
        };
        me.migrate()?;
        Ok(me)
    }

    /// Brings an older database to [`SCHEMA_VERSION`] (`migrate.rs`).
    fn migrate(&mut self) -> Result<(), StoreError> {
        super::migrate::to_current(&mut self.db)
    }
}

impl ClientStore for SqliteStore {
    fn check_pin(
        &mut self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<PinCheck, StoreError> {
        let pinned: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT fingerprint FROM pins WHERE name = ?1",
                params![name.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match pinned {
            None => {
                self.pin(name, fingerprint, cert, now_ms)?;
                Ok(PinCheck::FirstUse)
            }
            Some(p) if p.as_slice() == fingerprint => {
                // The same key, perhaps in a renewed certificate: keep the
                // current one.
                self.db.execute(
                    "UPDATE pins SET cert = ?2 WHERE name = ?1 AND cert != ?2",
                    params![name.as_str(), cert],
                )?;
                Ok(PinCheck::Match)
            }
            Some(p) => Ok(PinCheck::Changed {
                pinned: <[u8; 32]>::try_from(p.as_slice()).unwrap_or([0; 32]),
            }),
        }
    }

    fn pin(
        &mut self,
        name: &UserName,
        fingerprint: &[u8; 32],
        cert: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO pins (name, fingerprint, cert, pinned_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET fingerprint = ?2, cert = ?3, pinned_at_ms = ?4",
            params![name.as_str(), &fingerprint[..], cert, int(now_ms)],
        )?;
        Ok(())
    }

    fn seen(&self, sender: &UserName, id: &MessageId) -> Result<bool, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM seen WHERE sender = ?1 AND msg_id = ?2",
            params![sender.as_str(), &id.0[..]],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    fn record_seen(
        &mut self,
        sender: &UserName,
        id: &MessageId,
        ts_ms: u64,
    ) -> Result<bool, StoreError> {
        let n = self.db.execute(
            "INSERT OR IGNORE INTO seen (sender, msg_id, ts_ms) VALUES (?1, ?2, ?3)",
            params![sender.as_str(), &id.0[..], int(ts_ms)],
        )?;
        Ok(n == 1)
    }

    fn seen_count(&self, sender: &UserName, horizon_ms: u64) -> Result<u64, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM seen WHERE sender = ?1 AND ts_ms >= ?2",
            params![sender.as_str(), int(horizon_ms)],
            |r| r.get(0),
        )?;
        Ok(unsigned(n))
    }

    fn prune_seen(&mut self, horizon_ms: u64) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM seen WHERE ts_ms < ?1",
            params![int(horizon_ms)],
        )?;
        Ok(())
    }

    fn outbox_add(&mut self, m: &Outgoing) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT OR IGNORE INTO outbox (msg_id, recipients, text, room, created_ms, state, grp) VALUES (?1, ?2, ?3, ?4, ?5, 'sending', ?6)",
            params![&m.msg_id.0[..], join(&m.recipients), m.text, i64::from(m.room), int(m.created_ms), m.group],
        )?;
        Ok(())
    }

    fn outbox_stored(&mut self, id: &MessageId) -> Result<bool, StoreError> {
        let n = self.db.execute(
            "UPDATE outbox SET state = 'stored' WHERE msg_id = ?1 AND state != 'stored'",
            params![&id.0[..]],
        )?;
        Ok(n > 0)
    }

    fn outbox_delivered(&mut self, id: &MessageId, by: &UserName) -> Result<bool, StoreError> {
        let row: Option<(String, String)> = self
            .db
            .query_row(
                "SELECT recipients, delivered_to FROM outbox WHERE msg_id = ?1",
                params![&id.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
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
        self.db.execute(
            "UPDATE outbox SET delivered_to = ?2 WHERE msg_id = ?1",
            params![&id.0[..], delivered],
        )?;
        Ok(true)
    }

    fn outbox_give_up(&mut self, id: &MessageId) -> Result<bool, StoreError> {
        let n = self.db.execute(
            "DELETE FROM outbox WHERE msg_id = ?1 AND state = 'sending'",
            params![&id.0[..]],
        )?;
        Ok(n > 0)
    }

    fn outbox_group(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .query_row(
                "SELECT grp FROM outbox WHERE msg_id = ?1",
                params![&id.0[..]],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }

    fn outbox_waiting(&self) -> Result<u64, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'sending'",
            [],
            |r| r.get(0),
        )?;
        Ok(unsigned(n))
    }

    fn outbox_unconfirmed(&self) -> Result<Vec<Outgoing>, StoreError> {
        // Written in the same millisecond: in the order they were written.
        let mut q = self.db.prepare(
            "SELECT msg_id, recipients, text, room, created_ms, grp FROM outbox WHERE state = 'sending' ORDER BY created_ms, rowid",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, recipients, text, room, created, group) = row?;
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
                created_ms: unsigned(created),
                group,
            });
        }
        Ok(out)
    }

    fn prune_outbox(&mut self, before_ms: u64) -> Result<Vec<Outgoing>, StoreError> {
        let dropped: Vec<Outgoing> = self
            .outbox_unconfirmed()?
            .into_iter()
            .filter(|m| m.created_ms < before_ms)
            .collect();
        self.db.execute(
            "DELETE FROM outbox WHERE created_ms < ?1",
            params![int(before_ms)],
        )?;
        self.db.execute(
            "DELETE FROM outbox WHERE state = 'stored' AND msg_id IN (SELECT msg_id FROM outbox WHERE state = 'stored' ORDER BY created_ms DESC LIMIT -1 OFFSET ?1)",
            params![int(MAX_OUTBOX_ENTRIES)],
        )?;
        Ok(dropped)
    }

    fn history_add(&mut self, h: &HistoryEntry) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO history (msg_id, ts_ms, outgoing, peer, room, text, grp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![&h.msg_id.0[..], int(h.ts_ms), i64::from(h.outgoing), h.peer, i64::from(h.room), h.text, h.group],
        )?;
        self.db.execute(
            "DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?1",
            params![int(MAX_HISTORY_ENTRIES)],
        )?;
        Ok(())
    }

    fn history_recent(&self, n: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut q = self.db.prepare(
            "SELECT msg_id, ts_ms, outgoing, peer, room, text, grp FROM history ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = q.query_map(params![i64::try_from(n).unwrap_or(i64::MAX)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<Vec<u8>>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ts, outgoing, peer, room, text, group) = row?;
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
                continue;
            };
            out.push(HistoryEntry {
                msg_id: MessageId(id),
                ts_ms: unsigned(ts),
                outgoing: outgoing != 0,
                peer,
                room: room != 0,
                text,
                group,
            });
        }
        out.reverse();
        Ok(out)
    }

    fn window_add(&mut self, at_ms: u64, forget_before_ms: u64) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM send_window WHERE at_ms < ?1",
            params![int(forget_before_ms)],
        )?;
        self.db.execute(
            "INSERT INTO send_window (at_ms) VALUES (?1)",
            params![int(at_ms)],
        )?;
        self.db.execute(
            "DELETE FROM send_window WHERE rowid <= (SELECT MAX(rowid) FROM send_window) - ?1",
            params![int(super::MAX_WINDOW_ENTRIES as u64)],
        )?;
        Ok(())
    }

    fn window_since(&self, since_ms: u64) -> Result<Vec<u64>, StoreError> {
        let mut q = self
            .db
            .prepare("SELECT at_ms FROM send_window WHERE at_ms >= ?1 ORDER BY at_ms LIMIT ?2")?;
        let rows = q.query_map(
            params![int(since_ms), int(super::MAX_WINDOW_ENTRIES as u64)],
            |r| r.get::<_, i64>(0),
        )?;
        rows.map(|r| r.map(unsigned).map_err(StoreError::from))
            .collect()
    }

    fn crl(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .query_row("SELECT der FROM crl WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    fn set_crl(&mut self, der: &[u8]) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO crl (id, der) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET der = ?1",
            params![der],
        )?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
