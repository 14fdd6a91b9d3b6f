//! Reaching the relay: TCP, then the TLS handshake with the user's or
//! device's certificate, within [`CONNECT_TIMEOUT`]. Shared by the
//! version 1 connection and the version 2 link.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig as TlsConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{ClientConfig, ClientError};

/// TCP connect plus TLS handshake must finish within this time.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP connect plus the TLS handshake, within [`CONNECT_TIMEOUT`].
pub(crate) async fn dial(
    cfg: &ClientConfig,
    tls: &Arc<TlsConfig>,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let server_name = ServerName::try_from(cfg.server_name.clone())
        .map_err(|_| ClientError::ServerName(cfg.server_name.clone()))?;
    let server = || cfg.server.clone();
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp =
            TcpStream::connect(&cfg.server)
                .await
                .map_err(|error| ClientError::Unreachable {
                    server: server(),
                    error,
                })?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|error| ClientError::Handshake {
                server: server(),
                error,
            })
    })
    .await
    .map_err(|_| ClientError::ConnectTimeout(server()))?
}
