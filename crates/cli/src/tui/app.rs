//! The full-screen client's state and what keys and events do to it. No
//! terminal and no network here: [`super::view`] draws an [`App`], and
//! [`super`] feeds it terminal keys and client events and carries out the
//! [`Intent`]s it returns, so everything here is tested directly.

use std::collections::{BTreeMap, HashSet};

use blindrelay_client::{HistoryEntry, PeerInfo};
use blindrelay_wire::{MessageId, UserName};

use super::editor::Editor;
use crate::chat::action::Action;

/// Messages kept per conversation on screen (the oldest go first); the
/// local history keeps at most as many in all.
pub(crate) const MAX_ENTRIES: usize = blindrelay_client::store::MAX_HISTORY_ENTRIES as usize;
/// Messages remembered as shown; past this the memory starts again (at
/// worst a message is shown twice, never hidden).
pub(crate) const MAX_SEEN: usize = 100_000;
/// Search results listed at most.
pub(crate) const MAX_HITS: usize = 200;

/// Whom a conversation is with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ConvKey {
    /// Everyone online (`/all`).
    Room,
    /// One person.
    Person(UserName),
    /// Several people (a message we sent to more than one).
    Group(Vec<UserName>),
    /// Protocol v2: an MLS group (its label, then its id).
    Mls(String, Vec<u8>),
}

impl ConvKey {
    /// The conversation's name in the list.
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Room => "# room".into(),
            Self::Person(n) => n.to_string(),
            Self::Group(ns) => ns.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
            Self::Mls(label, _) => label.clone(),
        }
    }

    fn from_recipients(names: &[UserName], room: bool) -> Self {
        match (room, names) {
            (true, _) => Self::Room,
            (false, [one]) => Self::Person(one.clone()),
            (false, many) => {
                let mut v = many.to_vec();
                v.sort();
                v.dedup();
                Self::Group(v)
            }
        }
    }
}

/// Where a message we sent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Not ours, or from the history.
    None,
    /// Waiting for a recipient's first key.
    WaitingForKey,
    /// In the outbox, not yet accepted by the relay.
    Sending,
    /// The relay has it (accepted live or stored).
    AtRelay,
    /// A recipient confirmed it end to end.
    Delivered,
}

/// One line of a conversation.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: Option<MessageId>,
    pub ts_ms: u64,
    /// Sender's name, `you`, or empty for a line from the client itself.
    pub from: String,
    pub text: String,
    pub late: bool,
    pub status: Status,
}

impl Entry {
    pub(crate) fn is_system(&self) -> bool {
        self.from.is_empty()
    }
}

/// A conversation and how it is shown.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub entries: Vec<Entry>,
    pub unread: usize,
    /// Screen lines scrolled up from the newest.
    pub scroll: usize,
    /// A message to bring into view (from search), highlighted.
    pub focus: Option<usize>,
}

impl Conversation {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            unread: 0,
            scroll: 0,
            focus: None,
        }
    }

    fn push(&mut self, e: Entry) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.remove(0);
            self.focus = self.focus.and_then(|f| f.checked_sub(1));
        }
        self.entries.push(e);
    }
}

/// What the client knows of a person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Presence {
    pub online: bool,
    pub verified: bool,
    pub key_changed: bool,
}

/// The connection as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    Connecting,
    Connected,
    Lost(String),
}

/// A search over the whole local history.
#[derive(Debug, Default, Clone)]
pub(crate) struct Search {
    pub query: Editor,
    /// (conversation, entry), newest first.
    pub hits: Vec<(ConvKey, usize)>,
    pub selected: usize,
}

/// A window over the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dialog {
    pub title: String,
    pub text: String,
    /// The safety number of a changed key is shown: typing
    /// [`ACCEPT_WORD`] and Enter accepts it.
    pub accept: Option<UserName>,
    /// What was typed in the window so far.
    pub typed: String,
}

/// What the user types to accept a changed key.
pub(crate) const ACCEPT_WORD: &str = "accept";

/// What the keyboard is doing.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    Normal,
    Search(Search),
    Dialog(Dialog),
}

/// What the app asks its loop to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Nothing beyond redrawing.
    None,
    /// Carry out an action of the client.
    Perform(Action),
    /// Look up the safety number with this person and show it.
    Verify(UserName),
    /// Protocol v2: carry out an action of the device.
    PerformV2(crate::chat::v2::action::V2Action),
    /// Leave.
    Quit,
}

/// A notification for a message in a conversation that is not open.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Notification {
    /// Who wrote (never the text: a notification can be seen by others).
    pub from: String,
}

