//! Messages handed over through the local socket (`crate::local`) to a
//! running chat, in either protocol: the chat sends them from its own
//! state, and tells the script what became of each.
//!
//! * Protocol v1 ([`tee_v1`]): a task between the connection and the
//!   front end (any of the three) sends each request through the client's
//!   handle with its own tag, learns the message's id from the `Queued`
//!   event that carries the tag (it comes before any other event about
//!   the message), and passes that message's events to the script until
//!   `stored`. The front end sees every event as before.
//! * Protocol v2 ([`V2Session::take_local`], [`V2Session::tell_local`]):
//!   the session queues the message like a typed one and passes its
//!   `sent` or `undelivered` to the script.

use std::collections::HashMap;

use blindrelay_client::{ClientHandle, Event};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::action::{Action, parse_json};
use super::v2::action::{V2Action, V2Session};
use crate::local::{Awaited, Reply, Request, only_send};
use crate::ui::machine;

/// The tag of the `n`th request (returned in its `sending` as `req`).
fn tag(n: u64) -> String {
    format!("local-socket:{n}")
}

/// Puts the local socket's requests between `events` and the front end
/// (see the module docs); the front end reads the returned receiver.
pub(crate) fn tee_v1(
    client: ClientHandle,
    mut events: mpsc::Receiver<Event>,
    mut requests: mpsc::Receiver<Request>,
) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(blindrelay_client::connection::EVENT_QUEUE);
    // A send the client refused, by tag.
    let (failed_tx, mut failed) = mpsc::channel::<(String, String)>(crate::local::MAX_CLIENTS);
    tokio::spawn(async move {
        let mut by_tag: HashMap<String, Reply> = HashMap::new();
        let mut awaited = Awaited::default();
        let mut n = 0u64;
        let mut open = true;
        loop {
            tokio::select! {
                e = events.recv() => {
                    let Some(e) = e else { return };
                    match &e {
                        Event::Queued { msg_id, tag: Some(t), .. } => {
                            if let Some(r) = by_tag.remove(t) {
                                r.say(machine(&e));
                                awaited.watch(*msg_id, r);
                            }
                        }
                        Event::Stored { msg_id, .. } => awaited.tell(msg_id, &machine(&e), true),
                        Event::Sent { msg_id, .. } | Event::Undelivered { msg_id, .. } => {
                            awaited.tell(msg_id, &machine(&e), false);
                        }
                        _ => {}
                    }
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                Some((t, why)) = failed.recv() => {
                    if let Some(r) = by_tag.remove(&t) {
                        r.say(json!({"event": "error", "text": why}));
                    }
                }
                r = requests.recv(), if open => match r {
                    None => open = false,
                    Some(r) => match recipients(&r.line) {
                        Err(v) => r.reply.say(v),
                        Ok((to, text)) => {
                            n += 1;
                            let t = tag(n);
                            by_tag.insert(t.clone(), r.reply);
                            let (client, failed_tx) = (client.clone(), failed_tx.clone());
                            tokio::spawn(async move {
                                if let Err(e) = client.send_tagged(to, text, false, Some(t.clone())).await {
                                    let _ = failed_tx.send((t, e.to_string())).await;
                                }
                            });
                        }
                    },
                },
            }
            awaited.forget_closed();
            by_tag.retain(|_, r| !r.is_closed());
        }
    });
    rx
}

/// The recipients and text of a v1 `send` request, or the error line.
fn recipients(line: &str) -> Result<(Vec<blindrelay_wire::UserName>, String), Value> {
    only_send(line)?;
    let error = |text: String| json!({"event": "error", "text": text});
    match parse_json::<Action>(line).1 {
        Ok(Action::Send { to: Some(to), text }) => {
            let to = to
                .iter()
                .map(|t| crate::user_name(t))
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(|e| error(format!("{e:#}")))?;
            Ok((to, text))
        }
        Ok(_) => Err(error(
            "a send through the local socket names its recipients (`to`)".into(),
        )),
        Err(e) => Err(error(e)),
    }
}

impl V2Session {
    /// Takes a request from the local socket: queues its message (as if
    /// typed), answers `sending`, and waits for its outcome.
    pub(crate) async fn take_local(&mut self, r: Request) {
        if let Err(v) = only_send(&r.line) {
            r.reply.say(v);
            return;
        }
        let action = match parse_json::<V2Action>(&r.line).1 {
            Ok(a @ V2Action::Send { .. }) => a,
            Ok(_) => return,
            Err(e) => {
                r.reply.say(json!({"event": "error", "text": e}));
                return;
            }
        };
        // The session's current conversation is the user's, not the
        // script's.
        let current = self.current.clone();
        let outcome = self.perform(action).await;
        self.current = current;
        match (outcome, self.queued.take()) {
            (super::action::Outcome::Json(v), Some((_, id))) => {
                r.reply.say(v);
                self.awaited.watch(id, r.reply);
            }
            (super::action::Outcome::Error(e), _) => {
                r.reply.say(json!({"event": "error", "text": e}));
            }
            _ => r
                .reply
                .say(json!({"event": "error", "text": "nothing was sent"})),
        }
    }

    /// Passes an event to the script that handed its message over, if
    /// one did.
    pub(crate) fn tell_local(&mut self, e: &blindrelay_client::v2::V2Event) {
        use blindrelay_client::v2::V2Event;
        self.awaited.forget_closed();
        if let V2Event::Sent { id, .. } | V2Event::Undelivered { id, .. } = e
            && self.awaited.waits_for(id)
        {
            let v = super::v2::show::event_json(e, &mut self.member);
            self.awaited.tell(id, &v, true);
        }
    }
}
