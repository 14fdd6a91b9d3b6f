//! The connection task: mutual TLS to the relay, the read loop, keep-alives,
//! acknowledgements and receipts, reconnection with exponential backoff and
//! jitter, and the [`ClientHandle`] the user interface talks to.

use std::sync::Arc;
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter, load_certs, load_private_key};
use blindrelay_wire::{FRAME_LEN, GoodbyeCode, Message, MessageId, UserName};
use rustls::ClientConfig as TlsConfig;
use rustls_pki_types::ServerName;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::core::ClientCore;
use crate::event::Event;
use crate::state::{ClientState, HistoryEntry};
use crate::{ClientConfig, ClientError, now_ms};

/// TCP connect plus TLS handshake must finish within this time.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A frame must be written within this time.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once a frame has started arriving, it must complete within this time.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued user commands.
pub const COMMAND_QUEUE: usize = 64;
/// Events queued for the user interface (the reader waits when it is full).
pub const EVENT_QUEUE: usize = 1024;
/// Housekeeping interval (reassembly expiry, replay-cache pruning).
pub const TICK: Duration = Duration::from_secs(5);
/// How often acknowledgements are flushed.
pub const ACK_FLUSH: Duration = Duration::from_millis(200);
/// How often delivery receipts are flushed (at most ten per flush).
pub const RECEIPT_FLUSH: Duration = Duration::from_secs(1);
/// Messages sent but not yet answered by the relay's `Accepted`; past this
/// the client waits (reading) before sending more, so the relay's answers
/// never pile up in its queue for us.
pub const SEND_WINDOW: usize = 32;
/// First reconnection delay; doubles up to [`BACKOFF_MAX`], with ±50 % jitter.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest reconnection delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

enum Command {
    Send {
        to: Vec<UserName>,
        text: String,
        room: bool,
        reply: oneshot::Sender<Result<MessageId, ClientError>>,
    },
    Online(oneshot::Sender<Vec<UserName>>),
    SafetyNumber(UserName, oneshot::Sender<Result<String, ClientError>>),
    Accept(UserName, oneshot::Sender<Result<String, ClientError>>),
    History(
        usize,
        oneshot::Sender<Result<Vec<HistoryEntry>, ClientError>>,
    ),
    Quit(oneshot::Sender<()>),
}

/// Talks to the connection task.
#[derive(Clone)]
pub struct ClientHandle {
    tx: mpsc::Sender<Command>,
    name: UserName,
}

impl ClientHandle {
    async fn ask<T>(
        &self,
        f: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(f(tx))
            .await
            .map_err(|_| ClientError::Connection("closed".into()))?;
        rx.await
            .map_err(|_| ClientError::Connection("closed".into()))
    }

    /// Our user name.
    pub fn name(&self) -> &UserName {
        &self.name
    }

    /// Writes `text` for `to` to the outbox and sends it (now, or after the
    /// next reconnect). The relay's progress arrives as [`Event::Sent`],
    /// [`Event::Stored`] and, from each recipient, [`Event::Delivered`].
    pub async fn send(
        &self,
        to: Vec<UserName>,
        text: String,
        room: bool,
    ) -> Result<MessageId, ClientError> {
        self.ask(|reply| Command::Send {
            to,
            text,
            room,
            reply,
        })
        .await?
    }

    /// Verified users online.
    pub async fn online(&self) -> Result<Vec<UserName>, ClientError> {
        self.ask(Command::Online).await
    }

    /// The safety number shared with `name` (of a changed certificate, if
    /// one is pending: displaying it is required before accepting it).
    pub async fn safety_number(&self, name: UserName) -> Result<String, ClientError> {
        self.ask(|r| Command::SafetyNumber(name, r)).await?
    }

    /// Accepts `name`'s changed certificate (after its safety number was shown).
    pub async fn accept_key(&self, name: UserName) -> Result<String, ClientError> {
        self.ask(|r| Command::Accept(name, r)).await?
    }

    /// The last `n` messages of the local history, oldest first.
    pub async fn history(&self, n: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        self.ask(|r| Command::History(n, r)).await?
    }

    /// Says goodbye, closes the connection, and returns once that is done
    /// (bounded by the write timeout).
    pub async fn quit(&self) {
        let _ = self.ask(Command::Quit).await;
    }
}

type Reader = FrameReader<ReadHalf<TlsStream<TcpStream>>>;
type Writer = FrameWriter<WriteHalf<TlsStream<TcpStream>>>;

