//! A device's connection to the relay (protocol v2): TLS with the device's
//! certificate, then Delivery Service messages in DS_UP / DS_DOWN chunks.
//!
//! Two tasks own the socket: the reader puts the relay's messages back
//! together and hands them over a bounded queue; the writer sends what it
//! is given and a PING whenever it has been quiet for [`KEEPALIVE`]. The
//! [`Link`] numbers requests and matches answers to them; mailbox items
//! that arrive while an answer is awaited wait in a bounded buffer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use blindrelay_ds::{Delivery, DeviceId, Down, Request};
use blindrelay_net::{FrameReader, FrameWriter};
use blindrelay_wire::{FRAME_LEN, GoodbyeCode, Message, Reassembly, chunks};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::ClientConfig;
use crate::connection::{FRAME_TIMEOUT, WRITE_TIMEOUT};
use crate::core::revocation::CrlChunks;
use crate::dial::dial;
use crate::error::ClientError;
pub use crate::error::LinkError;

/// The writer sends a PING after this long without sending anything (the
/// relay's idle timeout is 60 s by default).
pub const KEEPALIVE: Duration = Duration::from_secs(20);
/// Nothing at all from the relay for this long ends the link.
pub const READ_IDLE: Duration = Duration::from_secs(90);
/// How long an answer to a request may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages from the relay waiting to be taken.
pub const INBOX: usize = 64;
/// Mailbox items held while an answer is awaited (the relay's mailbox
/// bound); a relay that sends more is cut off.
pub const MAX_BUFFERED: usize = 10_000;
/// Bytes of mailbox items held while an answer is awaited (the relay's
/// per-mailbox byte bound).
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// The largest message accepted from the relay (the chunk bound).
pub const MAX_DOWN_BYTES: usize = blindrelay_wire::MAX_DS_CHUNKS * blindrelay_wire::DS_CHUNK_MAX;

/// What the reader hands over.
enum Incoming {
    Down(Down),
    Crl(Vec<u8>),
    Closed(String),
}

/// An open v2 connection.
pub struct Link {
    out: mpsc::Sender<Vec<Box<[u8; FRAME_LEN]>>>,
    inbox: mpsc::Receiver<Incoming>,
    buffered: VecDeque<(u64, Delivery)>,
    /// Bytes in `buffered`.
    buffered_bytes: usize,
    crls: Vec<Vec<u8>>,
    /// What [`Link::readable`] took from the reader and nobody has yet.
    peeked: Option<Incoming>,
    next_req: u32,
    next_msg: u32,
    tasks: [JoinHandle<()>; 2],
    /// The device the relay took this connection to be (informative).
    pub hello: DeviceId,
    /// One-time KeyPackages the relay holds for this device (informative).
    pub key_packages: u32,
    /// Keeps requests within the budget HELLO announced.
    pacer: super::pace::Pacer,
    /// When answers arrived that the caller has not kept yet (see
    /// [`Link::take_answers`]; at most [`super::pace::MAX_PACED`]).
    answers: VecDeque<std::time::Instant>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Link {
    /// Connects with the device's certificate and reads HELLO.
    pub async fn connect(cfg: &ClientConfig, pkcs8: &[u8]) -> Result<Self, ClientError> {
        let tls = Arc::new(cfg.tls(pkcs8)?);
        let stream = dial(cfg, &tls).await?;
        let (rd, wr) = tokio::io::split(stream);
        let (in_tx, inbox) = mpsc::channel(INBOX);
        let (out, out_rx) = mpsc::channel(16);
        let reader = tokio::spawn(read_loop(FrameReader::new(rd), in_tx));
        let writer = tokio::spawn(write_loop(FrameWriter::new(wr, WRITE_TIMEOUT), out_rx));
        let mut link = Link {
            out,
            inbox,
            buffered: VecDeque::new(),
            buffered_bytes: 0,
            crls: Vec::new(),
            peeked: None,
            next_req: 1,
            next_msg: 0,
            tasks: [reader, writer],
            hello: DeviceId {
                user: cfg.name.clone(),
                // Replaced by HELLO's (a valid name: this cannot fail).
                device: blindrelay_pki::DeviceName::new("unknown")
                    .map_err(|_| LinkError::NoHello)?,
            },
            key_packages: 0,
            pacer: super::pace::Pacer::default(),
            answers: VecDeque::new(),
        };
        match link.recv(ANSWER_TIMEOUT).await? {
            Down::Hello {
                device,
                key_packages,
                budget,
                window_ms,
            } => {
                link.hello = device;
                link.key_packages = key_packages;
                link.pacer.set_budget(budget, window_ms);
                Ok(link)
            }
            _ => {
                tracing::warn!("the relay's first message was not HELLO");
                Err(LinkError::NoHello.into())
            }
        }
    }

    /// Paces requests to `budget` per `window_ms` instead of what HELLO
    /// announced (tests, and hostile devices that do not pace).
    pub fn pace(&mut self, budget: u32, window_ms: u32) {
        self.pacer.set_budget(budget, window_ms);
    }

    /// Takes over what `old` sent within the budget's window (a
    /// reconnect: the relay counts the device's requests across its
    /// connections), keeping this link's announced budget.
    pub fn carry_pacing(&mut self, old: &mut Link) {
        self.pacer.carry(&mut old.pacer, std::time::Instant::now());
    }

    /// When the answers since the last call arrived: the caller keeps
    /// them, so that a restarted client paces from what the relay counted
    /// ([`Link::seed_pacing`]).
    pub fn take_answers(&mut self) -> Vec<std::time::Instant> {
        self.answers.drain(..).collect()
    }

    /// Paces from answers an earlier process of this device got.
    pub fn seed_pacing(&mut self, answered: impl IntoIterator<Item = std::time::Instant>) {
        self.pacer.seed(answered);
    }

    /// How long the next request would wait for the relay's budget.
    pub fn pacing_wait(&mut self) -> std::time::Duration {
        self.pacer.wait(std::time::Instant::now())
    }

    /// The window of the budget HELLO announced.
    pub fn pacing_window(&self) -> std::time::Duration {
        self.pacer.window()
    }

    /// CRLs the relay handed out since the last call (DER, unchecked).
    pub fn take_crls(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.crls)
    }

