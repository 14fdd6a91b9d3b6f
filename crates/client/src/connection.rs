//! The connection task: it moves bytes and ticks timers for the
//! [`ClientCore`], and nothing else. Mutual TLS to the relay, the read
//! loop, keep-alives, the flush timers for acknowledgements and receipts,
//! and reconnection with exponential backoff and jitter. What a frame means
//! and what to send is the core's decision.

use std::sync::Arc;
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter, NetError, unix_ms};
use blindrelay_wire::{FRAME_LEN, GoodbyeCode, Message};
use rustls::ClientConfig as TlsConfig;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

pub use crate::backoff::{BACKOFF_MAX, BACKOFF_START, COOL_DOWN_MAX_WAIT};
use crate::backoff::{Backoff, cool_down_left};
use crate::core::{ClientCore, Step};
use crate::crl_file::CrlFile;
pub use crate::dial::CONNECT_TIMEOUT;
use crate::dial::dial;
use crate::event::Event;
use crate::handle::{ClientHandle, Command};
use crate::perform::{Performed, Sending, perform};
use crate::store::ClientStore;
use crate::store::sqlite::SqliteStore;
use crate::{ClientConfig, ClientError};

/// A frame must be written within this time.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once a frame has started arriving, it must complete within this time.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued user commands.
pub const COMMAND_QUEUE: usize = 64;
/// Events queued for the user interface (the reader waits when it is full).
pub const EVENT_QUEUE: usize = 1024;
/// Housekeeping interval (reassembly expiry, replay-cache pruning, a look
/// at the CRL file).
pub const TICK: Duration = Duration::from_secs(5);
/// How often acknowledgements are flushed.
pub const ACK_FLUSH: Duration = Duration::from_millis(200);
/// How often delivery receipts are flushed (at most ten per flush).
pub const RECEIPT_FLUSH: Duration = Duration::from_secs(1);
/// How long quitting waits for queued messages to leave (what has not
/// left by then stays in the outbox for the next session).
pub const QUIT_FLUSH: Duration = Duration::from_secs(10);

type Reader = FrameReader<ReadHalf<TlsStream<TcpStream>>>;
type Writer = FrameWriter<WriteHalf<TlsStream<TcpStream>>>;

/// Connects once and reads the relay's first frame.
async fn open_session(
    cfg: &ClientConfig,
    tls: &Arc<TlsConfig>,
    core: &mut ClientCore,
) -> Result<(Reader, Writer, Vec<Event>), ClientError> {
    let stream = dial(cfg, tls).await?;
    let (rd, wr) = tokio::io::split(stream);
    let mut reader = FrameReader::new(rd);
    let writer = FrameWriter::new(wr, WRITE_TIMEOUT);
    // The relay speaks first: Welcome, or a goodbye / alert if it refuses us.
    let first = reader
        .read_frame(CONNECT_TIMEOUT, FRAME_TIMEOUT)
        .await
        .map_err(ClientError::Login)?
        .ok_or(ClientError::ClosedByRelay)?;
    let first = Message::from_frame(&first).map_err(|e| ClientError::Login(NetError::Wire(e)))?;
    match &first {
        Message::Welcome(_) => {}
        Message::Goodbye { code, reason } => {
            return Err(ClientError::Refused {
                code: *code,
                reason: reason.clone(),
            });
        }
        other => return Err(ClientError::NoWelcome(other.frame_type())),
    }
    let step = core.handle(first, unix_ms());
    Ok((reader, writer, step.events))
}

