//! `blindrelay serve`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use blindrelay_pki::{PkiDir, RelayDir};
use blindrelay_server::{Config, Server};
use clap::Args;

use crate::enroll::DEFAULT_RELAY_DIR;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The relay's directory: server-key.pem, server.pem, ca.pem, crl.pem
    /// and the store.
    #[arg(long, default_value = DEFAULT_RELAY_DIR)]
    dir: PathBuf,
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

/// A relay host holds its own key and nothing else secret: a directory
/// with the CA's key or a user's key is refused, and so is one without the
/// relay's files (the relay never makes a PKI).
fn check_relay_dir(dir: &std::path::Path) -> Result<()> {
    let relay = RelayDir::new(dir);
    let foreign = relay.foreign_private_keys()?;
    if !foreign.is_empty() {
        let list: Vec<String> = foreign.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "refusing to start: {} holds private keys that are not the relay's: {}. A relay host keeps only its own key (server-key.pem); move the CA's and users' keys off this machine",
            dir.display(),
            list.join(", ")
        );
    }
    let pki = PkiDir::new(dir);
    for (path, hint) in [
        (relay.key_path(), "run `blindrelay enroll-relay` there"),
        (
            relay.cert_path(),
            "have the CA sign server-request.pem (`blindrelay pki sign --relay`)",
        ),
        (pki.ca_cert_path(), "copy the CA's ca.pem there"),
        (pki.crl_path(), "copy the CA's crl.pem there"),
    ] {
        if !path.exists() {
            bail!("no {} in {}: {hint}", file_name(&path), dir.display());
        }
    }
    Ok(())
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
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
    check_relay_dir(&args.dir)?;
    let p = PkiDir::new(&args.dir);
    let store_path = args
        .store
        .clone()
        .unwrap_or_else(|| args.dir.join("relay.db"));
    let store = blindrelay_server::store::sqlite::SqliteStore::open(&store_path)?;
    // Protocol v2 (the MLS Delivery Service) keeps its own database beside
    // the message store: relay.db and relay.v2.db.
    let v2_path = store_path.with_extension("v2.db");
    let v2 = blindrelay_server::V2Store::open(&v2_path)?;
    let server = Server::bind_with_stores(config, p, store, v2).await?;
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
        "=== blindrelay relay listening on {addr} (mutual TLS 1.3, 4096-byte frames; store {}, v2 store {}) ===",
        store_path.display(),
        v2_path.display()
    );
    server.run(shutdown_signal()).await;
    Ok(())
}
