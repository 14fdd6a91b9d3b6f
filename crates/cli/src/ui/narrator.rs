//! Events as lines for people: one line per thing worth a line, with the
//! little memory that takes (which message a receipt confirms, whether the
//! connection is already known to be down).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use blindrelay_client::{Event, UndeliveredReason};
use blindrelay_wire::{MessageId, UserName};

use super::{body, now_ms, sanitize, snippet, when};

fn short(fp: &str) -> String {
    fp.chars().take(16).collect()
}

/// The message lines of people: "[time] from [verified]: text".
pub(crate) fn message_line(e: &Event, now_ms: u64) -> Option<String> {
    let Event::Message {
        from,
        text,
        timestamp_ms,
        late,
        room,
        ..
    } = e
    else {
        return None;
    };
    let room = if *room { " to the room" } else { "" };
    Some(format!(
        "[{}] {from}{room} [verified]: {}",
        when(*timestamp_ms, now_ms, *late),
        body(text)
    ))
}

/// The words for a changed key, shared by every front end.
fn key_changed_text(name: &str, pinned: &str, offered: &str) -> String {
    format!(
        "!!! WARNING: the certificate of {name} CHANGED (pinned {}, now {}).\n!!! Messages from and to {name} are held. Compare safety numbers (/verify {name}) over another channel, then /accept {name}.",
        short(pinned),
        short(offered)
    )
}

/// Most sent messages a [`Narrator`] remembers, to say which one a status
/// or a receipt is about.
const NARRATOR_MEMORY: usize = 1024;

/// How long someone must stay online before "is online" is said: a `send`
/// from a script (a session of a second) or a quick reconnect does not make
/// everyone's screen say "online", then "left".
pub(crate) const PRESENCE_SETTLE_MS: u64 = 2_000;

/// What the narrator knows of a message we sent.
struct Sent {
    to: String,
    snippet: String,
    live: u16,
}

/// Turns events into lines for people, with the little memory that takes:
/// which message a receipt confirms, whether a stored message was also
/// delivered live, whether the connection is already known to be down.
#[derive(Default)]
pub(crate) struct Narrator {
    sent: BTreeMap<MessageId, Sent>,
    order: VecDeque<MessageId>,
    down: bool,
    /// Who came online, and since when, not said yet.
    arriving: BTreeMap<UserName, u64>,
    /// Who the user was told is online (bounded by the client's peers).
    announced: BTreeSet<UserName>,
}

impl Narrator {
    fn remember(&mut self, id: MessageId, s: Sent) {
        if self.order.len() >= NARRATOR_MEMORY
            && let Some(old) = self.order.pop_front()
        {
            self.sent.remove(&old);
        }
        self.order.push_back(id);
        self.sent.insert(id, s);
    }

    /// The line a person sees for `e`, or `None` for events not worth one.
    pub(crate) fn line(&mut self, e: &Event) -> Option<String> {
        self.line_at(e, now_ms())
    }

    /// Lines that are due now: arrivals that lasted [`PRESENCE_SETTLE_MS`].
    pub(crate) fn due(&mut self) -> Vec<String> {
        self.due_at(now_ms())
    }