/// Connects and logs in. Events (starting with [`Event::Connected`]) arrive
/// on the returned receiver. If the connection drops later, the client
/// reconnects by itself ([`Event::Reconnecting`]); the receiver closes only
/// after [`ClientHandle::quit`] or a final refusal (revoked certificate,
/// replaced session).
pub async fn connect(
    cfg: &ClientConfig,
) -> Result<(ClientHandle, mpsc::Receiver<Event>), ClientError> {
    cfg.policy.validate()?;
    let root = cfg.trust_root()?;
    let key = cfg.load_key()?;
    let tls = Arc::new(cfg.tls(&key)?);
    let me = cfg.identity(&root, key, unix_ms() / 1000)?;
    let store = match &cfg.state {
        Some(p) => SqliteStore::open(p)?,
        None => SqliteStore::in_memory()?,
    };
    let tightened: Vec<Event> = store
        .tightened()
        .iter()
        .map(|p| {
            Event::Warning(format!(
                "{} was readable by other users of this machine; it is private now",
                p.display()
            ))
        })
        .collect();
    let store: Box<dyn ClientStore> = Box::new(store);
    let mut core = ClientCore::new(me, root, store, cfg.policy);
    // The newest CRL this client accepted before, then the file (which
    // may be newer, never older).
    let mut crl_file = CrlFile::default();
    let mut crl_events = core.load_stored_crl(unix_ms());
    crl_events.extend(crl_file.poll(cfg, &mut core));
    let backoff = Backoff::default();
    let mut told_to_wait = None;
    let (first, first_events) = match open_session(cfg, &tls, &mut core).await {
        Ok((reader, writer, events)) => (Some((reader, writer)), events),
        // The relay is down or restarting: keep trying, if the caller wants
        // that, and say so.
        Err(e) if cfg.retry_at_start && e.is_transient() => {
            told_to_wait = cool_down_left(&e);
            let in_ms =
                u64::try_from(told_to_wait.unwrap_or(backoff.next).as_millis()).unwrap_or(u64::MAX);
            (
                None,
                vec![Event::Reconnecting {
                    reason: e.to_string(),
                    in_ms,
                }],
            )
        }
        Err(e) => return Err(e),
    };
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    for e in tightened.into_iter().chain(crl_events).chain(first_events) {
        let _ = ev_tx.send(e).await;
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = ClientHandle {
        tx: cmd_tx,
        name: cfg.name.clone(),
    };
    let task = Task {
        cfg: cfg.clone(),
        tls,
        core,
        commands: cmd_rx,
        events: ev_tx,
        backoff,
        told_to_wait,
        crl_file,
    };
    tokio::spawn(task.supervise(first));
    Ok((handle, ev_rx))
}

/// How a connected session ended.
enum End {
    Quit(Option<oneshot::Sender<()>>),
    /// The relay refused us for good.
    Final(Event),
    Lost(String),
    UiGone,
}

async fn write_messages(writer: &mut Writer, msgs: &[Message]) -> Result<(), ClientError> {
    if msgs.is_empty() {
        return Ok(());
    }
    let bytes: Vec<Box<[u8; FRAME_LEN]>> = msgs
        .iter()
        .map(Message::encode)
        .collect::<Result<_, _>>()
        .map_err(ClientError::Encode)?;
    writer.write_batch(&bytes).await.map_err(ClientError::Write)
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

/// The connection task's state across reconnects.
struct Task {
    cfg: ClientConfig,
    tls: Arc<TlsConfig>,
    core: ClientCore,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    backoff: Backoff,
    /// How long the relay said to wait (a cool-down), instead of the
    /// backoff's next delay.
    told_to_wait: Option<Duration>,
    crl_file: CrlFile,
}

/// Passes events to the user interface; false once it has gone.
async fn show(to: &mpsc::Sender<Event>, events: Vec<Event>) -> bool {
    for e in events {
        if to.send(e).await.is_err() {
            return false;
        }
    }
    true
}

/// Tells the user interface the session was closed at its request.
async fn closed(to: &mpsc::Sender<Event>, done: Option<oneshot::Sender<()>>) {
    let _ = to
        .send(Event::Closed {
            code: None,
            reason: "quit".into(),
        })
        .await;
    if let Some(d) = done {
        let _ = d.send(());
    }
}

impl Task {
    async fn supervise(mut self, first: Option<(Reader, Writer)>) {
        let mut conn = first;
        loop {
            let delay = match conn.take() {
                Some((reader, writer)) => match self.online(reader, writer).await {
                    End::Quit(done) => {
                        self.finish(done).await;
                        return;
                    }
                    End::Final(e) => {
                        let _ = self.events.send(e).await;
                        return;
                    }
                    End::UiGone => return,
                    End::Lost(reason) => {
                        let d = self.backoff.delay();
                        let _ = self
                            .events
                            .send(Event::Reconnecting {
                                reason,
                                in_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                            })
                            .await;
                        d
                    }
                },
                None => self
                    .told_to_wait
                    .take()
                    .unwrap_or_else(|| self.backoff.delay()),
            };
            if let Err(quit) = self.offline(delay).await {
                if quit.is_some() {
                    self.finish(quit).await;
                }
                return;
            }
            match open_session(&self.cfg, &self.tls, &mut self.core).await {
                Ok((reader, writer, events)) => {
                    if !show(&self.events, events).await {
                        return;
                    }
                    conn = Some((reader, writer));
                }
                Err(e) => {
                    self.told_to_wait = cool_down_left(&e);
                    let d = self.told_to_wait.unwrap_or(self.backoff.next);
                    let _ = self
                        .events
                        .send(Event::Reconnecting {
                            reason: e.to_string(),
                            in_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                        })
                        .await;
                }
            }
        }
    }

    /// Waits out `delay` while serving commands (messages go to the
    /// outbox). `Err`: the user quit (with who to tell) or went away.
    async fn offline(&mut self, delay: Duration) -> Result<(), Option<oneshot::Sender<()>>> {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                cmd = self.commands.recv() => match cmd {
                    None => return Err(None),
                    Some(cmd) => match perform(&mut self.core, cmd, Sending::Offline) {
                        Performed::Quit(done) => return Err(Some(done)),
                        Performed::Done(events, _) => {
                            if !show(&self.events, events).await {
                                return Err(None);
                            }
                        }
                    },
                },
            }
        }
    }

    /// Ends the task: the state (and its lock) is released before the user
    /// interface hears that the session closed, so that it may open the
    /// same state again at once.
    async fn finish(self, done: Option<oneshot::Sender<()>>) {
        let events = self.events.clone();
        drop(self);
        closed(&events, done).await;
    }

    /// One connected session, until it ends.
    async fn online(&mut self, mut reader: Reader, mut writer: Writer) -> End {
        let keepalive = Duration::from_millis(self.core.keepalive_ms());
        let mut ping = tokio::time::interval(keepalive);
        ping.tick().await;
        let mut tick = tokio::time::interval(TICK);
        let mut acks = tokio::time::interval(ACK_FLUSH);
        let mut receipts = tokio::time::interval(RECEIPT_FLUSH);
        let mut ping_n = 0u64;
        let lost = |e: ClientError| End::Lost(e.to_string());
        // A quit waits (at most QUIT_FLUSH) for queued messages to leave.
        let mut quitting: Option<(oneshot::Sender<()>, Instant)> = None;
        loop {
            let now = Instant::now();
            if let Some((_, deadline)) = &quitting
                && (!self.core.resend_pending() || now >= *deadline)
                && let Some((done, _)) = quitting.take()
            {
                let mut frames = self.core.take_acks();
                frames.extend(self.core.take_receipts(unix_ms()).frames);
                let _ = write_messages(&mut writer, &frames).await;
                say_goodbye(&mut writer).await;
                return End::Quit(Some(done));
            }
            let quit_deadline = quitting.as_ref().map(|(_, d)| *d);
            let room = self.core.can_send(now.into_std());
            let paced_until = self.core.paced_until(now.into_std()).map(Instant::from_std);
            let resend = room && self.core.resend_pending();
            tokio::select! {
                _ = std::future::ready(()), if resend => {
                    match self.core.next_resend(Instant::now().into_std()) {
                        Some(Ok(frames)) => {
                            if let Err(e) = write_messages(&mut writer, &frames).await {
                                return lost(e);
                            }
                        }
                        Some(Err((id, e))) => {
                            let _ = self.events.send(Event::Warning(format!(
                                "message {} still waiting: {e}", id.to_hex()
                            ))).await;
                        }
                        None => {}
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
                    let Step { events, frames } = self.core.handle_at(msg, unix_ms(), Instant::now().into_std());
                    if let Err(e) = write_messages(&mut writer, &frames).await {
                        return lost(e);
                    }
                    for e in events {
                        match e {
                            Event::Closed { code: Some(code @ (GoodbyeCode::Revoked | GoodbyeCode::SessionLimit)), reason } => {
                                return End::Final(Event::Closed { code: Some(code), reason });
                            }
                            Event::Closed { code, reason } => {
                                return End::Lost(match code {
                                    Some(code) => format!("closed by the relay: {code} ({reason})"),
                                    None => format!("closed by the relay ({reason})"),
                                });
                            }
                            e => {
                                if matches!(e, Event::Connected { .. }) {
                                    self.backoff.reset();
                                }
                                if self.events.send(e).await.is_err() {
                                    return End::UiGone;
                                }
                            }
                        }
                    }
                }
                // Commands are always taken: a send while the window is
                // full is queued to leave when it has room.
                cmd = self.commands.recv() => match cmd {
                    None => {
                        say_goodbye(&mut writer).await;
                        return End::Quit(None);
                    }
                    Some(cmd) => {
                        // After what is already queued: messages leave in
                        // the order they were written.
                        let sending = if room && !self.core.resend_pending() {
                            Sending::Now
                        } else {
                            Sending::Later
                        };
                        match perform(&mut self.core, cmd, sending) {
                        Performed::Done(events, frames) => {
                            if !show(&self.events, events).await {
                                return End::UiGone;
                            }
                            if let Err(e) = write_messages(&mut writer, &frames).await {
                                return lost(e);
                            }
                        }
                        Performed::Quit(done) => {
                            quitting = Some((done, Instant::now() + QUIT_FLUSH));
                        }
                    }
                    }
                },
                _ = tokio::time::sleep_until(paced_until.unwrap_or(now)), if paced_until.is_some() => {}
                _ = tokio::time::sleep_until(quit_deadline.unwrap_or(now)), if quit_deadline.is_some() => {}
                _ = ping.tick() => {
                    ping_n += 1;
                    if write_messages(&mut writer, &[Message::Ping(ping_n)]).await.is_err() {
                        return End::Lost("keep-alive failed".into());
                    }
                }
                _ = acks.tick() => {
                    let frames = self.core.take_acks();
                    if let Err(e) = write_messages(&mut writer, &frames).await {
                        return lost(e);
                    }
                }
                _ = receipts.tick() => {
                    let Step { events, frames } = self.core.take_receipts(unix_ms());
                    for e in events { let _ = self.events.send(e).await; }
                    if let Err(e) = write_messages(&mut writer, &frames).await {
                        return lost(e);
                    }
                }
                _ = tick.tick() => {
                    let mut events = self.crl_file.poll(&self.cfg, &mut self.core);
                    events.extend(self.core.tick(unix_ms()));
                    for e in events {
                        let _ = self.events.send(e).await;
                    }
                }
            }
        }
    }
}
