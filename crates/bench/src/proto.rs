//! The one client of every target: the same tokio + rustls code, speaking
//! blindrelay frames, MQTT 3.1.1 (QoS 0) or NATS, so that only the server
//! differs.
//!
//! A benchmark message is an opaque payload of [`PAYLOAD_LEN`] bytes whose
//! first [`STAMP_LEN`] bytes carry the pair, the sequence number and the
//! intended send time; the rest is filler.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use blindrelay_pki::PkiDir;

use crate::mqtt;
use blindrelay_wire::{
    FRAME_LEN, FragmentPos, MAX_ACK_IDS, Message, MessageId, Routed, RoutedFlags, RoutedHeader,
    Target, UserName,
};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::target::Kind;

/// Payload bytes of one MQTT or NATS benchmark message: the size of a
/// blindrelay frame. blindrelay carries the same stamp in one 4096-byte
/// frame (its payload is the frame minus the routing header).
pub const PAYLOAD_LEN: usize = FRAME_LEN;
/// Pair (u32), sequence (u64), intended send time in ns since the run
/// started (u64).
pub const STAMP_LEN: usize = 20;
/// Receivers acknowledge stored blindrelay messages in batches of this many.
const ACK_BATCH: usize = 32;

/// A stamp read back from a delivered payload.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// Which sender/receiver pair.
    pub pair: u32,
    /// Sequence number within the pair.
    pub seq: u64,
    /// When it was meant to be sent (ns since the run's start).
    pub sent_ns: u64,
}

impl Stamp {
    fn bytes(&self) -> [u8; STAMP_LEN] {
        let mut b = [0u8; STAMP_LEN];
        for (dst, src) in b.iter_mut().zip(
            self.pair
                .to_be_bytes()
                .into_iter()
                .chain(self.seq.to_be_bytes())
                .chain(self.sent_ns.to_be_bytes()),
        ) {
            *dst = src;
        }
        b
    }

    /// Writes the stamp at the start of `out` (a payload of at least
    /// [`STAMP_LEN`] bytes).
    fn write(&self, out: &mut [u8]) {
        for (dst, src) in out.iter_mut().zip(self.bytes()) {
            *dst = src;
        }
    }

    fn read(b: &[u8]) -> Option<Stamp> {
        let (pair, rest) = b.split_first_chunk::<4>()?;
        let (seq, rest) = rest.split_first_chunk::<8>()?;
        let (sent_ns, _) = rest.split_first_chunk::<8>()?;
        Some(Stamp {
            pair: u32::from_be_bytes(*pair),
            seq: u64::from_be_bytes(*seq),
            sent_ns: u64::from_be_bytes(*sent_ns),
        })
    }
}

/// TLS client configurations per user (built once; certificate loading and
/// key parsing stay out of the measurements).
pub struct Identities {
    ca: rustls_pki_types::CertificateDer<'static>,
    pki: PkiDir,
    full: HashMap<String, Arc<ClientConfig>>,
    resuming: HashMap<String, Arc<ClientConfig>>,
}

fn tls_config(
    ca: &rustls_pki_types::CertificateDer<'static>,
    pki: &PkiDir,
    user: &str,
    resume: bool,
) -> Result<ClientConfig> {
    let name = UserName::new(user).map_err(|e| anyhow!("{e}"))?;
    let chain = blindrelay_net::load_certs(&pki.user_cert_path(&name))?;
    let key = blindrelay_net::load_private_key(&pki.user_key_path(&name))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    // Same record size for every target: one 4096-byte frame of plaintext
    // per record at most.
    cfg.max_fragment_size = Some(blindrelay_net::TLS_MAX_FRAGMENT_SIZE);
    cfg.resumption = if resume {
        rustls::client::Resumption::in_memory_sessions(64)
    } else {
        rustls::client::Resumption::disabled()
    };
    Ok(cfg)
}

