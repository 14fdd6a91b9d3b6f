//! The device's connection task (protocol v2): it owns the [`V2Session`]
//! (the device's MLS state, its link to the relay, its outbox) and does
//! all the work that waits for the network, so that no front end ever
//! does. A front end hands it commands ([`ToTask`]) and reads what happens
//! ([`FromTask`]): events, each command's answer (by the front end's tag),
//! the device's groups when they may have changed, the outbox's depth,
//! and the link going and coming back. As version 1's connection task is
//! to its front ends.
//!
//! One loop: a command (commands first: what a script hands over is in
//! the outbox at once), a request from the local socket, something from
//! the relay, or the time for the outbox's next message (at least every
//! [`TICK`], for the periodic work); then what the relay delivered is
//! processed and one outbox message sent. A lost link is retried every
//! [`RETRY`]; meanwhile commands that need no relay (writing into a
//! conversation) still work.

use std::time::Duration;

use blindrelay_client::ClientError;
use blindrelay_client::v2::{GroupInfo, Member, V2Event};
use blindrelay_wire::MessageId;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::action::{V2Action, V2Session};
pub(crate) use super::show::DRAIN_AT_END;
use super::show::{RETRY, TICK, event_json};
use crate::chat::action::Outcome;

/// How long a person's chat keeps sending its outbox when they leave
/// (a script's `chat --json` waits [`DRAIN_AT_END`] at the end of its
/// input).
pub(crate) const QUIT_DRAIN: Duration = Duration::from_secs(10);
/// Commands waiting for the task.
pub(crate) const COMMAND_QUEUE: usize = 64;
/// What the task said and the front end has not read yet.
pub(crate) const EVENT_QUEUE: usize = 1024;

/// What a front end asks of the task.
#[derive(Debug)]
pub(crate) enum ToTask {
    /// Carry out `action`; the answer comes back with `tag`.
    Perform {
        /// The action.
        action: V2Action,
        /// The front end's label for the answer.
        tag: u64,
    },
    /// Send what the outbox holds (for at most `within`, and only while
    /// the relay is reachable), say goodbye, and end with
    /// [`FromTask::Closed`]. What is left goes at the next start.
    Quit {
        /// How long to keep sending.
        within: Duration,
    },
}

/// What the task tells its front end.
#[derive(Debug)]
pub(crate) enum FromTask {
    /// Something happened (with the event as `chat --json` prints it).
    Event(V2Event, Value),
    /// A command's answer.
    Answer {
        /// The tag it was asked with.
        tag: u64,
        /// What it came to.
        outcome: Outcome,
        /// The group and id of a message it wrote to the outbox.
        queued: Option<(Vec<u8>, MessageId)>,
        /// The current conversation after it.
        current: Option<Vec<u8>>,
        /// Messages in the outbox after it.
        waiting: u64,
    },
    /// The device's groups, after something that may have changed them.
    Groups(Vec<GroupInfo>),
    /// Messages in the outbox, when it changed.
    Outbox(u64),
    /// The link to the relay was lost (why); it is retried.
    Lost(String),
    /// The link is back.
    Back,
    /// The task has ended; `left` messages stay in the outbox for the
    /// next start.
    Closed {
        /// Messages not sent.
        left: usize,
    },
}