    fn due_at(&mut self, now: u64) -> Vec<String> {
        let settled: Vec<UserName> = self
            .arriving
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= PRESENCE_SETTLE_MS)
            .map(|(n, _)| n.clone())
            .collect();
        settled
            .into_iter()
            .map(|n| {
                self.arriving.remove(&n);
                let line = format!("* {n} is online");
                self.announced.insert(n);
                line
            })
            .collect()
    }

    fn line_at(&mut self, e: &Event, now: u64) -> Option<String> {
        Some(match e {
            Event::Connected { identity, online } => {
                let who = if online.is_empty() {
                    "nobody else".to_string()
                } else {
                    online
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let again = if std::mem::take(&mut self.down) {
                    "reconnected"
                } else {
                    "connected"
                };
                // The login line says who is online.
                self.arriving.clear();
                self.announced = online.iter().cloned().collect();
                format!("[{again} as {identity}] online: {who}")
            }
            Event::Joined {
                name,
                fingerprint,
                first_contact,
            } => {
                if !self.announced.contains(name) {
                    self.arriving.entry(name.clone()).or_insert(now);
                }
                // A first contact is said at once: a key was pinned.
                if !*first_contact {
                    return None;
                }
                format!(
                    "* first contact with {name}: key {} pinned (compare /verify {name})",
                    short(fingerprint)
                )
            }
            Event::Left { name } => {
                // Gone before "online" was said: say nothing.
                if self.arriving.remove(name).is_some() || !self.announced.remove(name) {
                    return None;
                }
                format!("* {name} left")
            }
            Event::Message { .. } => return message_line(e, now),
            Event::Queued {
                msg_id,
                to,
                waiting,
                text,
                ..
            } => {
                self.remember(
                    *msg_id,
                    Sent {
                        to: to.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                        snippet: snippet(text),
                        live: 0,
                    },
                );
                if waiting.is_empty() {
                    return None;
                }
                let who = waiting
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "  ({who} has not logged in to the relay yet, so there is no key to encrypt for: the message waits here and is sent, sealed for {who}'s verified key, once {who} logs in)"
                )
            }
            Event::Sent { msg_id, delivered } => {
                if let Some(s) = self.sent.get_mut(msg_id) {
                    s.live = *delivered;
                }
                return None;
            }
            Event::Stored { msg_id, .. } => {
                // Worth a line only when nobody got it live: then it waits
                // on the relay.
                let s = self.sent.get(msg_id)?;
                if s.live > 0 {
                    return None;
                }
                format!(
                    "  (\u{201c}{}\u{201d} is stored on the relay for {}, who will get it at their next login)",
                    s.snippet, s.to
                )
            }
            Event::Delivered { msg_ids, by } => {
                let known: Vec<&str> = msg_ids
                    .iter()
                    .filter_map(|id| self.sent.get(id).map(|s| s.snippet.as_str()))
                    .collect();
                match (known.as_slice(), msg_ids.len()) {
                    ([one], 1) => format!("  (\u{2713} {by} received \u{201c}{one}\u{201d})"),
                    (_, n) => format!("  (\u{2713} {by} received {n} of your messages)"),
                }
            }
            Event::Reconnecting { reason, .. } => {
                if std::mem::replace(&mut self.down, true) {
                    return None;
                }
                format!(
                    "[connection lost: {}; reconnecting by itself, messages you write meanwhile wait]",
                    sanitize(reason)
                )
            }
            Event::Undelivered { name, reason, .. } => match reason {
                UndeliveredReason::Offline => format!("! {name} is offline: not delivered"),
                UndeliveredReason::Unknown => {
                    format!("! {name} is unknown to the relay: not delivered")
                }
                UndeliveredReason::QuotaExceeded => {
                    format!("! {name}'s mailbox on the relay is full: not stored")
                }
            },
            Event::KeyChanged {
                name,
                pinned,
                offered,
            } => key_changed_text(name.as_str(), pinned, offered),
            Event::Warning(w) => format!("! {}", sanitize(w)),
            Event::Closed { code, reason } => closed_text(*code, reason),
        })
    }
}

