//! Test harness: a throwaway PKI, a real relay on 127.0.0.1:0, real TLS
//! clients, a record-length recording proxy, and captured logs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use blindrelay_net::{FrameReader, FrameWriter, client_config, load_certs, load_private_key};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_server::{Config, Server, ServerHandle};
use blindrelay_wire::{
    FRAME_LEN, FragmentPos, Message, MessageId, Routed, StatusKind, Target, UserName,
};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const T: Duration = Duration::from_secs(5);

// ---------- logs ----------

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("blindrelay=debug,blindrelay_server=debug")
            .with_writer(move || w.clone())
            .try_init();
        buf
    });
}

pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.get().unwrap().lock().unwrap()).into_owned()
}

/// Waits until a log line contains every needle.
pub async fn wait_log(needles: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some(l) = logs()
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
        {
            return l.to_string();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("no log line with {needles:?}; logs:\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------- PKI ----------

pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub pki: PkiDir,
}

impl TestPki {
    pub fn new(users: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDir::new(dir.path());
        pki.init(
            "Test Root CA",
            &["localhost".into(), "127.0.0.1".into()],
            false,
        )
        .unwrap();
        for u in users {
            pki.issue(&name(u), &UserCertOptions::valid_for_days(1), false)
                .unwrap();
        }
        Self { dir, pki }
    }

    pub fn issue_with(&self, user: &str, opts: &UserCertOptions) {
        self.pki.issue(&name(user), opts, true).unwrap();
    }

    pub fn client_config(&self, user: &str) -> ClientConfig {
        let n = name(user);
        let ca = load_certs(&self.pki.ca_cert_path()).unwrap().remove(0);
        let chain = load_certs(&self.pki.user_cert_path(&n)).unwrap();
        let key = load_private_key(&self.pki.user_key_path(&n)).unwrap();
        client_config(ca, chain, key).unwrap()
    }
}

pub fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

// ---------- server ----------

pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(pki: &TestPki, config: Config) -> Self {
        Self::start_with(pki, config, None).await
    }

    /// With a durable SQLite store at `store` (survives a restart).
    pub async fn start_durable(pki: &TestPki, config: Config, store: &std::path::Path) -> Self {
        Self::start_with(pki, config, Some(store)).await
    }

    async fn start_with(pki: &TestPki, config: Config, store: Option<&std::path::Path>) -> Self {
        init_logs();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = match store {
            None => Server::bind(config, pki.pki.clone()).await.unwrap(),
            Some(path) => Server::bind_with_store(
                config,
                pki.pki.clone(),
                blindrelay_server::store::sqlite::SqliteStore::open(path).unwrap(),
            )
            .await
            .unwrap(),
        };
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            handle,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(T, t).await.unwrap().unwrap();
        }
    }
}

/// Test configuration: defaults with short CRL polling.
pub fn config() -> Config {
    Config {
        crl_poll_ms: 100,
        ..Config::default()
    }
}

// ---------- clients ----------

