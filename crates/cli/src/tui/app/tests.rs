use super::*;
use blindrelay_client::Event;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert_eq!(app.on_key(key(KeyCode::Char(c))), Intent::None);
    }
}

fn message(id: u8, from: &str, text: &str) -> Event {
    Event::Message {
        msg_id: MessageId([id; 16]),
        from: name(from),
        recipients: vec![name("alice")],
        room: false,
        timestamp_ms: 1_000 * u64::from(id),
        late: false,
        text: text.into(),
    }
}

fn app() -> App {
    let mut a = App::new(name("alice"), "127.0.0.1:8443".into(), true);
    // As if the user had pressed a key (see the test of the first message).
    a.touched = true;
    a
}

#[test]
fn the_first_message_after_start_opens_its_conversation_until_a_key_is_pressed() {
    let mut a = App::new(name("alice"), "127.0.0.1:8443".into(), true);
    assert_eq!(a.on_event(message(1, "bob", "hi")), None);
    assert_eq!(a.open, ConvKey::Person(name("bob")));
    assert_eq!(a.convs[&ConvKey::Person(name("bob"))].unread, 0);
    // The open conversation has a message now: carol's waits, unread.
    a.on_event(message(2, "carol", "hello"));
    assert_eq!(a.open, ConvKey::Person(name("bob")));
    assert_eq!(a.convs[&ConvKey::Person(name("carol"))].unread, 1);
}

#[test]
fn a_message_lands_in_its_conversation_and_counts_as_unread_elsewhere() {
    let mut a = app();
    a.open_conv(ConvKey::Person(name("carol")));
    let n = a.on_event(message(1, "bob", "hi"));
    assert_eq!(n, Some(Notification { from: "bob".into() }));
    let bob = &a.convs[&ConvKey::Person(name("bob"))];
    assert_eq!(bob.unread, 1);
    assert_eq!(bob.entries[0].text, "hi");
    // Opening it clears the count; in the open conversation nothing is unread.
    a.open_conv(ConvKey::Person(name("bob")));
    assert_eq!(a.on_event(message(2, "bob", "again")), None);
    assert_eq!(a.convs[&ConvKey::Person(name("bob"))].unread, 0);
    // Notifications can be switched off.
    a.on_key(key(KeyCode::F(2)));
    assert_eq!(a.on_event(message(3, "carol", "x")), None);
    assert_eq!(a.convs[&ConvKey::Person(name("carol"))].unread, 1);
}

#[test]
fn a_message_already_in_the_history_is_not_shown_twice() {
    let mut a = app();
    a.load_history(vec![HistoryEntry {
        msg_id: MessageId([1; 16]),
        ts_ms: 1000,
        outgoing: false,
        peer: "bob".into(),
        room: false,
        text: "hi".into(),
        group: None,
    }]);
    a.on_event(message(1, "bob", "hi"));
    assert_eq!(a.convs[&ConvKey::Person(name("bob"))].entries.len(), 1);
}

#[test]
fn room_messages_keep_their_room_in_the_history() {
    let mut a = app();
    a.load_history(vec![HistoryEntry {
        msg_id: MessageId([1; 16]),
        ts_ms: 1000,
        outgoing: false,
        peer: "bob".into(),
        room: true,
        text: "to all".into(),
        group: None,
    }]);
    assert_eq!(a.convs[&ConvKey::Room].entries[0].text, "to all");
    assert!(!a.convs.contains_key(&ConvKey::Person(name("bob"))));
}

#[test]
fn enter_sends_to_the_open_conversation_and_alt_enter_breaks_the_line() {
    let mut a = app();
    a.open_conv(ConvKey::Person(name("bob")));
    typed(&mut a, "one");
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    typed(&mut a, "two");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        Intent::Perform(Action::Send {
            to: Some(vec!["bob".into()]),
            text: "one\ntwo".into()
        })
    );
    assert!(a.editor.is_empty());
    a.open_conv(ConvKey::Room);
    typed(&mut a, "//etc");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        Intent::Perform(Action::All {
            text: "/etc".into()
        })
    );
}

