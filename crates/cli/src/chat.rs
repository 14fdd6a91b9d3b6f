//! `blindrelay chat`: the interactive terminal chat, and its JSON machine mode.
//!
//! Interactive mode reads lines with a line editor in its own thread while
//! incoming events are printed above the input line through the editor's
//! external printer, so typing is never broken. Machine mode (`--json`)
//! reads one JSON command per line on stdin and writes one JSON event per
//! line on stdout.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use blindrelay_client::{ClientHandle, Event, connect};
use blindrelay_wire::UserName;
use clap::Args;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::ui::{human, machine, sanitize};
use crate::{ClientArgs, user_name};

#[derive(Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Machine mode: JSON commands on stdin, JSON events on stdout.
    #[arg(long)]
    json: bool,
}

const HELP: &str = "\
commands:
  TEXT               send to the current conversation
  /msg NAME TEXT     send to NAME
  /to NAME           make NAME the current conversation
  /all TEXT          send to everyone online (the room)
  /who               list verified users online
  /verify NAME       show the safety number shared with NAME
  /accept NAME       trust NAME's changed certificate (after /verify)
  /help              this help
  /quit              leave";

/// One thing the user asked for, from either front end.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    /// Send `text` to `to`, or to the current conversation.
    Send {
        #[serde(default)]
        to: Option<Vec<String>>,
        text: String,
    },
    /// Set the current conversation.
    To { name: String },
    /// Send to everyone online.
    All { text: String },
    /// List users online.
    Who,
    /// Show a safety number.
    Verify { name: String },
    /// Accept a changed key.
    Accept { name: String },
    /// Print help.
    Help,
    /// Leave.
    Quit,
}

fn parse_line(line: &str) -> Result<Option<Action>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if !line.starts_with('/') {
        return Ok(Some(Action::Send {
            to: None,
            text: line.to_string(),
        }));
    }
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let need = |what: &str| {
        if rest.is_empty() {
            Err(format!("usage: {cmd} {what}"))
        } else {
            Ok(())
        }
    };
    Ok(Some(match cmd {
        "/msg" => {
            let (name, text) = rest.split_once(' ').ok_or("usage: /msg NAME TEXT")?;
            Action::Send {
                to: Some(vec![name.to_string()]),
                text: text.trim().to_string(),
            }
        }
        "/to" => {
            need("NAME")?;
            Action::To { name: rest.into() }
        }
        "/all" => {
            need("TEXT")?;
            Action::All { text: rest.into() }
        }
        "/who" => Action::Who,
        "/verify" => {
            need("NAME")?;
            Action::Verify { name: rest.into() }
        }
        "/accept" => {
            need("NAME")?;
            Action::Accept { name: rest.into() }
        }
        "/help" => Action::Help,
        "/quit" | "/exit" => Action::Quit,
        other => return Err(format!("unknown command {other}; /help lists them")),
    }))
}

/// What performing an action produced.
enum Outcome {
    Info(String),
    Json(serde_json::Value),
    Error(String),
    Quit,
}

struct Session {
    client: ClientHandle,
    current: Option<UserName>,
}

impl Session {
    async fn perform(&mut self, a: Action) -> Outcome {
        match self.try_perform(a).await {
            Ok(o) => o,
            Err(e) => Outcome::Error(format!("{e:#}")),
        }
    }

