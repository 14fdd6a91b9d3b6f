//! The real relay, in this process: [`TestRelay`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use blindrelay_server::store::sqlite::SqliteStore;
use blindrelay_server::{Config, Observed, Server, ServerHandle};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{KitError, TestPki, WAIT, logs};

/// The configuration tests start from: the defaults, on a free port of
/// 127.0.0.1 (never the default port, which a relay on the test machine may
/// hold), with the CRL polled every 100 ms and what the relay sees logged.
pub fn config() -> Config {
    Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        crl_poll_ms: 100,
        verbose: true,
        ..Config::default()
    }
}

/// How to start a [`TestRelay`].
pub struct Builder<'a> {
    pki: &'a TestPki,
    config: Config,
    store: Option<PathBuf>,
    addr: SocketAddr,
    observe: bool,
}

impl Builder<'_> {
    /// Limits and timeouts (its `listen` is ignored: see [`Builder::at`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// A durable SQLite store at `path`, and the v2 Delivery Service's at
    /// `path` with the extension `v2.db` (default: in memory).
    pub fn durable(mut self, path: &Path) -> Self {
        self.store = Some(path.to_path_buf());
        self
    }

    /// Listen on `addr` (default `127.0.0.1:0`): to restart a relay where
    /// its clients expect it. Binding is retried while the old socket goes.
    pub fn at(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Report every relayed fragment ([`TestRelay::take_observed`]).
    pub fn observed(mut self) -> Self {
        self.observe = true;
        self
    }

    /// Binds and runs the relay.
    pub async fn start(self) -> Result<TestRelay, KitError> {
        logs::capture();
        let config = Config {
            listen: self.addr,
            ..self.config
        };
        let mut tries = 0;
        let server = loop {
            let bound = match &self.store {
                None => Server::bind(config.clone(), self.pki.pki.clone()).await,
                Some(path) => {
                    let store =
                        SqliteStore::open(path).map_err(blindrelay_server::ServerError::from)?;
                    let v2 = blindrelay_server::V2Store::open(&path.with_extension("v2.db"))
                        .map_err(blindrelay_server::ServerError::from)?;
                    Server::bind_with_stores(config.clone(), self.pki.pki.clone(), store, v2).await
                }
            };
            match bound {
                Ok(s) => break s,
                Err(blindrelay_server::ServerError::Bind { .. }) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let addr = server.local_addr()?;
        let handle = server.handle();
        let observed = self.observe.then(|| server.observe());
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Ok(TestRelay {
            addr,
            handle,
            observed,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running relay. Dropping it stops it at once; [`TestRelay::stop`] stops
/// it gracefully.
pub struct TestRelay {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: ServerHandle,
    observed: Option<mpsc::Receiver<Observed>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl TestRelay {
    /// A relay for `pki`'s users, to be configured.
    pub fn builder(pki: &TestPki) -> Builder<'_> {
        Builder {
            pki,
            config: config(),
            store: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            observe: false,
        }
    }

    /// A relay with [`config`] and an in-memory store.
    pub async fn start(pki: &TestPki) -> Result<Self, KitError> {
        Self::builder(pki).start().await
    }

    /// A relay with `config` and an in-memory store.
    pub async fn with_config(pki: &TestPki, config: Config) -> Result<Self, KitError> {
        Self::builder(pki).config(config).start().await
    }

    /// A relay with `config` and a durable SQLite store at `store`.
    pub async fn start_durable(
        pki: &TestPki,
        config: Config,
        store: &Path,
    ) -> Result<Self, KitError> {
        Self::builder(pki)
            .config(config)
            .durable(store)
            .start()
            .await
    }

    /// `host:port`, for client configurations.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Asks for a CRL reload (what SIGHUP does).
    pub fn reload_crl(&self) {
        self.handle.reload_crl();
    }

    /// The relayed fragments (with [`Builder::observed`]); the first call
    /// takes them.
    pub fn take_observed(&mut self) -> Option<mpsc::Receiver<Observed>> {
        self.observed.take()
    }

    /// Shuts down gracefully (goodbyes, held messages committed) and
    /// returns the address it listened on.
    pub async fn stop(mut self) -> Result<SocketAddr, KitError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(WAIT, t)
                .await
                .map_err(|_| KitError::Timeout {
                    who: "relay".into(),
                    what: "its shutdown".into(),
                })?
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(self.addr)
    }
}
