//! One authenticated connection.
//!
//! After the handshake the session takes its identity from the client
//! certificate's CN, registers with the [`Registry`], sends `Welcome` and the
//! directory, and then reads frames until the client leaves, breaks a rule,
//! or the server shuts down. A separate writer task drains the session's
//! bounded queue to the socket, so a client that stops reading fills its own
//! queue and is disconnected; nobody else waits for it.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use blindrelay_net::{FrameReader, FrameWriter, NetError, WRITE_BATCH_FRAMES};
use blindrelay_wire::{
    Frame, FrameType, GoodbyeCode, Message, MessageId, ROUTED_RECEIPT, ROUTED_STORED, Routed,
    StatusKind, Target, UserName,
};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::SECURITY;
use crate::config::Config;
use crate::outbound::{Outbound, encode};
use crate::registry::{Budget, Kill, Refused};
use crate::server::Shared;
use crate::store::{NewMessage, PersistOutcome, Quota, WriteOp, WriteResult};

/// Queue entries the writer takes at once (frames are then written
/// [`WRITE_BATCH_FRAMES`] per system call); statuses among them are packed.
pub const WRITE_BATCH_ENTRIES: usize = 64;

/// Tracks the fragments of the message in progress on one connection.
/// Fragments of a message must arrive in order, back to back, with the same
/// id and recipients; a new message may only start when the previous one is
/// complete. This is what lets the rate limit count messages (first
/// fragments) while the cost of one message stays bounded by
/// `MAX_FRAGMENTS` frames.
#[derive(Default)]
pub(crate) struct FragmentTracker {
    current: Option<(MessageId, u16, u16, Target)>,
}

impl FragmentTracker {
    /// Checks the next fragment; `Err` names the violation.
    pub(crate) fn accept(&mut self, r: &Routed) -> Result<(), &'static str> {
        let pos = r.fragment;
        match self.current.take() {
            None => {
                if !pos.is_first() {
                    return Err("continuation fragment without a first fragment");
                }
            }
            Some((id, next, count, target)) => {
                if r.msg_id != id
                    || pos.index() != next
                    || pos.count() != count
                    || r.target != target
                {
                    return Err("fragment out of sequence");
                }
            }
        }
        if !pos.is_last() {
            self.current = Some((r.msg_id, pos.index() + 1, pos.count(), r.target.clone()));
        }
        Ok(())
    }
}

enum End {
    /// Client said goodbye or closed the stream.
    Normal,
    /// Closed for cause; the client is told why.
    Cause(GoodbyeCode, String),
    /// Transport failed; nothing more can be sent.
    Broken(String),
}

