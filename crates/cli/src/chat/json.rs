//! `chat --json`: one JSON command per line on stdin, one JSON event per
//! line on stdout (schema in README). A command may carry `"req"`, which
//! comes back in its answer (`error`, `who`, ...) and in the `sending`
//! event of the message it queued.

use anyhow::Result;
use blindrelay_client::Event;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::action::{Outcome, Session, parse_json};
use crate::ui::machine;

/// How long leaving waits for the goodbye to be written.
const QUIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Prints events as they come, in their own task, so that a command
/// waiting for the connection (backpressure) never stops event delivery.
/// The returned receiver fires when the connection has ended.
fn spawn_event_printer(mut events: mpsc::Receiver<Event>) -> tokio::sync::oneshot::Receiver<()> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            let closed = matches!(e, Event::Closed { .. });
            println!("{}", machine(&e));
            if closed {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    done_rx
}

fn with_req(mut v: serde_json::Value, req: &Option<String>) -> serde_json::Value {
    if let (Some(r), Some(o)) = (req, v.as_object_mut()) {
        o.insert("req".into(), json!(r));
    }
    v
}

pub(crate) async fn run(mut s: Session, events: mpsc::Receiver<Event>) -> Result<()> {
    let mut done = spawn_event_printer(events);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut gate = super::gate::Gate::default();
    loop {
        let (read, said) = gate.check(s.client.outbox_waiting().await.unwrap_or(0));
        if let Some(v) = said {
            println!("{v}");
        }
        tokio::select! {
            _ = &mut done => return Ok(()),
            _ = tokio::time::sleep(super::gate::RECHECK), if !read => {}
            l = lines.next_line(), if read => match l {
                Ok(Some(l)) if l.trim().is_empty() => {}
                Ok(Some(l)) => {
                    let (req, action) = parse_json::<super::action::Action>(&l);
                    let out = match action {
                        Ok(a) => s.perform(a, req.clone()).await,
                        Err(e) => Outcome::Error(e),
                    };
                    match out {
                        Outcome::Quit => break,
                        Outcome::Nothing => {}
                        Outcome::Json(v) => println!("{}", with_req(v, &req)),
                        Outcome::Info(i) => println!("{}", with_req(json!({"event": "info", "text": i}), &req)),
                        Outcome::Error(e) => println!("{}", with_req(json!({"event": "error", "text": e}), &req)),
                    }
                }
                // End of input: leave, as after a quit command.
                Ok(None) | Err(_) => break,
            },
        }
    }
    s.client.quit().await;
    let _ = tokio::time::timeout(QUIT_WAIT, &mut done).await;
    Ok(())
}
