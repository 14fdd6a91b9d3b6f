//! Mailboxes on disk: each body once (`ds_body`), each device's items as
//! pointers to bodies (`ds_item`), and where each device's numbering
//! resumes (`ds_next_seq`).
//!
//! The relay's memory holds only the items' numbers, sizes and charges
//! (`blindrelay_ds::Mailboxes`); a body's bytes are read from here when it
//! is delivered, and deleted when the last item pointing at it is
//! acknowledged or expires. A database from before this layout (one
//! `ds_mailbox` row per recipient, body included) is converted once, in
//! one transaction, at start-up.

use blindrelay_ds::{Appended, BodyId, Delivery, DeviceId, Groups};
use rusqlite::{Connection, Transaction, params};

use super::{DsDatabase, db_err, device_of};
use crate::store::StoreError;

/// Creates the tables, converting an older `ds_mailbox` if there is one.
pub(super) fn init(db: &Connection) -> Result<(), StoreError> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS ds_body (
             id INTEGER PRIMARY KEY,
             welcome INTEGER NOT NULL,
             group_id BLOB NOT NULL,
             bytes BLOB NOT NULL,
             sender_user TEXT,
             sender_device TEXT,
             at INTEGER
         );
         CREATE TABLE IF NOT EXISTS ds_item (
             user TEXT NOT NULL,
             device TEXT NOT NULL,
             seq INTEGER NOT NULL,
             body INTEGER NOT NULL,
             PRIMARY KEY (user, device, seq)
         );
         CREATE TABLE IF NOT EXISTS ds_next_seq (
             user TEXT NOT NULL,
             device TEXT NOT NULL,
             next INTEGER NOT NULL,
             PRIMARY KEY (user, device)
         );",
    )
    .map_err(db_err)?;
    let old: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'ds_mailbox'",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if old > 0 {
        convert(db)?;
    }
    Ok(())
}

/// One body per old row (an older relay stored a copy per recipient; it
/// stays one body per row here, and goes when its item goes).
fn convert(db: &Connection) -> Result<(), StoreError> {
    let sender = super::has_column(db, "ds_mailbox", "sender_user")?;
    let (su, sd, at) = if sender {
        ("sender_user", "sender_device", "at")
    } else {
        ("NULL", "NULL", "NULL")
    };
    let base: i64 = db
        .query_row("SELECT COALESCE(MAX(id) + 1, 0) FROM ds_body", [], |r| {
            r.get(0)
        })
        .map_err(db_err)?;
    let tx = db.unchecked_transaction().map_err(db_err)?;
    tx.execute_batch(&format!(
        "INSERT INTO ds_body (id, welcome, group_id, bytes, sender_user, sender_device, at)
             SELECT rowid + {base}, welcome, group_id, bytes, {su}, {sd}, {at} FROM ds_mailbox;
         INSERT INTO ds_item (user, device, seq, body)
             SELECT user, device, seq, rowid + {base} FROM ds_mailbox;
         DROP TABLE ds_mailbox;"
    ))
    .map_err(db_err)?;
    tx.commit().map_err(db_err)
}

impl DsDatabase {
    /// Puts every body's size and charges and every item back into
    /// `groups`' mailboxes (never a body's bytes); the rows skipped.
    pub(super) fn load_mailboxes(
        &self,
        groups: &mut Groups,
        now: u64,
    ) -> Result<usize, StoreError> {
        // An item whose body is gone (a write that failed half-way in an
        // older relay) is dropped here, so that a later body that reuses
        // the number is never delivered in its place.
        let dangling = self
            .db
            .execute(
                "DELETE FROM ds_item WHERE NOT EXISTS
                     (SELECT 1 FROM ds_body WHERE ds_body.id = ds_item.body)",
                [],
            )
            .map_err(db_err)?;
        if dangling > 0 {
            tracing::warn!(
                items = dangling,
                "v2 mailbox items without their body were dropped"
            );
        }
        let mut skipped = 0usize;
        let bodies = self.rows(
            "SELECT id, length(group_id) + length(bytes), sender_user, sender_device, at
             FROM ds_body",
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )?;
        for (id, size, su, sd, at) in bodies {
            let sender = match (su, sd) {
                (Some(u), Some(d)) => device_of(u, d),
                _ => None,
            };
            let at = at.and_then(|a| u64::try_from(a).ok()).unwrap_or(now);
            match (u64::try_from(id), usize::try_from(size)) {
                (Ok(id), Ok(size)) => {
                    groups
                        .mailboxes()
                        .restore_body(BodyId(id), size, sender, at);
                }
                _ => skipped += 1,
            }
        }
        for (user, device, seq, body) in self.rows(
            "SELECT user, device, seq, body FROM ds_item ORDER BY user, device, seq",
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )? {
            let ok = match (
                device_of(user, device),
                u64::try_from(seq),
                u64::try_from(body),
            ) {
                (Some(d), Ok(seq), Ok(body)) => {
                    groups.mailboxes().restore_item(&d, seq, BodyId(body))
                }
                _ => false,
            };
            if !ok {
                skipped += 1;
            }
        }
        groups.mailboxes().restored();
        Ok(skipped)
    }

    /// Reads the bodies of `items` (a device's sequence numbers and
    /// bodies), in order. A body that is gone (it expired meanwhile) is
    /// left out.
    pub(crate) fn bodies(
        &self,
        items: &[(u64, BodyId)],
    ) -> Result<Vec<(u64, Delivery)>, StoreError> {
        read_bodies(&self.db, items)
    }

