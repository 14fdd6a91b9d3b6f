//! Logging in: the identity the certificate proves, the relay's WELCOME,
//! the goodbye for a refused login, and recording a new certificate in the
//! directory.

use std::net::SocketAddr;
use std::sync::Arc;

use blindrelay_wire::{GoodbyeCode, MAX_FRAGMENTS, Message, UserName, Welcome};
use tracing::warn;

use crate::SECURITY;
use crate::config::Config;
use crate::registry::Refused;
use crate::shared::Shared;
use crate::store::{WriteOp, log_failure};

/// The connection, after the TLS handshake.
pub(super) type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// The identity a certificate proves, read after the handshake.
pub(super) struct Authenticated {
    pub identity: UserName,
    pub cert: Vec<u8>,
    pub serial: Vec<u8>,
    /// The client offered the ALPN protocol for CRL frames.
    pub wants_crl: bool,
}

pub(super) fn authenticate(stream: &Stream, peer: SocketAddr) -> Option<Authenticated> {
    let (_, conn) = stream.get_ref();
    let Some(cert) = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
    else {
        warn!(target: SECURITY, %peer, "no client certificate after handshake, closing");
        return None;
    };
    let identity = match blindrelay_pki::identity_from_cert(&cert) {
        Ok(n) => n,
        Err(e) => {
            warn!(target: SECURITY, %peer, reason = %e, "certificate has no usable identity, closing");
            return None;
        }
    };
    let serial = blindrelay_pki::CertInfo::from_der(&cert)
        .map(|i| i.serial)
        .unwrap_or_default();
    // Only a client that offered the ALPN protocol for it gets CRL frames.
    let wants_crl = conn.alpn_protocol() == Some(blindrelay_net::ALPN_CRL);
    Some(Authenticated {
        identity,
        cert,
        serial,
        wants_crl,
    })
}

pub(super) fn welcome(cfg: &Config, identity: &UserName) -> Welcome {
    Welcome {
        identity: identity.clone(),
        rate_max: cfg.rate_max_messages,
        rate_window_ms: u32::try_from(cfg.rate_window_ms).unwrap_or(u32::MAX),
        keepalive_ms: u32::try_from(cfg.keepalive_ms).unwrap_or(u32::MAX),
        max_fragments: MAX_FRAGMENTS,
        store_ttl_s: u32::try_from(cfg.store_ttl_ms / 1000).unwrap_or(u32::MAX),
    }
}

/// The goodbye for a refused login, logged.
pub(super) fn refusal(refused: Refused, identity: &UserName, peer: SocketAddr) -> Message {
    match refused {
        Refused::CoolDown(d) => {
            // Rounded up: a client that waits as told is not early.
            let secs = d.as_millis().div_ceil(1000);
            warn!(target: SECURITY, %identity, %peer,
                "refused: identity is in its rate-limit cool-down ({secs} s left)");
            Message::Goodbye {
                code: GoodbyeCode::CoolDown,
                reason: format!("rate limit cool-down, retry in {secs} s"),
            }
        }
        Refused::Revoked => {
            warn!(target: SECURITY, %identity, %peer,
                "refused: certificate revoked (handshake verified against an older CRL)");
            Message::Goodbye {
                code: GoodbyeCode::Revoked,
                reason: "certificate revoked".into(),
            }
        }
    }
}

/// The directory survives restarts: records a new user or a changed
/// certificate (a login with the known, recorded certificate writes
/// nothing). Marked recorded only once it is committed, so that a failed
/// write is retried at the next login.
pub(super) fn record_cert(shared: &Arc<Shared>, who: Authenticated) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let op = WriteOp::UpsertUser {
            name: who.identity.clone(),
            cert: who.cert.clone(),
            serial: who.serial,
            now_ms: blindrelay_net::unix_ms(),
        };
        match shared.store.write(op).await {
            Ok(_) => shared.registry.cert_recorded(&who.identity, &who.cert),
            Err(e) => log_failure("recording the user", &e),
        }
    });
}