    async fn write(&mut self, number: u32, bytes: &[u8]) -> Result<(), ClientError> {
        let mut frames = Vec::new();
        for c in chunks(number, bytes).map_err(LinkError::Encode)? {
            frames.push(Message::DsUp(c).encode().map_err(LinkError::Encode)?);
        }
        self.out
            .send(frames)
            .await
            .map_err(|_| LinkError::Closed.into())
    }

    /// Sends a request and waits for its answer; mailbox items that come
    /// first are kept for [`Link::next_delivery`].
    pub async fn request(&mut self, request: Request) -> Result<Down, ClientError> {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        let msg = self.next_msg;
        self.next_msg = self.next_msg.wrapping_add(1);
        let bytes = request.encode(req).map_err(LinkError::Encode)?;
        if !matches!(request, Request::Ack(_)) {
            let wait = self.pacer.wait(std::time::Instant::now());
            if !wait.is_zero() {
                tracing::debug!(?wait, "pacing within the relay's request budget");
                tokio::time::sleep(wait).await;
            }
            self.pacer.started();
        }
        self.write(msg, &bytes).await?;
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await? {
                Down::Delivery { seq, item } => {
                    let size = item.size();
                    if self.buffered.len() >= MAX_BUFFERED
                        || self.buffered_bytes.saturating_add(size) > MAX_BUFFERED_BYTES
                    {
                        return Err(LinkError::Overflow.into());
                    }
                    self.buffered_bytes = self.buffered_bytes.saturating_add(size);
                    self.buffered.push_back((seq, item));
                }
                Down::Uploaded { req: r, .. }
                | Down::Claimed { req: r, .. }
                | Down::Accepted { req: r, .. }
                | Down::Refused { req: r, .. }
                | Down::Devices { req: r, .. }
                    if r != req =>
                {
                    tracing::warn!(req = r, "an answer to no open request, ignored");
                }
                Down::Hello { .. } => tracing::warn!("a second HELLO, ignored"),
                answer => {
                    if !matches!(request, Request::Ack(_)) {
                        let now = std::time::Instant::now();
                        self.pacer.answered(now);
                        if self.answers.len() >= super::pace::MAX_PACED {
                            self.answers.pop_front();
                        }
                        self.answers.push_back(now);
                    }
                    return Ok(answer);
                }
            }
        }
    }

    /// Acknowledges mailbox items up to `seq` (no answer).
    pub async fn ack(&mut self, seq: u64) -> Result<(), ClientError> {
        let msg = self.next_msg;
        self.next_msg = self.next_msg.wrapping_add(1);
        let bytes = Request::Ack(seq).encode(0).map_err(LinkError::Encode)?;
        self.write(msg, &bytes).await
    }

    /// The next mailbox item, waiting at most `wait`; `None` if none came.
    pub async fn next_delivery(
        &mut self,
        wait: Duration,
    ) -> Result<Option<(u64, Delivery)>, ClientError> {
        if let Some(d) = self.buffered.pop_front() {
            self.buffered_bytes = self.buffered_bytes.saturating_sub(d.1.size());
            return Ok(Some(d));
        }
        match tokio::time::timeout(wait, self.recv_any()).await {
            Err(_) => Ok(None),
            Ok(r) => match r? {
                Down::Delivery { seq, item } => Ok(Some((seq, item))),
                other => {
                    tracing::warn!(?other, "an answer to no open request, ignored");
                    Ok(None)
                }
            },
        }
    }

    async fn recv(&mut self, wait: Duration) -> Result<Down, ClientError> {
        tokio::time::timeout(wait, self.recv_any())
            .await
            .map_err(|_| LinkError::Timeout)?
    }

    /// Waits until the relay has sent something (a mailbox item, an
    /// answer, a CRL, the end): what a front end awaits instead of
    /// polling. Cancel-safe: what arrived is kept for the next read.
    pub async fn readable(&mut self) {
        if !self.buffered.is_empty() || self.peeked.is_some() {
            return;
        }
        self.peeked = Some(
            self.inbox
                .recv()
                .await
                .unwrap_or_else(|| Incoming::Closed("the connection is closed".into())),
        );
    }

    async fn recv_any(&mut self) -> Result<Down, ClientError> {
        loop {
            let next = match self.peeked.take() {
                Some(i) => Some(i),
                None => self.inbox.recv().await,
            };
            match next {
                Some(Incoming::Down(d)) => return Ok(d),
                Some(Incoming::Crl(der)) => {
                    if self.crls.len() < 4 {
                        self.crls.push(der);
                    }
                }
                Some(Incoming::Closed(why)) => return Err(LinkError::Ended(why).into()),
                None => return Err(LinkError::Closed.into()),
            }
        }
    }

    /// Says goodbye.
    pub async fn close(self) {
        if let Ok(f) = (Message::Goodbye {
            code: GoodbyeCode::Normal,
            reason: "bye".into(),
        })
        .encode()
        {
            let _ = self.out.send(vec![f]).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Reader =
    FrameReader<tokio::io::ReadHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>;
type Writer =
    FrameWriter<tokio::io::WriteHalf<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>;

async fn read_loop(mut reader: Reader, tx: mpsc::Sender<Incoming>) {
    let mut reassembly = Reassembly::new(MAX_DOWN_BYTES);
    let mut crl = CrlChunks::default();
    let why = loop {
        let frame = match reader.read_frame(READ_IDLE, FRAME_TIMEOUT).await {
            Ok(Some(f)) => f,
            Ok(None) => break "the relay closed the connection".to_string(),
            Err(e) => break format!("connection lost: {e}"),
        };
        let msg = match Message::from_frame(&frame) {
            Ok(m) => m,
            Err(e) => break format!("the relay sent a malformed frame: {e}"),
        };
        let incoming = match msg {
            Message::DsDown(c) => match reassembly.push(c) {
                Ok(None) => continue,
                Ok(Some(bytes)) => match Down::decode(&bytes) {
                    Ok(d) => Incoming::Down(d),
                    Err(e) => break format!("the relay sent a malformed message: {e}"),
                },
                Err(e) => break format!("the relay broke the chunk order: {e}"),
            },
            Message::Crl {
                index,
                count,
                chunk,
            } => match crl.push(index, count, &chunk) {
                Some(der) => Incoming::Crl(der),
                None => continue,
            },
            Message::Goodbye { code, reason } => {
                break format!(
                    "the relay closed the connection: {} ({reason})",
                    code.as_str()
                );
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => {
                break format!(
                    "the relay sent an unexpected {:?} frame",
                    other.frame_type()
                );
            }
        };
        if tx.send(incoming).await.is_err() {
            return;
        }
    };
    let _ = tx.send(Incoming::Closed(why)).await;
}

async fn write_loop(mut writer: Writer, mut rx: mpsc::Receiver<Vec<Box<[u8; FRAME_LEN]>>>) {
    let mut ping = 0u64;
    loop {
        match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Ok(Some(frames)) => {
                if writer.write_batch(&frames).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = writer.shutdown().await;
                return;
            }
            Err(_) => {
                ping = ping.wrapping_add(1);
                let Ok(f) = Message::Ping(ping).encode() else {
                    return;
                };
                if writer.write_one(&f).await.is_err() {
                    return;
                }
            }
        }
    }
}