impl Identities {
    /// Loads the CA and, lazily, each user's key.
    pub fn new(pki: &PkiDir) -> Result<Self> {
        let ca = blindrelay_net::load_certs(&pki.ca_cert_path())?
            .into_iter()
            .next()
            .context("no CA certificate")?;
        Ok(Self {
            ca,
            pki: pki.clone(),
            full: HashMap::new(),
            resuming: HashMap::new(),
        })
    }

    /// The configuration for `user`: resumption disabled, or with an
    /// in-memory session cache.
    pub fn config(&mut self, user: &str, resume: bool) -> Result<Arc<ClientConfig>> {
        let map = if resume {
            &mut self.resuming
        } else {
            &mut self.full
        };
        if let Some(c) = map.get(user) {
            return Ok(c.clone());
        }
        let c = Arc::new(tls_config(&self.ca, &self.pki, user, resume)?);
        map.insert(user.to_string(), c.clone());
        Ok(c)
    }
}

type Tls = TlsStream<TcpStream>;

/// Opens TCP and TLS (NATS first sends its INFO line in the clear).
/// Returns the stream and whether the handshake resumed a session.
pub async fn handshake(
    kind: Kind,
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
) -> Result<(Tls, bool)> {
    // Closed with a reset rather than a FIN: the generator opens tens of
    // thousands of connections a minute, and each FIN-closed one would
    // hold a loopback port in TIME_WAIT for 60 s (the port range is about
    // 28 000), which made later runs fail to connect.
    let sock = TcpSocket::new_v4()?;
    sock.set_zero_linger()?;
    sock.set_nodelay(true)?;
    let mut tcp = sock.connect(addr).await?;
    if kind == Kind::Nats {
        // INFO {...}\r\n before TLS.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if tcp.read(&mut b).await? == 0 {
                bail!("nats closed before INFO");
            }
            line.push(b[0]);
            if line.len() > 64 * 1024 {
                bail!("nats INFO too long");
            }
        }
    }
    let tls = TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    Ok((tls, resumed))
}

/// An authenticated, logged-in connection of `user` (subscribed to its own
/// inbox when `subscribe`).
pub struct Conn {
    kind: Kind,
    user: String,
    r: BufReader<ReadHalf<Tls>>,
    w: WriteHalf<Tls>,
}

/// Connects, logs in and (for MQTT/NATS) subscribes to the user's inbox.
pub async fn connect(
    kind: Kind,
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    user: &str,
    client_id: &str,
    subscribe: bool,
) -> Result<Conn> {
    let kind = kind.protocol();
    let (tls, _) = handshake(kind, addr, cfg).await?;
    let (r, w) = tokio::io::split(tls);
    let mut c = Conn {
        kind,
        user: user.to_string(),
        r: BufReader::with_capacity(64 * 1024, r),
        w,
    };
    match kind {
        Kind::Relay | Kind::RelayMem => {
            // Welcome, the CRL, the directory, DirectoryEnd.
            loop {
                let mut f = [0u8; FRAME_LEN];
                c.r.read_exact(&mut f).await?;
                match Message::decode(&f).map_err(|e| anyhow!("{e}"))? {
                    Message::DirectoryEnd { .. } => break,
                    Message::Goodbye { code, reason } => {
                        bail!("relay said goodbye: {code:?} {reason}")
                    }
                    _ => {}
                }
            }
        }
        Kind::Mosquitto => {
            c.w.write_all(&mqtt::connect(client_id)).await?;
            let mut ack = [0u8; 4];
            c.r.read_exact(&mut ack).await?;
            if ack != [0x20, 0x02, 0x00, 0x00] {
                bail!("mosquitto refused the connection: {ack:?}");
            }
            if subscribe {
                c.w.write_all(&mqtt::subscribe(&format!("inbox/{user}")))
                    .await?;
                let mut ack = [0u8; 5];
                c.r.read_exact(&mut ack).await?;
                if ack[0] != 0x90 || ack[4] > 2 {
                    bail!("mosquitto refused the subscription: {ack:?}");
                }
            }
        }
        Kind::Nats => {
            let mut hello = String::from(
                "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":true,\"lang\":\"rust\",\"version\":\"bench\"}\r\n",
            );
            if subscribe {
                hello.push_str(&format!("SUB inbox.{user} 1\r\n"));
            }
            hello.push_str("PING\r\n");
            c.w.write_all(hello.as_bytes()).await?;
            loop {
                let mut line = String::new();
                if c.r.read_line(&mut line).await? == 0 {
                    bail!("nats closed during login");
                }
                if line.starts_with("PONG") {
                    break;
                }
                if line.starts_with("-ERR") {
                    bail!("nats: {}", line.trim());
                }
            }
        }
    }
    c.w.flush().await?;
    Ok(c)
}

