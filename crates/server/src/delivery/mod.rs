//! Everything that happens to a message after the registry routed it.
//!
//! * [`InFlight`]: a session's finished messages until they are *settled*:
//!   every copy either acknowledged by its recipient or committed to the
//!   store. A message that reached every recipient live is first held in
//!   memory ([`writebehind`]) for `write_behind_ms`; the rest, and whatever
//!   the hold leaves unacknowledged, is committed. The sender hears
//!   QUOTA_EXCEEDED per full mailbox, then STORED, only once its message is
//!   settled.
//! * [`acknowledge`]: a recipient's ACK settles held copies in memory and
//!   deletes the others from the store.
//! * [`backlog`]: at login, the identity's stored messages and the copies
//!   held for it, streamed with backpressure.
//! * [`sweep_expired`]: stored messages older than `store_ttl_ms` go.

pub(crate) mod backlog;
pub(crate) mod writebehind;

use std::sync::Arc;
use std::time::Duration;

use blindrelay_wire::{MessageId, StatusKind, UserName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tracing::{info, warn};

use crate::outbound::{Outbound, answer};
use crate::shared::Shared;
use crate::store::{Body, CommitOutcome, NewMessage, Quota, WriteOp, WriteResult, log_failure};

/// A message whose last fragment has been routed.
pub(crate) struct Finished {
    pub msg_id: MessageId,
    /// Recipients the relay knows (online or not): the message is kept for
    /// them until they acknowledge it.
    pub recipients: Vec<UserName>,
    /// Every one of them got it live on at least one session.
    pub all_live: bool,
    /// The bodies of its fragments as received, in order.
    pub bodies: Vec<Body>,
}

/// The client stopped reading the answers to its own frames.
#[derive(Debug)]
pub(crate) struct Stalled;

/// One session's finished messages on their way to being settled.
pub(crate) struct InFlight {
    identity: UserName,
    tx: mpsc::Sender<Outbound>,
    /// Bounds the messages waiting for their commit or hold.
    permits: Arc<Semaphore>,
    max: usize,
    /// Tells held messages to go to the store now.
    shutdown: broadcast::Receiver<()>,
    /// Held by every task that still has a message to commit, so that a
    /// graceful shutdown waits for them.
    done: mpsc::Sender<()>,
}

impl InFlight {
    pub(crate) fn new(
        identity: UserName,
        tx: mpsc::Sender<Outbound>,
        max: usize,
        shutdown: broadcast::Receiver<()>,
        done: mpsc::Sender<()>,
    ) -> Self {
        Self {
            identity,
            tx,
            permits: Arc::new(Semaphore::new(max)),
            max,
            shutdown,
            done,
        }
    }

    /// Hands a finished message to write-behind or the store; its statuses
    /// follow when it is settled. Waits only for an in-flight permit and
    /// room in the store queue, never for the commit.
    pub(crate) async fn settle(&self, shared: &Arc<Shared>, m: Finished) -> Result<(), Stalled> {
        let cfg = &shared.config;
        if m.recipients.is_empty() || m.bodies.is_empty() {
            // Nobody to keep it for (every recipient unknown): say so, so
            // that the sender stops resending it.
            let stored = Outbound::Status(m.msg_id, StatusKind::Stored { recipients: 0 });
            return if answer(
                &self.tx,
                stored,
                Duration::from_millis(cfg.write_timeout_ms),
            )
            .await
            {
                Ok(())
            } else {
                Err(Stalled)
            };
        }
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Ok(());
        };
        let job = Copies {
            shared: shared.clone(),
            sender: self.identity.clone(),
            msg_id: m.msg_id,
            created_ms: blindrelay_net::unix_ms(),
            bodies: m.bodies.into(),
            quota: Quota {
                max_messages: cfg.quota_messages,
                max_bytes: cfg.quota_bytes,
            },
            tx: self.tx.clone(),
        };
        let held = if m.all_live && cfg.write_behind_ms > 0 {
            shared
                .write_behind
                .hold(&self.identity, m.msg_id, &m.recipients, job.bodies.clone())
        } else {
            None
        };
        let done = self.done.clone();
        match held {
            None => {
                // Queued now, in the order the session read the messages.
                let commit = match shared
                    .store
                    .write_pipelined(WriteOp::Commit(
                        job.for_recipients(&m.recipients),
                        job.quota,
                    ))
                    .await
                {
                    Ok(rx) => rx,
                    Err(e) => {
                        log_failure("storing a message", &e);
                        return Ok(());
                    }
                };
                tokio::spawn(async move {
                    let _permit: OwnedSemaphorePermit = permit;
                    let _done = done;
                    let outcomes = match commit.await {
                        Ok(r) => job.outcomes(r),
                        Err(_) => return,
                    };
                    job.report(m.recipients, outcomes, 0).await;
                });
            }
            Some(held) => {
                let mut shutdown = self.shutdown.resubscribe();
                let grace = Duration::from_millis(cfg.write_behind_ms);
                tokio::spawn(async move {
                    let _permit: OwnedSemaphorePermit = permit;
                    let _done = done;
                    tokio::select! {
                        _ = held.all_acked() => {}
                        _ = tokio::time::sleep(grace) => {}
                        _ = shutdown.recv() => {}
                    }
                    let left = job.shared.write_behind.release(
                        &held,
                        &job.sender,
                        job.msg_id,
                        &m.recipients,
                    );
                    let acked = m.recipients.len().saturating_sub(left.len());
                    let outcomes = if left.is_empty() {
                        Some(Vec::new())
                    } else {
                        let r = job
                            .shared
                            .store
                            .write(WriteOp::Commit(job.for_recipients(&left), job.quota))
                            .await;
                        job.outcomes(r)
                    };
                    job.report(left, outcomes, acked).await;
                });
            }
        }
        Ok(())
    }

    /// Lets go of the session's queue and returns what the server's
    /// graceful shutdown waits for: the session holds it until its goodbye
    /// is written.
    pub(crate) fn into_guard(self) -> mpsc::Sender<()> {
        self.done
    }

    /// Waits (at most `limit`) until every message in flight is settled:
    /// at shutdown, held messages go to the store at once, and their STORED
    /// should leave before the goodbye instead of being lost behind it.
    pub(crate) async fn wait_all(&self, limit: Duration) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(limit, self.permits.acquire_many(all)).await;
    }
}