    async fn try_perform(&mut self, a: Action) -> Result<Outcome> {
        Ok(match a {
            Action::Send { to, text } => {
                let to = match to {
                    Some(list) => list
                        .iter()
                        .map(|n| user_name(n))
                        .collect::<Result<Vec<_>>>()?,
                    None => vec![self.current.clone().ok_or_else(|| {
                        anyhow::anyhow!("no conversation: use /to NAME or /msg NAME TEXT")
                    })?],
                };
                let id = self.client.send(to.clone(), text, false).await?;
                Outcome::Json(json!({"event": "sending", "id": id.to_hex(),
                    "to": to.iter().map(|n| n.as_str()).collect::<Vec<_>>()}))
            }
            Action::To { name } => {
                let n = user_name(&name)?;
                self.current = Some(n.clone());
                Outcome::Info(format!("now talking to {n}"))
            }
            Action::All { text } => {
                let online = self.client.online().await?;
                if online.is_empty() {
                    anyhow::bail!("nobody else is online");
                }
                let id = self.client.send(online.clone(), text, true).await?;
                Outcome::Json(json!({"event": "sending", "id": id.to_hex(), "room": true,
                    "to": online.iter().map(|n| n.as_str()).collect::<Vec<_>>()}))
            }
            Action::Who => {
                let online = self.client.online().await?;
                Outcome::Json(
                    json!({"event": "who", "online": online.iter().map(|n| n.as_str()).collect::<Vec<_>>()}),
                )
            }
            Action::Verify { name } => {
                let n = user_name(&name)?;
                let sn = self.client.safety_number(n.clone()).await?;
                Outcome::Json(json!({"event": "safety_number", "name": n.as_str(), "number": sn}))
            }
            Action::Accept { name } => {
                let n = user_name(&name)?;
                let fp = self.client.accept_key(n.clone()).await?;
                Outcome::Json(
                    json!({"event": "key_accepted", "name": n.as_str(), "fingerprint": fp}),
                )
            }
            Action::Help => Outcome::Info(HELP.into()),
            Action::Quit => Outcome::Quit,
        })
    }
}

fn outcome_text(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Info(s) => Some(s.clone()),
        Outcome::Error(e) => Some(format!("error: {}", sanitize(e))),
        Outcome::Quit => None,
        Outcome::Json(v) => match v["event"].as_str() {
            Some("who") => Some(format!("online (verified): {}", v["online"])),
            Some("safety_number") => Some(format!(
                "safety number with {}: {}\n(compare it with {} over another channel; equal numbers mean no one is in between)",
                v["name"].as_str().unwrap_or(""),
                v["number"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or("")
            )),
            Some("key_accepted") => Some(format!(
                "new key of {} accepted and pinned",
                v["name"].as_str().unwrap_or("")
            )),
            _ => None,
        },
    }
}

pub(crate) async fn run(args: ChatArgs) -> Result<()> {
    let cfg = args.client.config()?;
    let (client, events) = connect(&cfg).await?;
    let session = Session {
        client,
        current: None,
    };
    if args.json {
        run_json(session, events).await
    } else {
        run_interactive(session, events).await
    }
}

/// Prints events as they come, in their own task, so that a command
/// waiting for the connection (backpressure) never stops event delivery.
/// The returned receiver fires when the connection has ended.
fn spawn_event_printer(
    mut events: mpsc::Receiver<Event>,
    print: impl Fn(&Event) + Send + 'static,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            let closed = matches!(e, Event::Closed { .. });
            print(&e);
            if closed {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    done_rx
}

async fn run_json(mut s: Session, events: mpsc::Receiver<Event>) -> Result<()> {
    let mut done = spawn_event_printer(events, |e| println!("{}", machine(e)));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = &mut done => return Ok(()),
            l = lines.next_line() => match l {
                Ok(Some(l)) if l.trim().is_empty() => {}
                Ok(Some(l)) => {
                    let out = match serde_json::from_str::<Action>(&l) {
                        Ok(a) => s.perform(a).await,
                        Err(e) => Outcome::Error(format!("bad command: {e}")),
                    };
                    match out {
                        Outcome::Quit => {
                            s.client.quit().await;
                            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut done).await;
                            return Ok(());
                        }
                        Outcome::Json(v) => println!("{v}"),
                        Outcome::Info(i) => println!("{}", json!({"event": "info", "text": i})),
                        Outcome::Error(e) => println!("{}", json!({"event": "error", "text": e})),
                    }
                }
                // End of input: leave, as after a quit command.
                Ok(None) | Err(_) => {
                    s.client.quit().await;
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut done).await;
                    return Ok(());
                }
            },
        }
    }
}

type SharedPrinter = Arc<Mutex<Option<Box<dyn rustyline::ExternalPrinter + Send>>>>;

fn say(printer: &SharedPrinter, line: String) {
    let mut g = match printer.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    match g.as_mut() {
        Some(p) => {
            if p.print(format!("{line}\n")).is_err() {
                println!("{line}");
            }
        }
        None => println!("{line}"),
    }
}