/// Connects once and reads the relay's first frame.
async fn open_session(
    cfg: &ClientConfig,
    tls: &Arc<TlsConfig>,
    core: &mut ClientCore,
) -> Result<(Reader, Writer, Vec<Event>), ClientError> {
    let server_name = ServerName::try_from(cfg.server_name.clone())
        .map_err(|_| ClientError::Setup(format!("invalid server name {:?}", cfg.server_name)))?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp = TcpStream::connect(&cfg.server)
            .await
            .map_err(|e| ClientError::Connection(format!("cannot reach {}: {e}", cfg.server)))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| {
                ClientError::Connection(format!("TLS handshake with {} failed: {e}", cfg.server))
            })
    })
    .await
    .map_err(|_| ClientError::Connection(format!("connecting to {} timed out", cfg.server)))??;
    let (rd, wr) = tokio::io::split(stream);
    let mut reader = FrameReader::new(rd);
    let writer = FrameWriter::new(wr, WRITE_TIMEOUT);
    // The relay speaks first: Welcome, or a goodbye / alert if it refuses us.
    let first = reader
        .read_frame(CONNECT_TIMEOUT, FRAME_TIMEOUT)
        .await
        .map_err(|e| ClientError::Connection(format!("login failed: {e}")))?
        .ok_or_else(|| ClientError::Connection("the relay closed the connection".into()))?;
    let first = Message::from_frame(&first)
        .map_err(|e| ClientError::Connection(format!("invalid frame: {e}")))?;
    match &first {
        Message::Welcome { .. } => {}
        Message::Goodbye { code, reason } => {
            return Err(ClientError::Connection(format!(
                "refused by the relay ({code:?}): {reason}"
            )));
        }
        other => {
            return Err(ClientError::Connection(format!(
                "unexpected {:?} before Welcome",
                other.frame_type()
            )));
        }
    }
    let events = core.handle(first, now_ms());
    Ok((reader, writer, events))
}

/// Connects and logs in. Events (starting with [`Event::Connected`]) arrive
/// on the returned receiver. If the connection drops later, the client
/// reconnects by itself ([`Event::Reconnecting`]); the receiver closes only
/// after [`ClientHandle::quit`] or a final refusal (revoked certificate,
/// replaced session).
pub async fn connect(
    cfg: &ClientConfig,
) -> Result<(ClientHandle, mpsc::Receiver<Event>), ClientError> {
    let root = cfg.trust_root()?;
    let me = cfg.identity(&root, now_ms() / 1000)?;
    let state = match &cfg.state {
        Some(p) => ClientState::open(p)?,
        None => ClientState::in_memory()?,
    };
    let ca = load_certs(&cfg.ca).map_err(|e| ClientError::Setup(e.to_string()))?;
    let ca = ca
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Setup("empty CA file".into()))?;
    let chain = load_certs(&cfg.cert).map_err(|e| ClientError::Setup(e.to_string()))?;
    let key = load_private_key(&cfg.key).map_err(|e| ClientError::Setup(e.to_string()))?;
    let tls = Arc::new(
        blindrelay_net::client_config(ca, chain, key)
            .map_err(|e| ClientError::Setup(e.to_string()))?,
    );
    let mut core = ClientCore::new(me, root, state, cfg.freshness);
    let (reader, writer, first_events) = open_session(cfg, &tls, &mut core).await?;
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    for e in first_events {
        let _ = ev_tx.send(e).await;
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = ClientHandle {
        tx: cmd_tx,
        name: cfg.name.clone(),
    };
    tokio::spawn(supervise(
        cfg.clone(),
        tls,
        core,
        (reader, writer),
        cmd_rx,
        ev_tx,
    ));
    Ok((handle, ev_rx))
}

enum End {
    Quit(Option<oneshot::Sender<()>>),
    /// The relay refused us for good.
    Final(Event),
    Lost(String),
    UiGone,
}

struct Backoff {
    next: Duration,
}

impl Backoff {
    fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    fn delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let mut b = [0u8; 1];
        let _ = blindrelay_e2e::envelope::fill_random(&mut b);
        // Jitter in [0.5, 1.5) so that clients dropped together do not
        // come back together.
        base.mul_f64(0.5 + f64::from(b[0]) / 256.0)
    }
}

