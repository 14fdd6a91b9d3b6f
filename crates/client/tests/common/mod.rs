//! Shared helpers for the client integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use blindrelay_client::{ClientConfig, ClientHandle, Event, connect};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_server::{Config, Server};
use blindrelay_wire::UserName;
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(10);
pub const QUIET: Duration = Duration::from_millis(500);

pub fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct W(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for W {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = W(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("debug")
            .with_writer(move || w.clone())
            .try_init();
        buf
    })
    .clone()
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub pki: PkiDir,
}

pub fn setup(users: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiDir::new(dir.path());
    pki.init(
        "Client Test CA",
        &["localhost".into(), "127.0.0.1".into()],
        false,
    )
    .unwrap();
    for u in users {
        pki.issue(&n(u), &UserCertOptions::valid_for_days(1), false)
            .unwrap();
    }
    Setup { dir, pki }
}

pub async fn relay(s: &Setup) -> (String, tokio::sync::oneshot::Sender<()>) {
    capture_logs();
    let server = Server::bind(
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            verbose: true,
            ..Config::default()
        },
        s.pki.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    (addr, tx)
}

pub struct U {
    pub h: ClientHandle,
    pub ev: mpsc::Receiver<Event>,
}

pub async fn user_with(s: &Setup, name: &str, addr: &str, f: impl FnOnce(&mut ClientConfig)) -> U {
    let mut cfg = ClientConfig::from_dir(s.dir.path(), n(name), addr);
    cfg.state = None;
    f(&mut cfg);
    let (h, mut ev) = connect(&cfg).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, ev.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Connected { .. } => break,
            _ => continue,
        }
    }
    U { h, ev }
}

pub async fn user(s: &Setup, name: &str, addr: &str) -> U {
    user_with(s, name, addr, |_| {}).await
}

impl U {
    pub async fn until(&mut self, what: &str, mut f: impl FnMut(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ev.recv()).await {
                Ok(Some(e)) if f(&e) => return e,
                Ok(Some(_)) => {}
                other => panic!("waiting for {what}: {other:?}"),
            }
        }
    }

    pub async fn online(&mut self, who: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self
            .h
            .online()
            .await
            .unwrap()
            .iter()
            .any(|x| x.as_str() == who)
        {
            assert!(tokio::time::Instant::now() < deadline, "{who} never online");
            let _ = tokio::time::timeout(Duration::from_millis(50), self.ev.recv()).await;
        }
    }

    pub async fn text(&mut self) -> (String, String, bool) {
        match self
            .until("message", |e| matches!(e, Event::Message { .. }))
            .await
        {
            Event::Message {
                from, text, room, ..
            } => (from.to_string(), text, room),
            _ => unreachable!(),
        }
    }

    pub async fn warning(&mut self) -> String {
        match self
            .until("warning", |e| matches!(e, Event::Warning(_)))
            .await
        {
            Event::Warning(w) => w,
            _ => unreachable!(),
        }
    }

    /// Messages shown during QUIET (must usually be none).
    pub async fn messages_during_quiet(&mut self) -> Vec<String> {
        let mut v = vec![];
        let deadline = tokio::time::Instant::now() + QUIET;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.ev.recv()).await {
            if let Event::Message { text, .. } = e {
                v.push(text);
            }
        }
        v
    }

    pub async fn send(&self, to: &[&str], text: &str) {
        self.h
            .send(to.iter().map(|x| n(x)).collect(), text.into(), false)
            .await
            .unwrap();
    }
}

pub fn rustls_pki_types_pem(pem: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.pem");
    std::fs::write(&p, pem).unwrap();
    blindrelay_pki::store::read_cert_der(&p).unwrap()
}

/// A relay with a durable store that can be stopped and started again on
/// the same address.
pub struct Relay {
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    pub async fn start(s: &Setup, config: Config, addr: &str) -> Relay {
        capture_logs();
        let mut tries = 0;
        let server = loop {
            let cfg = Config {
                listen: addr.parse().unwrap(),
                ..config.clone()
            };
            match Server::bind_with_store(cfg, s.pki.clone(), store_clone(s)).await {
                Ok(server) => break server,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("relay did not start: {e}"),
            }
        };
        let addr = server.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Relay {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) -> String {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, t).await;
        }
        self.addr.clone()
    }
}

fn store_clone(s: &Setup) -> blindrelay_server::store::sqlite::SqliteStore {
    blindrelay_server::store::sqlite::SqliteStore::open(&s.dir.path().join("relay.db")).unwrap()
}

/// A TCP proxy whose connections can all be cut at once (a network fault).
pub struct CutProxy {
    pub addr: String,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    pub async fn start(target: String) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let c = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c.lock().unwrap().push(h);
            }
        });
        CutProxy {
            addr,
            conns,
            _task: task,
        }
    }

    /// Drops every connection through the proxy, mid-stream.
    pub fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}
