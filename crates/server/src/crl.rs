//! The CRL, live: the TLS configuration is built from `ca.pem`, `crl.pem`
//! and the relay's own certificate and key, and rebuilt whenever `crl.pem`
//! changes (polled every `crl_poll_ms`) or on request (SIGHUP). A reload
//! disconnects the sessions of revoked certificates and removes their users
//! from the directory.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use blindrelay_net::{load_certs, load_private_key, server_config};
use blindrelay_pki::PkiDir;
use rustls::ServerConfig;
use rustls_pki_types::CertificateRevocationListDer;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{error, info};

use crate::ServerError;
use crate::shared::Shared;
use crate::store::{WriteOp, log_failure};

use crate::registry::Revoked;

/// What is compared to notice a change of `crl.pem`.
type CrlStamp = (SystemTime, u64, Vec<u8>);

fn stamp(pki: &PkiDir) -> Option<CrlStamp> {
    let path = pki.crl_path();
    let meta = std::fs::metadata(&path).ok()?;
    let bytes = std::fs::read(&path).ok()?;
    Some((meta.modified().ok()?, meta.len(), bytes))
}

/// Builds the TLS configuration from the files of `pki`; returns it with
/// the revoked serials.
pub(crate) fn build_tls(pki: &PkiDir) -> Result<(ServerConfig, Revoked), ServerError> {
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

/// Re-reads `crl.pem` when it changes (polled) or when asked (SIGHUP),
/// swaps the TLS configuration, and disconnects revoked users. Also prunes
/// idle rate windows on every tick.
pub(crate) async fn watch(shared: Arc<Shared>, pki: PkiDir, reload: Arc<Notify>) {
    let mut last = stamp(&pki);
    let mut tick = tokio::time::interval(Duration::from_millis(shared.config.crl_poll_ms));
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = reload.notified() => true,
        };
        shared.registry.prune(Instant::now());
        let now = stamp(&pki);
        if !forced && now == last {
            continue;
        }
        last = now;
        match build_tls(&pki) {
            Ok((cfg, revoked)) => {
                shared.set_tls(cfg);
                let n = shared.registry.kill_revoked(&revoked);
                let gone = shared.registry.forget_revoked(&revoked);
                if !gone.is_empty() {
                    let names: Vec<&str> = gone.iter().map(|n| n.as_str()).collect();
                    info!(users = %names.join(", "), "revoked users removed from the directory");
                }
                let count = revoked.len();
                if let Err(e) = shared
                    .store
                    .write_detached(WriteOp::RemoveRevoked(revoked))
                    .await
                {
                    log_failure("removing revoked users", &e);
                }
                info!(revoked = count, disconnected = n, "CRL reloaded");
            }
            Err(e) => error!(error = %e, "CRL reload failed; keeping the previous configuration"),
        }
    }
}
