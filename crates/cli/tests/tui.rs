//! The full-screen client as a person uses it: the real binary in a real
//! pseudo-terminal (tmux), keys sent with `send-keys`, and what the screen
//! shows read with `capture-pane`.
//!
//! Needs tmux. Elsewhere than CI a missing tmux skips these tests, saying
//! `SKIPPED`; `.ci/run` installs it and sets `BLINDRELAY_CI=1`, under
//! which a missing tmux fails them.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::path::Path;
use std::process::Stdio;

mod common;
use common::tmux::{Tmux, WAIT, tmux_available};
use common::*;

/// The README's setup, a relay, and `name`'s full-screen client at 80x24.
fn world(d: &Path, users: &[&str], relay_args: &[&str]) -> blindrelay_testkit::RelayProcess {
    setup_roles(d, users);
    start_relay_at(d, "127.0.0.1:0", relay_args)
}

fn chat(d: &Path, name: &str, addr: &str) -> Tmux {
    let t = Tmux::start(d, &format!("chat {name} --server {addr}"), 80, 24);
    t.wait("the connection", |s| {
        s.contains("\u{2502} connected \u{2502}")
    });
    t
}

fn send(d: &Path, addr: &str, from: &str, to: &str, text: &str) {
    must(d, &["send", from, "--to", to, "--server", addr, text]);
}

#[test]
fn a_message_arrives_in_its_conversation_and_the_unread_count_follows() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"], &[]);
    let alice = chat(d.path(), "alice", &relay.addr);
    // Nothing in the history yet: alice starts in the room, and stays
    // there once she has pressed a key.
    alice.wait("the room", |s| s.contains("# room: everyone online"));
    alice.keys(&["C-n", "C-p"]);
    send(d.path(), &relay.addr, "bob", "alice", "hello from bob");
    let s = alice.wait("an unread count", |s| s.contains("bob (1)"));
    assert!(
        !s.contains("hello from bob"),
        "shown in the wrong conversation:\n{s}"
    );
    alice.keys(&["Tab"]);
    let s = alice.wait("bob's conversation", |s| s.contains("bob: hello from bob"));
    assert!(!s.contains("bob (1)"), "still unread:\n{s}");
    send(d.path(), &relay.addr, "bob", "alice", "and again");
    let s = alice.wait("the open conversation", |s| s.contains("bob: and again"));
    assert!(
        !s.contains("bob (1)"),
        "unread in the open conversation:\n{s}"
    );
    // 80x24 is enough for everything: the status line is the last line.
    assert!(s.lines().count() <= 24);
    assert!(s.lines().last().unwrap().contains("alice @"), "{s}");
}

#[test]
fn keys_typed_in_one_burst_and_a_paste_are_all_sent() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"], &[]);
    let bob = JsonClient::start(d.path(), "bob", &relay.addr);
    bob.next("connected", WAIT);
    let alice = chat(d.path(), "alice", &relay.addr);
    alice.keys(&[
        "/to bob", "Enter", "fast1", "Enter", "fast2", "Enter", "fast3", "Enter",
    ]);
    for want in ["fast1", "fast2", "fast3"] {
        assert_eq!(bob.next("message", WAIT)["text"], want);
    }
    // A bracketed paste keeps its lines in one message.
    alice.paste("pasted one\npasted two");
    alice.wait("the paste in the input box", |s| s.contains("pasted two"));
    alice.keys(&["Enter"]);
    assert_eq!(bob.next("message", WAIT)["text"], "pasted one\npasted two");
    alice.wait("the receipt tick", |s| s.contains("pasted two \u{2713}"));
}

