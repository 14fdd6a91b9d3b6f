//! `blindrelay serve`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindrelay_pki::ca::DEFAULT_USER_VALIDITY_DAYS;
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_server::{Config, Server};
use clap::Args;

use crate::pki_cmd::{DEFAULT_CA_NAME, default_hosts};
use crate::{DirArg, user_name};

/// Users the development PKI of `serve` creates.
const DEV_USERS: [&str; 2] = ["alice", "bob"];

#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Address to listen on [default: 127.0.0.1:8443, or the config file's].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// TOML file with limits and timeouts (see README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The message store (SQLite) [default: DIR/relay.db].
    #[arg(long)]
    store: Option<PathBuf>,
    /// Log a base64 preview of every relayed payload: what the server sees.
    #[arg(long, short)]
    verbose: bool,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub(crate) async fn run(args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.verbose |= args.verbose;
    let p = PkiDir::new(&args.dir.dir);
    if !p.has_ca() {
        p.init(DEFAULT_CA_NAME, &default_hosts(vec![]), false)?;
        for u in DEV_USERS {
            p.issue(
                &user_name(u)?,
                &UserCertOptions::valid_for_days(DEFAULT_USER_VALIDITY_DAYS),
                false,
            )?;
        }
        println!(
            "no PKI in {}: created a development PKI (CA, server certificate, users {})",
            args.dir.dir.display(),
            DEV_USERS.join(" and ")
        );
    }
    let store_path = args
        .store
        .clone()
        .unwrap_or_else(|| args.dir.dir.join("relay.db"));
    let store = blindrelay_server::store::sqlite::SqliteStore::open(&store_path)?;
    let server = Server::bind_with_store(config, p, store).await?;
    let addr = server.local_addr().context("listener address")?;
    let handle = server.handle();
    use tokio::signal::unix::{SignalKind, signal};
    if let Ok(mut hup) = signal(SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the CRL");
                handle.reload_crl();
            }
        });
    }
    println!(
        "=== blindrelay relay listening on {addr} (mutual TLS 1.3, 4096-byte frames; store {}) ===",
        store_path.display()
    );
    server.run(shutdown_signal()).await;
    Ok(())
}
