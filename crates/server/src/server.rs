//! The accept loop, TLS configuration reloads and graceful shutdown.
//!
//! Structure follows tokio's mini-redis: a semaphore permit is taken
//! *before* `accept`, so at most `max_connections` connections exist at once
//! (handshaking or established); shutdown is a broadcast to every session,
//! and a completion channel tells when they have all finished.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use blindrelay_net::{load_certs, load_private_key, server_config};
use blindrelay_pki::PkiDir;
use rustls::ServerConfig;
use rustls_pki_types::CertificateRevocationListDer;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

use crate::registry::Registry;
use crate::{Config, SECURITY, ServerError};

/// Pause after a failed `accept` (for example EMFILE) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A handshake in progress from one address; counted until dropped.
struct HandshakeSlot {
    map: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl HandshakeSlot {
    fn take(
        map: &Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<Self> {
        let mut g = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = g.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self {
            map: map.clone(),
            ip,
        })
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut g = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = g.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.remove(&self.ip);
            }
        }
    }
}

/// State shared by every task of the server.
pub(crate) struct Shared {
    pub config: Config,
    pub registry: Registry,
    pub store: crate::store::StoreHandle,
    pub write_behind: crate::writebehind::WriteBehind,
    tls: RwLock<Arc<ServerConfig>>,
    pub observer: std::sync::OnceLock<mpsc::Sender<Observed>>,
}

/// Wall-clock time, Unix milliseconds.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Frames queued for an observer before further observations are dropped.
pub const OBSERVER_QUEUE: usize = 1024;

/// What the relay saw of one relayed fragment: routing metadata and opaque
/// bytes. This is everything the server ever learns about a message.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The authenticated sender.
    pub sender: blindrelay_wire::UserName,
    /// The routing target.
    pub target: blindrelay_wire::Target,
    /// Message id.
    pub msg_id: blindrelay_wire::MessageId,
    /// Fragment position.
    pub fragment: blindrelay_wire::FragmentPos,
    /// The opaque payload.
    pub payload: Vec<u8>,
}

impl Shared {
    fn tls(&self) -> Arc<ServerConfig> {
        self.tls
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// A bound, not yet running, relay.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    pki: PkiDir,
    reload: Arc<Notify>,
}

/// Lets the owner of a running server ask for a CRL reload (SIGHUP).
#[derive(Clone)]
pub struct ServerHandle {
    reload: Arc<Notify>,
}

impl ServerHandle {
    /// Re-reads `crl.pem` now and disconnects revoked users.
    pub fn reload_crl(&self) {
        self.reload.notify_one();
    }
}

fn crl_fingerprint(pki: &PkiDir) -> Option<(SystemTime, u64, Vec<u8>)> {
    let path = pki.crl_path();
    let meta = std::fs::metadata(&path).ok()?;
    let bytes = std::fs::read(&path).ok()?;
    Some((meta.modified().ok()?, meta.len(), bytes))
}

fn build_tls(
    pki: &PkiDir,
) -> Result<(ServerConfig, std::collections::HashSet<Vec<u8>>), ServerError> {
    let ca = load_certs(&pki.ca_cert_path())?
        .into_iter()
        .next()
        .ok_or_else(|| blindrelay_pki::PkiError::NoCa(pki.root().to_path_buf()))?;
    let crl_der = blindrelay_pki::store::read_crl_der(&pki.crl_path())?;
    let revoked = blindrelay_pki::revoked_serials(&crl_der)?;
    let chain = load_certs(&pki.server_cert_path())?;
    let key = load_private_key(&pki.server_key_path())?;
    let cfg = server_config(
        ca,
        vec![CertificateRevocationListDer::from(crl_der)],
        chain,
        key,
    )?;
    Ok((cfg, revoked))
}

fn refusal_reason(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => "client presented no certificate".into(),
        Some(rustls::Error::InvalidCertificate(c)) => format!("invalid client certificate: {c:?}"),
        Some(rustls::Error::PeerIncompatible(p)) => format!("incompatible client: {p:?}"),
        Some(other) => format!("TLS error: {other}"),
        None => format!("{e}"),
    }
}

impl Server {
    /// Loads the TLS material from `pki` and binds `config.listen`, with an
    /// in-memory message store (nothing survives a restart: tests, demo).
    pub async fn bind(config: Config, pki: PkiDir) -> Result<Self, ServerError> {
        let store = crate::store::sqlite::SqliteStore::in_memory()?;
        Self::bind_with_store(config, pki, store).await
    }

