//! [`RawClient`]: frames over real mutual TLS, with no client logic. It
//! sends exactly what a test tells it to, well-formed or not, and reads
//! exactly what the relay sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter};
use blindrelay_wire::{
    FragmentPos, GoodbyeCode, Message, MessageId, Routed, RoutedFlags, RoutedHeader, StatusKind,
    Target, UserName,
};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{KitError, TestPki, name, names};

/// How long a raw client waits for a frame it expects.
pub const RECV_WAIT: Duration = Duration::from_secs(5);

/// TCP, then TLS to the relay's `localhost` name with `cfg`.
pub async fn tls_connect(
    addr: SocketAddr,
    cfg: ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let server = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    TlsConnector::from(Arc::new(cfg)).connect(server, tcp).await
}

/// A message id unique in this process.
pub fn unique_id() -> MessageId {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 16];
    let (head, tail) = id.split_at_mut(8);
    head.copy_from_slice(&n.to_be_bytes());
    tail.copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    MessageId(id)
}

/// A raw connection as one user.
pub struct RawClient {
    /// Whose certificate it uses.
    pub name: UserName,
    /// The frame reader.
    pub reader: FrameReader<ReadHalf<TlsStream<TcpStream>>>,
    /// The frame writer.
    pub writer: FrameWriter<WriteHalf<TlsStream<TcpStream>>>,
    /// Peers from the initial directory.
    pub directory: Vec<UserName>,
    /// Statuses of a `Statuses` frame not returned yet: tests see every
    /// status as its own `Status`, however the relay packed them.
    unpacked: VecDeque<Message>,
    /// `Statuses` frames received (packing is checked by some tests).
    pub packed_frames: usize,
}

impl RawClient {
    /// Connects as `user`, checks the Welcome, and reads the directory.
    pub async fn connect(addr: SocketAddr, pki: &TestPki, user: &str) -> Result<Self, KitError> {
        let mut c = Self::connect_raw(addr, pki, user).await?;
        match c.recv().await? {
            Message::Welcome(w) if w.identity.as_str() == user => {}
            other => return Err(c.unexpected("Welcome", &other)),
        }
        loop {
            match c.recv().await? {
                Message::Peer { name, .. } => c.directory.push(name),
                Message::Crl { .. } => {}
                Message::DirectoryEnd { count } if usize::from(count) == c.directory.len() => {
                    return Ok(c);
                }
                other => return Err(c.unexpected("the directory", &other)),
            }
        }
    }

    /// Connects as `user` and reads nothing.
    pub async fn connect_raw(
        addr: SocketAddr,
        pki: &TestPki,
        user: &str,
    ) -> Result<Self, KitError> {
        let s = tls_connect(addr, pki.client_config(user)?).await?;
        Self::wrap(user, s)
    }

    /// Wraps an established TLS stream.
    pub fn wrap(user: &str, s: TlsStream<TcpStream>) -> Result<Self, KitError> {
        let (r, w) = tokio::io::split(s);
        Ok(Self {
            name: name(user)?,
            reader: FrameReader::new(r),
            writer: FrameWriter::new(w, RECV_WAIT),
            directory: vec![],
            unpacked: VecDeque::new(),
            packed_frames: 0,
        })
    }

    fn unexpected(&self, expected: &str, got: &Message) -> KitError {
        KitError::Unexpected {
            who: self.name.to_string(),
            expected: expected.into(),
            got: format!("{got:?}"),
        }
    }

    /// Sends one message in one frame.
    pub async fn send(&mut self, m: &Message) -> Result<(), KitError> {
        let frame = m.encode()?;
        Ok(self.writer.write_one(&frame).await?)
    }

    /// Writes raw bytes (no framing).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let w = self.writer.get_mut();
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// The next message, within [`RECV_WAIT`].
    pub async fn recv(&mut self) -> Result<Message, KitError> {
        match self.try_recv(RECV_WAIT).await? {
            Some(m) => Ok(m),
            None => Err(KitError::Timeout {
                who: self.name.to_string(),
                what: "a frame".into(),
            }),
        }
    }

    /// `Ok(Some)` a message, `Ok(None)` nothing within `d`, `Err` the
    /// stream ended or failed.
    pub async fn try_recv(&mut self, d: Duration) -> Result<Option<Message>, KitError> {
        if let Some(m) = self.unpacked.pop_front() {
            return Ok(Some(m));
        }
        let read = self.reader.read_frame(Duration::from_secs(3600), RECV_WAIT);
        match tokio::time::timeout(d, read).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(f))) => match Message::from_frame(&f)? {
                Message::Statuses(list) => {
                    self.packed_frames += 1;
                    self.unpacked.extend(
                        list.into_iter()
                            .map(|(msg_id, kind)| Message::Status { msg_id, kind }),
                    );
                    Ok(self.unpacked.pop_front())
                }
                m => Ok(Some(m)),
            },
            Ok(Ok(None)) => Err(KitError::Closed {
                who: self.name.to_string(),
                what: "a frame".into(),
            }),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// The next message that is not presence or a STORED status.
    pub async fn recv_skip_presence(&mut self) -> Result<Message, KitError> {
        loop {
            match self.recv().await? {
                Message::Peer { .. } | Message::PeerLeft { .. } | Message::Crl { .. } => continue,
                Message::Status {
                    kind: StatusKind::Stored { .. },
                    ..
                } => continue,
                m => return Ok(m),
            }
        }
    }

    /// Fails if anything but presence or a STORED status arrives within `d`.
    pub async fn expect_silence(&mut self, d: Duration) -> Result<(), KitError> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.try_recv(left).await? {
                None => return Ok(()),
                Some(Message::Peer { .. } | Message::PeerLeft { .. } | Message::Crl { .. }) => {
                    continue;
                }
                Some(Message::Status {
                    kind: StatusKind::Stored { .. },
                    ..
                }) => continue,
                Some(other) => return Err(self.unexpected("silence", &other)),
            }
        }
    }

    /// Reads until the relay closes the connection; returns the goodbye
    /// code if one was sent. Fails if it is still open after [`RECV_WAIT`].
    pub async fn expect_closed(&mut self) -> Result<Option<GoodbyeCode>, KitError> {
        let mut code = None;
        let deadline = tokio::time::Instant::now() + RECV_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_recv(left).await {
                Ok(Some(Message::Goodbye { code: c, .. })) => code = Some(c),
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(KitError::Timeout {
                        who: self.name.to_string(),
                        what: "the relay to close the connection".into(),
                    });
                }
                Err(_) => return Ok(code),
            }
        }
    }

    /// A one-fragment routed message from this client to `to`.
    pub fn routed(&self, to: &[&str], payload: &[u8]) -> Result<Routed, KitError> {
        Ok(Routed {
            header: RoutedHeader {
                msg_id: unique_id(),
                fragment: FragmentPos::SINGLE,
                flags: RoutedFlags::NONE,
                sender: self.name.clone(),
                target: Target::Users(names(to)?),
            },
            payload: payload.to_vec(),
        })
    }

    /// Sends a one-fragment message to `to`; returns its id.
    pub async fn send_to(&mut self, to: &[&str], payload: &[u8]) -> Result<MessageId, KitError> {
        let r = self.routed(to, payload)?;
        let id = r.header.msg_id;
        self.send(&Message::Send(r)).await?;
        Ok(id)
    }
}
