//! The client database's layout across versions (`PRAGMA user_version`):
//! each step brings a database one version up, in one transaction, so
//! that a database of any earlier version opens as the current one.
//!
//! * 0 -> 1: pins are the SHA-256 of the peer's key, no longer of its
//!   whole certificate (recomputed from the certificate kept beside each
//!   pin: the same peers stay trusted, and a later renewal is silent).
//! * 1 -> 2: the outbox and the history name the MLS group of a protocol
//!   v2 message (`grp`, NULL for protocol v1).

use rusqlite::{Connection, params};

use super::StoreError;

/// The version of the database layout (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// Brings `db` to [`SCHEMA_VERSION`].
pub(super) fn to_current(db: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = db.transaction()?;
    if version < 1 {
        let pins: Vec<(String, Vec<u8>)> = {
            let mut q = tx.prepare("SELECT name, cert FROM pins")?;
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (name, cert) in pins {
            let fp = blindrelay_e2e::fingerprint(&cert);
            tx.execute(
                "UPDATE pins SET fingerprint = ?2 WHERE name = ?1",
                params![name, &fp[..]],
            )?;
        }
    }
    if version < 2 {
        for table in ["outbox", "history"] {
            if !has_column(&tx, table, "grp")? {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN grp BLOB"))?;
            }
        }
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    tx.commit()?;
    Ok(())
}

/// Whether `table` has a column `column` (a database whose version was
/// set back by hand may have it already).
fn has_column(db: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let mut q = db.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = q.query_map(params![table], |r| r.get::<_, String>(0))?;
    for n in names {
        if n? == column {
            return Ok(true);
        }
    }
    Ok(false)
}
