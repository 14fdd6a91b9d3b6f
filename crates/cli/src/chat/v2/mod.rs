//! `blindrelay chat` for a device (protocol v2): the line client and
//! machine mode (`--json`) over one [`V2Session`].
//!
//! One loop reads commands and, as soon as the relay sends something (and
//! at least every [`TICK`], for the periodic work), processes what the
//! relay delivered; each event is printed as
//! a JSON line (`--json`) or a line of text. A lost connection is retried
//! every [`RETRY`] until it is back or the user leaves. On a terminal the
//! full-screen client runs instead (`crate::tui::v2`), over the same
//! session.

pub(crate) mod action;
mod parse;
pub(crate) mod show;
#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::Result;
use blindrelay_client::ClientConfig;
use blindrelay_client::v2::{Member, V2Event};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::chat::action::Outcome;
use action::{V2Action, V2Session, parse_json, parse_line};
use blindrelay_client::ClientError;
use show::{DRAIN_AT_END, RETRY, TICK, event_json, state_path, text};

fn print(json_mode: bool, v: &Value) {
    if json_mode {
        println!("{v}");
    } else if let Some(t) = text(v) {
        println!("{}", crate::ui::for_terminal(&t));
    }
}

/// A command's answer, as JSON or for a person.
fn show_answer(json_mode: bool, v: &Value) {
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    if json_mode {
        println!("{v}");
    } else if field("event") == "info_text" {
        println!("{}", field("text"));
    } else if field("event") == "error" {
        println!("error: {}", crate::ui::sanitize(field("text")));
    } else {
        print(false, v);
    }
}

fn with_req(mut v: Value, req: &Option<String>) -> Value {
    if let (Some(r), Some(o)) = (req, v.as_object_mut()) {
        o.insert("req".into(), json!(r));
    }
    v
}

fn outcome_json(o: Outcome) -> Option<Value> {
    match o {
        Outcome::Nothing | Outcome::Quit => None,
        Outcome::Json(v) => Some(v),
        Outcome::Info(i) => Some(json!({"event": "info_text", "text": i})),
        Outcome::Error(e) => Some(json!({"event": "error", "text": e})),
    }
}