/// The full-screen client's state.
pub(crate) struct App {
    pub me: UserName,
    pub server: String,
    pub convs: BTreeMap<ConvKey, Conversation>,
    pub open: ConvKey,
    pub people: BTreeMap<UserName, Presence>,
    pub editor: Editor,
    pub mode: Mode,
    pub link: Link,
    pub notify: bool,
    /// The user has pressed a key: from then on only they change which
    /// conversation is open.
    pub touched: bool,
    /// (sender, id) of the messages shown, so the same message is never
    /// shown twice; keyed as the replay cache is, so that one sender cannot
    /// hide another's message by reusing its id. Bounded by [`MAX_SEEN`].
    seen: HashSet<(String, MessageId)>,
    /// Where each message we sent is shown.
    ours: BTreeMap<MessageId, ConvKey>,
    /// Protocol v2 (a device): conversations are MLS groups.
    pub v2: bool,
    /// Protocol v2: each group's members (`person@device`), by group id.
    pub members: BTreeMap<Vec<u8>, Vec<String>>,
}

/// The keys, for the help window and README.
pub(crate) const KEYS: &str = "\
Enter        send (or run a /command)
Alt-Enter    new line in the message (a paste keeps its lines)
Tab, S-Tab   next, previous conversation (Ctrl-N, Ctrl-P too)
PgUp, PgDn   scroll the conversation (its whole local history)
Ctrl-F       search all conversations; Enter opens the message
F2           notifications on or off
F1           this help
Esc          close a window or the search
Ctrl-C       leave (Ctrl-D too, on an empty line)";

impl App {
    pub(crate) fn new(me: UserName, server: String, notify: bool) -> Self {
        let mut convs = BTreeMap::new();
        convs.insert(ConvKey::Room, Conversation::new());
        Self {
            me,
            server,
            convs,
            open: ConvKey::Room,
            people: BTreeMap::new(),
            editor: Editor::default(),
            mode: Mode::Normal,
            link: Link::Connecting,
            notify,
            touched: false,
            seen: HashSet::new(),
            ours: BTreeMap::new(),
            v2: false,
            members: BTreeMap::new(),
        }
    }

    fn conv(&mut self, key: ConvKey) -> &mut Conversation {
        self.convs.entry(key).or_insert_with(Conversation::new)
    }

    /// Opens `key` (creating it) and clears its unread count.
    pub(crate) fn open_conv(&mut self, key: ConvKey) {
        self.conv(key.clone()).unread = 0;
        self.open = key;
    }

    /// Records (sender, id) as shown; false if it was already.
    fn first_sight(&mut self, sender: String, id: MessageId) -> bool {
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert((sender, id))
    }

    /// A line from the client itself in the open conversation.
    pub(crate) fn say(&mut self, text: impl Into<String>) {
        let e = Entry {
            id: None,
            ts_ms: crate::ui::now_ms(),
            from: String::new(),
            text: text.into(),
            late: false,
            status: Status::None,
        };
        let key = self.open.clone();
        self.conv(key).push(e);
    }

    /// The local history, oldest first, as read at the start.
    pub(crate) fn load_history(&mut self, history: Vec<HistoryEntry>) {
        for h in history {
            let sender = if h.outgoing {
                self.me.to_string()
            } else {
                h.peer.clone()
            };
            if !self.first_sight(sender, h.msg_id) {
                continue;
            }
            let names: Vec<UserName> = h
                .peer
                .split(',')
                .filter_map(|n| UserName::new(n).ok())
                .collect();
            let key = if h.outgoing {
                ConvKey::from_recipients(&names, h.room)
            } else if h.room {
                ConvKey::Room
            } else {
                match names.first() {
                    Some(n) => ConvKey::Person(n.clone()),
                    None => continue,
                }
            };
            let from = if h.outgoing {
                "you".into()
            } else {
                h.peer.clone()
            };
            self.conv(key).push(Entry {
                id: Some(h.msg_id),
                ts_ms: h.ts_ms,
                from,
                text: h.text,
                late: false,
                status: Status::None,
            });
        }
    }

    /// Everyone the relay has listed.
    pub(crate) fn set_people(&mut self, people: Vec<PeerInfo>) {
        for p in people {
            self.people.insert(
                p.name.clone(),
                Presence {
                    online: p.online,
                    verified: p.verified,
                    key_changed: p.key_changed,
                },
            );
            self.conv(ConvKey::Person(p.name));
        }
    }

    /// People whose changed key awaits the user.
    pub(crate) fn key_changes(&self) -> Vec<&UserName> {
        self.people
            .iter()
            .filter(|(_, p)| p.key_changed)
            .map(|(n, _)| n)
            .collect()
    }

    /// A key name was accepted: clear its banner.
    pub(crate) fn key_accepted(&mut self, name: &UserName) {
        if let Some(p) = self.people.get_mut(name) {
            p.key_changed = false;
            p.verified = true;
        }
    }

    /// The conversations in list order: the room, then by name.
    pub(crate) fn order(&self) -> Vec<ConvKey> {
        self.convs.keys().cloned().collect()
    }
}

fn system(text: String) -> Entry {
    Entry {
        id: None,
        ts_ms: crate::ui::now_ms(),
        from: String::new(),
        text,
        late: false,
        status: Status::None,
    }
}

mod events;
mod keys;
mod v2;

pub(crate) use v2::NO_CONVERSATION;

#[cfg(test)]
mod tests;