/// Starts the task on `s` (connected); the front end keeps the sender and
/// reads the receiver.
pub(crate) fn spawn(s: V2Session) -> (mpsc::Sender<ToTask>, mpsc::Receiver<FromTask>) {
    let (to_tx, to_rx) = mpsc::channel(COMMAND_QUEUE);
    let (from_tx, from_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(run(s, to_rx, from_tx));
    (to_tx, from_rx)
}

/// Processes what the relay delivered within `wait`, then sends what the
/// outbox holds (at most `max` messages).
async fn step(m: &mut Member, wait: Duration, max: usize) -> Result<Vec<V2Event>, ClientError> {
    let mut ev = m.sync(wait).await?;
    ev.extend(m.flush_some(max).await?);
    Ok(ev)
}

/// Start-up work after a connection: read what waited and send what the
/// outbox holds, add this person's new devices to their groups, refresh
/// keys that are due (the last two are retried by the periodic work).
async fn start(m: &mut Member) -> Result<Vec<V2Event>, ClientError> {
    let mut ev = m.sync(Duration::from_millis(300)).await?;
    ev.extend(m.flush().await?);
    match m.adopt_own_devices().await {
        Ok(more) => ev.extend(more),
        Err(e) => tracing::warn!(error = %e, "adding this person's new devices failed"),
    }
    match m.update_due().await {
        Ok(more) => ev.extend(more),
        Err(e) => tracing::warn!(error = %e, "the due key refresh failed"),
    }
    Ok(ev)
}

/// Whether `e` may have changed the device's groups (who is in them,
/// their names, which there are).
fn changes_groups(e: &V2Event) -> bool {
    matches!(
        e,
        V2Event::Joined { .. }
            | V2Event::Changed { .. }
            | V2Event::RemovedMe { .. }
            | V2Event::Rejoined { .. }
            | V2Event::MemberRejoined { .. }
            | V2Event::CaughtUp { .. }
    )
}

/// The task's state besides the session.
struct Run {
    tx: mpsc::Sender<FromTask>,
    connected: bool,
    /// While not connected: when to try again (commands taken meanwhile
    /// do not bring it forward).
    retry_at: tokio::time::Instant,
    waiting: Option<u64>,
}

impl Run {
    /// Hands the session's events to the front end; false once it is gone.
    async fn hand_over(&mut self, s: &mut V2Session) -> bool {
        let events = std::mem::take(&mut s.events);
        // The groups first (when an event may have changed them): a
        // message of a group just joined has its conversation when it
        // arrives.
        if events.iter().any(changes_groups) && !self.groups(s).await {
            return false;
        }
        for e in events {
            s.tell_local(&e);
            let v = event_json(&e, &mut s.member);
            if self.tx.send(FromTask::Event(e, v)).await.is_err() {
                return false;
            }
        }
        let waiting = s.member.outbox_waiting().unwrap_or(0);
        if self.waiting != Some(waiting) {
            self.waiting = Some(waiting);
            return self.tx.send(FromTask::Outbox(waiting)).await.is_ok();
        }
        true
    }

    async fn groups(&mut self, s: &mut V2Session) -> bool {
        match s.member.groups() {
            Ok(g) => self.tx.send(FromTask::Groups(g)).await.is_ok(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the device's groups failed");
                true
            }
        }
    }

    async fn lost(&mut self, e: ClientError) -> bool {
        self.connected = false;
        self.retry_at = tokio::time::Instant::now() + RETRY;
        self.tx.send(FromTask::Lost(e.to_string())).await.is_ok()
    }

    /// One try at connecting again (and the start-up work after it).
    async fn reconnect(&mut self, s: &mut V2Session) -> bool {
        let cfg = s.config.clone();
        if let Err(e) = s.member.reconnect(&cfg).await {
            tracing::info!(error = %e, "the relay is still unreachable");
            return true;
        }
        match start(&mut s.member).await {
            Ok(ev) => {
                s.events.extend(ev);
                self.connected = true;
                self.tx.send(FromTask::Back).await.is_ok()
            }
            Err(e) => self.lost(e).await,
        }
    }

    /// Carries out a front end's command.
    async fn perform(&mut self, s: &mut V2Session, action: V2Action, tag: u64) -> bool {
        // A message changes no group, unless it starts a conversation.
        let ids = |s: &mut V2Session| s.member.device().group_ids().ok();
        let before = ids(s);
        let message = matches!(action, V2Action::Send { .. } | V2Action::SendToGroup { .. });
        let outcome = s.perform(action).await;
        let changed = !message || ids(s) != before;
        let waiting = s.member.outbox_waiting().unwrap_or(0);
        self.waiting = Some(waiting);
        let answer = FromTask::Answer {
            tag,
            outcome,
            queued: s.queued.take(),
            current: s.current.clone(),
            waiting,
        };
        // The groups first: a group the command made has its conversation
        // when the answer opens it.
        (!changed || self.groups(s).await) && self.tx.send(answer).await.is_ok()
    }
}

async fn run(mut s: V2Session, mut commands: mpsc::Receiver<ToTask>, tx: mpsc::Sender<FromTask>) {
    let mut r = Run {
        tx,
        connected: true,
        retry_at: tokio::time::Instant::now(),
        waiting: None,
    };
    let mut drain_for = QUIT_DRAIN;
    match start(&mut s.member).await {
        Ok(ev) => s.events.extend(ev),
        Err(e) => {
            if !r.lost(e).await {
                return;
            }
        }
    }
    loop {
        if !r.hand_over(&mut s).await {
            return;
        }
        // A turn that carried out a command sends nothing: commands come
        // first, and the outbox goes at the relay's pace on the others.
        let mut sends = 1;
        let tick = if r.connected {
            s.member.outbox_due().map_or(TICK, |d| d.min(TICK))
        } else {
            r.retry_at
                .saturating_duration_since(tokio::time::Instant::now())
        };
        let alive = tokio::select! {
            biased;
            c = commands.recv() => match c {
                Some(ToTask::Perform { action, tag }) => {
                    sends = 0;
                    r.perform(&mut s, action, tag).await
                }
                Some(ToTask::Quit { within }) => {
                    drain_for = within;
                    break;
                }
                None => break,
            },
            req = crate::local::next(&mut s.requests) => {
                s.take_local(req).await;
                true
            }
            _ = s.member.readable(), if r.connected => true,
            _ = tokio::time::sleep(tick) => true,
        };
        if !alive {
            return;
        }
        let alive = if r.connected {
            match step(&mut s.member, Duration::ZERO, sends).await {
                Ok(ev) => {
                    s.events.extend(ev);
                    true
                }
                Err(e) => r.lost(e).await,
            }
        } else if tokio::time::Instant::now() >= r.retry_at {
            r.retry_at = tokio::time::Instant::now() + RETRY;
            r.reconnect(&mut s).await
        } else {
            true
        };
        if !alive {
            return;
        }
    }
    let left = drain(&mut s, &mut r, drain_for).await;
    s.member.close().await;
    let _ = r.tx.send(FromTask::Closed { left }).await;
}

/// At the end: keeps sending the outbox until it is empty or `within`
/// has passed, while the relay is reachable; the messages left.
async fn drain(s: &mut V2Session, r: &mut Run, within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if !r.hand_over(s).await {
            return 0;
        }
        let left = s.member.outbox().map_or(0, |o| o.len());
        if left == 0 || !r.connected || tokio::time::Instant::now() >= deadline {
            return left;
        }
        match step(&mut s.member, Duration::from_millis(200), usize::MAX).await {
            Ok(ev) => s.events.extend(ev),
            Err(e) => {
                r.connected = false;
                tracing::info!(error = %e, "the relay went away while the outbox was being sent");
            }
        }
    }
}

/// The `warning` a front end shows when messages are left at the end.
pub(crate) fn left_warning(left: usize) -> Value {
    json!({"event": "warning", "text": format!(
        "{left} message(s) still in the outbox: sent at this device's next chat or send")})
}