async fn run_interactive(mut s: Session, events: mpsc::Receiver<Event>) -> Result<()> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let printer: SharedPrinter =
        Arc::new(Mutex::new(rl.create_external_printer().ok().map(|p| {
            Box::new(p) as Box<dyn rustyline::ExternalPrinter + Send>
        })));
    let prompt = Arc::new(Mutex::new(format!("{}> ", s.client.name())));
    let (line_tx, mut line_rx) = mpsc::channel::<Option<String>>(16);
    let p = prompt.clone();
    let reader = std::thread::spawn(move || {
        loop {
            let text = p.lock().map(|g| g.clone()).unwrap_or_default();
            match rl.readline(&text) {
                Ok(line) => {
                    let _ = rl.add_history_entry(line.as_str());
                    if line_tx.blocking_send(Some(line)).is_err() {
                        break;
                    }
                }
                Err(_) => {
                    let _ = line_tx.blocking_send(None);
                    break;
                }
            }
        }
    });
    say(
        &printer,
        format!(
            "blindrelay chat as {} (end-to-end encrypted; /help for commands)",
            s.client.name()
        ),
    );
    if let Ok(history) = s.client.history(20).await {
        for h in history {
            let who = if h.outgoing {
                format!("you -> {}", h.peer)
            } else {
                h.peer.clone()
            };
            say(
                &printer,
                format!(
                    "  [{} UTC] {who}: {}",
                    crate::ui::clock(h.ts_ms),
                    crate::ui::body(&h.text)
                ),
            );
        }
    }
    let pr = printer.clone();
    let mut done = spawn_event_printer(events, move |e| {
        if let Some(l) = human(e) {
            say(&pr, l);
        }
        if matches!(e, Event::Closed { .. }) {
            say(&pr, "[press Enter to exit]".into());
        }
    });
    let mut connected = true;
    loop {
        tokio::select! {
            _ = &mut done, if connected => connected = false,
            l = line_rx.recv() => match l {
                Some(Some(_)) if !connected => break,
                Some(Some(line)) => match parse_line(&line) {
                    Ok(None) => {}
                    Ok(Some(a)) => {
                        let out = s.perform(a).await;
                        if matches!(out, Outcome::Quit) {
                            s.client.quit().await;
                            break;
                        }
                        if let Some(t) = outcome_text(&out) {
                            say(&printer, t);
                        }
                        if let Some(c) = &s.current
                            && let Ok(mut g) = prompt.lock()
                        {
                            *g = format!("{} -> {c}> ", s.client.name());
                        }
                    }
                    Err(e) => say(&printer, format!("error: {e}")),
                },
                Some(None) | None => {
                    s.client.quit().await;
                    break;
                }
            },
        }
    }
    drop(line_rx);
    if reader.is_finished() {
        let _ = reader.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_commands() {
        assert_eq!(
            parse_line("/msg bob hi there").unwrap(),
            Some(Action::Send {
                to: Some(vec!["bob".into()]),
                text: "hi there".into()
            })
        );
        assert_eq!(
            parse_line("/to bob").unwrap(),
            Some(Action::To { name: "bob".into() })
        );
        assert_eq!(
            parse_line("/all hello").unwrap(),
            Some(Action::All {
                text: "hello".into()
            })
        );
        assert_eq!(parse_line("/who").unwrap(), Some(Action::Who));
        assert_eq!(
            parse_line("/verify bob").unwrap(),
            Some(Action::Verify { name: "bob".into() })
        );
        assert_eq!(parse_line("/quit").unwrap(), Some(Action::Quit));
        assert_eq!(parse_line("   ").unwrap(), None);
        assert!(parse_line("/msg bob").is_err());
        assert!(parse_line("/nope").is_err());
        assert_eq!(
            parse_line("hello").unwrap(),
            Some(Action::Send {
                to: None,
                text: "hello".into()
            })
        );
    }

    #[test]
    fn parses_json_commands() {
        let a: Action = serde_json::from_str(r#"{"cmd":"send","to":["bob"],"text":"hi"}"#).unwrap();
        assert_eq!(
            a,
            Action::Send {
                to: Some(vec!["bob".into()]),
                text: "hi".into()
            }
        );
        let a: Action = serde_json::from_str(r#"{"cmd":"to","name":"bob"}"#).unwrap();
        assert_eq!(a, Action::To { name: "bob".into() });
        let a: Action = serde_json::from_str(r#"{"cmd":"quit"}"#).unwrap();
        assert_eq!(a, Action::Quit);
        assert!(serde_json::from_str::<Action>(r#"{"cmd":"send","text":"x","evil":1}"#).is_err());
    }
}
