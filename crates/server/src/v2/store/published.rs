//! Each group's newest published GroupInfo (one row per group, replaced
//! by the next one): what a device cut off from a commit re-joins from.
//! The relay hands it out only while it is of the group's current epoch.

use rusqlite::{Connection, OptionalExtension, params};

use super::{DsDatabase, db_err};
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ds_group_info (
    id BLOB PRIMARY KEY,
    epoch INTEGER NOT NULL,
    info BLOB NOT NULL
);";

/// Deletes a gone group's GroupInfo (inside the caller's transaction).
pub(super) fn forget(tx: &Connection, id: &[u8]) -> Result<(), StoreError> {
    tx.execute("DELETE FROM ds_group_info WHERE id = ?1", params![id])
        .map_err(db_err)?;
    Ok(())
}

impl DsDatabase {
    /// Keeps `info` as the group's newest GroupInfo, of `epoch`.
    pub(crate) fn set_group_info(
        &mut self,
        id: &[u8],
        epoch: u64,
        info: &[u8],
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO ds_group_info (id, epoch, info) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET epoch = ?2, info = ?3",
                params![id, i64::try_from(epoch).unwrap_or(i64::MAX), info],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// The group's newest GroupInfo and its epoch, if one was published.
    pub(crate) fn group_info(&self, id: &[u8]) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.db
            .prepare_cached("SELECT epoch, info FROM ds_group_info WHERE id = ?1")
            .map_err(db_err)?
            .query_row(params![id], |r| {
                Ok((
                    u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    r.get::<_, Vec<u8>>(1)?,
                ))
            })
            .optional()
            .map_err(db_err)
    }
}