/// The sending side of a connection, with its message encoder.
pub struct Sender {
    kind: Kind,
    from: UserName,
    to: UserName,
    w: WriteHalf<Tls>,
    buf: Vec<u8>,
}

/// The receiving side of a connection.
pub struct Receiver {
    kind: Kind,
    r: BufReader<ReadHalf<Tls>>,
    w: WriteHalf<Tls>,
    pending_acks: Vec<(UserName, MessageId)>,
    buf: Vec<u8>,
}

impl Conn {
    /// Turns the connection into a sender to `to`; what the server sends
    /// back (statuses) is read and dropped by a task.
    pub fn into_sender(self, to: &str) -> Result<Sender> {
        let Conn { kind, user, r, w } = self;
        tokio::spawn(drain(r));
        Ok(Sender {
            kind,
            from: UserName::new(&user).map_err(|e| anyhow!("{e}"))?,
            to: UserName::new(to).map_err(|e| anyhow!("{e}"))?,
            w,
            buf: Vec::with_capacity(PAYLOAD_LEN + 256),
        })
    }

    /// Turns the connection into a receiver.
    pub fn into_receiver(self) -> Receiver {
        Receiver {
            kind: self.kind,
            r: self.r,
            w: self.w,
            pending_acks: Vec::new(),
            buf: vec![0u8; PAYLOAD_LEN + 256],
        }
    }

    /// Keeps an idle connection alive: reads and drops whatever arrives,
    /// and for the relay sends a ping every `every`.
    pub async fn idle(mut self, every: std::time::Duration) {
        let mut r = self.r;
        tokio::spawn(async move {
            let mut b = vec![0u8; 16 * 1024];
            while matches!(r.read(&mut b).await, Ok(n) if n > 0) {}
        });
        if self.kind == Kind::Relay {
            loop {
                tokio::time::sleep(every).await;
                let Ok(ping) = Message::Ping(0).encode() else {
                    return;
                };
                if self.w.write_all(&ping[..]).await.is_err() {
                    return;
                }
            }
        } else {
            std::future::pending::<()>().await;
        }
    }
}

async fn drain(mut r: BufReader<ReadHalf<Tls>>) {
    let mut b = vec![0u8; 64 * 1024];
    while matches!(r.read(&mut b).await, Ok(n) if n > 0) {}
}

