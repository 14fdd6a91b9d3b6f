//! Carrying out what the user interface asked ([`Command`]) on the
//! client core, connected or not: the connection task's only entry into
//! user intentions.

use blindrelay_net::unix_ms;
use blindrelay_wire::Message;
use tokio::sync::oneshot;

use crate::core::ClientCore;
use crate::event::Event;
use crate::handle::Command;

/// What performing a command asks of the loop.
pub(crate) enum Performed {
    /// Events to show, then frames to write (online only).
    Done(Vec<Event>, Vec<Message>),
    Quit(oneshot::Sender<()>),
}

impl Performed {
    fn nothing() -> Self {
        Self::Done(Vec::new(), Vec::new())
    }
}

/// Whether a message may leave now.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    /// Not connected: to the outbox, it leaves after the next login.
    Offline,
    /// Connected, but the send window is full: queued to leave when it has
    /// room (commands are always answered, whatever the relay's budget).
    Later,
    /// Sealed and written now.
    Now,
}

/// The one place user commands are carried out, connected or not.
pub(crate) fn perform(core: &mut ClientCore, cmd: Command, sending: Sending) -> Performed {
    let online = sending != Sending::Offline;
    match cmd {
        Command::Send {
            to,
            text,
            room,
            tag,
            reply,
        } => {
            let queued = match sending {
                Sending::Now => core.send_text(&to, &text, room, unix_ms()),
                Sending::Later => core.send_later(&to, &text, room, unix_ms()),
                Sending::Offline => {
                    core.queue_text(&to, &text, room, unix_ms())
                        .map(|m| crate::core::Queued {
                            msg_id: m.msg_id,
                            frames: Vec::new(),
                            waiting: core.waiting_for(&m),
                        })
                }
            };
            // Written or not, it is in the outbox: report the id, and
            // announce it before anything else can be said about it.
            match queued {
                Ok(q) => {
                    let _ = reply.send(Ok(q.msg_id));
                    let event = Event::Queued {
                        msg_id: q.msg_id,
                        to,
                        room,
                        tag,
                        waiting: q.waiting,
                        text,
                    };
                    return Performed::Done(vec![event], q.frames);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        Command::Online(reply) => {
            let _ = reply.send(if online { core.online() } else { Vec::new() });
        }
        Command::Peers(reply) => {
            let _ = reply.send(core.peers());
        }
        Command::SafetyNumber(n, reply) => {
            let _ = reply.send(core.safety_number(&n));
        }
        Command::Accept(n, reply) => match core.accept_key(&n, unix_ms()) {
            Ok((fp, step)) => {
                let _ = reply.send(Ok(fp));
                return Performed::Done(step.events, step.frames);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        },
        Command::History(n, reply) => {
            let _ = reply.send(core.history(n));
        }
        Command::OutboxWaiting(reply) => {
            let _ = reply.send(core.outbox_waiting());
        }
        Command::Quit(done) => return Performed::Quit(done),
    }
    Performed::nothing()
}
