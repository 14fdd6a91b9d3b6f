//! `blindrelay chat`: three front ends over one client.
//!
//! * the full-screen client ([`crate::tui`]), the default on a terminal;
//! * the line client ([`plain`], `--plain`, and whenever stdin or stdout is
//!   not a terminal or `TERM=dumb`): one line per event, for scripts,
//!   screen readers and dumb terminals;
//! * machine mode ([`json`], `--json`): one JSON command per line in, one
//!   JSON event per line out.
//!
//! All three carry out the same [`action::Action`]s and describe events
//! through [`crate::ui`]. A device's directory (protocol v2, MLS groups)
//! runs [`v2`]'s session instead, in the same three front ends.

pub(crate) mod action;
pub(crate) mod events;
pub(crate) mod gate;
mod handed;
mod json;
pub(crate) mod plain;
pub(crate) mod v2;

use std::io::IsTerminal;

use anyhow::Result;
use blindrelay_client::connect;
use clap::Args;

use crate::ClientArgs;
use action::Session;

#[derive(Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Machine mode: JSON commands on stdin, JSON events on stdout.
    #[arg(long, conflicts_with = "plain")]
    json: bool,
    /// The line client instead of the full-screen one (scripts, screen
    /// readers, dumb terminals).
    #[arg(long)]
    plain: bool,
    /// Full-screen client: no notification (bell, OSC 9) for messages in
    /// conversations that are not open. F2 switches it while running.
    #[arg(long)]
    no_notify: bool,
}

/// Which front end runs.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Json,
    Plain,
    FullScreen,
}

fn mode(args: &ChatArgs) -> Mode {
    let dumb = std::env::var("TERM").map_or(true, |t| t == "dumb" || t.is_empty());
    if args.json {
        Mode::Json
    } else if args.plain
        || dumb
        || !std::io::stdin().is_terminal()
        || !std::io::stdout().is_terminal()
    {
        Mode::Plain
    } else {
        Mode::FullScreen
    }
}

/// Listens on the local socket beside `state` (a chat without one still
/// runs: a `send` beside it then says the state is in use).
pub(crate) fn local_socket(
    state: Option<&std::path::Path>,
) -> Option<(
    crate::local::Listening,
    tokio::sync::mpsc::Receiver<crate::local::Request>,
)> {
    let path = crate::local::socket_path(state)?;
    match crate::local::listen(&path) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no local socket for `send`");
            None
        }
    }
}

pub(crate) async fn run(args: ChatArgs) -> Result<()> {
    let mode = mode(&args);
    // A device's directory (its certificate names a device) speaks v2.
    if let Ok(cfg) = args.client.config()
        && blindrelay_client::v2::is_device(&cfg).unwrap_or(false)
    {
        return v2::run(cfg, mode == Mode::Json, mode == Mode::FullScreen).await;
    }
    let started = async {
        let mut cfg = args.client.config()?;
        // A chat waits for a relay that is down at the start.
        cfg.retry_at_start = true;
        let server = cfg.server.clone();
        let (client, events) = connect(&cfg).await?;
        // `send` for this user goes through this chat (see `local`).
        let (listening, events) = match local_socket(cfg.state.as_deref()) {
            Some((l, requests)) => (Some(l), handed::tee_v1(client.clone(), events, requests)),
            None => (None, events),
        };
        anyhow::Ok((Session::new(client, server), events, listening))
    }
    .await;
    let (session, events, _listening) = match started {
        Ok(s) => s,
        Err(e) => {
            if mode == Mode::Json {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "fatal": true, "text": format!("{e:#}")})
                );
            }
            return Err(e);
        }
    };
    match mode {
        Mode::Json => json::run(session, events).await,
        Mode::Plain => plain::run(session, events).await,
        Mode::FullScreen => crate::tui::run(session, events, !args.no_notify).await,
    }
}