async fn supervise(
    cfg: ClientConfig,
    tls: Arc<TlsConfig>,
    mut core: ClientCore,
    first: (Reader, Writer),
    mut cmd_rx: mpsc::Receiver<Command>,
    ev_tx: mpsc::Sender<Event>,
) {
    let mut backoff = Backoff {
        next: BACKOFF_START,
    };
    let mut conn = Some(first);
    loop {
        let delay = match conn.take() {
            Some((reader, writer)) => {
                match run(reader, writer, &mut core, &mut cmd_rx, &ev_tx, &mut backoff).await {
                    End::Quit(done) => {
                        let _ = ev_tx
                            .send(Event::Closed {
                                code: None,
                                reason: "quit".into(),
                            })
                            .await;
                        if let Some(d) = done {
                            let _ = d.send(());
                        }
                        return;
                    }
                    End::Final(e) => {
                        let _ = ev_tx.send(e).await;
                        return;
                    }
                    End::UiGone => return,
                    End::Lost(reason) => {
                        let d = backoff.delay();
                        let _ = ev_tx
                            .send(Event::Reconnecting {
                                reason,
                                in_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                            })
                            .await;
                        d
                    }
                }
            }
            None => backoff.delay(),
        };
        // Offline: commands still work (messages go to the outbox).
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                cmd = cmd_rx.recv() => match cmd {
                    None => return,
                    Some(Command::Quit(done)) => {
                        let _ = ev_tx.send(Event::Closed { code: None, reason: "quit".into() }).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::Send { to, text, room, reply }) => {
                        let _ = reply.send(core.queue_text(&to, &text, room, now_ms()).map(|m| m.msg_id));
                    }
                    Some(Command::Online(reply)) => { let _ = reply.send(Vec::new()); }
                    Some(Command::SafetyNumber(n, reply)) => { let _ = reply.send(core.safety_number(&n)); }
                    Some(Command::Accept(n, reply)) => { let _ = reply.send(core.accept_key(&n, now_ms())); }
                    Some(Command::History(n, reply)) => { let _ = reply.send(core.state().history_recent(n)); }
                },
            }
        }
        match open_session(&cfg, &tls, &mut core).await {
            Ok((reader, writer, events)) => {
                for e in events {
                    if ev_tx.send(e).await.is_err() {
                        return;
                    }
                }
                conn = Some((reader, writer));
            }
            Err(e) => {
                let d = backoff.next;
                let _ = ev_tx
                    .send(Event::Reconnecting {
                        reason: e.to_string(),
                        in_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                    })
                    .await;
            }
        }
    }
}

/// Number of messages (first fragments of SENDs) among `msgs`.
fn messages_in(msgs: &[Message]) -> usize {
    msgs.iter()
        .filter(|m| matches!(m, Message::Send(r) if r.fragment.is_first()))
        .count()
}

async fn write_messages(writer: &mut Writer, msgs: &[Message]) -> Result<(), ClientError> {
    let bytes: Vec<Box<[u8; FRAME_LEN]>> = msgs
        .iter()
        .map(Message::encode)
        .collect::<Result<_, _>>()
        .map_err(|e| ClientError::Seal(e.to_string()))?;
    writer
        .write_batch(&bytes)
        .await
        .map_err(|e| ClientError::Connection(e.to_string()))
}

async fn say_goodbye(writer: &mut Writer) {
    let bye = Message::Goodbye {
        code: GoodbyeCode::Normal,
        reason: "bye".into(),
    };
    if let Ok(b) = bye.encode() {
        let _ = writer.write_one(&b).await;
    }
    let _ = writer.shutdown().await;
}

