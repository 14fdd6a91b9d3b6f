//! The state every task of the relay shares: the configuration, the
//! registry of sessions, the store, the write-behind holds, the current TLS
//! configuration and the optional observer.
//!
//! The components it holds (registry, store handle, write-behind holds,
//! observer) are defined below it and know nothing of it; what works on
//! several of them at once (the accept loop, sessions, delivery, the CRL
//! watcher) sits above it and holds an `Arc<Shared>`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;

use crate::config::Config;
use crate::delivery::writebehind::WriteBehind;
use crate::observe::Observer;
use crate::registry::Registry;
use crate::store::StoreHandle;
use crate::v2::DeliveryService;

/// State shared by every task of the server.
pub(crate) struct Shared {
    pub config: Config,
    pub registry: Registry,
    pub store: StoreHandle,
    pub write_behind: WriteBehind,
    /// Protocol v2: the MLS Delivery Service.
    pub ds: DeliveryService,
    /// Swapped when the CRL is reloaded; each handshake takes the current one.
    tls: RwLock<Arc<ServerConfig>>,
    /// What the relay sees, logged and observed.
    pub observer: Observer,
    /// True while the CRL in use is past its nextUpdate and grace: every
    /// new login is refused.
    crl_expired: AtomicBool,
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        registry: Registry,
        store: StoreHandle,
        ds: DeliveryService,
        tls: ServerConfig,
    ) -> Self {
        Self {
            observer: Observer::new(config.verbose),
            config,
            registry,
            store,
            write_behind: WriteBehind::default(),
            ds,
            tls: RwLock::new(Arc::new(tls)),
            crl_expired: AtomicBool::new(false),
        }
    }

    /// True while logins are refused because the CRL expired.
    pub(crate) fn crl_expired(&self) -> bool {
        self.crl_expired.load(Ordering::Acquire)
    }

    /// Sets whether the CRL expired; returns the previous value.
    pub(crate) fn set_crl_expired(&self, expired: bool) -> bool {
        self.crl_expired.swap(expired, Ordering::AcqRel)
    }

    /// The TLS configuration new handshakes use.
    pub(crate) fn tls(&self) -> Arc<ServerConfig> {
        self.tls
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the TLS configuration (after a CRL reload).
    pub(crate) fn set_tls(&self, tls: ServerConfig) {
        let mut g = self.tls.write().unwrap_or_else(|p| p.into_inner());
        *g = Arc::new(tls);
    }
}
