//! The state every task of the relay shares: the configuration, the
//! registry of sessions, the store, the write-behind holds, the current TLS
//! configuration and the optional observer.
//!
//! It sits below everything else: the accept loop, the sessions and the
//! delivery tasks all hold an `Arc<Shared>`, and this module imports none
//! of them.

use std::sync::{Arc, OnceLock, RwLock};

use rustls::ServerConfig;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::delivery::WriteBehind;
use crate::observe::Observed;
use crate::registry::Registry;
use crate::store::StoreHandle;

/// State shared by every task of the server.
pub(crate) struct Shared {
    pub config: Config,
    pub registry: Registry,
    pub store: StoreHandle,
    pub write_behind: WriteBehind,
    /// Swapped when the CRL is reloaded; each handshake takes the current one.
    tls: RwLock<Arc<ServerConfig>>,
    /// Set once by `Server::observe`.
    pub observer: OnceLock<mpsc::Sender<Observed>>,
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        registry: Registry,
        store: StoreHandle,
        tls: ServerConfig,
    ) -> Self {
        Self {
            config,
            registry,
            store,
            write_behind: WriteBehind::default(),
            tls: RwLock::new(Arc::new(tls)),
            observer: OnceLock::new(),
        }
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
