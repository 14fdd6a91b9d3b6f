//! The `blindrelay` command: the CA's commands (`pki`), enrolment where a
//! key is used (`enroll`, `enroll-relay`), the relay (`serve`), the clients
//! (`chat`, `send`) and the end-to-end demonstration (`demo`).
#![forbid(unsafe_code)]

mod chat;
mod demo;
mod enroll;
mod local;
mod pki_cmd;
mod send;
mod serve;
mod tui;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use blindrelay_client::config::DEFAULT_SERVER;
use blindrelay_client::{ClientConfig, Policy};
use blindrelay_pki::key::Passphrase;
use blindrelay_wire::UserName;
use clap::{Args, Parser, Subcommand};

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
    /// Run the whole system in one process: a throwaway PKI, a relay, three
    /// users exchanging messages, and the report's attacks, live.
    Demo(demo::DemoArgs),
    /// The CA's commands, on the administrator's machine: create the CA,
    /// sign requests, revoke, list.
    #[command(subcommand)]
    Pki(pki_cmd::PkiCommand),
    /// On your machine: create your private key and a certificate request
    /// for the CA.
    Enroll(enroll::EnrollArgs),
    /// On the relay host: create the relay's private key and a certificate
    /// request for the CA.
    EnrollRelay(enroll::EnrollRelayArgs),
    /// Run the relay (its directory holds its own key and certificate,
    /// ca.pem and crl.pem; it refuses to start next to any other private key).
    Serve(serve::ServeArgs),
    /// Chat as NAME: full screen on a terminal, lines with --plain, or
    /// (--json) driven by a program: JSON commands in, JSON events out.
    Chat(chat::ChatArgs),
    /// Send one message and exit: 0 only once the relay accepted it.
    Send(send::SendArgs),
}

/// How a client finds the relay and its files.
#[derive(Args, Clone)]
pub(crate) struct ClientArgs {
    /// Your user name (certificate CN).
    pub name: String,
    /// Your directory (from `enroll`) [default: blindrelay-NAME].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Relay address, HOST or HOST:PORT (port 8443 if none).
    #[arg(long, default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Your certificate [default: DIR/cert.pem].
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Your private key [default: DIR/key.pem].
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The CA certificate [default: DIR/ca.pem].
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Local state: pinned keys, replay cache, history [default: DIR/state.db].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// A file holding the passphrase of an encrypted key (or set
    /// BLINDRELAY_PASSPHRASE).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// A message older than this many seconds on arrival is shown with its
    /// date, as delivered late.
    #[arg(long, default_value_t = 60)]
    pub late_after: u64,
    /// Messages older than this many days are refused; the replay cache and
    /// the outbox keep their entries this long.
    #[arg(long, default_value_t = 7)]
    pub max_age_days: u64,
}

impl ClientArgs {
    pub(crate) fn config(&self) -> Result<ClientConfig> {
        let name = user_name(&self.name)?;
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| enroll::default_user_dir(&self.name));
        if !dir.exists() && self.cert.is_none() && self.key.is_none() {
            anyhow::bail!(
                "no directory {} for {name}: run `blindrelay enroll {name}` and have the CA sign the request first",
                dir.display()
            );
        }
        let mut cfg = ClientConfig::from_dir(&dir, name, &self.server);
        if let Some(c) = &self.cert {
            cfg.cert = c.clone();
        }
        if let Some(k) = &self.key {
            cfg.key = k.clone();
        }
        if let Some(ca) = &self.ca {
            cfg.ca = ca.clone();
        }
        if let Some(s) = &self.state {
            cfg.state = Some(s.clone());
        }
        cfg.passphrase = passphrase(self.passphrase_file.as_deref())?;
        cfg.policy = Policy {
            live_window_ms: self.late_after.saturating_mul(1000),
            max_age_ms: self.max_age_days.saturating_mul(24 * 3600 * 1000),
            ..Policy::default()
        };
        Ok(cfg)
    }
}

/// The environment variable a key's passphrase may come from.
pub(crate) const PASSPHRASE_ENV: &str = "BLINDRELAY_PASSPHRASE";

/// The passphrase from `file` (its first line), else from
/// [`PASSPHRASE_ENV`], else none.
pub(crate) fn passphrase(file: Option<&std::path::Path>) -> Result<Option<Passphrase>> {
    use anyhow::Context;
    if let Some(f) = file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        );
        return Ok(Some(Passphrase::new(text)));
    }
    Ok(std::env::var(PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| Passphrase::new(zeroize::Zeroizing::new(p))))
}

pub(crate) fn user_name(s: &str) -> Result<UserName> {
    UserName::new(s).map_err(|_| {
        anyhow::anyhow!(
            "invalid user name {s:?}: use 1-32 characters a-z 0-9 . _ - starting with a letter or digit"
        )
    })
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// How long the end of the program waits for tasks still running (a
/// read from stdin never ends by itself).
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs `job` on a fresh runtime, and does not wait for a blocked read of
/// stdin at the end.
fn on_runtime(job: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(job);
    rt.shutdown_timeout(SHUTDOWN_WAIT);
    r
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pki(cmd) => pki_cmd::run(cmd),
        Command::Enroll(args) => enroll::run(args),
        Command::EnrollRelay(args) => enroll::run_relay(args),
        Command::Serve(args) => {
            init_tracing("info");
            on_runtime(serve::run(args))
        }
        Command::Chat(args) => {
            init_tracing("warn");
            on_runtime(chat::run(args))
        }
        Command::Send(args) => {
            init_tracing("warn");
            on_runtime(send::run(args))
        }
        Command::Demo(args) => {
            init_tracing("off");
            on_runtime(demo::run(args))
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
