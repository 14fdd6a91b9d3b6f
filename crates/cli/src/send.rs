//! `blindrelay send`: one message, for scripts.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use blindrelay_client::{Event, connect};
use clap::Args;

use crate::{ClientArgs, user_name};

/// How long `send` waits for the directory and for the relay's answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Recipient (repeatable).
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    /// The message.
    text: String,
}

/// Only what a script's user must know goes to stderr: warnings.
fn report(e: &Event) {
    let worth = matches!(
        e,
        Event::Warning(_) | Event::KeyChanged { .. } | Event::Undelivered { .. }
    );
    if worth && let Some(l) = crate::ui::human(e) {
        eprintln!("{l}");
    }
}

pub(crate) async fn run(args: SendArgs) -> Result<()> {
    let cfg = args.client.config()?;
    let to = args
        .to
        .iter()
        .map(|t| user_name(t))
        .collect::<Result<Vec<_>>>()?;
    let (client, mut events) = connect(&cfg).await?;
    let wait = async {
        // Wait for the directory so that recipients' keys are verified.
        loop {
            match events.recv().await {
                Some(Event::Connected { .. }) => break,
                Some(e @ Event::Closed { .. }) => {
                    bail!("{}", crate::ui::human(&e).unwrap_or_default())
                }
                Some(e) => report(&e),
                None => bail!("connection closed"),
            }
        }
        // Keep reading events while the message is queued, so that a long
        // backlog arriving meanwhile can never stall the connection.
        let sending = client.send(to, args.text, false);
        tokio::pin!(sending);
        let id = loop {
            tokio::select! {
                r = &mut sending => break r?,
                e = events.recv() => match e {
                    Some(e @ Event::Closed { .. }) => bail!("{}", crate::ui::human(&e).unwrap_or_default()),
                    Some(e) => report(&e),
                    None => bail!("connection closed"),
                },
            }
        };
        let mut live = 0u16;
        loop {
            match events.recv().await {
                Some(Event::Sent { msg_id, delivered }) if msg_id == id => live = delivered,
                Some(Event::Stored { msg_id, recipients }) if msg_id == id => {
                    println!(
                        "accepted by the relay: message {} stored for {recipients} recipient(s), delivered live to {live} session(s)",
                        id.to_hex()
                    );
                    return Ok(());
                }
                Some(e @ Event::Closed { .. }) => {
                    bail!("{}", crate::ui::human(&e).unwrap_or_default())
                }
                Some(e) => report(&e),
                None => bail!("connection closed before the relay confirmed"),
            }
        }
    };
    let r = tokio::time::timeout(SEND_TIMEOUT, wait)
        .await
        .map_err(|_| {
            anyhow!(
                "no confirmation from the relay within {} s",
                SEND_TIMEOUT.as_secs()
            )
        })?;
    client.quit().await;
    r
}
