//! The embedded SQLite backend: WAL journal, `synchronous=FULL` (a commit
//! survives power loss), one connection owned by the store thread.

use std::path::Path;

use blindrelay_wire::{MessageId, UserName};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    CommitOutcome, MessageStore, NewMessage, Quota, StoreError, StoredFragment, WriteOp,
    WriteResult,
};

/// SQLite store.
pub struct SqliteStore {
    db: Connection,
}

fn db_err(err: rusqlite::Error) -> StoreError {
    StoreError::backend(err)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`: its directory
    /// 0700, the database and SQLite's side files 0600 from the start; any
    /// found readable by others are tightened, with a warning.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let tightened =
            blindrelay_pki::files::private_database(path).map_err(|err| StoreError::Open {
                path: path.to_path_buf(),
                error: std::sync::Arc::new(err),
            })?;
        for p in tightened {
            tracing::warn!(target: crate::SECURITY, path = %p.display(),
                "store file was readable by other users of this machine; it is private now");
        }
        let db = Connection::open(path).map_err(|err| StoreError::Open {
            path: path.to_path_buf(),
            error: std::sync::Arc::new(err),
        })?;
        Self::init(db)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(db: Connection) -> Result<Self, StoreError> {
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA foreign_keys=ON;
             CREATE TABLE IF NOT EXISTS messages (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 recipient TEXT NOT NULL,
                 sender TEXT NOT NULL,
                 msg_id BLOB NOT NULL,
                 frag_index INTEGER NOT NULL,
                 body BLOB NOT NULL,
                 created_ms INTEGER NOT NULL,
                 UNIQUE (recipient, sender, msg_id, frag_index)
             );
             CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages(recipient, seq);
             CREATE INDEX IF NOT EXISTS messages_by_age ON messages(created_ms);
             CREATE TABLE IF NOT EXISTS mailboxes (
                 recipient TEXT PRIMARY KEY,
                 messages INTEGER NOT NULL,
                 bytes INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS users (
                 name TEXT PRIMARY KEY,
                 cert BLOB NOT NULL,
                 serial BLOB NOT NULL,
                 last_seen_ms INTEGER NOT NULL
             );",
        )
        .map_err(db_err)?;
        Ok(Self { db })
    }
}

fn insert_message(
    tx: &rusqlite::Transaction<'_>,
    m: &NewMessage,
    q: Quota,
) -> Result<CommitOutcome, StoreError> {
    // Every statement on this path is prepared once per connection
    // (`prepare_cached`): parsing SQL per message cost more than the writes.
    let exists: bool = tx
        .prepare_cached(
            "SELECT 1 FROM messages WHERE recipient = ?1 AND sender = ?2 AND msg_id = ?3 LIMIT 1",
        )
        .map_err(db_err)?
        .query_row(
            params![m.recipient.as_str(), m.sender.as_str(), &m.msg_id.0[..]],
            |_| Ok(()),
        )
        .optional()
        .map_err(db_err)?
        .is_some();
    if exists {
        return Ok(CommitOutcome::Duplicate);
    }
    let (count, bytes): (i64, i64) = tx
        .prepare_cached("SELECT messages, bytes FROM mailboxes WHERE recipient = ?1")
        .map_err(db_err)?
        .query_row(params![m.recipient.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(db_err)?
        .unwrap_or((0, 0));
    let size = m.bytes();
    if count as u64 + 1 > q.max_messages || bytes as u64 + size > q.max_bytes {
        return Ok(CommitOutcome::QuotaExceeded);
    }
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO messages (recipient, sender, msg_id, frag_index, body, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db_err)?;
    for (i, body) in m.fragments.iter().enumerate() {
        ins.execute(params![
            m.recipient.as_str(),
            m.sender.as_str(),
            &m.msg_id.0[..],
            i as i64,
            &body[..],
            m.created_ms as i64
        ])
        .map_err(db_err)?;
    }
    tx.prepare_cached(
        "INSERT INTO mailboxes (recipient, messages, bytes) VALUES (?1, 1, ?2)
         ON CONFLICT(recipient) DO UPDATE SET messages = messages + 1, bytes = bytes + ?2",
    )
    .map_err(db_err)?
    .execute(params![m.recipient.as_str(), size as i64])
    .map_err(db_err)?;
    Ok(CommitOutcome::Stored)
}

fn ack(
    tx: &rusqlite::Transaction<'_>,
    who: &UserName,
    ids: &[(UserName, MessageId)],
) -> Result<u64, StoreError> {
    let mut removed = 0u64;
    let mut delete = tx
        .prepare_cached(
            "DELETE FROM messages WHERE recipient = ?1 AND sender = ?2 AND msg_id = ?3
             RETURNING LENGTH(body)",
        )
        .map_err(db_err)?;
    let mut update = tx
        .prepare_cached(
            "UPDATE mailboxes SET messages = MAX(messages - 1, 0), bytes = MAX(bytes - ?2, 0) WHERE recipient = ?1",
        )
        .map_err(db_err)?;
    for (sender, id) in ids {
        // One statement deletes every fragment and reports their sizes.
        let sizes = delete
            .query_map(params![who.as_str(), sender.as_str(), &id.0[..]], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(db_err)?
            .collect::<Result<Vec<i64>, _>>()
            .map_err(db_err)?;
        if sizes.is_empty() {
            continue;
        }
        let bytes: i64 = sizes.iter().sum();
        update
            .execute(params![who.as_str(), bytes])
            .map_err(db_err)?;
        removed += 1;
    }
    Ok(removed)
}

fn recount(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "DELETE FROM mailboxes;
         INSERT INTO mailboxes (recipient, messages, bytes)
           SELECT recipient, COUNT(DISTINCT msg_id), SUM(LENGTH(body)) FROM messages GROUP BY recipient;",
    )
    .map_err(db_err)
}

impl MessageStore for SqliteStore {
    fn apply(&mut self, ops: &[WriteOp]) -> Result<Vec<WriteResult>, StoreError> {
        let tx = self.db.transaction().map_err(db_err)?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                WriteOp::Commit(msgs, q) => WriteResult::Committed(
                    msgs.iter().map(|m| insert_message(&tx, m, *q)).collect::<Result<_, _>>()?,
                ),
                WriteOp::Ack(who, ids) => WriteResult::Removed(ack(&tx, who, ids)?),
                WriteOp::Expire(before) => {
                    let n = tx
                        .execute("DELETE FROM messages WHERE created_ms < ?1", params![*before as i64])
                        .map_err(db_err)?;
                    if n > 0 {
                        recount(&tx)?;
                    }
                    WriteResult::Removed(n as u64)
                }
                WriteOp::UpsertUser { name, cert, serial, now_ms } => {
                    tx.execute(
                        "INSERT INTO users (name, cert, serial, last_seen_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(name) DO UPDATE SET cert = ?2, serial = ?3, last_seen_ms = ?4",
                        params![name.as_str(), cert, serial, *now_ms as i64],
                    )
                    .map_err(db_err)?;
                    WriteResult::Done
                }
                WriteOp::RemoveRevoked(serials) => {
                    let mut removed = Vec::new();
                    {
                        let mut q = tx.prepare_cached("SELECT name, serial FROM users").map_err(db_err)?;
                        let rows = q
                            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
                            .map_err(db_err)?;
                        for row in rows {
                            let (name, serial) = row.map_err(db_err)?;
                            if serials.contains(&serial)
                                && let Ok(n) = UserName::new(&name)
                            {
                                removed.push(n);
                            }
                        }
                    }
                    for n in &removed {
                        tx.execute("DELETE FROM users WHERE name = ?1", params![n.as_str()]).map_err(db_err)?;
                    }
                    WriteResult::UsersRemoved(removed)
                }
            });
        }
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    fn backlog(
        &mut self,
        recipient: &UserName,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredFragment>, StoreError> {
        let mut q = self
            .db
            .prepare_cached(
                "SELECT seq, body FROM messages WHERE recipient = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(db_err)?;
        let rows = q
            .query_map(params![recipient.as_str(), after, limit as i64], |r| {
                Ok(StoredFragment {
                    seq: r.get(0)?,
                    body: r.get(1)?,
                })
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    fn users(&mut self) -> Result<Vec<(UserName, Vec<u8>)>, StoreError> {
        let mut q = self
            .db
            .prepare_cached("SELECT name, cert FROM users ORDER BY name")
            .map_err(db_err)?;
        let rows = q
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, cert) = row.map_err(db_err)?;
            if let Ok(n) = UserName::new(&name) {
                out.push((n, cert));
            }
        }
        Ok(out)
    }

    fn totals(&mut self) -> Result<(u64, u64), StoreError> {
        self.db
            .query_row(
                "SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(bytes), 0) FROM mailboxes",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(db_err)
    }
}

/// Removes the expired and revoked, keeps the rest: unit tests of the backend.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Body;

    fn n(s: &str) -> UserName {
        UserName::new(s).unwrap()
    }

    fn msg(to: &str, id: u8, frags: usize, created: u64) -> NewMessage {
        NewMessage {
            recipient: n(to),
            sender: n("alice"),
            msg_id: MessageId([id; 16]),
            fragments: (0..frags)
                .map(|i| Body::from(vec![id, i as u8, 0, 0]))
                .collect::<Vec<_>>()
                .into(),
            created_ms: created,
        }
    }

    const Q: Quota = Quota {
        max_messages: 3,
        max_bytes: 1000,
    };

    #[test]
    fn commit_dedup_quota_backlog_ack_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut s = SqliteStore::open(&path).unwrap();
            let r = s
                .apply(&[WriteOp::Commit(
                    vec![msg("bob", 1, 2, 100), msg("bob", 2, 1, 200)],
                    Q,
                )])
                .unwrap();
            assert_eq!(
                r,
                vec![WriteResult::Committed(vec![
                    CommitOutcome::Stored,
                    CommitOutcome::Stored
                ])]
            );
            let r = s
                .apply(&[WriteOp::Commit(
                    vec![
                        msg("bob", 1, 2, 100),
                        msg("bob", 3, 1, 300),
                        msg("bob", 4, 1, 400),
                    ],
                    Q,
                )])
                .unwrap();
            assert_eq!(
                r,
                vec![WriteResult::Committed(vec![
                    CommitOutcome::Duplicate,
                    CommitOutcome::Stored,
                    CommitOutcome::QuotaExceeded
                ])]
            );
        }
        // Survives reopening.
        let mut s = SqliteStore::open(&path).unwrap();
        let b = s.backlog(&n("bob"), 0, 100).unwrap();
        let bodies: Vec<Vec<u8>> = b.iter().map(|f| f.body.clone()).collect();
        assert_eq!(
            bodies,
            vec![
                vec![1, 0, 0, 0],
                vec![1, 1, 0, 0],
                vec![2, 0, 0, 0],
                vec![3, 0, 0, 0]
            ]
        );
        let page = s.backlog(&n("bob"), b[1].seq, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].body, vec![2, 0, 0, 0]);
        assert_eq!(s.totals().unwrap(), (3, 16));
        // An acknowledgement naming another sender deletes nothing.
        let r = s
            .apply(&[WriteOp::Ack(
                n("bob"),
                vec![(n("mallory"), MessageId([1; 16]))],
            )])
            .unwrap();
        assert_eq!(r, vec![WriteResult::Removed(0)]);
        let r = s
            .apply(&[WriteOp::Ack(
                n("bob"),
                vec![
                    (n("alice"), MessageId([1; 16])),
                    (n("alice"), MessageId([9; 16])),
                ],
            )])
            .unwrap();
        assert_eq!(r, vec![WriteResult::Removed(1)]);
        assert_eq!(s.totals().unwrap(), (2, 8));
        let r = s.apply(&[WriteOp::Expire(250)]).unwrap();
        assert_eq!(r, vec![WriteResult::Removed(1)]);
        assert_eq!(s.totals().unwrap(), (1, 4));
        assert!(s.backlog(&n("alice"), 0, 10).unwrap().is_empty());
    }

    #[test]
    fn users_are_remembered_and_revoked_ones_removed() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.apply(&[
            WriteOp::UpsertUser {
                name: n("alice"),
                cert: vec![1],
                serial: vec![10],
                now_ms: 1,
            },
            WriteOp::UpsertUser {
                name: n("bob"),
                cert: vec![2],
                serial: vec![20],
                now_ms: 1,
            },
        ])
        .unwrap();
        assert_eq!(s.users().unwrap().len(), 2);
        let r = s
            .apply(&[WriteOp::RemoveRevoked([vec![20]].into_iter().collect())])
            .unwrap();
        assert_eq!(r, vec![WriteResult::UsersRemoved(vec![n("bob")])]);
        assert_eq!(s.users().unwrap(), vec![(n("alice"), vec![1])]);
    }
}
