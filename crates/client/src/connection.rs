//! The connection task: mutual TLS to the relay, the read loop, keep-alives,
//! and the [`ClientHandle`] the user interface talks to.

use std::sync::Arc;
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter, load_certs, load_private_key};
use blindrelay_wire::{FRAME_LEN, Message, MessageId, UserName};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;

use crate::core::ClientCore;
use crate::event::Event;
use crate::state::ClientState;
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

    /// Seals and sends `text` to `to`. Returns once it is written; the
    /// relay's acceptance arrives as [`Event::Sent`].
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

    /// The safety number shared with `name`.
    pub async fn safety_number(&self, name: UserName) -> Result<String, ClientError> {
        self.ask(|r| Command::SafetyNumber(name, r)).await?
    }

    /// Accepts `name`'s changed certificate.
    pub async fn accept_key(&self, name: UserName) -> Result<String, ClientError> {
        self.ask(|r| Command::Accept(name, r)).await?
    }

    /// Says goodbye, closes the connection, and returns once that is done
    /// (bounded by the write timeout).
    pub async fn quit(&self) {
        let _ = self.ask(Command::Quit).await;
    }
}

async fn say_goodbye<W: tokio::io::AsyncWrite + Unpin>(writer: &mut FrameWriter<W>) {
    let bye = Message::Goodbye {
        code: blindrelay_wire::GoodbyeCode::Normal,
        reason: "bye".into(),
    };
    if let Ok(b) = bye.encode() {
        let _ = writer.write_one(&b).await;
    }
    let _ = writer.shutdown().await;
}

/// Connects and logs in. Events (starting with [`Event::Connected`]) arrive
/// on the returned receiver; it closes when the connection ends.
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
    let tls = blindrelay_net::client_config(ca, chain, key)
        .map_err(|e| ClientError::Setup(e.to_string()))?;
    let server_name = ServerName::try_from(cfg.server_name.clone())
        .map_err(|_| ClientError::Setup(format!("invalid server name {:?}", cfg.server_name)))?;

    let stream = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp = TcpStream::connect(&cfg.server)
            .await
            .map_err(|e| ClientError::Connection(format!("cannot reach {}: {e}", cfg.server)))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(Arc::new(tls))
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
    let mut writer = FrameWriter::new(wr, WRITE_TIMEOUT);
    let mut core = ClientCore::new(me, root, state, cfg.freshness);

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
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    for e in core.handle(first, now_ms()) {
        let _ = ev_tx.send(e).await;
    }
    let (cmd_tx, mut cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = ClientHandle {
        tx: cmd_tx,
        name: cfg.name.clone(),
    };

    tokio::spawn(async move {
        let keepalive = Duration::from_millis(core.keepalive_ms);
        let mut ping = tokio::time::interval(keepalive);
        ping.tick().await;
        let mut tick = tokio::time::interval(TICK);
        let mut ping_n = 0u64;
        let closed = loop {
            tokio::select! {
                r = reader.read_frame(keepalive * 3, FRAME_TIMEOUT) => {
                    let msg = match r {
                        Ok(Some(f)) => match Message::from_frame(&f) {
                            Ok(m) => m,
                            Err(e) => break Event::Closed { code: None, reason: format!("invalid frame from the relay: {e}") },
                        },
                        Ok(None) => break Event::Closed { code: None, reason: "the relay closed the connection".into() },
                        Err(e) => break Event::Closed { code: None, reason: e.to_string() },
                    };
                    let mut end = None;
                    for e in core.handle(msg, now_ms()) {
                        if matches!(e, Event::Closed { .. }) {
                            end = Some(e);
                        } else if ev_tx.send(e).await.is_err() {
                            end = Some(Event::Closed { code: None, reason: "user interface gone".into() });
                        }
                    }
                    if let Some(e) = end {
                        break e;
                    }
                }
                cmd = cmd_rx.recv() => match cmd {
                    None => {
                        say_goodbye(&mut writer).await;
                        break Event::Closed { code: None, reason: "quit".into() };
                    }
                    Some(Command::Quit(done)) => {
                        say_goodbye(&mut writer).await;
                        let _ = done.send(());
                        break Event::Closed { code: None, reason: "quit".into() };
                    }
                    Some(Command::Send { to, text, room, reply }) => {
                        match core.seal_text(&to, &text, room, now_ms()) {
                            Ok((id, frames)) => {
                                let bytes: Result<Vec<Box<[u8; FRAME_LEN]>>, _> = frames.iter().map(Message::encode).collect();
                                let res = match bytes {
                                    Ok(b) => writer.write_batch(&b).await.map(|_| id).map_err(|e| ClientError::Connection(e.to_string())),
                                    Err(e) => Err(ClientError::Seal(e.to_string())),
                                };
                                let failed = res.is_err();
                                let _ = reply.send(res);
                                if failed {
                                    break Event::Closed { code: None, reason: "write failed".into() };
                                }
                            }
                            Err(e) => { let _ = reply.send(Err(e)); }
                        }
                    }
                    Some(Command::Online(reply)) => { let _ = reply.send(core.online()); }
                    Some(Command::SafetyNumber(n, reply)) => { let _ = reply.send(core.safety_number(&n)); }
                    Some(Command::Accept(n, reply)) => { let _ = reply.send(core.accept_key(&n, now_ms())); }
                },
                _ = ping.tick() => {
                    ping_n += 1;
                    if let Ok(b) = Message::Ping(ping_n).encode()
                        && writer.write_one(&b).await.is_err()
                    {
                        break Event::Closed { code: None, reason: "keep-alive failed".into() };
                    }
                }
                _ = tick.tick() => {
                    for e in core.tick(now_ms()) {
                        let _ = ev_tx.send(e).await;
                    }
                }
            }
        };
        let _ = ev_tx.send(closed).await;
    });
    Ok((handle, ev_rx))
}
