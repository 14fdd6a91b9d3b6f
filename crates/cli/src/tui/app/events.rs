//! What client events do to the [`App`]: messages into their
//! conversations, statuses onto the messages they concern, presence, key
//! changes and warnings.

use blindrelay_client::Event;
use blindrelay_wire::MessageId;

use super::{App, ConvKey, Entry, Link, Notification, Status, system};
use crate::ui::snippet;

impl App {
    pub(super) fn set_status(&mut self, id: &MessageId, status: Status) {
        let Some(key) = self.ours.get(id).cloned() else {
            return;
        };
        if let Some(c) = self.convs.get_mut(&key)
            && let Some(e) = c
                .entries
                .iter_mut()
                .rev()
                .find(|e| e.id.as_ref() == Some(id))
            && (e.status as u8) < (status as u8)
        {
            e.status = status;
        }
    }

    /// Takes in one client event; returns a notification if one is due.
    pub(crate) fn on_event(&mut self, e: Event) -> Option<Notification> {
        match e {
            Event::Connected { online, .. } => {
                self.link = Link::Connected;
                for p in self.people.values_mut() {
                    p.online = false;
                }
                for n in online {
                    let p = self.people.entry(n.clone()).or_default();
                    p.online = true;
                    p.verified = true;
                    self.conv(ConvKey::Person(n));
                }
            }
            Event::Joined { name, .. } => {
                let p = self.people.entry(name.clone()).or_default();
                p.online = true;
                p.verified = true;
                p.key_changed = false;
                self.conv(ConvKey::Person(name));
            }
            Event::Left { name } => {
                // Only someone listed before (the relay cannot grow the
                // list by saying that strangers left).
                if let Some(p) = self.people.get_mut(&name) {
                    p.online = false;
                }
            }
            Event::Message {
                msg_id,
                from,
                room,
                timestamp_ms,
                late,
                text,
                ..
            } => {
                if !self.first_sight(from.to_string(), msg_id) {
                    return None;
                }
                let key = if room {
                    ConvKey::Room
                } else {
                    ConvKey::Person(from.clone())
                };
                // Before the user has pressed a key, a message opens its
                // conversation if the open one is empty (the first message
                // after start is where the user wants to be).
                let open_is_empty = self
                    .convs
                    .get(&self.open)
                    .is_none_or(|c| c.entries.is_empty());
                if !self.touched && open_is_empty {
                    self.open = key.clone();
                }
                let open = key == self.open;
                let c = self.conv(key);
                c.push(Entry {
                    id: Some(msg_id),
                    ts_ms: timestamp_ms,
                    from: from.to_string(),
                    text,
                    late,
                    status: Status::None,
                });
                if !open {
                    c.unread += 1;
                    return self.notify.then(|| Notification {
                        from: from.to_string(),
                    });
                }
            }
            Event::Queued {
                msg_id,
                to,
                room,
                waiting,
                text,
                ..
            } => {
                let key = ConvKey::from_recipients(&to, room);
                let me = self.me.to_string();
                self.first_sight(me, msg_id);
                self.ours.insert(msg_id, key.clone());
                self.conv(key.clone()).push(Entry {
                    id: Some(msg_id),
                    ts_ms: crate::ui::now_ms(),
                    from: "you".into(),
                    text,
                    late: false,
                    status: if waiting.is_empty() {
                        Status::Sending
                    } else {
                        Status::WaitingForKey
                    },
                });
                if !waiting.is_empty() {
                    let who = waiting
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.conv(key).push(system(format!(
                        "no key for {who} yet: the message is kept and sent, sealed for {who}'s verified key, once {who} logs in"
                    )));
                }
            }
            Event::Sent { msg_id, .. } | Event::Stored { msg_id, .. } => {
                self.set_status(&msg_id, Status::AtRelay);
            }
            Event::Delivered { msg_ids, .. } => {
                for id in msg_ids {
                    self.set_status(&id, Status::Delivered);
                }
            }
            Event::Reconnecting { reason, .. } => {
                self.link = Link::Lost(crate::ui::sanitize(&reason));
            }
            Event::Undelivered { msg_id, name, .. } => {
                let line = format!(
                    "{name} did not get your message{}",
                    self.entry_snippet(&msg_id)
                        .map(|s| format!(" \u{201c}{s}\u{201d}"))
                        .unwrap_or_default()
                );
                match self.ours.get(&msg_id).cloned() {
                    Some(key) => self.conv(key).push(system(line)),
                    None => self.say(line),
                }
            }
            Event::KeyChanged { name, .. } => {
                let p = self.people.entry(name.clone()).or_default();
                p.key_changed = true;
                self.conv(ConvKey::Person(name.clone())).push(system(format!(
                    "{name}'s certificate CHANGED: their messages are held and nothing is sent to them until you compare safety numbers (/verify {name}) and accept"
                )));
            }
            Event::Warning(w) => self.say(format!("! {}", crate::ui::sanitize(&w))),
            Event::Closed { .. } => {}
        }
        None
    }

    fn entry_snippet(&self, id: &MessageId) -> Option<String> {
        let key = self.ours.get(id)?;
        self.convs
            .get(key)?
            .entries
            .iter()
            .rev()
            .find(|e| e.id.as_ref() == Some(id))
            .map(|e| snippet(&e.text))
    }
}
