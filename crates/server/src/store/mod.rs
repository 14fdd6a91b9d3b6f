//! Durable store-and-forward.
//!
//! Every message a user sends is committed, per recipient, to a
//! [`MessageStore`] before the sender is told it is stored, and deleted only
//! when the recipient acknowledges it; recipients who were offline get it
//! when they log in. The store also keeps the directory of every user who
//! has ever logged in (their certificates are public).
//!
//! The relay talks to the store only through [`StoreHandle`]: a bounded
//! queue served by one thread that applies queued writes in a single
//! transaction (group commit), so one fsync covers many messages. A backend
//! implements the small [`MessageStore`] trait; [`sqlite::SqliteStore`] is
//! the embedded one (WAL, `synchronous=FULL`). A PostgreSQL backend for
//! several relay nodes would implement the same trait.
//!
//! What is stored is only what the relay needs: the opaque envelopes (as
//! the routed frame bodies the relay received, byte for byte; the STORED
//! flag is set when they are delivered), recipient, message id, fragment
//! position and timestamps. Nothing in it can be decrypted by the relay.

pub mod sqlite;

use std::collections::HashSet;

use blindrelay_wire::{MessageId, UserName};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

/// Requests queued for the store thread before senders wait.
pub const STORE_QUEUE: usize = 4096;
/// Most requests applied in one transaction.
pub const MAX_BATCH: usize = 512;
/// Fragments returned per backlog page.
pub const BACKLOG_PAGE: usize = 256;

/// The error a backend reports, shared: a failed transaction fails every
/// write in it, and each waiter gets the same error.
pub type BackendError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Store failures.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store file or its directory cannot be opened.
    #[error("store {path}: {error}")]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// What failed.
        error: BackendError,
    },
    /// The backend failed.
    #[error("store: {0}")]
    Backend(BackendError),
    /// The store thread is gone.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// A backend failure.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(std::sync::Arc::new(e))
    }
}

/// A routed body as the relay received it, shared by every copy that holds
/// it (live deliveries, write-behind, the store's copies per recipient).
pub type Body = std::sync::Arc<[u8]>;

/// Per-recipient limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Messages stored for one recipient.
    pub max_messages: u64,
    /// Bytes stored for one recipient.
    pub max_bytes: u64,
}

/// One message for one recipient.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Who it is for.
    pub recipient: UserName,
    /// Who sent it (part of its identity in the store).
    pub sender: UserName,
    /// Its id.
    pub msg_id: MessageId,
    /// The routed bodies as received, one per fragment, in order; shared
    /// by the copies for each recipient, so a message to many recipients is
    /// held in memory once.
    pub fragments: std::sync::Arc<[Body]>,
    /// When the relay received it (Unix ms).
    pub created_ms: u64,
}

impl NewMessage {
    /// Bytes it occupies in the quota.
    pub fn bytes(&self) -> u64 {
        self.fragments.iter().map(|f| f.len() as u64).sum()
    }
}

/// What happened to one [`NewMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed.
    Stored,
    /// Already stored (a resend); nothing changed.
    Duplicate,
    /// The recipient's quota would be exceeded; not stored.
    QuotaExceeded,
}

/// A stored fragment, as the backlog returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFragment {
    /// Store order.
    pub seq: i64,
    /// The routed body to deliver (its STORED flag is set when the DELIVER
    /// frame is written).
    pub body: Vec<u8>,
}

/// A write, applied with others in one transaction.
#[derive(Debug)]
pub enum WriteOp {
    /// Commit messages (all-or-nothing per message).
    Commit(Vec<NewMessage>, Quota),
    /// The recipient has these messages (sender, id): delete them.
    Ack(UserName, Vec<(UserName, MessageId)>),
    /// Delete messages created before this time (Unix ms).
    Expire(u64),
    /// Record a user's certificate (at the first login with it; the
    /// `last_seen_ms` column holds when it was recorded).
    UpsertUser {
        /// Name.
        name: UserName,
        /// Certificate DER.
        cert: Vec<u8>,
        /// Its serial (normalised).
        serial: Vec<u8>,
        /// Now.
        now_ms: u64,
    },
    /// Remove users whose certificate serial is revoked.
    RemoveRevoked(HashSet<Vec<u8>>),
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// For `Commit`: one outcome per message.
    Committed(Vec<CommitOutcome>),
    /// For `Ack`, `Expire`: messages removed.
    Removed(u64),
    /// For `RemoveRevoked`: users removed.
    UsersRemoved(Vec<UserName>),
    /// For `UpsertUser`.
    Done,
}

