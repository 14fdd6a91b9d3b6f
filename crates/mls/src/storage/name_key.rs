//! Each group's name key (see `crate::name`): made by the group's creator,
//! handed to joiners inside their Welcome, kept here beside the group's
//! other secrets and forgotten with the group.

use rusqlite::OptionalExtension;
use zeroize::Zeroizing;

use super::{MlsStore, StorageError};
use crate::name::NameKey;

impl MlsStore {
    /// Keeps `key` as the name key of `group_id` (replacing none: the
    /// first key a group gets is its key).
    pub fn keep_name_key(&self, group_id: &[u8], key: &NameKey) -> Result<(), StorageError> {
        self.lock().execute(
            "INSERT OR IGNORE INTO mls_name_key (group_id, key) VALUES (?1, ?2)",
            rusqlite::params![group_id, key.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    /// The name key of `group_id`, if this device has one.
    pub fn name_key(&self, group_id: &[u8]) -> Result<Option<NameKey>, StorageError> {
        let bytes: Option<Zeroizing<Vec<u8>>> = self
            .lock()
            .query_row(
                "SELECT key FROM mls_name_key WHERE group_id = ?1",
                [group_id],
                |r| r.get::<_, Vec<u8>>(0).map(Zeroizing::new),
            )
            .optional()?;
        Ok(bytes.and_then(|b| NameKey::try_from(b.as_slice()).ok()))
    }
}
