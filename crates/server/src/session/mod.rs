//! One authenticated connection, from login to goodbye.
//!
//! After the handshake the session takes its identity from the client
//! certificate's CN ([`login`]), registers with the registry (which queues
//! `Welcome` and the directory), and then reads frames until the client leaves,
//! breaks a rule, or the server shuts down. A SEND passes the [`rules`],
//! the identity's rate budget, is shown to the observer, routed as the
//! DELIVER frame built from its received bytes, and, at its last
//! fragment, handed to [`crate::delivery`]. A separate [`writer`] task
//! drains the session's bounded queues to the socket, so a client that
//! stops reading fills its own queue and is disconnected; nobody else
//! waits for it.

mod login;
pub(crate) mod rules;
pub(crate) mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter, NetError};
use blindrelay_wire::{
    Frame, FrameType, GoodbyeCode, Message, RoutedBody, StatusKind, Target, UserName, WireError,
};
use tokio::io::ReadHalf;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::SECURITY;
use crate::config::Config;
use crate::delivery::{Finished, InFlight, Stalled};
use crate::outbound::{Outbound, answer, deliver, encode};
use crate::rate::Budget;
use crate::registry::{Charge, Credentials, Kill, Login};
use crate::shared::Shared;
use crate::store::Body;
use login::{Stream, authenticate, record_cert, refusal, welcome};
use rules::{SendRules, Verdict, Violation};

/// How a session ends.
enum End {
    /// Client said goodbye or closed the stream.
    Normal,
    /// Closed for cause; the client is told why.
    Cause(GoodbyeCode, String),
    /// Transport failed; nothing more can be sent.
    Broken(String),
}

impl From<Violation> for End {
    fn from(v: Violation) -> Self {
        End::Cause(v.code(), v.reason().into())
    }
}

impl From<Stalled> for End {
    fn from(_: Stalled) -> Self {
        End::Cause(
            GoodbyeCode::TooSlow,
            "client not reading its answers".into(),
        )
    }
}

/// Serves one connection until it ends.
pub(crate) async fn run(
    stream: Stream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: broadcast::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    let cfg = &shared.config;
    let Some(who) = authenticate(&stream, peer) else {
        return;
    };
    match blindrelay_pki::device_from_cert(&who.cert) {
        Ok(None) => {}
        Ok(Some(device)) => {
            let who = (who.identity, device, who.serial);
            return crate::v2::session::run(stream, peer, shared, shutdown, done, who).await;
        }
        Err(e) => {
            warn!(target: SECURITY, %peer, reason = %e, "certificate names no usable device, closing");
            return;
        }
    }
    let identity = who.identity.clone();
    let (rd, wr) = tokio::io::split(stream);
    let (backlog_tx, backlog_rx) = mpsc::channel::<Outbound>(cfg.backlog_queue_frames);
    let (kill_tx, kill_rx) = watch::channel::<Option<Kill>>(None);
    let kill_tx = Arc::new(kill_tx);
    let writer = |live, backlog| {
        tokio::spawn(writer::write_loop(
            FrameWriter::new(wr, Duration::from_millis(cfg.write_timeout_ms)),
            live,
            backlog,
            kill_tx.clone(),
        ))
    };
    // Messages held back from the store for this identity, taken before
    // the login: anything routed after it reaches this session live.
    let held = shared.write_behind.held_for(&identity);
    let login = shared.registry.login(
        &identity,
        Credentials {
            cert_der: who.cert.clone(),
            serial: who.serial.clone(),
            wants_crl: who.wants_crl,
        },
        &welcome(cfg, &identity),
        kill_tx.clone(),
        Instant::now(),
    );
    let Login {
        id,
        tx,
        rx,
        new_cert,
    } = match login {
        Ok(l) => l,
        Err(refused) => {
            let (tx, rx) = mpsc::channel::<Outbound>(2);
            let writer = writer(rx, backlog_rx);
            drop(backlog_tx);
            finish(tx, writer, &refusal(refused, &identity, peer), cfg).await;
            return;
        }
    };
    let writer = writer(rx, backlog_rx);
    if new_cert {
        record_cert(&shared, who);
    }
    info!(%identity, %peer, session = id, "connected");
    let backlog = tokio::spawn(crate::delivery::backlog::stream(
        shared.clone(),
        identity.clone(),
        held,
        backlog_tx,
    ));
    let mut session = Session {
        rules: SendRules::new(identity.clone(), cfg.spoof_strikes),
        identity: identity.clone(),
        id,
        peer,
        in_progress: Vec::new(),
        in_flight: InFlight::new(
            identity.clone(),
            tx.clone(),
            cfg.max_inflight_stores,
            shutdown.resubscribe(),
            done,
        ),
        tx,
    };
    let end = session
        .serve(&shared, FrameReader::new(rd), kill_rx, shutdown)
        .await;
    shared.registry.logout(&identity, id);
    backlog.abort();
    session.close(end, writer, cfg).await;
}