/// A storage backend. Methods are called from the store thread only.
pub trait MessageStore: Send + 'static {
    /// Applies `ops` in one durable transaction: when it returns `Ok`, every
    /// result is committed.
    fn apply(&mut self, ops: &[WriteOp]) -> Result<Vec<WriteResult>, StoreError>;
    /// Up to `limit` fragments for `recipient` with `seq > after`, in order.
    fn backlog(
        &mut self,
        recipient: &UserName,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredFragment>, StoreError>;
    /// Every known user and certificate.
    fn users(&mut self) -> Result<Vec<(UserName, Vec<u8>)>, StoreError>;
    /// Messages and bytes stored in total (for tests and benchmarks).
    fn totals(&mut self) -> Result<(u64, u64), StoreError>;
}

/// A user of the directory: name and certificate (DER).
pub type KnownUser = (UserName, Vec<u8>);

/// Where the store thread sends a result.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Request {
    Write(WriteOp, Option<Reply<WriteResult>>),
    Backlog(UserName, i64, Reply<Vec<StoredFragment>>),
    Users(Reply<Vec<KnownUser>>),
    Totals(Reply<(u64, u64)>),
}

/// The relay's handle to the store thread.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Request>,
}

impl StoreHandle {
    /// Starts the store thread over `store`.
    pub fn spawn(mut store: impl MessageStore) -> Self {
        let (tx, mut rx) = mpsc::channel::<Request>(STORE_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("blindrelay-store".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    serve_batch(&mut store, batch);
                }
            });
        if let Err(e) = spawned {
            error!(error = %e, "cannot start the store thread");
        }
        Self { tx }
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a write and waits for its commit.
    pub async fn write(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        self.request(|tx| Request::Write(op, Some(tx))).await
    }

    /// Queues a write and returns a receiver for its result, so the caller
    /// can go on (it still waits for room in the queue: backpressure).
    pub async fn write_pipelined(
        &self,
        op: WriteOp,
    ) -> Result<oneshot::Receiver<Result<WriteResult, StoreError>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Write(op, Some(tx)))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Queues a write whose result nobody waits for.
    pub async fn write_detached(&self, op: WriteOp) -> Result<(), StoreError> {
        self.tx
            .send(Request::Write(op, None))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// A page of `recipient`'s backlog after `after`.
    pub async fn backlog(
        &self,
        recipient: UserName,
        after: i64,
    ) -> Result<Vec<StoredFragment>, StoreError> {
        self.request(|tx| Request::Backlog(recipient, after, tx))
            .await
    }

    /// Every known user.
    pub async fn users(&self) -> Result<Vec<(UserName, Vec<u8>)>, StoreError> {
        self.request(Request::Users).await
    }

    /// Messages and bytes stored.
    pub async fn totals(&self) -> Result<(u64, u64), StoreError> {
        self.request(Request::Totals).await
    }
}

fn serve_batch(store: &mut impl MessageStore, batch: Vec<Request>) {
    let mut writes = Vec::new();
    let mut waiters = Vec::new();
    let mut reads = Vec::new();
    for r in batch {
        match r {
            Request::Write(op, reply) => {
                writes.push(op);
                waiters.push(reply);
            }
            other => reads.push(other),
        }
    }
    if !writes.is_empty() {
        match store.apply(&writes) {
            Ok(results) => {
                for (w, r) in waiters.into_iter().zip(results) {
                    if let Some(w) = w {
                        let _ = w.send(Ok(r));
                    }
                }
            }
            Err(e) => {
                error!(error = %e, ops = writes.len(), "store transaction failed; nothing in it was committed");
                for w in waiters.into_iter().flatten() {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
    for r in reads {
        match r {
            Request::Backlog(who, after, tx) => {
                let _ = tx.send(store.backlog(&who, after, BACKLOG_PAGE));
            }
            Request::Users(tx) => {
                let _ = tx.send(store.users());
            }
            Request::Totals(tx) => {
                let _ = tx.send(store.totals());
            }
            Request::Write(..) => {}
        }
    }
}

/// Logs a failed detached write.
pub(crate) fn log_failure(what: &str, e: &StoreError) {
    warn!(error = %e, "store: {what} failed");
}
