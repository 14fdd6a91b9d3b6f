//! The accept loop and graceful shutdown.
//!
//! Structure follows tokio's mini-redis: a semaphore permit is taken
//! *before* `accept`, so at most `max_connections` connections exist at once
//! (handshaking or established); shutdown is a broadcast to every session,
//! and a completion channel tells when they have all finished.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blindrelay_pki::PkiDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::observe::Observed;
use crate::registry::Registry;
use crate::shared::Shared;
use crate::store::{MessageStore, StoreHandle};
use crate::v2::DeliveryService;
use crate::v2::store::DsDatabase;
use crate::{Config, SECURITY, ServerError};

/// Pause after a failed `accept` (for example EMFILE) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

type HandshakeCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A handshake in progress from one address; counted until dropped.
struct HandshakeSlot {
    map: HandshakeCounts,
    ip: IpAddr,
}

impl HandshakeSlot {
    fn take(map: &HandshakeCounts, ip: IpAddr, max: usize) -> Option<Self> {
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

fn refusal_reason(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => "client presented no certificate".into(),
        Some(rustls::Error::InvalidCertificate(c)) => format!("invalid client certificate: {c:?}"),
        Some(rustls::Error::PeerIncompatible(p)) => format!("incompatible client: {p:?}"),
        Some(other) => format!("TLS error: {other}"),
        None => format!("{e}"),
    }
}

/// A bound, not yet running, relay.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    pki: PkiDir,
    reload: Arc<Notify>,
    /// The CRL loaded at start, handed to the watcher.
    crl: blindrelay_pki::crl::CheckedCrl,
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

/// The v2 Delivery Service's database (KeyPackages, group order,
/// device mailboxes).
pub struct V2Store(DsDatabase);

impl V2Store {
    /// Opens (creating) the database at `path`: its directory 0700, its
    /// files 0600.
    pub fn open(path: &std::path::Path) -> Result<Self, crate::store::StoreError> {
        DsDatabase::open(path).map(Self)
    }

    /// A database in memory: nothing survives a restart (tests, demo).
    pub fn in_memory() -> Result<Self, crate::store::StoreError> {
        DsDatabase::in_memory().map(Self)
    }
}

impl Server {
    /// Loads the TLS material from `pki` and binds `config.listen`, with an
    /// in-memory message store (nothing survives a restart: tests, demo).
    pub async fn bind(config: Config, pki: PkiDir) -> Result<Self, ServerError> {
        let store = crate::store::sqlite::SqliteStore::in_memory()?;
        Self::bind_with_store(config, pki, store).await
    }

    /// Like [`Server::bind`], with the given durable message store (the
    /// v2 Delivery Service in memory).
    pub async fn bind_with_store(
        config: Config,
        pki: PkiDir,
        store: impl MessageStore,
    ) -> Result<Self, ServerError> {
        Self::bind_with_stores(config, pki, store, V2Store::in_memory()?).await
    }

    /// Like [`Server::bind`], with the given durable stores for protocol
    /// v1 messages and for the v2 Delivery Service.
    pub async fn bind_with_stores(
        config: Config,
        pki: PkiDir,
        store: impl MessageStore,
        v2: V2Store,
    ) -> Result<Self, ServerError> {
        config.validate()?;
        let now = i64::try_from(blindrelay_net::clock::unix_ms() / 1000).unwrap_or(i64::MAX);
        let crl = crate::crl::load_crl(&pki, now)?;
        let ca_der = blindrelay_pki::store::read_cert_der(&pki.ca_cert_path())?;
        let ds = DeliveryService::new(
            v2.0,
            blindrelay_ds::Limits::default(),
            config.max_sessions_per_identity,
            crate::v2::Admission::new(
                (
                    usize::from(config.v2_rate_max_requests),
                    std::time::Duration::from_millis(config.rate_window_ms),
                ),
                usize::from(config.v2_person_rate_max_requests),
                usize::from(config.login_rate_max),
                std::time::Duration::from_millis(config.cooldown_ms),
            ),
            (ca_der, &crl),
        )?;
        let tls = crate::crl::build_tls(&pki, &crl)?;
        let revoked = crl.revoked().clone();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|error| ServerError::Bind {
                    addr: config.listen,
                    error,
                })?;
        let store = StoreHandle::spawn(store);
        let registry = Registry::new(&config);
        registry.load_known(store.users().await?);
        registry.kill_revoked(&revoked);
        registry.forget_revoked(&revoked);
        registry.set_crl(crl.der());
        ds.kill_revoked(&revoked);
        Ok(Self {
            listener,
            shared: Arc::new(Shared::new(config, registry, store, ds, tls)),
            pki,
            reload: Arc::new(Notify::new()),
            crl,
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
        self.shared.observer.subscribe()
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
            crl,
        } = self;
        let cfg = shared.config.clone();
        let (notify_shutdown, _) = broadcast::channel::<()>(1);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let limit = Arc::new(Semaphore::new(cfg.max_connections));
        let handshakes = HandshakeCounts::default();

        let watcher = tokio::spawn(crate::crl::watch(shared.clone(), pki, reload, crl));
        let sweeper = tokio::spawn(crate::delivery::sweep_expired(shared.clone()));

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
                let Some(slot) =
                    HandshakeSlot::take(&handshakes, peer.ip(), cfg.max_handshakes_per_ip)
                else {
                    warn!(target: SECURITY, %peer, "TLS handshake refused: too many handshakes in progress from this address");
                    drop(tcp);
                    continue;
                };
                tokio::spawn(handshake(
                    tcp,
                    peer,
                    (permit, slot),
                    shared.clone(),
                    notify_shutdown.subscribe(),
                    done_tx.clone(),
                ));
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
        if timeout(Duration::from_millis(cfg.shutdown_grace_ms), done_rx.recv())
            .await
            .is_err()
        {
            warn!("some sessions did not close within the shutdown grace period");
        }
        info!("relay stopped");
    }
}

/// One connection: the TLS handshake within its timeout, then the session.
/// The connection permit is held until the session ends; the handshake
/// slot only until the handshake does.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    (_permit, slot): (OwnedSemaphorePermit, HandshakeSlot),
    shared: Arc<Shared>,
    shutdown: broadcast::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    if shared.crl_expired() {
        warn!(target: SECURITY, %peer, "connection refused: the relay's CRL expired, so revocations cannot be checked");
        return;
    }
    let limit = Duration::from_millis(shared.config.handshake_timeout_ms);
    let acceptor = TlsAcceptor::from(shared.tls());
    let result = timeout(limit, acceptor.accept(tcp)).await;
    drop(slot);
    match result {
        Err(_) => {
            warn!(target: SECURITY, %peer, "TLS handshake refused: not completed within {} ms", limit.as_millis());
        }
        Ok(Err(e)) => {
            warn!(target: SECURITY, %peer, reason = %refusal_reason(&e), "TLS handshake refused");
        }
        Ok(Ok(stream)) => crate::session::run(stream, peer, shared, shutdown, done).await,
    }
}