#[test]
fn scrollback_and_search_reach_old_messages_and_a_resize_keeps_the_input() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("relay.toml"), "rate_max_messages = 1000\n").unwrap();
    let relay = world(d.path(), &["alice", "bob"], &["--config", "relay.toml"]);
    // alice logs in once, so that bob can write to her while she is away.
    let alice = chat(d.path(), "alice", &relay.addr);
    alice.keys(&["/quit", "Enter"]);
    alice.wait("the exit", |s| s.contains("EXITED:0"));
    let mut bob = JsonClient::start(d.path(), "bob", &relay.addr);
    bob.next("connected", WAIT);
    for i in 0..60 {
        bob.command(&format!(
            r#"{{"cmd":"send","to":["alice"],"text":"old message {i:02}"}}"#
        ));
    }
    let mut stored = 0;
    while stored < 60 {
        bob.next("stored", WAIT);
        stored += 1;
    }
    let alice = chat(d.path(), "alice", &relay.addr);
    // The backlog arrives as alice starts: in bob's conversation if it was
    // in her history by then (she opens where the last message is), else
    // as 60 unread.
    let s = alice.wait("the backlog", |s| {
        s.contains("bob (60)") || s.contains("old message 59")
    });
    if !s.contains("old message 59") {
        alice.keys(&["Tab"]);
    }
    let s = alice.wait("the newest message", |s| s.contains("old message 59"));
    assert!(!s.contains("old message 00"), "{s}");
    for _ in 0..8 {
        alice.keys(&["PPage"]);
    }
    alice.wait("the oldest message", |s| s.contains("old message 00"));
    alice.keys(&["NPage"; 8]);
    alice.wait("the newest again", |s| s.contains("old message 59"));
    // Search the history, open the hit.
    alice.keys(&["C-f", "message 07"]);
    alice.wait("the search results", |s| s.contains("1 found"));
    alice.keys(&["Enter"]);
    let s = alice.wait("the message found", |s| s.contains("bob: old message 07"));
    assert!(
        !s.contains("old message 59"),
        "not scrolled to the hit:\n{s}"
    );
    // A draft survives resizes, smaller and larger.
    alice.keys(&["a draft I am writing"]);
    alice.wait("the draft", |s| s.contains("a draft I am writing"));
    for (w, h) in [(120, 40), (60, 16), (80, 24)] {
        alice.resize(w, h);
        // Redrawn for the new size: the status line is the last line.
        alice.wait("the draft after a resize", |s| {
            s.contains("a draft I am writing")
                && s.lines().count() <= usize::from(h)
                && s.lines().last().is_some_and(|l| l.contains("alice @"))
        });
    }
}

#[test]
fn a_changed_key_is_a_banner_and_accepting_it_shows_the_held_message() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"], &[]);
    let alice = chat(d.path(), "alice", &relay.addr);
    send(d.path(), &relay.addr, "bob", "alice", "from the old laptop");
    // The first message after start opens its conversation.
    alice.wait("bob's message", |s| s.contains("bob: from the old laptop"));
    // bob's laptop is lost: a new key, a new certificate for the same name.
    must(d.path(), &["enroll", "bob", "--dir", "bob-new"]);
    must(d.path(), &["pki", "sign", "--renew", "bob-new/request.pem"]);
    let mut bob = bin()
        .args([
            "chat",
            "bob",
            "--dir",
            "bob-new",
            "--json",
            "--server",
            &relay.addr,
        ])
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    alice.wait("the banner", |s| s.contains("certificate CHANGED: bob"));
    use std::io::Write;
    writeln!(
        bob.stdin.as_mut().unwrap(),
        r#"{{"cmd":"send","to":["alice"],"text":"it is me, new laptop"}}"#
    )
    .unwrap();
    alice.wait("the hold", |s| s.contains("held a message from bob"));
    alice.keys(&["/verify bob", "Enter"]);
    alice.wait("the safety number dialog", |s| {
        s.contains("safety number with bob") && s.contains("Type  accept  and Enter")
    });
    // A single key typed ahead accepts nothing; the word does.
    alice.keys(&["a", "Enter"]);
    let s = alice.screen();
    assert!(
        s.contains("safety number with bob"),
        "accepted too easily:\n{s}"
    );
    alice.keys(&["accept", "Enter"]);
    let s = alice.wait("the held message", |s| {
        s.contains("bob: it is me, new laptop")
    });
    assert!(
        !s.contains("certificate CHANGED: bob"),
        "banner still up:\n{s}"
    );
    let _ = bob.kill();
    let _ = bob.wait();
}

#[test]
fn leaving_restores_the_terminal() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice"], &[]);
    for keys in [&["/quit", "Enter"][..], &["C-c"], &["C-d"]] {
        let alice = chat(d.path(), "alice", &relay.addr);
        alice.keys(keys);
        let s = alice.wait("the exit", |s| s.contains("EXITED:0"));
        assert!(
            !s.contains("chats") && !s.contains("alice @"),
            "{keys:?}:\n{s}"
        );
    }
}

