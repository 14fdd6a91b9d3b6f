//! `blindrelay chat` for a device (protocol v2): the line client and
//! machine mode (`--json`) over one [`V2Session`].
//!
//! The session runs in its own task (`task`), which does everything that
//! waits for the relay; this loop reads commands from stdin, hands them
//! to it, and prints what it says: a JSON line (`--json`) or a line of
//! text per event and answer. On a terminal the full-screen client runs
//! instead (`crate::tui::v2`), over the same task.

pub(crate) mod action;
mod parse;
pub(crate) mod show;
pub(crate) mod task;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use anyhow::Result;
use blindrelay_client::ClientConfig;
use blindrelay_client::v2::Member;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::chat::action::Outcome;
use action::{V2Action, V2Session, parse_json, parse_line};
use show::{RETRY, state_path, text};
use task::{FromTask, ToTask};

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
    if full_screen {
        return crate::tui::v2::run(s, true).await;
    }
    if !json_mode {
        println!(
            "connected to {} as {me} (protocol v2: MLS); /help lists the commands",
            cfg.server
        );
        print_history(&mut s.member);
    }
    let (to_task, from_task) = task::spawn(s);
    lines(json_mode, to_task, from_task).await;
    if json_mode {
        // The last event, as in version 1: a script knows the session is over.
        println!(
            "{}",
            json!({"event": "closed", "code": Value::Null, "reason": "quit"})
        );
    }
    Ok(())
}

/// The line client and machine mode: commands from stdin to the task,
/// what it says to stdout, until the task has closed.
async fn lines(
    json_mode: bool,
    to_task: mpsc::Sender<ToTask>,
    mut from_task: mpsc::Receiver<FromTask>,
) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut gate = crate::chat::gate::Gate::default();
    let mut waiting: u64 = 0;
    // The `req` of each command in flight, by tag (at most the task's
    // command queue and one more).
    let mut reqs: HashMap<u64, Option<String>> = HashMap::new();
    let mut tag = 0u64;
    let mut quitting = false;
    // A script waits for the outcome of what it handed over, a person
    // leaving does not wait as long.
    let quit_drain = if json_mode {
        task::DRAIN_AT_END
    } else {
        task::QUIT_DRAIN
    };
    loop {
        // Past the outbox's bound, no command is read (see `gate`); each
        // command not answered yet may add one.
        let in_flight = u64::try_from(reqs.len()).unwrap_or(u64::MAX);
        let (read, said) = gate.check(waiting.saturating_add(in_flight));
        if let Some(v) = said {
            print(json_mode, &v);
        }
        tokio::select! {
            biased;
            f = from_task.recv() => match f {
                None => return,
                Some(FromTask::Event(_, v)) => print(json_mode, &v),
                Some(FromTask::Answer { tag, outcome, waiting: now, .. }) => {
                    waiting = now;
                    let req = reqs.remove(&tag).flatten();
                    if let Some(v) = outcome_json(outcome) {
                        show_answer(json_mode, &with_req(v, &req));
                    }
                }
                Some(FromTask::Outbox(n)) => waiting = n,
                Some(FromTask::Lost(why)) => {
                    print(json_mode, &json!({"event": "reconnecting", "text": why}));
                    if !json_mode {
                        println!("connection lost ({why}); reconnecting");
                    }
                }
                Some(FromTask::Back) => {
                    if !json_mode {
                        println!("connected again");
                    }
                }
                Some(FromTask::Groups(_)) => {}
                Some(FromTask::Closed { left }) => {
                    if left > 0 {
                        print(json_mode, &task::left_warning(left));
                    }
                    return;
                }
            },
            l = lines.next_line(), if read && !quitting => match l {
                Ok(Some(l)) => {
                    let (req, action) = if json_mode {
                        if l.trim().is_empty() { (None, Ok(None)) } else { let (r, a) = parse_json(&l); (r, a.map(Some)) }
                    } else {
                        (None, parse_line(&l))
                    };
                    match action {
                        Ok(Some(V2Action::Quit)) => {
                            quitting = true;
                            let _ = to_task.send(ToTask::Quit { within: quit_drain }).await;
                        }
                        Ok(Some(action)) => {
                            tag += 1;
                            reqs.insert(tag, req);
                            if to_task.send(ToTask::Perform { action, tag }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => print(json_mode, &with_req(json!({"event": "error", "text": e}), &req)),
                    }
                }
                Ok(None) | Err(_) => {
                    quitting = true;
                    let _ = to_task.send(ToTask::Quit { within: quit_drain }).await;
                }
            },
        }
    }
}