#[test]
fn commands_switch_conversations_and_an_unknown_name_is_explained() {
    let mut a = app();
    typed(&mut a, "/to dave");
    assert_eq!(a.on_key(key(KeyCode::Enter)), Intent::None);
    assert_eq!(a.open, ConvKey::Person(name("dave")));
    let said = &a.convs[&ConvKey::Person(name("dave"))].entries[0];
    assert!(
        said.is_system() && said.text.contains("has not logged in"),
        "{}",
        said.text
    );
    typed(&mut a, "/verify dave");
    assert_eq!(a.on_key(key(KeyCode::Enter)), Intent::Verify(name("dave")));
    typed(&mut a, "/quit");
    assert_eq!(a.on_key(key(KeyCode::Enter)), Intent::Quit);
}

#[test]
fn statuses_become_ticks_on_the_message_they_confirm() {
    let mut a = app();
    let id = MessageId([9; 16]);
    a.on_event(Event::Queued {
        msg_id: id,
        to: vec![name("bob")],
        room: false,
        tag: None,
        waiting: vec![],
        text: "hello".into(),
    });
    let status = |a: &App| a.convs[&ConvKey::Person(name("bob"))].entries[0].status;
    assert_eq!(status(&a), Status::Sending);
    a.on_event(Event::Sent {
        msg_id: id,
        delivered: 1,
    });
    assert_eq!(status(&a), Status::AtRelay);
    a.on_event(Event::Delivered {
        msg_ids: vec![id],
        by: name("bob"),
    });
    assert_eq!(status(&a), Status::Delivered);
    // A late "stored" never takes a tick back.
    a.on_event(Event::Stored {
        msg_id: id,
        recipients: 1,
    });
    assert_eq!(status(&a), Status::Delivered);
}

#[test]
fn search_finds_old_messages_in_every_conversation_and_opens_them() {
    let mut a = app();
    a.on_event(message(1, "bob", "the blue door"));
    a.on_event(message(2, "carol", "red"));
    a.on_event(message(3, "carol", "a BLUE sky"));
    a.on_key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL));
    for c in "blue".chars() {
        a.on_key(key(KeyCode::Char(c)));
    }
    let Mode::Search(s) = &a.mode else {
        panic!("not searching")
    };
    assert_eq!(
        s.hits,
        vec![
            (ConvKey::Person(name("carol")), 1),
            (ConvKey::Person(name("bob")), 0)
        ]
    );
    a.on_key(key(KeyCode::Down));
    a.on_key(key(KeyCode::Enter));
    assert_eq!(a.open, ConvKey::Person(name("bob")));
    assert_eq!(a.convs[&ConvKey::Person(name("bob"))].focus, Some(0));
}

#[test]
fn a_changed_key_is_a_banner_and_the_safety_number_dialog_accepts_it() {
    let mut a = app();
    a.on_event(Event::KeyChanged {
        name: name("bob"),
        pinned: "aa".into(),
        offered: "bb".into(),
    });
    assert_eq!(a.key_changes(), vec![&name("bob")]);
    a.mode = Mode::Dialog(Dialog {
        title: "safety number with bob".into(),
        text: "1234".into(),
        accept: Some(name("bob")),
        typed: String::new(),
    });
    // A key typed ahead does not accept it; the word does.
    assert_eq!(a.on_key(key(KeyCode::Char('a'))), Intent::None);
    assert_eq!(a.on_key(key(KeyCode::Enter)), Intent::None);
    assert!(matches!(a.mode, Mode::Dialog(_)), "still asking");
    for c in "accept".chars() {
        assert_eq!(a.on_key(key(KeyCode::Char(c))), Intent::None);
    }
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        Intent::Perform(Action::Accept { name: "bob".into() })
    );
    a.key_accepted(&name("bob"));
    assert!(a.key_changes().is_empty());
}