impl Sender {
    /// Sends one message carrying `stamp`.
    pub async fn send(&mut self, stamp: Stamp) -> Result<()> {
        self.buf.clear();
        match self.kind {
            Kind::Relay | Kind::RelayMem => {
                let target = Target::Users(vec![self.to.clone()]);
                let room = RoutedHeader::max_payload_len(&self.from, &target);
                let mut payload = vec![0u8; room];
                stamp.write(&mut payload);
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&stamp.pair.to_be_bytes());
                id[4..12].copy_from_slice(&stamp.seq.to_be_bytes());
                let m = Message::Send(Routed {
                    header: RoutedHeader {
                        msg_id: MessageId(id),
                        fragment: FragmentPos::SINGLE,
                        flags: RoutedFlags::NONE,
                        sender: self.from.clone(),
                        target,
                    },
                    payload,
                });
                self.buf
                    .extend_from_slice(&m.encode().map_err(|e| anyhow!("{e}"))?[..]);
            }
            Kind::Mosquitto => {
                let topic = format!("inbox/{}", self.to);
                self.buf.push(0x30);
                mqtt::remaining_len(2 + topic.len() + PAYLOAD_LEN, &mut self.buf);
                mqtt::string(&topic, &mut self.buf);
                let start = self.buf.len();
                self.buf.extend_from_slice(&stamp.bytes());
                self.buf.resize(start + PAYLOAD_LEN, 0);
            }
            Kind::Nats => {
                self.buf.extend_from_slice(
                    format!("PUB inbox.{} {PAYLOAD_LEN}\r\n", self.to).as_bytes(),
                );
                let start = self.buf.len();
                self.buf.extend_from_slice(&stamp.bytes());
                self.buf.resize(start + PAYLOAD_LEN, 0);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
        self.w.write_all(&self.buf).await?;
        Ok(())
    }
}

impl Receiver {
    /// The next delivered message's stamp.
    pub async fn recv(&mut self) -> Result<Stamp> {
        loop {
            match self.kind {
                Kind::Relay | Kind::RelayMem => {
                    let f = self.buf.get_mut(..FRAME_LEN).context("buffer")?;
                    self.r.read_exact(f).await?;
                    if let Message::Deliver(r) = Message::decode(f).map_err(|e| anyhow!("{e}"))? {
                        let stamp = Stamp::read(&r.payload).context("short payload")?;
                        // The relay stores every message until it is
                        // acknowledged: acknowledge in batches.
                        self.pending_acks.push((r.header.sender, r.header.msg_id));
                        if self.pending_acks.len() >= ACK_BATCH.min(MAX_ACK_IDS) {
                            let ack = Message::Ack(std::mem::take(&mut self.pending_acks));
                            self.w
                                .write_all(&ack.encode().map_err(|e| anyhow!("{e}"))?[..])
                                .await?;
                        }
                        return Ok(stamp);
                    }
                }
                Kind::Mosquitto => {
                    let h = self.r.read_u8().await?;
                    let mut len = 0usize;
                    let mut mul = 1usize;
                    loop {
                        let b = self.r.read_u8().await?;
                        len += usize::from(b & 0x7f) * mul;
                        mul *= 128;
                        if b & 0x80 == 0 {
                            break;
                        }
                        if mul > 128 * 128 * 128 {
                            bail!("bad MQTT length");
                        }
                    }
                    let body = self
                        .buf
                        .get_mut(..len)
                        .with_context(|| format!("MQTT packet of {len} bytes"))?;
                    self.r.read_exact(body).await?;
                    if h >> 4 == 3 {
                        let (tl, rest) = body.split_first_chunk::<2>().context("short PUBLISH")?;
                        let payload = rest
                            .get(usize::from(u16::from_be_bytes(*tl))..)
                            .context("short PUBLISH")?;
                        return Stamp::read(payload).context("short payload");
                    }
                }
                Kind::Nats => {
                    let mut line = String::new();
                    if self.r.read_line(&mut line).await? == 0 {
                        bail!("nats closed");
                    }
                    if line.starts_with("MSG ") {
                        let n: usize = line
                            .split_whitespace()
                            .last()
                            .and_then(|x| x.parse().ok())
                            .context("bad MSG line")?;
                        let body = self
                            .buf
                            .get_mut(..n + 2)
                            .with_context(|| format!("NATS message of {n} bytes"))?;
                        self.r.read_exact(body).await?;
                        return Stamp::read(body).context("short payload");
                    } else if line.starts_with("PING") {
                        self.w.write_all(b"PONG\r\n").await?;
                    } else if line.starts_with("-ERR") {
                        bail!("nats: {}", line.trim());
                    }
                }
            }
        }
    }
}
