//! `blindrelay send`: one message, for scripts. Exit 0 only once the relay
//! has stored it (or every recipient has it).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use blindrelay_client::{Event, connect};
use clap::Args;

use crate::ui::Narrator;
use crate::{ClientArgs, user_name};

/// How long `send` waits for the directory and for the relay's answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Recipient (repeatable; with a device, protocol v2: one person, the
    /// one-to-one conversation, made on the first message).
    #[arg(long = "to", required_unless_present = "group")]
    to: Vec<String>,
    /// Protocol v2 (a device's directory): send to the group NAME.
    #[arg(long, conflicts_with = "to")]
    group: Option<String>,
    /// The message; `-` reads it from stdin.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    text: Option<String>,
    /// Read the message from this file.
    #[arg(long)]
    file: Option<PathBuf>,
}

/// The most a message may hold, in bytes (UTF-8).
const MAX_TEXT: usize = blindrelay_e2e::content::MAX_TEXT_LEN;

/// The message, from the argument, stdin or the file; never empty.
fn message(args: &SendArgs) -> Result<String> {
    let text = match (&args.text, &args.file) {
        (Some(t), _) if t == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .take(u64::try_from(MAX_TEXT).unwrap_or(u64::MAX) + 1)
                .read_to_string(&mut s)
                .context("cannot read the message from stdin (it must be UTF-8)")?;
            s
        }
        (Some(t), _) => t.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the message from {}", f.display()))?,
        (None, None) => bail!("no message: give it, `-` for stdin, or --file FILE"),
    };
    // One trailing newline (from `echo` or a file) is not part of it.
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_string();
    if text.trim().is_empty() {
        bail!("nothing to send: the message is empty");
    }
    if text.len() > MAX_TEXT {
        bail!(
            "the message is {} bytes; at most {MAX_TEXT} bytes (64 KiB) fit in one message",
            text.len()
        );
    }
    Ok(text)
}

/// Only what a script's user must know goes to stderr: warnings.
fn report(narrator: &mut Narrator, e: &Event) {
    let worth = matches!(
        e,
        Event::Warning(_) | Event::KeyChanged { .. } | Event::Undelivered { .. }
    );
    if let Some(l) = narrator.line(e)
        && worth
    {
        eprintln!("{l}");
    }
}

/// What a running chat said about the message handed to it through its
/// local socket.
fn through_chat(lines: &[serde_json::Value]) -> Result<()> {
    let field = |v: &serde_json::Value, k: &str| {
        crate::ui::sanitize(v.get(k).and_then(serde_json::Value::as_str).unwrap_or(""))
    };
    let text = |v: &serde_json::Value| field(v, "text");
    let mut id = String::new();
    for v in lines {
        let event = field(v, "event");
        match event.as_str() {
            "sending" => id = field(v, "id"),
            // v1: the relay stored it for every recipient (its `sent` only
            // counts live deliveries); v2: it is in every device's mailbox.
            "stored" | "sent" if event == "stored" || field(v, "protocol") == "v2" => {
                println!(
                    "accepted by the relay: message {id}, sent by the chat running for this user or device"
                );
                return Ok(());
            }
            "undelivered" => bail!("not delivered: {}", text(v)),
            "error" | "warning" => bail!("{}", text(v)),
            _ => {}
        }
    }
    bail!("the running chat ended before the relay confirmed the message {id}")
}