#[test]
fn on_a_device_the_full_screen_client_lists_mls_groups_with_their_devices() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &[], &[]);
    let dirs: Vec<String> = [("alice", "laptop"), ("bob", "laptop"), ("bob", "phone")]
        .iter()
        .map(|(u, dev)| enroll_device(d.path(), u, dev))
        .collect();
    // bob's devices connect once so that the relay holds their KeyPackages.
    for dir in &dirs[1..] {
        let args = [
            "send",
            "bob",
            "--dir",
            dir,
            "--server",
            &relay.addr,
            "--to",
            "bob",
            "hi me",
        ];
        must(d.path(), &args);
    }
    let alice = Tmux::start(
        d.path(),
        &format!("chat alice --dir {} --server {}", dirs[0], relay.addr),
        100,
        24,
    );
    alice.wait("the connection", |s| {
        s.contains("\u{2502} connected \u{2502}")
    });
    alice.wait("the first-run hint", |s| {
        s.contains("/msg NAME TEXT starts a")
    });
    // A one-to-one conversation with bob: all three devices.
    alice.keys(&["/msg bob hello from the full screen", "Enter"]);
    let s = alice.wait("the conversation with bob", |s| s.contains("bob@phone"));
    assert!(s.contains("protocol v2 (MLS)"), "{s}");
    assert!(
        s.contains("bob@phone") && s.contains("bob@laptop") && s.contains("alice@laptop"),
        "{s}"
    );
    // A group made from the screen, and bob's message from a script lands in it.
    alice.keys(&["/group create crew bob", "Enter"]);
    // (The answer comes when the relay has the commit: the screen does
    // not wait for it.)
    alice.wait("the group made", |s| s.contains("crew (protocol v2"));
    must(
        d.path(),
        &[
            "send",
            "bob",
            "--dir",
            &dirs[2],
            "--server",
            &relay.addr,
            "--group",
            "crew",
            "crew message",
        ],
    );
    let s = alice.wait("bob's message in crew", |s| s.contains("crew message"));
    assert!(s.contains("bob@phone"), "{s}");
    // Per-device safety numbers in a window.
    alice.keys(&["/verify bob", "Enter"]);
    let s = alice.wait("the safety numbers", |s| {
        s.contains("safety numbers with bob")
    });
    assert!(s.contains("laptop:") && s.contains("phone:"), "{s}");
    alice.keys(&["Escape", "C-c"]);
    alice.wait("the exit", |s| s.contains("EXITED:0"));
}

/// The report's forgery: padded so that a conversation pane wraps a fake
/// message line to its left edge.
const FORGED: &str =
    "ok, thanks for the report, see you at [06:28:30] you: Yes, I approve the wire transfer";

/// The screen line that shows the forged part sits behind the continuation
/// bar, never at the pane's left edge where a message starts.
fn assert_forgery_is_a_continuation(s: &str) {
    let l = s
        .lines()
        .find(|l| l.contains("approve the wire"))
        .unwrap_or_else(|| panic!("the message is not on screen:\n{s}"));
    assert!(l.contains("\u{2502}  \u{2502} "), "{l:?} in\n{s}");
    assert!(
        !s.lines().any(|l| l.contains("\u{2502}[06:28:30] you")),
        "a forged line at the pane's edge:\n{s}"
    );
}

#[test]
fn at_80_columns_a_wrapped_message_cannot_pass_for_another_in_the_full_screen_client() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"], &[]);
    let alice = chat(d.path(), "alice", &relay.addr);
    send(d.path(), &relay.addr, "bob", "alice", FORGED);
    // Nothing was open: bob's conversation opens with his message.
    let s = alice.wait("bob's message", |s| s.contains("approve the wire"));
    assert_forgery_is_a_continuation(&s);
}

#[test]
fn at_80_columns_a_wrapped_message_cannot_pass_for_another_on_a_device() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &[], &[]);
    let alice_dir = enroll_device(d.path(), "alice", "laptop");
    let bob_dir = enroll_device(d.path(), "bob", "laptop");
    let alice = Tmux::start(
        d.path(),
        &format!("chat alice --dir {alice_dir} --server {}", relay.addr),
        80,
        24,
    );
    alice.wait("the connection", |s| {
        s.contains("\u{2502} connected \u{2502}")
    });
    let args = [
        "send",
        "bob",
        "--dir",
        &bob_dir,
        "--server",
        &relay.addr,
        "--to",
        "alice",
        FORGED,
    ];
    must(d.path(), &args);
    let s = alice.wait("bob's message", |s| s.contains("approve the wire"));
    assert_forgery_is_a_continuation(&s);
}
