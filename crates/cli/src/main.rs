//! The `blindrelay` command: the private PKI (`pki`), the relay (`serve`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use blindrelay_pki::ca::{DEFAULT_USER_VALIDITY_DAYS, MAX_USER_VALIDITY_DAYS};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_server::{Config, Server};
use blindrelay_wire::UserName;
use clap::{Args, Parser, Subcommand};

/// Default data directory.
const DEFAULT_DIR: &str = "blindrelay-data";
/// Default CA name.
const DEFAULT_CA_NAME: &str = "blindrelay Root CA";
/// Users the development PKI of `serve` creates.
const DEV_USERS: [&str; 2] = ["alice", "bob"];

/// blindrelay: end-to-end encrypted messaging through a relay that can read
/// nothing it carries.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the private PKI: root CA, server and user certificates, CRL.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Run the relay server (creates a development PKI with users alice and
    /// bob if DIR has none).
    Serve(ServeArgs),
}

#[derive(Args)]
struct DirArg {
    /// PKI data directory.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the root CA, the server certificate and an empty CRL.
    Init {
        #[command(flatten)]
        dir: DirArg,
        /// DNS name or IP address the relay is reached at (repeatable).
        /// Default: localhost and 127.0.0.1.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Common Name of the root CA.
        #[arg(long, default_value = DEFAULT_CA_NAME)]
        ca_name: String,
        /// Replace an existing CA (every certificate it issued becomes useless).
        #[arg(long)]
        force: bool,
    },
    /// Issue a user certificate and key (users/NAME.pem, users/NAME-key.pem).
    Issue {
        /// User name: 1-32 characters from a-z 0-9 . _ - starting with a letter or digit.
        name: String,
        #[command(flatten)]
        dir: DirArg,
        /// Validity in days.
        #[arg(long, default_value_t = DEFAULT_USER_VALIDITY_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USER_VALIDITY_DAYS)))]
        days: u32,
        /// Replace an existing certificate for this name.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a user's certificate (adds it to crl.pem; a running relay
    /// disconnects the user within a second).
    Revoke {
        /// User name.
        name: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// List every issued user certificate with serial, validity and status.
    List {
        #[command(flatten)]
        dir: DirArg,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Address to listen on [default: 127.0.0.1:8443, or the config file's].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// TOML file with limits and timeouts (see README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log a base64 preview of every relayed payload: what the server sees.
    #[arg(long, short)]
    verbose: bool,
}

fn user_name(s: &str) -> Result<UserName> {
    UserName::new(s).map_err(|_| {
        anyhow::anyhow!(
            "invalid user name {s:?}: use 1-32 characters a-z 0-9 . _ - starting with a letter or digit"
        )
    })
}

fn default_hosts(hosts: Vec<String>) -> Vec<String> {
    if hosts.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into()]
    } else {
        hosts
    }
}

fn pki(cmd: PkiCommand) -> Result<()> {
    match cmd {
        PkiCommand::Init {
            dir,
            hosts,
            ca_name,
            force,
        } => {
            let p = PkiDir::new(&dir.dir);
            let hosts = default_hosts(hosts);
            p.init(&ca_name, &hosts, force)?;
            println!(
                "created CA {ca_name:?} and server certificate for {} in {}",
                hosts.join(", "),
                dir.dir.display()
            );
        }
        PkiCommand::Issue {
            name,
            dir,
            days,
            force,
        } => {
            let name = user_name(&name)?;
            let p = PkiDir::new(&dir.dir);
            let issued = p.issue(&name, &UserCertOptions::valid_for_days(days), force)?;
            println!(
                "issued {name}: {} (key {}), serial {}, valid {days} days",
                issued.cert_path.display(),
                issued.key_path.display(),
                blindrelay_pki::cert::serial_hex(&issued.serial)
            );
        }
        PkiCommand::Revoke { name, dir } => {
            let name = user_name(&name)?;
            let (serial, new) = PkiDir::new(&dir.dir).revoke(&name)?;
            let serial = blindrelay_pki::cert::serial_hex(&serial);
            if new {
                println!("revoked {name} (serial {serial}); crl.pem updated");
            } else {
                println!("{name} (serial {serial}) was already revoked");
            }
        }
        PkiCommand::List { dir } => {
            let list = PkiDir::new(&dir.dir).list()?;
            if list.is_empty() {
                println!("no user certificates in {}", dir.dir.display());
            }
            println!(
                "{:<20} {:<34} {:<28} {:<28} STATUS",
                "NAME", "SERIAL", "NOT BEFORE", "NOT AFTER"
            );
            for (info, status) in list {
                println!(
                    "{:<20} {:<34} {:<28} {:<28} {status}",
                    info.name,
                    blindrelay_pki::cert::serial_hex(&info.serial),
                    info.not_before,
                    info.not_after
                );
            }
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
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
    let server = Server::bind(config, p).await?;
    let addr = server.local_addr().context("listener address")?;
    let handle = server.handle();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the CRL");
                    handle.reload_crl();
                }
            });
        }
    }
    println!("=== blindrelay relay listening on {addr} (mutual TLS 1.3, 4096-byte frames) ===");
    server.run(shutdown_signal()).await;
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pki(cmd) => pki(cmd),
        Command::Serve(args) => {
            init_tracing();
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(serve(args)),
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