    /// Deletes, for each device, its items up to a sequence number (what
    /// it acknowledged, or what expired), and the bodies no item points at
    /// any more, in one transaction.
    pub(crate) fn ack(
        &mut self,
        upto: &[(DeviceId, u64)],
        released: &[BodyId],
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction().map_err(db_err)?;
        delete_items(&tx, upto)?;
        delete_bodies(&tx, released)?;
        tx.commit().map_err(db_err)
    }

    /// Deletes bodies no item points at any more.
    pub(crate) fn release(&self, released: &[BodyId]) -> Result<(), StoreError> {
        if released.is_empty() {
            return Ok(());
        }
        let tx = self.db.unchecked_transaction().map_err(db_err)?;
        delete_bodies(&tx, released)?;
        tx.commit().map_err(db_err)
    }
}

/// Deletes each device's items up to its sequence number.
pub(super) fn delete_items(
    tx: &Transaction<'_>,
    upto: &[(DeviceId, u64)],
) -> Result<(), StoreError> {
    let mut del = tx
        .prepare_cached("DELETE FROM ds_item WHERE user = ?1 AND device = ?2 AND seq <= ?3")
        .map_err(db_err)?;
    for (device, seq) in upto {
        del.execute(params![
            device.user.as_str(),
            device.device.as_str(),
            i64::try_from(*seq).unwrap_or(i64::MAX)
        ])
        .map_err(db_err)?;
    }
    Ok(())
}

pub(super) fn delete_bodies(tx: &Transaction<'_>, released: &[BodyId]) -> Result<(), StoreError> {
    let mut del = tx
        .prepare_cached("DELETE FROM ds_body WHERE id = ?1")
        .map_err(db_err)?;
    for id in released {
        del.execute(params![i64::try_from(id.0).unwrap_or(i64::MAX)])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Writes an accepted submission's bodies (once each) and items, and
/// moves each recipient's numbering on; part of the submission's
/// transaction.
pub(super) fn append(
    tx: &Transaction<'_>,
    appended: &Appended,
    (sender, at): (&DeviceId, u64),
) -> Result<(), StoreError> {
    let at = i64::try_from(at).unwrap_or(i64::MAX);
    let mut body = tx
        .prepare_cached(
            "INSERT INTO ds_body (id, welcome, group_id, bytes, sender_user, sender_device, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(db_err)?;
    for (id, item) in &appended.bodies {
        let (welcome, group_id, bytes) = match item {
            Delivery::Group { group_id, message } => (false, group_id, message),
            Delivery::Welcome { group_id, welcome } => (true, group_id, welcome),
        };
        body.execute(params![
            i64::try_from(id.0).unwrap_or(i64::MAX),
            welcome,
            group_id,
            bytes,
            sender.user.as_str(),
            sender.device.as_str(),
            at
        ])
        .map_err(db_err)?;
    }
    let mut item = tx
        .prepare_cached("INSERT INTO ds_item (user, device, seq, body) VALUES (?1, ?2, ?3, ?4)")
        .map_err(db_err)?;
    let mut next = tx
        .prepare_cached(
            "INSERT INTO ds_next_seq (user, device, next) VALUES (?1, ?2, ?3)
             ON CONFLICT(user, device) DO UPDATE SET next = max(next, ?3)",
        )
        .map_err(db_err)?;
    for (d, seq, id) in &appended.items {
        let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
        let (u, dn) = (d.user.as_str(), d.device.as_str());
        item.execute(params![u, dn, seq, i64::try_from(id.0).unwrap_or(i64::MAX)])
            .map_err(db_err)?;
        next.execute(params![u, dn, seq.saturating_add(1)])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Bodies are written once and never changed, and their numbers are
/// never reused while the relay runs, so they can be read outside the
/// Delivery Service's lock: this connection is read-only, and what it
/// cannot find any more (acknowledged or expired meanwhile) is left out.
pub(crate) struct BodyReader {
    db: Connection,
}

impl BodyReader {
    pub(super) fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let db = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        Ok(Self { db })
    }

    /// See [`DsDatabase::bodies`].
    pub(crate) fn bodies(
        &self,
        items: &[(u64, BodyId)],
    ) -> Result<Vec<(u64, Delivery)>, StoreError> {
        read_bodies(&self.db, items)
    }
}

fn read_bodies(
    db: &Connection,
    items: &[(u64, BodyId)],
) -> Result<Vec<(u64, Delivery)>, StoreError> {
    let mut st = db
        .prepare_cached("SELECT welcome, group_id, bytes FROM ds_body WHERE id = ?1")
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(items.len());
    for (seq, id) in items {
        let id = i64::try_from(id.0).unwrap_or(i64::MAX);
        let mut rows = st.query(params![id]).map_err(db_err)?;
        let Some(r) = rows.next().map_err(db_err)? else {
            continue;
        };
        let (welcome, group_id, bytes): (bool, Vec<u8>, Vec<u8>) = (
            r.get(0).map_err(db_err)?,
            r.get(1).map_err(db_err)?,
            r.get(2).map_err(db_err)?,
        );
        let item = if welcome {
            Delivery::Welcome {
                group_id,
                welcome: bytes,
            }
        } else {
            Delivery::Group {
                group_id,
                message: bytes,
            }
        };
        out.push((*seq, item));
    }
    Ok(out)
}