pub(crate) async fn run(
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: broadcast::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    let cfg = &shared.config;
    let (_, conn) = stream.get_ref();
    let Some(cert) = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
    else {
        warn!(target: SECURITY, %peer, "no client certificate after handshake, closing");
        return;
    };
    let identity = match blindrelay_pki::identity_from_cert(&cert) {
        Ok(n) => n,
        Err(e) => {
            warn!(target: SECURITY, %peer, reason = %e, "certificate has no usable identity, closing");
            return;
        }
    };
    let serial = blindrelay_pki::CertInfo::from_der(&cert)
        .map(|i| i.serial)
        .unwrap_or_default();

    let (rd, wr) = tokio::io::split(stream);
    let (backlog_tx, backlog_rx) = mpsc::channel::<Outbound>(cfg.backlog_queue_frames);
    let (kill_tx, mut kill_rx) = watch::channel::<Option<Kill>>(None);
    let kill_tx = Arc::new(kill_tx);
    let welcome = Message::Welcome {
        identity: identity.clone(),
        rate_max: cfg.rate_max_messages,
        rate_window_ms: u32::try_from(cfg.rate_window_ms).unwrap_or(u32::MAX),
        keepalive_ms: u32::try_from(cfg.keepalive_ms).unwrap_or(u32::MAX),
        max_fragments: blindrelay_wire::MAX_FRAGMENTS,
        store_ttl_s: u32::try_from(cfg.store_ttl_ms / 1000).unwrap_or(u32::MAX),
    };
    // Messages held back from the store for this identity (see
    // `writebehind`), taken before the login: anything routed after it
    // reaches this session live.
    let held = shared.write_behind.held_for(&identity);
    let login = shared.registry.login(
        &identity,
        cert.clone(),
        serial.clone(),
        &welcome,
        kill_tx.clone(),
        Instant::now(),
    );
    let writer_for = |rx, backlog_rx| {
        tokio::spawn(write_loop(
            FrameWriter::new(wr, Config::d(cfg.write_timeout_ms)),
            rx,
            backlog_rx,
            kill_tx.clone(),
        ))
    };
    let (login, writer) = match login {
        Ok(l) => {
            let crate::registry::Login {
                id,
                tx,
                rx,
                new_cert,
            } = l;
            let writer = writer_for(rx, backlog_rx);
            ((id, tx, new_cert), writer)
        }
        Err(refused) => {
            let (tx, rx) = mpsc::channel::<Outbound>(2);
            let writer = writer_for(rx, backlog_rx);
            let bye = match refused {
                Refused::CoolDown(d) => {
                    warn!(target: SECURITY, %identity, %peer,
                        "refused: identity is in its rate-limit cool-down (restarted for {} s)", d.as_secs());
                    Message::Goodbye {
                        code: GoodbyeCode::CoolDown,
                        reason: format!("rate limit cool-down, retry in {} s", d.as_secs()),
                    }
                }
                Refused::Revoked => {
                    warn!(target: SECURITY, %identity, %peer,
                        "refused: certificate revoked (handshake verified against an older CRL)");
                    Message::Goodbye {
                        code: GoodbyeCode::Revoked,
                        reason: "certificate revoked".into(),
                    }
                }
            };
            drop(backlog_tx);
            finish(tx, writer, &bye, cfg).await;
            return;
        }
    };
    let (login_id, tx, new_cert) = login;
    // The directory survives restarts: record a new user or a changed
    // certificate (a login with the known, committed certificate writes
    // nothing; the profile of back-to-back logins showed one store
    // transaction each). Marked committed only once it is, so that a
    // failed write is retried at the next login.
    if new_cert {
        let (shared, identity, cert) = (shared.clone(), identity.clone(), cert.clone());
        tokio::spawn(async move {
            let op = WriteOp::UpsertUser {
                name: identity.clone(),
                cert: cert.clone(),
                serial,
                now_ms: crate::server::unix_ms(),
            };
            match shared.store.write(op).await {
                Ok(_) => shared.registry.cert_persisted(&identity, &cert),
                Err(e) => crate::store::log_failure("recording the user", &e),
            }
        });
    }
    info!(%identity, %peer, session = login_id, "connected");

    let backlog = tokio::spawn(stream_backlog(
        shared.clone(),
        identity.clone(),
        held,
        backlog_tx,
    ));
    let mut reader = FrameReader::new(rd);
    let mut state = SessionState {
        identity: identity.clone(),
        id: login_id,
        peer,
        tracker: FragmentTracker::default(),
        spoof_strikes: 0,
        current: Vec::new(),
        inflight: Arc::new(tokio::sync::Semaphore::new(cfg.max_inflight_stores)),
        shutdown: shutdown.resubscribe(),
        done,
    };
    let end = loop {
        tokio::select! {
            biased;
            _ = shutdown.recv() => {
                break End::Cause(GoodbyeCode::Shutdown, "server shutting down".into());
            }
            changed = kill_rx.changed() => {
                let kill = if changed.is_ok() { kill_rx.borrow().clone() } else { None };
                match kill {
                    Some(k) => break End::Cause(k.code, k.reason),
                    None => continue,
                }
            }
            r = reader.read_frame(Config::d(cfg.idle_timeout_ms), Config::d(cfg.frame_timeout_ms)) => {
                match r {
                    Ok(None) => break End::Normal,
                    Ok(Some(f)) => match Message::from_frame(&f) {
                        Ok(msg) => {
                            if let Some(e) = state.handle(msg, &shared, &tx).await {
                                break e;
                            }
                        }
                        Err(e) => {
                            warn!(target: SECURITY, %identity, %peer, reason = %e, "malformed message, disconnecting");
                            break End::Cause(GoodbyeCode::ProtocolViolation, format!("malformed message: {e}"));
                        }
                    },
                    Err(NetError::Idle) => {
                        info!(%identity, %peer, "idle timeout, disconnecting");
                        break End::Cause(GoodbyeCode::IdleTimeout, "nothing received within the idle timeout".into());
                    }
                    Err(NetError::Wire(e)) => {
                        warn!(target: SECURITY, %identity, %peer, reason = %e, "invalid frame, disconnecting");
                        break End::Cause(GoodbyeCode::ProtocolViolation, format!("invalid frame: {e}"));
                    }
                    Err(NetError::Truncated) => {
                        warn!(target: SECURITY, %identity, %peer, "truncated frame, disconnecting");
                        break End::Broken("truncated frame".into());
                    }
                    Err(e) => break End::Broken(e.to_string()),
                }
            }
        }
    };

    shared.registry.logout(&identity, login_id);
    backlog.abort();
    if let End::Cause(GoodbyeCode::Shutdown, _) = &end {
        // Held and committing messages go to the store at once on shutdown;
        // wait (bounded) for them, so that their STATUS stored leaves
        // before the goodbye instead of being lost behind it.
        let all = u32::try_from(cfg.max_inflight_stores).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(
            Config::d(cfg.shutdown_grace_ms / 2),
            state.inflight.acquire_many(all),
        )
        .await;
    }
    match end {
        End::Normal => {
            info!(%identity, %peer, session = login_id, "disconnected");
            drop(tx);
            let _ = tokio::time::timeout(Config::d(cfg.write_timeout_ms), writer).await;
        }
        End::Cause(code, reason) => {
            info!(%identity, %peer, session = login_id, ?code, %reason, "disconnected by the server");
            let bye = Message::Goodbye { code, reason };
            finish(tx, writer, &bye, cfg).await;
        }
        End::Broken(reason) => {
            info!(%identity, %peer, session = login_id, %reason, "connection lost");
            writer.abort();
        }
    }
}

