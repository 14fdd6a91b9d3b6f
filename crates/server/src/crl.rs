//! The CRL, live: the TLS configuration is built from `ca.pem`, `crl.pem`
//! and the relay's own certificate and key, and rebuilt whenever `crl.pem`
//! changes (polled every `crl_poll_ms`) or on request (SIGHUP). A reload
//! disconnects the sessions of revoked certificates and removes their users
//! from the directory.
//!
//! A CRL is used only if the CA signed it and it is current (see
//! `blindrelay_pki::crl`): the relay does not start on an expired one, a
//! reload that offers an expired CRL or one with a lower CRL number (a
//! rollback) is refused and logged, and while the CRL in use is expired the
//! relay refuses every new login, so a revocation cannot quietly stop
//! holding.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use blindrelay_net::{load_certs, load_private_key, server_config};
use blindrelay_pki::PkiDir;
use blindrelay_pki::crl::CheckedCrl;
use rustls::ServerConfig;
use rustls_pki_types::CertificateRevocationListDer;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::shared::Shared;
use crate::store::{WriteOp, log_failure};
use crate::{SECURITY, ServerError};

/// What is compared to notice a change of `crl.pem`.
type CrlStamp = (SystemTime, u64, Vec<u8>);

fn stamp(pki: &PkiDir) -> Option<CrlStamp> {
    let path = pki.crl_path();
    let meta = std::fs::metadata(&path).ok()?;
    let bytes = std::fs::read(&path).ok()?;
    Some((meta.modified().ok()?, meta.len(), bytes))
}

/// Unix seconds now.
fn now_s() -> i64 {
    i64::try_from(blindrelay_net::clock::unix_ms() / 1000).unwrap_or(i64::MAX)
}

/// Reads `crl.pem` and checks it against `ca.pem`: signed by the CA and
/// current at `now` (Unix seconds).
pub(crate) fn load_crl(pki: &PkiDir, now: i64) -> Result<CheckedCrl, ServerError> {
    let ca = blindrelay_pki::store::read_cert_der(&pki.ca_cert_path())?;
    let der = blindrelay_pki::store::read_crl_der(&pki.crl_path())?;
    CheckedCrl::check(&der, &ca, now).map_err(|error| ServerError::Crl {
        path: pki.crl_path(),
        error,
    })
}

/// Builds the TLS configuration from the files of `pki` and the checked
/// CRL.
pub(crate) fn build_tls(pki: &PkiDir, crl: &CheckedCrl) -> Result<ServerConfig, ServerError> {
    let ca = load_certs(&pki.ca_cert_path())?
        .into_iter()
        .next()
        .ok_or_else(|| blindrelay_pki::PkiError::NoCa(pki.root().to_path_buf()))?;
    let chain = load_certs(&pki.server_cert_path())?;
    let key = load_private_key(&pki.server_key_path())?;
    Ok(server_config(
        ca,
        vec![CertificateRevocationListDer::from(crl.der().to_vec())],
        chain,
        key,
    )?)
}

/// The CRL read now, if it may replace `current`, with its TLS
/// configuration.
fn reload(pki: &PkiDir, current: &CheckedCrl) -> Result<(CheckedCrl, ServerConfig), ServerError> {
    let crl = load_crl(pki, now_s())?;
    crl.may_replace(current).map_err(|error| ServerError::Crl {
        path: pki.crl_path(),
        error,
    })?;
    let cfg = build_tls(pki, &crl)?;
    Ok((crl, cfg))
}

/// Notes whether the CRL in use is still current; logs each change.
fn check_expiry(shared: &Shared, crl: &CheckedCrl) {
    match crl.current_at(now_s()) {
        Ok(()) => {
            if shared.set_crl_expired(false) {
                info!(target: SECURITY, number = crl.number(), "the CRL is current again: logins accepted");
            }
        }
        Err(e) => {
            if !shared.set_crl_expired(true) {
                error!(target: SECURITY, error = %e, number = crl.number(), "the CRL in use expired: every new login is refused until a fresh crl.pem arrives");
            }
        }
    }
}

/// Re-reads `crl.pem` when it changes (polled) or when asked (SIGHUP),
/// swaps the TLS configuration, and disconnects revoked users. Also prunes
/// idle rate windows on every tick.
pub(crate) async fn watch(
    shared: Arc<Shared>,
    pki: PkiDir,
    reload_now: Arc<Notify>,
    mut current: CheckedCrl,
) {
    let mut last = stamp(&pki);
    let mut tick = tokio::time::interval(Duration::from_millis(shared.config.crl_poll_ms));
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = reload_now.notified() => true,
        };
        shared.registry.prune(Instant::now());
        check_expiry(&shared, &current);
        let now = stamp(&pki);
        if !forced && now == last {
            continue;
        }
        last = now;
        match reload(&pki, &current) {
            Ok((crl, cfg)) => {
                current = crl;
                let revoked = current.revoked().clone();
                shared.set_tls(cfg);
                shared.registry.set_crl(current.der());
                check_expiry(&shared, &current);
                let n = shared.registry.kill_revoked(&revoked);
                let n = n + {
                    let (s, r) = (shared.clone(), revoked.clone());
                    tokio::task::spawn_blocking(move || s.ds.kill_revoked(&r))
                        .await
                        .unwrap_or(0)
                };
                shared.ds.set_crl(&current);
                shared.ds.crl_changed();
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
            Err(e) => {
                warn!(target: SECURITY, error = %e, number = current.number(), "crl.pem refused; keeping the CRL in use");
            }
        }
    }
}
