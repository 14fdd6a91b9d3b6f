//! The full-screen client on a device (protocol v2): its conversations
//! are the MLS groups the device is in, each listed with its members and
//! devices; what arrives lands in its group; what is typed goes to the
//! open group or is a v2 command.

use blindrelay_client::HistoryEntry;
use blindrelay_client::v2::{GroupInfo, V2Event};
use blindrelay_wire::MessageId;

use super::{App, ConvKey, Entry, Intent, Notification, Status, system};
use crate::chat::v2::action::{V2Action, label, parse_line};

/// The label of the placeholder conversation before the first group.
pub(crate) const NO_CONVERSATION: &str = "(no conversation yet)";

impl App {
    /// The conversation of group `id`, if the device is in it.
    pub(crate) fn mls_key(&self, id: &[u8]) -> Option<ConvKey> {
        self.convs
            .keys()
            .find(|k| matches!(k, ConvKey::Mls(_, g) if g == id))
            .cloned()
    }

    /// The device's groups now: new ones are listed, renamed ones keep
    /// their conversation under the new name, members are refreshed.
    pub(crate) fn set_groups(&mut self, groups: &[GroupInfo]) {
        let me = self.me.to_string();
        // The placeholder shown before the first group goes with it.
        if !groups.is_empty() {
            let placeholder = ConvKey::Mls(NO_CONVERSATION.into(), Vec::new());
            if let Some(c) = self.convs.remove(&placeholder)
                && self.open == placeholder
                && let Some(g) = groups.first()
            {
                let key = ConvKey::Mls(label(g, &me), g.id.clone());
                self.convs.entry(key.clone()).or_insert(c);
                self.open = key;
            }
        }
        for g in groups {
            let key = ConvKey::Mls(label(g, &me), g.id.clone());
            match self.mls_key(&g.id) {
                Some(old) if old != key => {
                    let conv = self.convs.remove(&old);
                    if let Some(c) = conv {
                        self.convs.insert(key.clone(), c);
                    }
                    if self.open == old {
                        self.open = key;
                    }
                }
                Some(_) => {}
                None => {
                    self.conv(key);
                }
            }
            self.members.insert(
                g.id.clone(),
                g.members.iter().map(|(u, d)| format!("{u}@{d}")).collect(),
            );
        }
    }