/// Queues a goodbye, closes the queue and waits (bounded) for the writer to
/// drain it and send TLS close_notify.
async fn finish(
    tx: mpsc::Sender<Outbound>,
    writer: tokio::task::JoinHandle<()>,
    bye: &Message,
    cfg: &Config,
) {
    if let Some(f) = encode(bye) {
        let _ = tx.try_send(f);
    }
    drop(tx);
    let abort = writer.abort_handle();
    if tokio::time::timeout(Config::d(cfg.write_timeout_ms), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// Streams the identity's stored messages (oldest first) into the backlog
/// queue. The queue is bounded and awaited, so a backlog of any size costs a
/// fixed amount of memory and never counts against the live queue.
async fn stream_backlog(
    shared: Arc<Shared>,
    identity: UserName,
    held: Vec<Arc<[Vec<u8>]>>,
    tx: mpsc::Sender<Outbound>,
) {
    let mut after = 0i64;
    let mut sent = 0usize;
    loop {
        let page = match shared.store.backlog(identity.clone(), after).await {
            Ok(p) => p,
            Err(e) => {
                warn!(%identity, error = %e, "cannot read the backlog");
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for f in page {
            if !send_stored(&tx, f.body).await {
                return;
            }
            sent += 1;
        }
    }
    // Messages held back from the store (see `writebehind`) that reached
    // this identity's other sessions before it logged in and are not
    // acknowledged yet belong to the backlog too. A copy committed while
    // the store pages were read can arrive twice; the client's replay
    // cache drops the second.
    for bodies in held {
        for body in bodies.iter() {
            if !send_stored(&tx, body.clone()).await {
                return;
            }
            sent += 1;
        }
    }
    if sent > 0 {
        info!(%identity, fragments = sent, "delivered the stored backlog");
    }
}

/// Queues one stored routed body as a DELIVER frame (waiting for room);
/// false once the session is gone. A body that does not fit a frame
/// (impossible for what the relay stored) is skipped.
async fn send_stored(tx: &mpsc::Sender<Outbound>, body: Vec<u8>) -> bool {
    let Ok(frame) = Frame::new(FrameType::Deliver, body) else {
        return true;
    };
    tx.send(Outbound::Frame(Arc::from(frame.encode())))
        .await
        .is_ok()
}

async fn write_loop<W>(
    mut writer: FrameWriter<W>,
    mut rx: mpsc::Receiver<Outbound>,
    mut backlog: mpsc::Receiver<Outbound>,
    kill: Arc<watch::Sender<Option<Kill>>>,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut live: Vec<Outbound> = Vec::new();
    let mut old: Vec<Outbound> = Vec::new();
    let mut frames = Vec::new();
    let mut backlog_open = true;
    loop {
        // Live entries first; the backlog fills the gaps. Up to
        // WRITE_BATCH_ENTRIES at a time, so that statuses waiting together
        // are packed into one frame.
        let batch = tokio::select! {
            biased;
            n = rx.recv_many(&mut live, WRITE_BATCH_ENTRIES) => {
                if n == 0 {
                    break;
                }
                &mut live
            }
            n = backlog.recv_many(&mut old, WRITE_BATCH_FRAMES), if backlog_open => {
                if n == 0 {
                    backlog_open = false;
                    continue;
                }
                &mut old
            }
        };
        crate::outbound::pack(batch, &mut frames);
        // An idle session keeps no batch-sized buffers.
        batch.shrink_to(WRITE_BATCH_FRAMES);
        // The write timeout applies per WRITE_BATCH_FRAMES frames, as the
        // limit a client must keep up with does not depend on how many
        // entries were waiting.
        let mut written = Ok(());
        for chunk in frames.chunks(WRITE_BATCH_FRAMES) {
            written = writer.write_batch(chunk).await;
            if written.is_err() {
                break;
            }
        }
        frames.clear();
        frames.shrink_to(WRITE_BATCH_FRAMES);
        if let Err(e) = written {
            let reason = match e {
                NetError::WriteTimeout => "client not reading (write timeout)".to_string(),
                other => other.to_string(),
            };
            kill.send_replace(Some(Kill {
                code: GoodbyeCode::TooSlow,
                reason,
            }));
            return;
        }
    }
    let _ = writer.shutdown().await;
}

struct SessionState {
    identity: UserName,
    id: u64,
    peer: SocketAddr,
    tracker: FragmentTracker,
    spoof_strikes: u32,
    /// Fragments of the message in progress, as they will be stored.
    current: Vec<Vec<u8>>,
    /// Bounds the messages waiting for their store commit.
    inflight: Arc<tokio::sync::Semaphore>,
    /// Tells held messages to go to the store now.
    shutdown: broadcast::Receiver<()>,
    /// Held by every task that still has a message to commit, so that a
    /// graceful shutdown waits for them.
    done: mpsc::Sender<()>,
}

/// Queues an answer to the client's own request (pong, status). Unlike
/// traffic from other users, it waits for room: the session stops reading
/// this client until it reads its answers (flow control), and only a client
/// that does not read for the write timeout is dropped.
async fn answer(tx: &mpsc::Sender<Outbound>, f: Outbound, cfg: &Config) -> bool {
    matches!(
        tokio::time::timeout(Config::d(cfg.write_timeout_ms), tx.send(f)).await,
        Ok(Ok(()))
    )
}

/// The routed body as the store keeps it (with the STORED flag).
fn stored_body(r: &Routed) -> Option<Vec<u8>> {
    let mut r = r.clone();
    r.flags |= ROUTED_STORED;
    Message::Deliver(r)
        .to_frame()
        .ok()
        .map(|f| f.body().to_vec())
}

impl SessionState {
    /// Handles one message; `Some` ends the session.
    async fn handle(
        &mut self,
        msg: Message,
        shared: &Arc<Shared>,
        tx: &mpsc::Sender<Outbound>,
    ) -> Option<End> {
        let cfg = &shared.config;
        let (identity, peer) = (&self.identity, self.peer);
        match msg {
            Message::Ping(v) => {
                if let Some(f) = encode(&Message::Pong(v))
                    && !answer(tx, f, cfg).await
                {
                    return Some(End::Cause(
                        GoodbyeCode::TooSlow,
                        "client not reading its answers".into(),
                    ));
                }
                None
            }
            Message::Pong(_) => None,
            Message::Goodbye { .. } => Some(End::Normal),
            Message::Ack(ids) => {
                if !shared.registry.allow(identity, Budget::Ack, Instant::now()) {
                    warn!(target: SECURITY, %identity, %peer,
                        "DoS attack detected: more than {} acknowledgements in {} ms; forced disconnection",
                        cfg.ack_rate_max, cfg.rate_window_ms);
                    shared.registry.start_cooldown(identity, Instant::now());
                    return Some(End::Cause(
                        GoodbyeCode::RateLimited,
                        "acknowledgement rate exceeded".into(),
                    ));
                }
                // Held copies are settled in memory; only the rest can be
                // in the store. (A resend held while an earlier copy of it
                // is stored leaves that copy to be delivered again at the
                // next login, where the replay cache drops it.)
                let rest = shared.write_behind.acked(identity, ids);
                if !rest.is_empty()
                    && let Err(e) = shared
                        .store
                        .write_detached(WriteOp::Ack(identity.clone(), rest))
                        .await
                {
                    crate::store::log_failure("acknowledgement", &e);
                }
                None
            }
            Message::Send(routed) => {
                if routed.sender != *identity {
                    self.spoof_strikes += 1;
                    warn!(target: SECURITY, %identity, %peer, claimed = %routed.sender,
                        strike = self.spoof_strikes,
                        "spoofing detected: {identity} is trying to send as {}; dropped", routed.sender);
                    if self.spoof_strikes >= cfg.spoof_strikes {
                        return Some(End::Cause(
                            GoodbyeCode::Spoofing,
                            "repeated forged sender".into(),
                        ));
                    }
                    return None;
                }
                if let Err(why) = self.tracker.accept(&routed) {
                    warn!(target: SECURITY, %identity, %peer, reason = why, "protocol violation, disconnecting");
                    return Some(End::Cause(GoodbyeCode::ProtocolViolation, why.into()));
                }
                let receipt = routed.flags & ROUTED_RECEIPT != 0;
                let bad_flags = if routed.flags & ROUTED_STORED != 0 {
                    Some("the stored flag is set by the relay only")
                } else if receipt
                    && (routed.fragment.count() != 1 || routed.target == Target::Everyone)
                {
                    Some("a receipt is one fragment to named users")
                } else {
                    None
                };
                if let Some(why) = bad_flags {
                    warn!(target: SECURITY, %identity, %peer, reason = why, "protocol violation, disconnecting");
                    return Some(End::Cause(GoodbyeCode::ProtocolViolation, why.into()));
                }
                let now = Instant::now();
                let budget = if receipt {
                    Budget::Receipt
                } else {
                    Budget::Message
                };
                if routed.fragment.is_first() && !shared.registry.allow(identity, budget, now) {
                    let max = if receipt {
                        cfg.receipt_rate_max
                    } else {
                        cfg.rate_max_messages
                    };
                    warn!(target: SECURITY, %identity, %peer,
                        "DoS attack detected: more than {max} {} in {} ms; forced disconnection and {} ms cool-down",
                        if receipt { "receipts" } else { "messages" }, cfg.rate_window_ms, cfg.cooldown_ms);
                    shared.registry.start_cooldown(identity, now);
                    return Some(End::Cause(
                        GoodbyeCode::RateLimited,
                        "rate limit exceeded".into(),
                    ));
                }
                if routed.fragment.is_first() {
                    self.current.clear();
                }
                if let Some(b) = stored_body(&routed) {
                    self.current.push(b);
                }
                let msg_id = routed.msg_id;
                let last = routed.fragment.is_last();
                if cfg.verbose {
                    let n = routed.payload.len().min(30);
                    let preview = base64::engine::general_purpose::STANDARD
                        .encode(routed.payload.get(..n).unwrap_or_default());
                    info!(%identity, msg = %msg_id.to_hex(), fragment = routed.fragment.index(),
                        "[SERVER SEES] {preview}...");
                }
                if let Some(obs) = shared.observer.get() {
                    let _ = obs.try_send(crate::server::Observed {
                        sender: routed.sender.clone(),
                        target: routed.target.clone(),
                        msg_id,
                        fragment: routed.fragment,
                        payload: routed.payload.clone(),
                    });
                }
                let report = shared.registry.route(self.id, routed);
                debug!(%identity, msg = %msg_id.to_hex(), delivered = report.delivered, "relayed");
                if last {
                    let fragments = std::mem::take(&mut self.current);
                    if let Some(end) = self
                        .persist(shared, tx, msg_id, report.known, report.all_live, fragments)
                        .await
                    {
                        return Some(end);
                    }
                    let mut statuses: Vec<StatusKind> = report
                        .unknown
                        .into_iter()
                        .map(StatusKind::Unknown)
                        .collect();
                    statuses.push(StatusKind::Accepted {
                        delivered: report.delivered,
                    });
                    for kind in statuses {
                        if !answer(tx, Outbound::Status(msg_id, kind), cfg).await {
                            return Some(End::Cause(
                                GoodbyeCode::TooSlow,
                                "client not reading its answers".into(),
                            ));
                        }
                    }
                }
                None
            }
            other => {
                warn!(target: SECURITY, %identity, %peer, kind = ?other.frame_type(),
                    "server-to-client message sent by a client, disconnecting");
                Some(End::Cause(
                    GoodbyeCode::ProtocolViolation,
                    "unexpected message type".into(),
                ))
            }
        }
    }
}

impl SessionState {
    /// Hands the finished message to the store for every known recipient;
    /// once every copy is committed or acknowledged, the sender is told
    /// (`Stored`, and `QuotaExceeded` for full mailboxes). A message that
    /// reached every recipient live is first held for `write_behind_ms`
    /// (see [`crate::writebehind`]). Waits only for an in-flight permit and
    /// room in the store queue, never for the commit.
    async fn persist(
        &self,
        shared: &Arc<Shared>,
        tx: &mpsc::Sender<Outbound>,
        msg_id: MessageId,
        recipients: Vec<UserName>,
        all_live: bool,
        fragments: Vec<Vec<u8>>,
    ) -> Option<End> {
        let cfg = &shared.config;
        if recipients.is_empty() || fragments.is_empty() {
            // Nobody to store it for (every recipient unknown): say so, so
            // that the sender stops resending it.
            let stored = Outbound::Status(msg_id, StatusKind::Stored { recipients: 0 });
            if !answer(tx, stored, cfg).await {
                return Some(End::Cause(
                    GoodbyeCode::TooSlow,
                    "client not reading its answers".into(),
                ));
            }
            return None;
        }
        let Ok(permit) = self.inflight.clone().acquire_owned().await else {
            return None;
        };
        let job = Persist {
            shared: shared.clone(),
            sender: self.identity.clone(),
            msg_id,
            created_ms: crate::server::unix_ms(),
            fragments: fragments.into(),
            quota: Quota {
                max_messages: cfg.quota_messages,
                max_bytes: cfg.quota_bytes,
            },
        };
        let held = if all_live && cfg.write_behind_ms > 0 {
            shared
                .write_behind
                .hold(&self.identity, msg_id, &recipients, job.fragments.clone())
        } else {
            None
        };
        let tx = tx.clone();
        let done = self.done.clone();
        match held {
            None => {
                // Queued now, in the order the session read the messages.
                let commit = match shared
                    .store
                    .write_pipelined(WriteOp::Persist(job.copies(&recipients), job.quota))
                    .await
                {
                    Ok(rx) => rx,
                    Err(e) => {
                        crate::store::log_failure("storing a message", &e);
                        return None;
                    }
                };
                tokio::spawn(async move {
                    let _permit = permit;
                    let _done = done;
                    let outcomes = match commit.await {
                        Ok(r) => job.outcomes(r),
                        Err(_) => return,
                    };
                    job.report(&tx, recipients, outcomes, 0).await;
                });
            }
            Some(held) => {
                let mut shutdown = self.shutdown.resubscribe();
                let grace = Config::d(cfg.write_behind_ms);
                tokio::spawn(async move {
                    let _permit = permit;
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
                        &recipients,
                    );
                    let acked = recipients.len().saturating_sub(left.len());
                    let outcomes = if left.is_empty() {
                        Some(Vec::new())
                    } else {
                        let r = job
                            .shared
                            .store
                            .write(WriteOp::Persist(job.copies(&left), job.quota))
                            .await
                            .map_err(|e| e.to_string());
                        job.outcomes(r)
                    };
                    job.report(&tx, left, outcomes, acked).await;
                });
            }
        }
        None
    }
}

/// A finished message on its way to the store.
struct Persist {
    shared: Arc<Shared>,
    sender: UserName,
    msg_id: MessageId,
    created_ms: u64,
    fragments: Arc<[Vec<u8>]>,
    quota: Quota,
}

impl Persist {
    /// One copy per recipient (the fragments are shared, not copied).
    fn copies(&self, recipients: &[UserName]) -> Vec<NewMessage> {
        recipients
            .iter()
            .map(|r| NewMessage {
                recipient: r.clone(),
                sender: self.sender.clone(),
                msg_id: self.msg_id,
                fragments: self.fragments.clone(),
                created_ms: self.created_ms,
            })
            .collect()
    }

    /// The per-copy outcomes of a commit, or `None` (logged) if it failed.
    fn outcomes(&self, r: Result<WriteResult, String>) -> Option<Vec<PersistOutcome>> {
        let (identity, msg_id) = (&self.sender, self.msg_id);
        match r {
            Ok(WriteResult::Persisted(o)) => Some(o),
            Ok(_) => None,
            Err(e) => {
                warn!(%identity, msg = %msg_id.to_hex(), error = %e, "message not stored");
                None
            }
        }
    }

    /// Tells the sender: `QuotaExceeded` per full mailbox, then `Stored`
    /// with the copies that are safe (committed or acknowledged). Nothing
    /// if the commit failed: the sender's outbox will send it again.
    async fn report(
        &self,
        tx: &mpsc::Sender<Outbound>,
        stored_for: Vec<UserName>,
        outcomes: Option<Vec<PersistOutcome>>,
        acked: usize,
    ) {
        let Some(outcomes) = outcomes else { return };
        let (identity, msg_id) = (&self.sender, self.msg_id);
        let mut stored = u16::try_from(acked).unwrap_or(u16::MAX);
        let mut frames = Vec::new();
        for (r, o) in stored_for.into_iter().zip(outcomes) {
            match o {
                PersistOutcome::Stored | PersistOutcome::Duplicate => {
                    stored = stored.saturating_add(1)
                }
                PersistOutcome::QuotaExceeded => {
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
            let _ = tx.send(f).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindrelay_wire::FragmentPos;

    fn r(id: u8, i: u16, c: u16, to: &str) -> Routed {
        Routed {
            msg_id: MessageId([id; 16]),
            fragment: FragmentPos::new(i, c).unwrap(),
            flags: 0,
            sender: UserName::new("alice").unwrap(),
            target: Target::Users(vec![UserName::new(to).unwrap()]),
            payload: vec![],
        }
    }

    #[test]
    fn fragments_must_be_in_order_and_consistent() {
        let mut t = FragmentTracker::default();
        assert!(t.accept(&r(1, 0, 3, "bob")).is_ok());
        assert!(t.accept(&r(1, 1, 3, "bob")).is_ok());
        assert!(t.accept(&r(1, 2, 3, "bob")).is_ok());
        assert!(t.accept(&r(2, 0, 1, "bob")).is_ok());

        let mut t = FragmentTracker::default();
        assert!(t.accept(&r(1, 1, 3, "bob")).is_err(), "no first fragment");
        let mut t = FragmentTracker::default();
        t.accept(&r(1, 0, 3, "bob")).unwrap();
        assert!(t.accept(&r(1, 2, 3, "bob")).is_err(), "skipped fragment");
        let mut t = FragmentTracker::default();
        t.accept(&r(1, 0, 3, "bob")).unwrap();
        assert!(t.accept(&r(2, 0, 1, "bob")).is_err(), "interleaved message");
        let mut t = FragmentTracker::default();
        t.accept(&r(1, 0, 3, "bob")).unwrap();
        assert!(
            t.accept(&r(1, 1, 3, "carol")).is_err(),
            "re-targeted fragment"
        );
    }
}

#[cfg(test)]
mod writer_tests {
    use super::*;
    use blindrelay_wire::FRAME_LEN;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn statuses_waiting_together_leave_in_one_frame_and_frames_keep_their_order() {
        let (tx, rx) = mpsc::channel::<Outbound>(16);
        let (_btx, brx) = mpsc::channel::<Outbound>(1);
        let stored =
            |i: u8| Outbound::Status(MessageId([i; 16]), StatusKind::Stored { recipients: 1 });
        for i in 0..5 {
            tx.send(stored(i)).await.unwrap();
        }
        tx.send(encode(&Message::Ping(9)).unwrap()).await.unwrap();
        tx.send(stored(5)).await.unwrap();
        drop(tx);
        let (ours, mut theirs) = tokio::io::duplex(64 * FRAME_LEN);
        let (kill, _) = watch::channel(None);
        write_loop(
            FrameWriter::new(ours, std::time::Duration::from_secs(5)),
            rx,
            brx,
            Arc::new(kill),
        )
        .await;
        let mut bytes = Vec::new();
        theirs.read_to_end(&mut bytes).await.unwrap();
        let msgs: Vec<Message> = bytes
            .chunks(FRAME_LEN)
            .map(|f| Message::decode(f).unwrap())
            .collect();
        let kind = StatusKind::Stored { recipients: 1 };
        assert_eq!(
            msgs,
            vec![
                Message::Statuses((0..5).map(|i| (MessageId([i; 16]), kind.clone())).collect()),
                Message::Ping(9),
                Message::Status {
                    msg_id: MessageId([5; 16]),
                    kind
                },
            ]
        );
    }
}