/// Connects, retrying every [`RETRY`] while the relay is unreachable if
/// `retry`.
async fn connect(cfg: &ClientConfig, retry: bool) -> Result<Member> {
    loop {
        match Member::connect(cfg, &state_path(cfg)).await {
            Ok(m) => return Ok(m),
            Err(e) if retry => {
                eprintln!(
                    "cannot reach the relay ({e}); retrying in {} s",
                    RETRY.as_secs()
                );
                tokio::time::sleep(RETRY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Start-up work: read what waited, add this person's new devices to
/// their groups, refresh keys that are due. A connection that fails while
/// reading is connected again (a relay restart or a network glitch in the
/// first moments is not fatal); the other two are retried by the periodic
/// work if they fail.
async fn start(m: &mut Member, cfg: &ClientConfig, json_mode: bool) -> Vec<V2Event> {
    let mut ev = loop {
        match step(m, Duration::from_millis(300), usize::MAX).await {
            Ok(ev) => break ev,
            Err(e) => {
                print(
                    json_mode,
                    &json!({"event": "reconnecting", "text": format!("{e}")}),
                );
                reconnect(m, cfg).await;
            }
        }
    };
    match m.adopt_own_devices().await {
        Ok(more) => ev.extend(more),
        Err(e) => tracing::warn!(error = %e, "adding this person's new devices failed"),
    }
    match m.update_due().await {
        Ok(more) => ev.extend(more),
        Err(e) => tracing::warn!(error = %e, "the due key refresh failed"),
    }
    ev
}

/// Prints the end of the device's history, as version 1's line client
/// does.
fn print_history(m: &mut Member) {
    let Ok(history) = m.history(crate::chat::plain::HISTORY_AT_START) else {
        return;
    };
    if history.is_empty() {
        return;
    }
    let me = m.me().user.as_str().to_string();
    let groups = m.groups().unwrap_or_default();
    let now = crate::ui::now_ms();
    println!("--- the last {} messages ---", history.len());
    for h in history {
        let conversation = groups
            .iter()
            .find(|g| h.group.as_deref() == Some(&g.id[..]))
            .map_or_else(|| "(a group you left)".into(), |g| action::label(g, &me));
        let who = if h.outgoing { "you".into() } else { h.peer };
        println!(
            "  [{}] [{}] {}: {}",
            crate::ui::stamp(h.ts_ms, now),
            crate::ui::sanitize(&conversation),
            crate::ui::sanitize(&who),
            crate::ui::sanitize(&crate::ui::preview(&h.text))
        );
    }
}

/// Processes what the relay delivered within `wait`, then sends what the
/// outbox holds (at most `max` messages).
async fn step(m: &mut Member, wait: Duration, max: usize) -> Result<Vec<V2Event>, ClientError> {
    let mut ev = m.sync(wait).await?;
    ev.extend(m.flush_some(max).await?);
    Ok(ev)
}

/// At the end of input: shows what is pending and keeps sending the
/// outbox until it is empty or [`DRAIN_AT_END`] has passed; says how
/// many messages are left for the next start.
async fn drain(s: &mut V2Session, cfg: &ClientConfig, json_mode: bool) {
    let deadline = tokio::time::Instant::now() + DRAIN_AT_END;
    loop {
        for e in std::mem::take(&mut s.events) {
            s.tell_local(&e);
            let v = event_json(&e, &mut s.member);
            print(json_mode, &v);
        }
        let left = s.member.outbox().map_or(0, |o| o.len());
        if left == 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            print(
                json_mode,
                &json!({"event": "warning", "text": format!(
                    "{left} message(s) still in the outbox: sent at this device's next chat or send")}),
            );
            return;
        }
        match step(&mut s.member, Duration::from_millis(200), usize::MAX).await {
            Ok(ev) => s.events.extend(ev),
            Err(_) => {
                tokio::time::sleep(RETRY).await;
                if let Err(e) = s.member.reconnect(cfg).await {
                    tracing::info!(error = %e, "reconnecting to send the outbox failed");
                }
            }
        }
    }
}

/// Connects again, retrying every [`RETRY`] until the relay answers.
async fn reconnect(m: &mut Member, cfg: &ClientConfig) {
    while let Err(e) = m.reconnect(cfg).await {
        eprintln!(
            "cannot reach the relay ({e}); retrying in {} s",
            RETRY.as_secs()
        );
        tokio::time::sleep(RETRY).await;
    }
}

pub(crate) async fn run(cfg: ClientConfig, json_mode: bool, full_screen: bool) -> Result<()> {
    let member = match connect(&cfg, true).await {
        Ok(m) => m,
        Err(e) => {
            if json_mode {
                println!(
                    "{}",
                    json!({"event": "error", "fatal": true, "text": format!("{e:#}")})
                );
            }
            return Err(e);
        }
    };
    let mut s = V2Session {
        member,
        config: cfg.clone(),
        current: None,
        server: cfg.server.clone(),
        events: Vec::new(),
        queued: None,
        awaited: crate::local::Awaited::default(),
        requests: None,
    };
    // `send` for this device goes through this chat (see `local`).
    let _listening = match crate::chat::local_socket(cfg.state.as_deref()) {
        Some((l, requests)) => {
            s.requests = Some(requests);
            Some(l)
        }
        None => None,
    };
    let me = s.member.me().clone();
    print(
        json_mode,
        &json!({"event": "connected", "identity": me.user.as_str(), "device": me.device.as_str(), "protocol": "v2", "server": cfg.server}),
    );
    if !json_mode && !full_screen {
        println!(
            "connected to {} as {me} (protocol v2: MLS); /help lists the commands",
            cfg.server
        );
        print_history(&mut s.member);
    }
    let ev = start(&mut s.member, &cfg, json_mode).await;
    s.events.extend(ev);
    if full_screen {
        return crate::tui::v2::run(s, true).await;
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut gate = crate::chat::gate::Gate::default();
    loop {
        for e in std::mem::take(&mut s.events) {
            s.tell_local(&e);
            let v = event_json(&e, &mut s.member);
            print(json_mode, &v);
        }
        let mut quit = false;
        // A turn that read a command sends nothing, and commands are read
        // first: what a script hands over is in the outbox (answered
        // `sending`) at once, and goes out at the relay's pace on the
        // other turns, one message a turn, when the budget allows.
        let mut sends = 1;
        let tick = s.member.outbox_due().map_or(TICK, |d| d.min(TICK));
        // Past the outbox's bound, no command is read (see `gate`).
        let (read, said) = gate.check(s.member.outbox_waiting().unwrap_or(0));
        if let Some(v) = said {
            print(json_mode, &v);
        }
        tokio::select! {
            biased;
            l = lines.next_line(), if read => match l {
                Ok(Some(l)) => {
                    sends = 0;
                    let (req, action) = if json_mode {
                        if l.trim().is_empty() { (None, Ok(None)) } else { let (r, a) = parse_json(&l); (r, a.map(Some)) }
                    } else {
                        (None, parse_line(&l))
                    };
                    match action {
                        Ok(Some(V2Action::Quit)) => quit = true,
                        Ok(Some(a)) => {
                            let o = s.perform(a).await;
                            if let Some(v) = outcome_json(o) {
                                show_answer(json_mode, &with_req(v, &req));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => print(json_mode, &with_req(json!({"event": "error", "text": e}), &req)),
                    }
                }
                Ok(None) | Err(_) => quit = true,
            },
            r = crate::local::next(&mut s.requests) => s.take_local(r).await,
            _ = s.member.readable() => {}
            // When the outbox's next message may go.
            _ = tokio::time::sleep(tick) => {}
        }
        if quit {
            break;
        }
        match step(&mut s.member, Duration::ZERO, sends).await {
            Ok(ev) => s.events.extend(ev),
            Err(e) => {
                print(
                    json_mode,
                    &json!({"event": "reconnecting", "text": format!("{e}")}),
                );
                if !json_mode {
                    println!("connection lost ({e}); reconnecting");
                }
                reconnect(&mut s.member, &cfg).await;
                let ev = start(&mut s.member, &cfg, json_mode).await;
                s.events.extend(ev);
            }
        }
    }
    drain(&mut s, &cfg, json_mode).await;
    s.member.close().await;
    if json_mode {
        // The last event, as in version 1: a script knows the session is over.
        println!(
            "{}",
            json!({"event": "closed", "code": Value::Null, "reason": "quit"})
        );
    }
    Ok(())
}