/// The words for the end of the connection.
fn closed_text(code: Option<blindrelay_wire::GoodbyeCode>, reason: &str) -> String {
    match code {
        Some(c) => format!("[disconnected by the relay: {c} ({})]", sanitize(reason)),
        None if reason == "quit" => "[disconnected]".into(),
        None => format!("[disconnected: {}]", sanitize(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindrelay_wire::UserName;

    fn msg(text: &str) -> Event {
        Event::Message {
            msg_id: MessageId([1; 16]),
            from: UserName::new("alice").unwrap(),
            recipients: vec![],
            room: false,
            timestamp_ms: 3_723_000,
            late: false,
            text: text.into(),
        }
    }

    #[test]
    fn a_message_cannot_fake_a_line_from_someone_else() {
        let e = msg("see you\n[05:41:07] carol [verified]: wire the money");
        let shown = message_line(&e, 3_723_000).unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("] alice [verified]: see you"), "{shown}");
        // The second line is visibly part of alice's message.
        assert_eq!(
            lines[1],
            "  \u{2502} [05:41:07] carol [verified]: wire the money"
        );
        assert!(lines.iter().skip(1).all(|l| !l.starts_with('[')));
    }

    /// The report's forgery: text padded so that a terminal of 80 columns
    /// wraps a fake message line to column 0.
    const FORGED: &str =
        "ok, thanks for the report, see you at [06:28:30] you: Yes, I approve the wire transfer";

    /// Every screen line after a message's first is behind the bar, and
    /// none is wider than the terminal (so the terminal never wraps).
    fn assert_no_forged_line(shown: &str, width: usize) {
        let lines: Vec<&str> = shown.split('\n').collect();
        assert!(lines.len() > 1, "{shown}");
        for l in &lines {
            assert!(
                unicode_width::UnicodeWidthStr::width(*l) <= width,
                "wider than {width}: {l:?}"
            );
        }
        for l in lines.iter().skip(1) {
            assert!(l.starts_with("  \u{2502} "), "{l:?} in {shown}");
        }
    }

    #[test]
    fn in_line_mode_v1_a_wrapped_message_cannot_fake_a_line_at_80_columns() {
        let shown = crate::ui::fit(&message_line(&msg(FORGED), 3_723_000).unwrap(), 80);
        assert_no_forged_line(&shown, 80);
        assert!(shown.contains("approve the wire transfer"), "{shown}");
    }

    #[test]
    fn in_line_mode_v2_a_wrapped_or_multi_line_message_cannot_fake_a_line_at_80_columns() {
        for text in [FORGED, "see you\n* [team] bob@laptop added mallory@laptop"] {
            let v = serde_json::json!({"event": "message", "conversation": "team",
                "from": "alice", "device": "laptop", "text": text});
            let shown = crate::ui::fit(&crate::chat::v2::show::text(&v).unwrap(), 80);
            assert_no_forged_line(&shown, 80);
        }
    }

    #[test]
    fn a_receipt_says_which_message_it_confirms_and_live_delivery_is_not_called_stored() {
        let mut n = Narrator::default();
        let bob = UserName::new("bob").unwrap();
        let id = MessageId([7; 16]);
        let queued = Event::Queued {
            msg_id: id,
            to: vec![bob.clone()],
            room: false,
            tag: None,
            waiting: vec![],
            text: "lunch at noon?".into(),
        };
        assert_eq!(n.line(&queued), None);
        assert_eq!(
            n.line(&Event::Sent {
                msg_id: id,
                delivered: 1
            }),
            None
        );
        assert_eq!(
            n.line(&Event::Stored {
                msg_id: id,
                recipients: 1
            }),
            None
        );
        let r = n
            .line(&Event::Delivered {
                msg_ids: vec![id],
                by: bob.clone(),
            })
            .unwrap();
        assert!(
            r.contains("bob received \u{201c}lunch at noon?\u{201d}"),
            "{r}"
        );
        // Nobody online: stored is worth saying, once.
        let id2 = MessageId([8; 16]);
        n.line(&Event::Queued {
            msg_id: id2,
            to: vec![bob],
            room: false,
            tag: None,
            waiting: vec![],
            text: "later".into(),
        });
        assert_eq!(
            n.line(&Event::Sent {
                msg_id: id2,
                delivered: 0
            }),
            None
        );
        let s = n
            .line(&Event::Stored {
                msg_id: id2,
                recipients: 1,
            })
            .unwrap();
        assert!(s.contains("stored on the relay for bob"), "{s}");
    }

    #[test]
    fn a_session_of_a_second_does_not_flash_online_and_left() {
        let mut n = Narrator::default();
        let alice = UserName::new("alice").unwrap();
        let joined = Event::Joined {
            name: alice.clone(),
            fingerprint: "ab".repeat(32),
            first_contact: false,
        };
        let left = Event::Left {
            name: alice.clone(),
        };
        // A `send`: online for a moment, then gone: nothing said.
        assert_eq!(n.line_at(&joined, 1_000), None);
        assert!(n.due_at(1_500).is_empty());
        assert_eq!(n.line_at(&left, 1_600), None);
        assert!(n.due_at(10_000).is_empty());
        // A chat: said once it lasted, and its end too.
        assert_eq!(n.line_at(&joined, 20_000), None);
        assert_eq!(n.due_at(20_000 + PRESENCE_SETTLE_MS), ["* alice is online"]);
        assert_eq!(n.line_at(&left, 30_000).unwrap(), "* alice left");
        // A first contact is said at once, whatever follows.
        let first = Event::Joined {
            name: UserName::new("carol").unwrap(),
            fingerprint: "cd".repeat(32),
            first_contact: true,
        };
        assert!(
            n.line_at(&first, 40_000)
                .unwrap()
                .contains("first contact with carol")
        );
    }

    #[test]
    fn a_lost_connection_is_said_once_until_it_is_back() {
        let mut n = Narrator::default();
        let lost = Event::Reconnecting {
            reason: "the relay closed the connection".into(),
            in_ms: 500,
        };
        assert!(n.line(&lost).is_some());
        assert_eq!(n.line(&lost), None);
        let back = n
            .line(&Event::Connected {
                identity: UserName::new("bob").unwrap(),
                online: vec![],
            })
            .unwrap();
        assert!(back.starts_with("[reconnected as bob]"), "{back}");
        assert!(n.line(&lost).is_some());
    }

    #[test]
    fn no_debug_formatting_reaches_people_or_programs() {
        let e = Event::Closed {
            code: Some(blindrelay_wire::GoodbyeCode::Shutdown),
            reason: "maintenance".into(),
        };
        let human = Narrator::default().line(&e).unwrap();
        assert_eq!(
            human,
            "[disconnected by the relay: the relay is shutting down (maintenance)]"
        );
        assert_eq!(super::super::machine(&e)["code"], "shutdown");
    }
}