    /// Like [`Server::bind`], with the given durable store.
    pub async fn bind_with_store(
        config: Config,
        pki: PkiDir,
        store: impl crate::store::MessageStore,
    ) -> Result<Self, ServerError> {
        config.validate().map_err(|reason| ServerError::Config {
            path: "<config>".into(),
            reason,
        })?;
        let (tls, revoked) = build_tls(&pki)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let store = crate::store::StoreHandle::spawn(store);
        let registry = Registry::new(&config);
        registry.load_known(store.users().await?);
        registry.kill_revoked(&revoked);
        registry.forget_revoked(&revoked);
        let shared = Arc::new(Shared {
            store,
            registry,
            config,
            write_behind: crate::writebehind::WriteBehind::default(),
            tls: RwLock::new(Arc::new(tls)),
            observer: std::sync::OnceLock::new(),
        });
        Ok(Self {
            listener,
            shared,
            pki,
            reload: Arc::new(Notify::new()),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Reports every relayed fragment on the returned channel (for the demo
    /// and monitoring). Observations are dropped, never waited for, when the
    /// receiver falls behind. Only the first call has an effect.
    pub fn observe(&self) -> mpsc::Receiver<Observed> {
        let (tx, rx) = mpsc::channel(OBSERVER_QUEUE);
        let _ = self.shared.observer.set(tx);
        rx
    }

    /// A handle to trigger CRL reloads while running.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            reload: self.reload.clone(),
        }
    }

    /// Serves until `shutdown` completes, then closes every session with a
    /// goodbye and waits (bounded) for them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            shared,
            pki,
            reload,
        } = self;
        let cfg = shared.config.clone();
        let (notify_shutdown, _) = broadcast::channel::<()>(1);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let limit = Arc::new(Semaphore::new(cfg.max_connections));
        let handshakes: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
            Arc::default();

        let watcher = tokio::spawn(watch_crl(shared.clone(), pki, reload));
        let sweeper = tokio::spawn(sweep_store(shared.clone()));

        let accept_loop = async {
            loop {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                // One source address may hold only so many handshakes at
                // once, so silent connections from one host cannot take
                // every slot.
                let Some(hs_slot) =
                    HandshakeSlot::take(&handshakes, peer.ip(), cfg.max_handshakes_per_ip)
                else {
                    warn!(target: SECURITY, %peer, "TLS handshake refused: too many handshakes in progress from this address");
                    drop(tcp);
                    continue;
                };
                let acceptor = TlsAcceptor::from(shared.tls());
                let shared = shared.clone();
                let shutdown_rx = notify_shutdown.subscribe();
                let done = done_tx.clone();
                let hs_timeout = Config::d(cfg.handshake_timeout_ms);
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake = timeout(hs_timeout, acceptor.accept(tcp)).await;
                    drop(hs_slot);
                    match handshake {
                        Err(_) => {
                            warn!(target: SECURITY, %peer, "TLS handshake refused: not completed within {} ms", hs_timeout.as_millis());
                        }
                        Ok(Err(e)) => {
                            warn!(target: SECURITY, %peer, reason = %refusal_reason(&e), "TLS handshake refused");
                        }
                        Ok(Ok(stream)) => {
                            crate::session::run(stream, peer, shared, shutdown_rx, done).await
                        }
                    }
                });
            }
        };

        tokio::select! {
            _ = accept_loop => {}
            _ = shutdown => {
                info!("shutting down: no longer accepting, closing {} online users' sessions", shared.registry.online_count());
            }
        }
        watcher.abort();
        sweeper.abort();
        drop(listener);
        drop(notify_shutdown);
        drop(done_tx);
        if timeout(Config::d(cfg.shutdown_grace_ms), done_rx.recv())
            .await
            .is_err()
        {
            warn!("some sessions did not close within the shutdown grace period");
        }
        info!("relay stopped");
    }
}

/// Re-reads `crl.pem` when it changes (polled) or when asked (SIGHUP),
/// swaps the TLS configuration, and disconnects revoked users.
async fn watch_crl(shared: Arc<Shared>, pki: PkiDir, reload: Arc<Notify>) {
    let mut last = crl_fingerprint(&pki);
    let mut tick = tokio::time::interval(Config::d(shared.config.crl_poll_ms));
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = reload.notified() => true,
        };
        shared.registry.prune(Instant::now());
        let now = crl_fingerprint(&pki);
        if !forced && now == last {
            continue;
        }
        last = now;
        match build_tls(&pki) {
            Ok((cfg, revoked)) => {
                if let Ok(mut g) = shared.tls.write() {
                    *g = Arc::new(cfg);
                }
                let n = shared.registry.kill_revoked(&revoked);
                let gone = shared.registry.forget_revoked(&revoked);
                if !gone.is_empty() {
                    info!(users = ?gone, "revoked users removed from the directory");
                }
                if let Err(e) = shared
                    .store
                    .write_detached(crate::store::WriteOp::RemoveRevoked(revoked.clone()))
                    .await
                {
                    crate::store::log_failure("removing revoked users", &e);
                }
                info!(revoked = revoked.len(), disconnected = n, "CRL reloaded");
            }
            Err(e) => error!(error = %e, "CRL reload failed; keeping the previous configuration"),
        }
    }
}

/// Deletes expired stored messages periodically.
async fn sweep_store(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Config::d(shared.config.store_sweep_ms));
    loop {
        tick.tick().await;
        let before = unix_ms().saturating_sub(shared.config.store_ttl_ms);
        match shared
            .store
            .write(crate::store::WriteOp::Expire(before))
            .await
        {
            Ok(crate::store::WriteResult::Removed(n)) if n > 0 => {
                info!(removed = n, "expired stored messages deleted");
            }
            Ok(_) => {}
            Err(e) => crate::store::log_failure("expiry", &e),
        }
    }
}
