//! The Delivery Service's durable state (protocol v2): KeyPackages, each
//! group's epoch and devices, and every device's mailbox, in SQLite (WAL,
//! `synchronous=FULL`, like the v1 store). Mailbox bodies are stored once
//! and read when delivered, never held in memory (`mailbox`).
//!
//! The rules run in memory (`blindrelay-ds`); each accepted request's
//! effects are written here in one transaction before the device is told
//! anything, so what a device was told is stored survives a crash of the
//! relay, SIGKILL included. At start-up the memory is rebuilt from here.

use std::collections::BTreeSet;
use std::path::Path;

use blindrelay_ds::proto::{decode_devices, encode_devices};
use blindrelay_ds::{Appended, Claimed, DeviceId, Directory, Groups, Limits};
use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

mod mailbox;
mod published;
pub(crate) use mailbox::BodyReader;

fn db_err(err: rusqlite::Error) -> StoreError {
    StoreError::backend(err)
}

/// The v2 database.
pub(crate) struct DsDatabase {
    db: Connection,
    /// A second, read-only connection to the same file, for reading
    /// mailbox bodies outside the Delivery Service's lock (none for a
    /// database in memory); taken once by [`DsDatabase::take_reader`].
    reader: Option<mailbox::BodyReader>,
}

/// The in-memory state rebuilt from the database.
pub(crate) struct Loaded {
    pub directory: Directory,
    pub groups: Groups,
}

/// A group's row as a submission leaves it: id, epoch, members, creator.
pub(crate) type GroupRow<'a> = (&'a [u8], u64, &'a BTreeSet<DeviceId>, Option<&'a DeviceId>);

/// Whether `table` has `column` (a database made by an older relay may not).
fn has_column(db: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let n: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, column],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    Ok(n > 0)
}

fn device_of(user: String, device: String) -> Option<DeviceId> {
    Some(DeviceId {
        user: UserName::new(&user).ok()?,
        device: DeviceName::new(&device).ok()?,
    })
}

impl DsDatabase {
    /// Every row `sql` selects, each made by `row`.
    fn rows<T>(
        &self,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self.db.prepare(sql).map_err(db_err)?;
        let rows = st.query_map([], row).map_err(db_err)?;
        rows.collect::<Result<Vec<T>, _>>().map_err(db_err)
    }