#[test]
fn one_sender_cannot_hide_anothers_message_by_reusing_its_id() {
    let mut a = app();
    // mallory's message arrives first under the id of bob's.
    a.on_event(message(1, "mallory", "decoy"));
    a.on_event(message(1, "bob", "the real one"));
    assert_eq!(
        a.convs[&ConvKey::Person(name("bob"))].entries[0].text,
        "the real one"
    );
}

#[test]
fn strangers_leaving_do_not_grow_the_list() {
    let mut a = app();
    for i in 0..100 {
        a.on_event(Event::Left {
            name: name(&format!("ghost{i}")),
        });
    }
    assert!(a.people.is_empty());
}

#[test]
fn tab_walks_the_conversation_list() {
    let mut a = app();
    a.on_event(message(1, "bob", "x"));
    a.on_event(message(2, "carol", "y"));
    assert_eq!(a.open, ConvKey::Room);
    a.on_key(key(KeyCode::Tab));
    assert_eq!(a.open, ConvKey::Person(name("bob")));
    a.on_key(key(KeyCode::BackTab));
    a.on_key(key(KeyCode::BackTab));
    assert_eq!(a.open, ConvKey::Person(name("carol")));
}

/// A v2 app in one group with bob: its conversation's key.
fn v2_app() -> (App, ConvKey) {
    let mut a = app();
    a.v2 = true;
    a.convs.clear();
    a.set_groups(&[blindrelay_client::v2::GroupInfo {
        id: vec![7; 32],
        name: None,
        epoch: 1,
        members: vec![
            ("alice".into(), "laptop".into()),
            ("bob".into(), "phone".into()),
        ],
    }]);
    let key = a.mls_key(&[7; 32]).unwrap();
    (a, key)
}

fn v2_history(id: u8, outgoing: bool, group: &[u8], text: &str) -> HistoryEntry {
    HistoryEntry {
        msg_id: MessageId([id; 16]),
        ts_ms: 1_000 * u64::from(id),
        outgoing,
        peer: if outgoing {
            String::new()
        } else {
            "bob@phone".into()
        },
        room: false,
        text: text.into(),
        group: Some(group.to_vec()),
    }
}

#[test]
fn a_v2_history_lands_in_its_groups_conversation_and_a_message_read_again_is_not_doubled() {
    let (mut a, key) = v2_app();
    a.load_history_v2(vec![
        v2_history(1, false, &[7; 32], "from bob"),
        v2_history(2, true, &[7; 32], "from me"),
        // A group this device is no longer in: left out.
        v2_history(3, false, &[9; 32], "elsewhere"),
    ]);
    let lines: Vec<(String, String)> = a.convs[&key]
        .entries
        .iter()
        .map(|e| (e.from.clone(), e.text.clone()))
        .collect();
    assert_eq!(
        lines,
        [
            ("bob@phone".to_string(), "from bob".to_string()),
            ("you".to_string(), "from me".to_string())
        ]
    );
    // The same message delivered again (its copy after a lost answer).
    a.on_v2(blindrelay_client::v2::V2Event::Message {
        group: vec![7; 32],
        from: ("bob".into(), "phone".into()),
        id: MessageId([1; 16]),
        written_ms: 1_000,
        late: false,
        text: "from bob".into(),
    });
    assert_eq!(a.convs[&key].entries.len(), 2);
}

#[test]
fn a_v2_message_shows_as_sending_until_the_relay_has_it() {
    let (mut a, key) = v2_app();
    a.queued_v2(&[7; 32], MessageId([5; 16]), "hello".into());
    let status = |a: &App| a.convs[&key].entries.last().unwrap().status;
    assert_eq!(status(&a), Status::Sending);
    a.on_v2(blindrelay_client::v2::V2Event::Sent {
        group: vec![7; 32],
        id: MessageId([5; 16]),
    });
    assert_eq!(status(&a), Status::AtRelay);
}
