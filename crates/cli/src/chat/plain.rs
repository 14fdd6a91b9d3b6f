//! The line client (`chat --plain`): lines in, lines out, nothing drawn.
//!
//! Input is read whole lines at a time from stdin by a thread of its own,
//! so that everything typed ahead or pasted is kept (by the terminal's own
//! line discipline, or the pipe) and becomes one message per line; nothing
//! a person typed is dropped. Events are printed as they come, one line
//! each, through [`crate::ui::Narrator`].

use std::collections::HashSet;
use std::io::BufRead;

use anyhow::Result;
use blindrelay_client::Event;
use blindrelay_wire::MessageId;
use tokio::sync::mpsc;

use super::action::{Outcome, Session, outcome_text, parse_line};
use super::events::EventFeed;
use crate::ui::{Narrator, for_terminal, now_ms, preview, stamp};

/// Messages of the local history shown at the start.
pub(crate) const HISTORY_AT_START: usize = 20;
/// How often arrivals are looked at, to say who has stayed online.
const PRESENCE_TICK: std::time::Duration = std::time::Duration::from_millis(500);
/// Lines read ahead of the chat (the reader waits when it is full; the
/// terminal keeps the rest).
const LINE_QUEUE: usize = 64;

/// Reads stdin line by line in a thread; `None` at the end of input.
fn spawn_reader() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(LINE_QUEUE);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Prints the end of the local history; returns the ids it showed, so
/// that the same messages arriving as events are not shown twice.
async fn print_history(s: &Session) -> HashSet<(String, MessageId)> {
    let Ok(history) = s.client.history(HISTORY_AT_START).await else {
        return HashSet::new();
    };
    if !history.is_empty() {
        println!("--- the last {} messages ---", history.len());
    }
    let now = now_ms();
    let mut shown = HashSet::new();
    for h in history {
        let room = if h.room { " to the room" } else { "" };
        let who = if h.outgoing {
            format!("you -> {}{room}", h.peer)
        } else {
            format!("{}{room}", h.peer)
        };
        println!("  [{}] {who}: {}", stamp(h.ts_ms, now), preview(&h.text));
        // (sender, id), as the replay cache keys messages.
        let sender = if h.outgoing {
            s.client.name().to_string()
        } else {
            h.peer.clone()
        };
        shown.insert((sender, h.msg_id));
    }
    shown
}

pub(crate) async fn run(mut s: Session, events: mpsc::Receiver<Event>) -> Result<()> {
    println!(
        "blindrelay chat as {} (end-to-end encrypted; /help for commands, /quit or Ctrl-D to leave)",
        s.client.name()
    );
    let mut events = EventFeed::new(events);
    let shown = events.during(print_history(&s)).await;
    let mut lines = spawn_reader();
    let mut narrator = Narrator::default();
    let mut tick = tokio::time::interval(PRESENCE_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for l in narrator.due() {
                    println!("{}", for_terminal(&l));
                }
            }
            e = events.next() => match e {
                None => break,
                Some(Event::Message { msg_id, from, .. })
                    if shown.contains(&(from.to_string(), msg_id)) => {}
                Some(e) => {
                    if let Some(l) = narrator.line(&e) {
                        println!("{}", for_terminal(&l));
                    }
                    if matches!(e, Event::Closed { .. }) {
                        return Ok(());
                    }
                }
            },
            l = lines.recv() => match l {
                Some(line) => match parse_line(&line) {
                    Ok(None) => {}
                    Ok(Some(a)) => {
                        let out = events.during(s.perform(a, None)).await;
                        if matches!(out, Outcome::Quit) {
                            break;
                        }
                        if let Some(t) = outcome_text(&out) {
                            println!("{t}");
                        }
                    }
                    Err(e) => println!("error: {e}"),
                },
                // Ctrl-D or the end of a script.
                None => break,
            },
        }
    }
    events.during(s.client.quit()).await;
    Ok(())
}