    /// Opens (creating) the database at `path`, private to this user.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err =
            |error: std::sync::Arc<dyn std::error::Error + Send + Sync>| StoreError::Open {
                path: path.to_path_buf(),
                error,
            };
        for p in blindrelay_pki::files::private_database(path)
            .map_err(|e| open_err(std::sync::Arc::new(e)))?
        {
            tracing::warn!(target: crate::SECURITY, path = %p.display(),
                "v2 store file was readable by other users of this machine; it is private now");
        }
        let db = Connection::open(path).map_err(|e| open_err(std::sync::Arc::new(e)))?;
        let mut this = Self::init(db)?;
        this.reader = Some(mailbox::BodyReader::open(path)?);
        Ok(this)
    }

    /// The read-only connection for mailbox bodies, if the database is a
    /// file (once).
    pub(crate) fn take_reader(&mut self) -> Option<mailbox::BodyReader> {
        self.reader.take()
    }

    /// A database in memory (tests, demo).
    pub(crate) fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(db: Connection) -> Result<Self, StoreError> {
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS ds_key_package (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 user TEXT NOT NULL,
                 device TEXT NOT NULL,
                 last_resort INTEGER NOT NULL,
                 bytes BLOB NOT NULL
             );
             CREATE INDEX IF NOT EXISTS ds_key_package_by_device
                 ON ds_key_package(user, device, last_resort, id);
             CREATE TABLE IF NOT EXISTS ds_group (
                 id BLOB PRIMARY KEY,
                 epoch INTEGER NOT NULL,
                 members BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS ds_public_state (
                 id BLOB PRIMARY KEY,
                 state BLOB NOT NULL
             );
",
        )
        .map_err(db_err)?;
        db.execute_batch(published::SCHEMA).map_err(db_err)?;
        // Who created each group, who submitted each item and when (added
        // after the first release: older rows have none, and are charged to
        // nobody).
        if !has_column(&db, "ds_group", "creator_user")? {
            db.execute_batch(
                "ALTER TABLE ds_group ADD COLUMN creator_user TEXT;
                 ALTER TABLE ds_group ADD COLUMN creator_device TEXT;",
            )
            .map_err(db_err)?;
        }
        mailbox::init(&db)?;
        Ok(Self { db, reader: None })
    }

    /// Rebuilds the Delivery Service's memory (never a mailbox body's
    /// bytes). Rows that no longer decode (a name the current rules
    /// refuse) are skipped with a warning.
    pub(crate) fn load(&self, limits: Limits, now: u64) -> Result<Loaded, StoreError> {
        let mut directory = Directory::new(limits);
        let mut groups = Groups::new(limits);
        groups.mailboxes().set_now(now);
        let mut skipped = 0usize;
        for (user, device, last_resort, bytes) in self.rows(
            "SELECT user, device, last_resort, bytes FROM ds_key_package ORDER BY id",
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        )? {
            let Some(d) = device_of(user, device) else {
                skipped += 1;
                continue;
            };
            let r = if last_resort {
                directory.upload(&d, Vec::new(), Some(bytes))
            } else {
                directory.upload(&d, vec![bytes], None)
            };
            if r.is_err() {
                skipped += 1;
            }
        }
        for (id, epoch, members, cu, cd) in self.rows(
            "SELECT id, epoch, members, creator_user, creator_device FROM ds_group",
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )? {
            let creator = match (cu, cd) {
                (Some(u), Some(d)) => device_of(u, d),
                _ => None,
            };
            match (u64::try_from(epoch), decode_devices(&members)) {
                (Ok(epoch), Ok(members)) => groups.restore_with(id, epoch, members, creator),
                _ => skipped += 1,
            }
        }
        for (user, device, next) in
            self.rows("SELECT user, device, next FROM ds_next_seq", |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
        {
            match (device_of(user, device), u64::try_from(next)) {
                (Some(d), Ok(next)) => groups.mailboxes().restore_next(&d, next),
                _ => skipped += 1,
            }
        }
        skipped += self.load_mailboxes(&mut groups, now)?;
        if skipped > 0 {
            tracing::warn!(
                rows = skipped,
                "v2 store rows that no longer decode were skipped"
            );
        }
        // Bodies no item points at (their last item went while the relay
        // was down) are deleted now.
        let orphans = groups.mailboxes().take_released();
        self.release(&orphans)?;
        Ok(Loaded { directory, groups })
    }

    /// Stores an upload.
    pub(crate) fn upload(
        &mut self,
        device: &DeviceId,
        one_time: &[Vec<u8>],
        last_resort: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction().map_err(db_err)?;
        let (u, d) = (device.user.as_str(), device.device.as_str());
        if last_resort.is_some() {
            tx.execute(
                "DELETE FROM ds_key_package WHERE user = ?1 AND device = ?2 AND last_resort = 1",
                params![u, d],
            )
            .map_err(db_err)?;
        }
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO ds_key_package (user, device, last_resort, bytes) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db_err)?;
            for kp in one_time {
                ins.execute(params![u, d, false, kp]).map_err(db_err)?;
            }
            if let Some(kp) = last_resort {
                ins.execute(params![u, d, true, kp]).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Stores a claim: each one-time KeyPackage handed out is gone (the
    /// oldest of its device, as in memory).
    pub(crate) fn claim(&mut self, claimed: &[Claimed]) -> Result<(), StoreError> {
        let tx = self.db.transaction().map_err(db_err)?;
        for c in claimed.iter().filter(|c| !c.last_resort) {
            tx.execute(
                "DELETE FROM ds_key_package WHERE id = (SELECT min(id) FROM ds_key_package
                   WHERE user = ?1 AND device = ?2 AND last_resort = 0)",
                params![c.device.user.as_str(), c.device.device.as_str()],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// A group's public state (what the relay checks commits against),
    /// if it has one.
    pub(crate) fn public_state(&self, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .prepare_cached("SELECT state FROM ds_public_state WHERE id = ?1")
            .map_err(db_err)?
            .query_row(params![id], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(db_err)
    }

    /// Stores an accepted submission: the group's new order and public
    /// state (for a commit or proposal) and every mailbox item it made.
    pub(crate) fn submit(
        &mut self,
        group: Option<GroupRow<'_>>,
        public: Option<(&[u8], &[u8])>,
        appended: &Appended,
        sender: (&DeviceId, u64),
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction().map_err(db_err)?;
        if let Some((id, state)) = public {
            tx.execute(
                "INSERT INTO ds_public_state (id, state) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET state = ?2",
                params![id, state],
            )
            .map_err(db_err)?;
        }
        if let Some((id, epoch, members, creator)) = group {
            let members = encode_devices(members).map_err(StoreError::backend)?;
            let (cu, cd) = match creator {
                Some(c) => (Some(c.user.as_str()), Some(c.device.as_str())),
                None => (None, None),
            };
            tx.execute(
                "INSERT INTO ds_group (id, epoch, members, creator_user, creator_device)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET epoch = ?2, members = ?3",
                params![
                    id,
                    i64::try_from(epoch).unwrap_or(i64::MAX),
                    members,
                    cu,
                    cd
                ],
            )
            .map_err(db_err)?;
        }
        mailbox::append(&tx, appended, sender)?;
        tx.commit().map_err(db_err)
    }

    /// Forgets a revoked device: its KeyPackages, its place in groups, its
    /// mailbox items and the bodies they were the last to point at.
    pub(crate) fn forget(
        &mut self,
        device: &DeviceId,
        groups: &blindrelay_ds::Forgotten,
        released: &[blindrelay_ds::BodyId],
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction().map_err(db_err)?;
        tx.execute(
            "DELETE FROM ds_key_package WHERE user = ?1 AND device = ?2",
            params![device.user.as_str(), device.device.as_str()],
        )
        .map_err(db_err)?;
        mailbox::delete_items(&tx, &[(device.clone(), u64::MAX)])?;
        mailbox::delete_bodies(&tx, released)?;
        for (id, epoch, members) in &groups.changed {
            let members = encode_devices(members).map_err(StoreError::backend)?;
            tx.execute(
                "UPDATE ds_group SET epoch = ?2, members = ?3 WHERE id = ?1",
                params![id, i64::try_from(*epoch).unwrap_or(i64::MAX), members],
            )
            .map_err(db_err)?;
        }
        for id in &groups.removed {
            tx.execute("DELETE FROM ds_group WHERE id = ?1", params![id])
                .map_err(db_err)?;
            tx.execute("DELETE FROM ds_public_state WHERE id = ?1", params![id])
                .map_err(db_err)?;
            published::forget(&tx, id)?;
        }
        tx.commit().map_err(db_err)
    }
}

#[cfg(test)]
mod tests;