pub async fn tls_connect(
    addr: SocketAddr,
    cfg: ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

pub struct Client {
    pub name: UserName,
    pub reader: FrameReader<ReadHalf<TlsStream<TcpStream>>>,
    pub writer: FrameWriter<WriteHalf<TlsStream<TcpStream>>>,
    /// Peers from the initial directory.
    pub directory: Vec<UserName>,
    /// Statuses of a `Statuses` frame not returned yet: tests see every
    /// status as its own `Status`, however the relay packed them.
    unpacked: std::collections::VecDeque<Message>,
    /// `Statuses` frames received (packing is checked by some tests).
    pub packed_frames: usize,
}

impl Client {
    /// Connects, checks the Welcome, and reads the directory.
    pub async fn connect(addr: SocketAddr, pki: &TestPki, user: &str) -> Client {
        let mut c = Self::connect_raw(addr, pki, user).await.unwrap();
        match c.recv().await {
            Message::Welcome { identity, .. } => assert_eq!(identity.as_str(), user),
            other => panic!("expected Welcome, got {other:?}"),
        }
        loop {
            match c.recv().await {
                Message::Peer { name, .. } => c.directory.push(name),
                Message::DirectoryEnd { count } => {
                    assert_eq!(usize::from(count), c.directory.len());
                    break;
                }
                other => panic!("expected directory, got {other:?}"),
            }
        }
        c
    }

    pub async fn connect_raw(
        addr: SocketAddr,
        pki: &TestPki,
        user: &str,
    ) -> std::io::Result<Client> {
        let s = tls_connect(addr, pki.client_config(user)).await?;
        Ok(Self::wrap(user, s))
    }

    pub fn wrap(user: &str, s: TlsStream<TcpStream>) -> Client {
        let (r, w) = tokio::io::split(s);
        Client {
            name: name(user),
            reader: FrameReader::new(r),
            writer: FrameWriter::new(w, T),
            directory: vec![],
            unpacked: Default::default(),
            packed_frames: 0,
        }
    }

    pub async fn send(&mut self, m: &Message) {
        self.writer.write_one(&m.encode().unwrap()).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let w = self.writer.get_mut();
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// Next message, or panic after `T`.
    pub async fn recv(&mut self) -> Message {
        self.try_recv(T)
            .await
            .expect("stream ended")
            .expect("no message in time")
    }

    /// `Ok(Some)` a message, `Ok(None)` nothing within `d`, `Err` the stream
    /// ended or failed.
    pub async fn try_recv(&mut self, d: Duration) -> Result<Option<Message>, String> {
        if let Some(m) = self.unpacked.pop_front() {
            return Ok(Some(m));
        }
        match tokio::time::timeout(d, self.reader.read_frame(Duration::from_secs(3600), T)).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(f))) => match Message::from_frame(&f).unwrap() {
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
            Ok(Ok(None)) => Err("eof".into()),
            Ok(Err(e)) => Err(e.to_string()),
        }
    }

    /// Skips presence messages and store confirmations until another message.
    pub async fn recv_skip_presence(&mut self) -> Message {
        loop {
            match self.recv().await {
                Message::Peer { .. } | Message::PeerLeft { .. } => continue,
                Message::Status {
                    kind: StatusKind::Stored { .. },
                    ..
                } => continue,
                m => return m,
            }
        }
    }

    /// Asserts that nothing but presence arrives within `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.try_recv(left).await {
                Ok(None) => return,
                Ok(Some(Message::Peer { .. } | Message::PeerLeft { .. })) => continue,
                Ok(Some(Message::Status {
                    kind: StatusKind::Stored { .. },
                    ..
                })) => continue,
                other => panic!("{} expected silence, got {other:?}", self.name),
            }
        }
    }

    /// Reads until the server closes the connection; returns the goodbye
    /// code if one was sent.
    pub async fn expect_closed(&mut self) -> Option<blindrelay_wire::GoodbyeCode> {
        let mut code = None;
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_recv(left).await {
                Ok(Some(Message::Goodbye { code: c, .. })) => code = Some(c),
                Ok(Some(_)) => {}
                Ok(None) => panic!("{}: connection still open after {T:?}", self.name),
                Err(_) => return code,
            }
        }
    }

    pub fn routed(&self, to: &[&str], payload: &[u8]) -> Routed {
        Routed {
            msg_id: MessageId(rand_id()),
            fragment: FragmentPos::SINGLE,
            flags: 0,
            sender: self.name.clone(),
            target: Target::Users(to.iter().map(|t| name(t)).collect()),
            payload: payload.to_vec(),
        }
    }

    pub async fn send_to(&mut self, to: &[&str], payload: &[u8]) -> MessageId {
        let r = self.routed(to, payload);
        let id = r.msg_id;
        self.send(&Message::Send(r)).await;
        id
    }
}

pub fn rand_id() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    id
}

// ---------- record-length proxy ----------

/// A TCP proxy that forwards bytes unchanged and records the length of every
/// TLS record in each direction (5-byte header: type, version, length).
pub struct RecordProxy {
    pub addr: SocketAddr,
    /// (connection, content type, record length including header), client to server.
    pub up: Arc<Mutex<Vec<(usize, u8, usize)>>>,
    /// Server to client.
    pub down: Arc<Mutex<Vec<(usize, u8, usize)>>>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<(usize, u8, usize)>>>,
    conn: usize,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while pending.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([pending[3], pending[4]]));
            if pending.len() < 5 + len {
                break;
            }
            log.lock().unwrap().push((conn, pending[0], 5 + len));
            pending.drain(..5 + len);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl RecordProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(Mutex::new(Vec::new()));
        let (u, d) = (up.clone(), down.clone());
        tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((c, _)) = listener.accept().await {
                conn += 1;
                let s = TcpStream::connect(target).await.unwrap();
                let (cr, cw) = c.into_split();
                let (sr, sw) = s.into_split();
                tokio::spawn(pump(cr, sw, u.clone(), conn));
                tokio::spawn(pump(sr, cw, d.clone(), conn));
            }
        });
        Self { addr, up, down }
    }
}

pub const TLS13_FRAME_RECORD: usize = 5 + FRAME_LEN + 1 + 16;