    /// Something that happened in a group.
    pub(crate) fn on_v2(&mut self, e: V2Event) -> Option<Notification> {
        let id = match &e {
            V2Event::Message { group, .. }
            | V2Event::Sent { group, .. }
            | V2Event::Delivered { group, .. }
            | V2Event::Undelivered { group, .. }
            | V2Event::Joined { group }
            | V2Event::Changed { group, .. }
            | V2Event::RemovedMe { group }
            | V2Event::Refused { group }
            | V2Event::Behind { group, .. }
            | V2Event::CaughtUp { group, .. }
            | V2Event::Forked { group, .. }
            | V2Event::BadCommit { group, .. }
            | V2Event::TakeoverRefused { group }
            | V2Event::Rejoined { group, .. }
            | V2Event::RejoinBlocked { group, .. }
            | V2Event::MemberRejoined { group, .. } => group.clone(),
        };
        let key = self.mls_key(&id);
        let dev = |(u, d): &(String, String)| format!("{u}@{d}");
        match e {
            V2Event::Message {
                from,
                id: msg_id,
                written_ms,
                late,
                text,
                ..
            } => {
                let key = key?;
                let sender = dev(&from);
                if !self.first_sight(sender.clone(), msg_id) {
                    return None;
                }
                let entry = Entry {
                    id: Some(msg_id),
                    ts_ms: written_ms,
                    from: sender.clone(),
                    text,
                    late,
                    status: Status::None,
                };
                let open_is_empty = self
                    .convs
                    .get(&self.open)
                    .is_none_or(|c| c.entries.is_empty());
                if !self.touched && open_is_empty {
                    self.open = key.clone();
                }
                let is_open = self.open == key;
                let c = self.conv(key);
                c.push(entry);
                if !is_open {
                    c.unread += 1;
                    return self.notify.then_some(Notification { from: sender });
                }
            }
            V2Event::Sent { id: msg_id, .. } => self.set_status(&msg_id, Status::AtRelay),
            V2Event::Delivered { ids, by, .. } => {
                // Another person's device, not one of this person's own.
                if by.0 != self.me.as_str() {
                    for msg_id in ids {
                        self.set_status(&msg_id, Status::Delivered);
                    }
                }
            }
            V2Event::Undelivered { why, .. } => self.note_in(
                key,
                format!("warning: a message of yours was not delivered: {}", why.describe()),
            ),
            V2Event::Joined { .. } => {
                if let Some(k) = key {
                    self.conv(k).push(system("you are in this conversation (protocol v2, MLS)".into()));
                }
            }
            V2Event::Changed {
                by,
                added,
                removed,
                renamed,
                ..
            } => {
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("added {}", added.iter().map(dev).collect::<Vec<_>>().join(", ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("removed {}", removed.iter().map(dev).collect::<Vec<_>>().join(", ")));
                }
                if let Some(n) = renamed {
                    parts.push(format!("renamed it {n}"));
                }
                if parts.is_empty() {
                    parts.push("refreshed their keys".into());
                }
                self.note_in(key, format!("{} {}", dev(&by), parts.join("; ")));
            }
            V2Event::RemovedMe { .. } => {
                let name = key.as_ref().map(ConvKey::label).unwrap_or_default();
                if let Some(k) = key {
                    self.convs.remove(&k);
                    if self.open == k {
                        self.open = self.convs.keys().next().cloned().unwrap_or(ConvKey::Room);
                    }
                }
                self.members.remove(&id);
                self.say(format!("you were removed from {name}; it is gone from this device"));
            }
            V2Event::Refused { .. } => self.say(
                "warning: a delivery failed MLS's checks (a replay, a forgery or a commit that does not apply) and was dropped",
            ),
            V2Event::Behind { at, seen, .. } => self.note_in(
                key,
                format!(
                    "warning: {} (this device: epoch {at}, messages from epoch {seen})",
                    crate::chat::v2::show::BEHIND_TEXT
                ),
            ),
            V2Event::CaughtUp { at, .. } => self.note_in(
                key,
                format!("the missing changes arrived; up to date (epoch {at})"),
            ),
            V2Event::Forked { epoch, .. } => self.note_in(
                key,
                format!("WARNING (epoch {epoch}): {}", crate::chat::v2::show::FORK_TEXT),
            ),
            V2Event::BadCommit { by, .. } => self.note_in(
                key,
                format!("WARNING: {} {}", dev(&by), crate::chat::v2::show::BAD_COMMIT_TEXT),
            ),
            V2Event::TakeoverRefused { .. } => {
                self.say(format!("warning: {}", crate::chat::v2::show::TAKEOVER_TEXT));
            }
            V2Event::Rejoined { at, unread, .. } => self.note_in(
                key,
                format!(
                    "warning: {} ({unread} unread; epoch {at})",
                    crate::chat::v2::show::REJOINED_TEXT
                ),
            ),
            V2Event::RejoinBlocked { why, .. } => self.note_in(
                key,
                format!("warning: {}", crate::chat::v2::show::rejoin_blocked_text(why)),
            ),
            V2Event::MemberRejoined { who, .. } => {
                self.note_in(key, format!("{} re-joined after missing a change", dev(&who)));
            }
        }
        None
    }

    /// A notice in the group's conversation, or the notice area when the
    /// group has none here.
    fn note_in(&mut self, key: Option<ConvKey>, line: String) {
        match key {
            Some(k) => self.conv(k).push(system(line)),
            None => self.say(line),
        }
    }

    /// A message this device wrote to group `group`, in the outbox until
    /// [`V2Event::Sent`] marks it.
    pub(crate) fn queued_v2(&mut self, group: &[u8], msg_id: MessageId, text: String) {
        if let Some(k) = self.mls_key(group) {
            self.ours.insert(msg_id, k.clone());
            self.first_sight(self.me.to_string(), msg_id);
            self.conv(k).push(Entry {
                id: Some(msg_id),
                ts_ms: crate::ui::now_ms(),
                from: "you".into(),
                text,
                late: false,
                status: Status::Sending,
            });
        }
    }

    /// The device's history, oldest first, as read at the start: each
    /// message in its group's conversation (groups this device is no
    /// longer in are left out).
    pub(crate) fn load_history_v2(&mut self, history: Vec<HistoryEntry>) {
        for h in history {
            let Some(key) = h.group.as_deref().and_then(|g| self.mls_key(g)) else {
                continue;
            };
            let from = if h.outgoing {
                self.me.to_string()
            } else {
                h.peer.clone()
            };
            if !self.first_sight(from, h.msg_id) {
                continue;
            }
            self.conv(key).push(Entry {
                id: Some(h.msg_id),
                ts_ms: h.ts_ms,
                from: if h.outgoing { "you".into() } else { h.peer },
                text: h.text,
                late: false,
                status: Status::None,
            });
        }
    }

    /// Enter in a v2 client: a message to the open group, or a command.
    pub(crate) fn submit_v2(&mut self, text: String) -> Intent {
        let is_command = text.starts_with('/') && !text.starts_with("//");
        if !is_command {
            let text = match text.strip_prefix("//") {
                Some(rest) => format!("/{rest}"),
                None => text,
            };
            if text.trim().is_empty() {
                return Intent::None;
            }
            return match &self.open {
                ConvKey::Mls(_, id) => Intent::PerformV2(V2Action::SendToGroup {
                    id: id.clone(),
                    text,
                }),
                _ => {
                    self.say("no conversation: /msg NAME TEXT or /group create GROUP NAME..");
                    Intent::None
                }
            };
        }
        match parse_line(&text) {
            Ok(None) => Intent::None,
            Ok(Some(V2Action::Quit)) => Intent::Quit,
            Ok(Some(V2Action::Help)) => {
                self.help();
                Intent::None
            }
            Ok(Some(V2Action::Group { name })) => {
                let key = self
                    .convs
                    .keys()
                    .find(|k| matches!(k, ConvKey::Mls(l, _) if *l == name))
                    .cloned();
                match key {
                    Some(k) => {
                        self.touched = true;
                        self.open_conv(k);
                    }
                    None => self.say(format!("no group {name:?} here: /groups lists yours")),
                }
                Intent::None
            }
            Ok(Some(a)) => Intent::PerformV2(a),
            Err(e) => {
                self.say(format!("error: {e}"));
                Intent::None
            }
        }
    }
}