/// One connected session, until it ends.
async fn run(
    mut reader: Reader,
    mut writer: Writer,
    core: &mut ClientCore,
    cmd_rx: &mut mpsc::Receiver<Command>,
    ev_tx: &mpsc::Sender<Event>,
    backoff: &mut Backoff,
) -> End {
    let keepalive = Duration::from_millis(core.keepalive_ms);
    let mut ping = tokio::time::interval(keepalive);
    ping.tick().await;
    let mut tick = tokio::time::interval(TICK);
    let mut acks = tokio::time::interval(ACK_FLUSH);
    let mut receipts = tokio::time::interval(RECEIPT_FLUSH);
    let mut ping_n = 0u64;
    let mut resend: std::collections::VecDeque<crate::state::Outgoing> = Default::default();
    let mut unanswered = 0usize;
    // Messages sent in the relay's rate window: the client paces itself to
    // stay one message under the relay's limit instead of being cut off.
    let (rate_max, rate_window_ms) = core.rate;
    let rate_window = Duration::from_millis(rate_window_ms.max(1));
    let budget = usize::from(rate_max).saturating_sub(1).max(1);
    let mut sent_at: std::collections::VecDeque<tokio::time::Instant> = Default::default();
    loop {
        let now = tokio::time::Instant::now();
        while sent_at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= rate_window)
        {
            sent_at.pop_front();
        }
        let paced = sent_at.len() < budget;
        let wake = sent_at.front().map(|t| *t + rate_window).unwrap_or(now);
        let room = unanswered < SEND_WINDOW && paced;
        tokio::select! {
            _ = std::future::ready(()), if room && !resend.is_empty() => {
                if let Some(m) = resend.pop_front() {
                    match core.frames_for(&m, now_ms()) {
                        Ok(frames) => {
                            unanswered += 1;
                            sent_at.push_back(tokio::time::Instant::now());
                            if write_messages(&mut writer, &frames).await.is_err() {
                                return End::Lost("write failed".into());
                            }
                        }
                        Err(e) => {
                            let _ = ev_tx.send(Event::Warning(format!(
                                "message {} still waiting: {e}", m.msg_id.to_hex()
                            ))).await;
                        }
                    }
                }
            }
            r = reader.read_frame(keepalive * 3, FRAME_TIMEOUT) => {
                let msg = match r {
                    Ok(Some(f)) => match Message::from_frame(&f) {
                        Ok(m) => m,
                        Err(e) => return End::Lost(format!("invalid frame from the relay: {e}")),
                    },
                    Ok(None) => return End::Lost("the relay closed the connection".into()),
                    Err(e) => return End::Lost(e.to_string()),
                };
                let accepted = |k: &blindrelay_wire::StatusKind| matches!(k, blindrelay_wire::StatusKind::Accepted { .. });
                match &msg {
                    Message::Status { kind, .. } if accepted(kind) => {
                        unanswered = unanswered.saturating_sub(1);
                    }
                    Message::Statuses(list) => {
                        let n = list.iter().filter(|(_, k)| accepted(k)).count();
                        unanswered = unanswered.saturating_sub(n);
                    }
                    _ => {}
                }
                if let Message::Ping(v) = msg {
                    if write_messages(&mut writer, &[Message::Pong(v)]).await.is_err() {
                        return End::Lost("write failed".into());
                    }
                    continue;
                }
                for e in core.handle(msg, now_ms()) {
                    match e {
                        Event::Closed { code: Some(code @ (GoodbyeCode::Revoked | GoodbyeCode::SessionLimit)), reason } => {
                            return End::Final(Event::Closed { code: Some(code), reason });
                        }
                        Event::Closed { code, reason } => {
                            return End::Lost(format!("closed by the relay ({code:?}): {reason}"));
                        }
                        Event::Connected { .. } => {
                            backoff.reset();
                            if ev_tx.send(e).await.is_err() {
                                return End::UiGone;
                            }
                            // Everything the relay has not confirmed goes again,
                            // re-sealed with a fresh timestamp under the same
                            // id, a few at a time between reads (the relay's
                            // answers must be read while we send).
                            match core.unconfirmed() {
                                Ok(p) => resend = p.into(),
                                Err(e) => {
                                    let _ = ev_tx.send(Event::Warning(format!("outbox: {e}"))).await;
                                }
                            }
                        }
                        other => {
                            if ev_tx.send(other).await.is_err() {
                                return End::UiGone;
                            }
                        }
                    }
                }
            }
            cmd = cmd_rx.recv(), if room => match cmd {
                None => {
                    say_goodbye(&mut writer).await;
                    return End::Quit(None);
                }
                Some(Command::Quit(done)) => {
                    let (frames, _) = core.flush(now_ms());
                    let _ = write_messages(&mut writer, &frames).await;
                    say_goodbye(&mut writer).await;
                    return End::Quit(Some(done));
                }
                Some(Command::Send { to, text, room, reply }) => {
                    match core.seal_text(&to, &text, room, now_ms()) {
                        Ok((id, frames)) => {
                            unanswered += 1;
                            sent_at.push_back(tokio::time::Instant::now());
                            let res = write_messages(&mut writer, &frames).await;
                            // Written or not, it is in the outbox: report the id.
                            let _ = reply.send(Ok(id));
                            if res.is_err() {
                                return End::Lost("write failed".into());
                            }
                        }
                        Err(e) => { let _ = reply.send(Err(e)); }
                    }
                }
                Some(Command::Online(reply)) => { let _ = reply.send(core.online()); }
                Some(Command::SafetyNumber(n, reply)) => { let _ = reply.send(core.safety_number(&n)); }
                Some(Command::Accept(n, reply)) => { let _ = reply.send(core.accept_key(&n, now_ms())); }
                Some(Command::History(n, reply)) => { let _ = reply.send(core.state().history_recent(n)); }
            },
            _ = tokio::time::sleep_until(wake), if !paced => {}
            _ = ping.tick() => {
                ping_n += 1;
                if write_messages(&mut writer, &[Message::Ping(ping_n)]).await.is_err() {
                    return End::Lost("keep-alive failed".into());
                }
            }
            _ = acks.tick() => {
                let (frames, events) = core.flush_acks();
                for e in events { let _ = ev_tx.send(e).await; }
                if !frames.is_empty() && write_messages(&mut writer, &frames).await.is_err() {
                    return End::Lost("write failed".into());
                }
            }
            _ = receipts.tick() => {
                let (frames, events) = core.flush(now_ms());
                for e in events { let _ = ev_tx.send(e).await; }
                unanswered += messages_in(&frames);
                if !frames.is_empty() && write_messages(&mut writer, &frames).await.is_err() {
                    return End::Lost("write failed".into());
                }
            }
            _ = tick.tick() => {
                for e in core.tick(now_ms()) {
                    let _ = ev_tx.send(e).await;
                }
            }
        }
    }
}