pub(crate) async fn run(args: SendArgs) -> Result<()> {
    let text = message(&args)?;
    let cfg = args.client.config()?;
    // A chat running for this user or device owns the state: the message
    // goes through it (`crate::local`).
    if let Some(path) = crate::local::socket_path(cfg.state.as_deref()) {
        let mut command = serde_json::json!({"cmd": "send", "to": args.to, "text": text});
        if let (Some(g), Some(o)) = (&args.group, command.as_object_mut()) {
            o.remove("to");
            o.insert("group".into(), serde_json::json!(g));
        }
        if let Some(lines) = crate::local::send_through(&path, &command).await? {
            return through_chat(&lines);
        }
    }
    // A certificate that cannot be read is reported by the v1 path below.
    if blindrelay_client::v2::is_device(&cfg).unwrap_or(false) {
        return tokio::time::timeout(SEND_TIMEOUT, send_v2(&args, cfg, &text))
            .await
            .map_err(|_| {
                anyhow!(
                    "no confirmation from the relay within {} s",
                    SEND_TIMEOUT.as_secs()
                )
            })?;
    }
    if args.group.is_some() {
        bail!(
            "--group needs a device's directory (protocol v2): `blindrelay enroll NAME --device DEVICE`"
        );
    }
    let to = args
        .to
        .iter()
        .map(|t| user_name(t))
        .collect::<Result<Vec<_>>>()?;
    let (client, mut events) = connect(&cfg).await?;
    let mut narrator = Narrator::default();
    let closed = |narrator: &mut Narrator, e: &Event| narrator.line(e).unwrap_or_default();
    let wait = async {
        // Wait for the directory so that recipients' keys are verified.
        loop {
            match events.recv().await {
                Some(Event::Connected { .. }) => break,
                Some(e @ Event::Closed { .. }) => bail!("{}", closed(&mut narrator, &e)),
                Some(e) => report(&mut narrator, &e),
                None => bail!("connection closed"),
            }
        }
        // A script cannot wait for someone's first login: say so, send nothing.
        let peers = client.peers().await?;
        for n in &to {
            match peers.iter().find(|p| p.name == *n) {
                Some(p) if p.key_changed => bail!(
                    "{n}'s certificate changed: compare safety numbers in a chat (/verify {n}, /accept {n}); nothing was sent"
                ),
                Some(p) if p.verified => {}
                _ => bail!(
                    "{n} has never logged in to this relay, so there is no verified key to encrypt for; nothing was sent (a chat keeps such a message until {n} logs in)"
                ),
            }
        }
        // Keep reading events while the message is queued, so that a long
        // backlog arriving meanwhile can never stall the connection.
        let sending = client.send(to, text, false);
        tokio::pin!(sending);
        let mut live = None;
        let id = loop {
            tokio::select! {
                r = &mut sending => break r?,
                e = events.recv() => match e {
                    Some(e @ Event::Closed { .. }) => bail!("{}", closed(&mut narrator, &e)),
                    // The only message this session sends.
                    Some(Event::Sent { delivered, .. }) => live = Some(delivered),
                    Some(e) => report(&mut narrator, &e),
                    None => bail!("connection closed"),
                },
            }
        };
        loop {
            match events.recv().await {
                Some(Event::Sent { msg_id, delivered }) if msg_id == id => live = Some(delivered),
                Some(Event::Stored { msg_id, recipients }) if msg_id == id => {
                    let live = live.unwrap_or(0);
                    println!(
                        "accepted by the relay: message {} for {recipients} recipient(s), delivered live to {live} of their sessions{}",
                        id.to_hex(),
                        if live == 0 {
                            ", stored for their next login"
                        } else {
                            ""
                        }
                    );
                    return Ok(());
                }
                Some(e @ Event::Closed { .. }) => bail!("{}", closed(&mut narrator, &e)),
                Some(e) => report(&mut narrator, &e),
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

/// Protocol v2: reads what waited (so that a Welcome into the group is
/// processed), sends into the group or the one-to-one conversation (made
/// if new), and exits once the relay has it in every recipient's mailbox.
async fn send_v2(args: &SendArgs, cfg: blindrelay_client::ClientConfig, text: &str) -> Result<()> {
    use blindrelay_client::v2::Member;
    let mut m = Member::connect(&cfg, &crate::chat::v2::show::state_path(&cfg)).await?;
    m.sync(Duration::from_millis(300)).await?;
    let (group, label) = match (&args.group, args.to.as_slice()) {
        (Some(g), _) => {
            let info = m.find_group(g)?.ok_or_else(|| {
                anyhow!("no group {g:?} on this device (a chat's /groups lists them)")
            })?;
            (info.id, g.clone())
        }
        (None, [to]) => {
            let n = user_name(to)?;
            let id = match m.one_to_one(&n)? {
                Some(g) => g.id,
                None => m.create_group(None, std::slice::from_ref(&n)).await?.0,
            };
            if m.device()
                .members(&id)?
                .iter()
                .all(|x| x.user != n.as_str())
            {
                bail!("{n} has no device with a KeyPackage at this relay; nothing was sent");
            }
            (id, n.to_string())
        }
        (None, _) => {
            bail!("protocol v2 sends to one person (--to NAME) or one group (--group NAME)")
        }
    };
    m.send(&group, text).await?;
    let devices = m.device().members(&group)?.len().saturating_sub(1);
    println!(
        "accepted by the relay: protocol v2 message to {label}, in the mailbox of {devices} device(s)"
    );
    m.close().await;
    Ok(())
}