/// A finished message's copies, one per recipient, until they are settled.
struct Copies {
    shared: Arc<Shared>,
    sender: UserName,
    msg_id: MessageId,
    created_ms: u64,
    /// Shared by every recipient's copy: a message to many recipients is in
    /// memory once.
    bodies: Arc<[Body]>,
    quota: Quota,
    /// The sender's queue, for its statuses.
    tx: mpsc::Sender<Outbound>,
}

impl Copies {
    /// One store record per recipient (the bodies are shared, not copied).
    fn for_recipients(&self, recipients: &[UserName]) -> Vec<NewMessage> {
        recipients
            .iter()
            .map(|r| NewMessage {
                recipient: r.clone(),
                sender: self.sender.clone(),
                msg_id: self.msg_id,
                fragments: self.bodies.clone(),
                created_ms: self.created_ms,
            })
            .collect()
    }

    /// The per-copy outcomes of a commit, or `None` (logged) if it failed.
    fn outcomes(
        &self,
        r: Result<WriteResult, crate::store::StoreError>,
    ) -> Option<Vec<CommitOutcome>> {
        let (identity, msg_id) = (&self.sender, self.msg_id);
        match r {
            Ok(WriteResult::Committed(o)) => Some(o),
            Ok(_) => None,
            Err(e) => {
                warn!(%identity, msg = %msg_id.to_hex(), error = %e, "message not stored");
                None
            }
        }
    }

    /// Tells the sender: QUOTA_EXCEEDED per full mailbox, then STORED with
    /// the copies that are safe (committed or acknowledged). Nothing if the
    /// commit failed: the sender's outbox will send it again.
    async fn report(
        &self,
        committed_for: Vec<UserName>,
        outcomes: Option<Vec<CommitOutcome>>,
        acked: usize,
    ) {
        let Some(outcomes) = outcomes else { return };
        let (identity, msg_id) = (&self.sender, self.msg_id);
        let mut stored = u16::try_from(acked).unwrap_or(u16::MAX);
        let mut frames = Vec::new();
        for (r, o) in committed_for.into_iter().zip(outcomes) {
            match o {
                CommitOutcome::Stored | CommitOutcome::Duplicate => {
                    stored = stored.saturating_add(1)
                }
                CommitOutcome::QuotaExceeded => {
                    info!(%identity, recipient = %r, "recipient's mailbox is full");
                    frames.push(Outbound::Status(msg_id, StatusKind::QuotaExceeded(r)));
                }
            }
        }
        frames.push(Outbound::Status(
            msg_id,
            StatusKind::Stored { recipients: stored },
        ));
        for f in frames {
            let _ = self.tx.send(f).await;
        }
    }
}

/// `who` acknowledged these messages: held copies are settled in memory;
/// only the rest can be in the store. (A resend held while an earlier copy
/// of it is stored leaves that copy to be delivered again at the next
/// login, where the replay cache drops it.)
pub(crate) async fn acknowledge(shared: &Shared, who: &UserName, ids: Vec<(UserName, MessageId)>) {
    let rest = shared.write_behind.acked(who, ids);
    if !rest.is_empty()
        && let Err(e) = shared
            .store
            .write_detached(WriteOp::Ack(who.clone(), rest))
            .await
    {
        log_failure("acknowledgement", &e);
    }
}

/// Deletes expired stored messages every `store_sweep_ms`.
pub(crate) async fn sweep_expired(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(shared.config.store_sweep_ms));
    loop {
        tick.tick().await;
        let before = blindrelay_net::unix_ms().saturating_sub(shared.config.store_ttl_ms);
        match shared.store.write(WriteOp::Expire(before)).await {
            Ok(WriteResult::Removed(n)) if n > 0 => {
                info!(removed = n, "expired stored messages deleted");
            }
            Ok(_) => {}
            Err(e) => log_failure("expiry", &e),
        }
    }
}