/// Queues a goodbye, closes the queue and waits (bounded) for the writer to
/// drain it and send TLS close_notify.
async fn finish(tx: mpsc::Sender<Outbound>, writer: JoinHandle<()>, bye: &Message, cfg: &Config) {
    if let Some(f) = encode(bye) {
        let _ = tx.try_send(f);
    }
    drop(tx);
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_millis(cfg.write_timeout_ms), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// What a logged-in session holds while it serves frames.
struct Session {
    identity: UserName,
    id: u64,
    peer: SocketAddr,
    rules: SendRules,
    /// Bodies of the message in progress, as received.
    in_progress: Vec<Body>,
    in_flight: InFlight,
    /// This session's live queue.
    tx: mpsc::Sender<Outbound>,
}

/// A frame from the client: a SEND keeps its bytes (see [`RoutedBody`]),
/// anything else is decoded.
enum Inbound {
    Send(RoutedBody),
    Other(Message),
}

/// Decodes a received frame's body. A SEND body is copied once, out of the
/// reader's buffer, into the shared bytes every later use reads.
fn decode(kind: FrameType, body: &[u8]) -> Result<Inbound, WireError> {
    if kind == FrameType::Send {
        Ok(Inbound::Send(RoutedBody::decode(Body::from(body))?))
    } else {
        Message::from_frame(&Frame::new(kind, body.to_vec())?).map(Inbound::Other)
    }
}

impl Session {
    /// Reads and handles frames until the session ends, for whatever reason.
    async fn serve(
        &mut self,
        shared: &Arc<Shared>,
        mut reader: FrameReader<ReadHalf<Stream>>,
        mut kill: watch::Receiver<Option<Kill>>,
        mut shutdown: broadcast::Receiver<()>,
    ) -> End {
        let cfg = &shared.config;
        let idle = Duration::from_millis(cfg.idle_timeout_ms);
        let frame_timeout = Duration::from_millis(cfg.frame_timeout_ms);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.recv() => {
                    return End::Cause(GoodbyeCode::Shutdown, "server shutting down".into());
                }
                changed = kill.changed() => {
                    let k = if changed.is_ok() { kill.borrow().clone() } else { None };
                    if let Some(k) = k {
                        return End::Cause(k.code, k.reason);
                    }
                }
                r = reader.read_raw(idle, frame_timeout) => {
                    let inbound = match r {
                        Ok(Some(raw)) => self.decode(raw),
                        Ok(None) => Err(End::Normal),
                        Err(e) => Err(self.transport_end(e)),
                    };
                    if let Err(end) = match inbound {
                        Ok(inbound) => self.handle(shared, inbound).await,
                        Err(end) => Err(end),
                    } {
                        return end;
                    }
                }
            }
        }
    }

    /// Checks a frame and decodes its body; a bad one ends the session.
    fn decode(&self, raw: &[u8]) -> Result<Inbound, End> {
        let (identity, peer) = (&self.identity, self.peer);
        let (kind, body) = Frame::parse(raw).map_err(|e| {
            warn!(target: SECURITY, %identity, %peer, reason = %e, "invalid frame, disconnecting");
            End::Cause(
                GoodbyeCode::ProtocolViolation,
                format!("invalid frame: {e}"),
            )
        })?;
        decode(kind, body).map_err(|e| {
            warn!(target: SECURITY, %identity, %peer, reason = %e, "malformed message, disconnecting");
            End::Cause(GoodbyeCode::ProtocolViolation, format!("malformed message: {e}"))
        })
    }

    /// How a failed read ends the session.
    fn transport_end(&self, e: NetError) -> End {
        let (identity, peer) = (&self.identity, self.peer);
        match e {
            NetError::Idle => {
                info!(%identity, %peer, "idle timeout, disconnecting");
                End::Cause(
                    GoodbyeCode::IdleTimeout,
                    "nothing received within the idle timeout".into(),
                )
            }
            NetError::Truncated => {
                warn!(target: SECURITY, %identity, %peer, "truncated frame, disconnecting");
                End::Broken("truncated frame".into())
            }
            e => End::Broken(e.to_string()),
        }
    }

    /// Handles one frame; `Err` ends the session.
    async fn handle(&mut self, shared: &Arc<Shared>, inbound: Inbound) -> Result<(), End> {
        let cfg = &shared.config;
        let (identity, peer) = (&self.identity, self.peer);
        let answer_within = Duration::from_millis(cfg.write_timeout_ms);
        match inbound {
            Inbound::Send(body) => self.send(shared, body).await,
            Inbound::Other(Message::Ping(v)) => {
                if let Some(f) = encode(&Message::Pong(v))
                    && !answer(&self.tx, f, answer_within).await
                {
                    return Err(Stalled.into());
                }
                Ok(())
            }
            Inbound::Other(Message::Pong(_)) => Ok(()),
            Inbound::Other(Message::Goodbye { .. }) => Err(End::Normal),
            Inbound::Other(Message::Ack(ids)) => {
                self.charge(shared, Budget::Ack, 1)?;
                crate::delivery::acknowledge(shared, &self.identity, ids).await;
                Ok(())
            }
            Inbound::Other(other) => {
                warn!(target: SECURITY, %identity, %peer, kind = ?other.frame_type(),
                    "server-to-client message sent by a client, disconnecting");
                Err(End::Cause(
                    GoodbyeCode::ProtocolViolation,
                    "unexpected message type".into(),
                ))
            }
        }
    }

    /// One fragment of a message: rules, rate budget, observation, routing,
    /// and at the last fragment, delivery and the sender's statuses.
    async fn send(&mut self, shared: &Arc<Shared>, body: RoutedBody) -> Result<(), End> {
        let cfg = &shared.config;
        let (identity, peer) = (&self.identity, self.peer);
        let h = body.header();
        let budget = match self.rules.check(h) {
            Ok(Verdict::Relay { budget }) => budget,
            Ok(Verdict::DropForged { strike }) => {
                warn!(target: SECURITY, %identity, %peer, claimed = %h.sender, strike,
                    "spoofing detected: {identity} is trying to send as {}; dropped", h.sender);
                return Ok(());
            }
            Err(v) => {
                if v == Violation::RepeatedSpoofing {
                    warn!(target: SECURITY, %identity, %peer, claimed = %h.sender,
                        strike = cfg.spoof_strikes,
                        "spoofing detected: {identity} is trying to send as {}; dropped", h.sender);
                } else {
                    warn!(target: SECURITY, %identity, %peer, reason = v.reason(), "protocol violation, disconnecting");
                }
                return Err(v.into());
            }
        };
        if h.fragment.is_first() {
            // A message counts once, at its first fragment; one to everyone
            // online once per `room_sessions_per_message` sessions it
            // reaches.
            let units = match h.target {
                Target::Everyone => shared
                    .registry
                    .fanout(identity, &h.target)
                    .div_ceil(cfg.room_sessions_per_message)
                    .max(1),
                Target::Users(_) => 1,
            };
            self.charge(shared, budget, units)?;
            self.in_progress.clear();
        }
        self.in_progress.push(body.bytes().clone());
        shared.observer.relayed(&body);
        let report = shared.registry.route(self.id, h, deliver(&body, false));
        let msg_id = h.msg_id;
        debug!(%identity, msg = %msg_id.to_hex(), delivered = report.delivered, "relayed");
        if !h.fragment.is_last() {
            return Ok(());
        }
        let finished = Finished {
            msg_id,
            recipients: report.known,
            all_live: report.all_live,
            bodies: std::mem::take(&mut self.in_progress),
        };
        self.in_flight.settle(shared, finished).await?;
        let answer_within = Duration::from_millis(cfg.write_timeout_ms);
        let statuses =
            report
                .unknown
                .into_iter()
                .map(StatusKind::Unknown)
                .chain([StatusKind::Accepted {
                    delivered: report.delivered,
                }]);
        for kind in statuses {
            if !answer(&self.tx, Outbound::Status(msg_id, kind), answer_within).await {
                return Err(Stalled.into());
            }
        }
        Ok(())
    }

    /// Charges a frame costing `units` to the identity's `budget`. Over it,
    /// the identity floods: it cools down, and every session of it goes,
    /// this one included. During a cool-down another session started,
    /// this one goes too, without restarting it.
    fn charge(&self, shared: &Shared, budget: Budget, units: usize) -> Result<(), End> {
        let cfg = &shared.config;
        let (identity, peer) = (&self.identity, self.peer);
        let now = Instant::now();
        match shared.registry.charge(identity, budget, units, now) {
            Charge::Allowed => Ok(()),
            Charge::OverBudget => {
                let (max, what, reason) = match budget {
                    Budget::Receipt => (cfg.receipt_rate_max, "receipts", "receipt rate exceeded"),
                    Budget::Ack => (
                        cfg.ack_rate_max,
                        "acknowledgements",
                        "acknowledgement rate exceeded",
                    ),
                    Budget::Message | Budget::Login => {
                        (cfg.rate_max_messages, "messages", "rate limit exceeded")
                    }
                };
                let others = shared.registry.throttle(identity, self.id, now, reason);
                warn!(target: SECURITY, %identity, %peer, other_sessions_closed = others,
                    "DoS attack detected: more than {max} {what} in {} ms; every session of the identity disconnected, {} ms cool-down",
                    cfg.rate_window_ms, cfg.cooldown_ms);
                Err(End::Cause(GoodbyeCode::RateLimited, reason.into()))
            }
            Charge::CoolingDown => {
                info!(%identity, %peer, session = self.id,
                    "identity in its rate-limit cool-down (another session flooded), disconnecting");
                Err(End::Cause(
                    GoodbyeCode::CoolDown,
                    "rate limit cool-down".into(),
                ))
            }
        }
    }

    /// Says goodbye as the end requires and lets the writer finish.
    async fn close(self, end: End, writer: JoinHandle<()>, cfg: &Config) {
        let (identity, peer, id) = (&self.identity, self.peer, self.id);
        if let End::Cause(GoodbyeCode::Shutdown, _) = &end {
            // Held and committing messages go to the store at once on
            // shutdown; their STORED should leave before the goodbye.
            self.in_flight
                .wait_all(Duration::from_millis(cfg.shutdown_grace_ms / 2))
                .await;
        }
        let tx = self.tx;
        // The writer ends once every sender of its queue is gone; the
        // server's shutdown waits for this guard, held until the goodbye is
        // written.
        let _guard = self.in_flight.into_guard();
        match end {
            End::Normal => {
                info!(%identity, %peer, session = id, "disconnected");
                drop(tx);
                let _ =
                    tokio::time::timeout(Duration::from_millis(cfg.write_timeout_ms), writer).await;
            }
            End::Cause(code, reason) => {
                info!(%identity, %peer, session = id, code = code.as_str(), %reason, "disconnected by the server");
                finish(tx, writer, &Message::Goodbye { code, reason }, cfg).await;
            }
            End::Broken(reason) => {
                info!(%identity, %peer, session = id, %reason, "connection lost");
                writer.abort();
            }
        }
    }
}
