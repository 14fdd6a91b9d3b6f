//! What the device's intake keeps beside the MLS state: digests of what it
//! processed (a copy delivered again is told from an attack), messages held
//! from an epoch it has not reached (a gap is held, never dropped), and the
//! newest CRL it verified (so that it still starts once `crl.pem` is old).

use rusqlite::{OptionalExtension, params};

use super::{MlsStore, StorageError, epoch_sql};

/// Digests of messages and Welcomes processed, remembered so that a copy
/// delivered again (after a connection failed before the acknowledgement)
/// is dropped without a warning. MLS refuses such a copy anyway; this only
/// tells a duplicate from an attack.
pub const MAX_SEEN: u64 = 10_000;

/// Messages held per group because they come from an epoch this device has
/// not reached (a commit before them is missing): kept until the commit
/// arrives, never acknowledged away.
pub const MAX_HELD_PER_GROUP: u64 = 1_000;
/// Bytes of messages held per group (see [`MAX_HELD_PER_GROUP`]).
pub const MAX_HELD_BYTES_PER_GROUP: u64 = 16 * 1024 * 1024;
/// Whether a message was held (see [`MlsStore::hold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Stored, to be processed once the group reaches its epoch.
    Kept,
    /// The group's hold is full ([`MAX_HELD_PER_GROUP`],
    /// [`MAX_HELD_BYTES_PER_GROUP`]): not kept.
    Full,
}

impl MlsStore {
    /// Whether `bytes` (a message or Welcome) was processed before.
    pub fn seen(&self, bytes: &[u8]) -> Result<bool, StorageError> {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM mls_seen WHERE digest = ?1",
                [d.as_ref()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Remembers that `bytes` was processed (the oldest of more than
    /// [`MAX_SEEN`] are forgotten).
    pub fn mark_seen(&self, bytes: &[u8]) -> Result<(), StorageError> {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO mls_seen (digest) VALUES (?1)",
            [d.as_ref()],
        )?;
        let keep = i64::try_from(MAX_SEEN).unwrap_or(i64::MAX);
        conn.execute(
            "DELETE FROM mls_seen WHERE n <= (SELECT MAX(n) FROM mls_seen) - ?1",
            [keep],
        )?;
        Ok(())
    }

    /// The newest CRL this device verified (the caller checks it again
    /// when it reads it: the file is the device's own, but its disk is not
    /// trusted with revocation).
    pub fn crl(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .lock()
            .query_row("SELECT der FROM mls_crl WHERE one = 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Keeps `der` as the newest CRL verified.
    pub fn set_crl(&self, der: &[u8]) -> Result<(), StorageError> {
        self.lock().execute(
            "INSERT INTO mls_crl (one, der) VALUES (1, ?1)
             ON CONFLICT(one) DO UPDATE SET der = excluded.der",
            [der],
        )?;
        Ok(())
    }

    /// Keeps `message` of the group from `epoch`, which this device has
    /// not reached, until it has.
    pub fn hold(&self, group_id: &[u8], epoch: u64, message: &[u8]) -> Result<Held, StorageError> {
        let conn = self.lock();
        let (count, bytes): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0) FROM mls_held WHERE group_id = ?1",
            [group_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let len = u64::try_from(message.len()).unwrap_or(u64::MAX);
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if count >= MAX_HELD_PER_GROUP || bytes.saturating_add(len) > MAX_HELD_BYTES_PER_GROUP {
            return Ok(Held::Full);
        }
        conn.execute(
            "INSERT INTO mls_held (group_id, epoch, message) VALUES (?1, ?2, ?3)",
            params![group_id, epoch_sql(epoch)?, message],
        )?;
        Ok(Held::Kept)
    }

    /// The newest epoch among the group's held messages: if it is past the
    /// group's epoch, a commit is missing.
    pub fn held_epoch(&self, group_id: &[u8]) -> Result<Option<u64>, StorageError> {
        let max: Option<i64> = self.lock().query_row(
            "SELECT MAX(epoch) FROM mls_held WHERE group_id = ?1",
            [group_id],
            |r| r.get(0),
        )?;
        Ok(max.and_then(|m| u64::try_from(m).ok()))
    }

    /// The oldest held message of the group from `epoch` or before (it
    /// can be processed now), with its number for [`MlsStore::release`].
    pub fn next_held(
        &self,
        group_id: &[u8],
        epoch: u64,
    ) -> Result<Option<(i64, Vec<u8>)>, StorageError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT n, message FROM mls_held WHERE group_id = ?1 AND epoch <= ?2
                 ORDER BY epoch, n LIMIT 1",
                params![group_id, epoch_sql(epoch)?],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// A held message was processed (or refused): it goes.
    pub fn release(&self, n: i64) -> Result<(), StorageError> {
        self.lock()
            .execute("DELETE FROM mls_held WHERE n = ?1", [n])?;
        Ok(())
    }

    /// After a re-join by external commit (`Device::rejoin_accepted`),
    /// whose new state is written: the epochs of the group's earlier
    /// history (before `epoch`) go, and so do its held messages, which no
    /// key of the new history reads. Returns how many were held.
    pub fn rejoined(&self, group_id: &[u8], epoch: u64) -> Result<usize, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM mls_epoch WHERE group_id = ?1 AND epoch_id < ?2",
            params![group_id, epoch_sql(epoch)?],
        )?;
        let held = tx.execute("DELETE FROM mls_held WHERE group_id = ?1", [group_id])?;
        tx.commit()?;
        Ok(held)
    }
}
