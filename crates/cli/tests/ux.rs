//! What a new user hit, as a new user would hit it: real relay, real
//! `chat --plain`, `chat --json` and `send` processes, and what they print.
//! Each test is one finding of the usability review (issue 14).
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

mod common;
use blindrelay_testkit::RelayProcess;
use blindrelay_testkit::process::free_port;
use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// The README's setup for `users`, and a relay on a free port.
fn world(d: &Path, users: &[&str]) -> RelayProcess {
    setup_roles(d, users);
    start_relay_at(d, "127.0.0.1:0", &[])
}

/// A JSON client for `name`, once connected.
fn json(d: &Path, name: &str, addr: &str) -> JsonClient {
    let c = JsonClient::start(d, name, addr);
    c.next("connected", WAIT);
    c
}

/// A line client for `name`, once connected.
fn plain(d: &Path, name: &str, addr: &str) -> LineClient {
    let mut c = LineClient::start(d, name, addr, &[("TZ", "UTC")]);
    c.wait("connected", WAIT, |l| l.starts_with("[connected as"));
    c
}

fn texts(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lines_typed_ahead_or_pasted_in_one_burst_are_all_sent_in_order() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    let bob = json(d.path(), "bob", &relay.addr);
    let mut alice = plain(d.path(), "alice", &relay.addr);
    // Typed faster than anything is printed, then a plain two-line paste.
    alice.write("/to bob\nfast1\nfast2\nfast3\n");
    alice.write("pasted line one\npasted line two\n");
    let mut got = Vec::new();
    while got.len() < 5 {
        got.extend(texts(&bob.until("message", WAIT)));
    }
    assert_eq!(
        got,
        [
            "fast1",
            "fast2",
            "fast3",
            "pasted line one",
            "pasted line two"
        ]
    );
}

#[test]
fn the_readmes_first_message_to_someone_who_never_logged_in_is_delivered_when_they_do() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    let mut alice = plain(d.path(), "alice", &relay.addr);
    alice.write("/to bob\nHello Bob!\n");
    let told = alice.wait("about bob", WAIT, |l| l.contains("has not logged in"));
    assert!(told.contains("bob"), "{told}");
    alice.wait("that the message waits", WAIT, |l| {
        l.contains("the message waits here")
    });
    assert!(
        !alice.seen.iter().any(|l| l.contains("error")),
        "{:?}",
        alice.seen
    );
    // bob logs in for the first time: the message was sealed for his key.
    let bob = JsonClient::start(d.path(), "bob", &relay.addr);
    let m = bob.next("message", WAIT);
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("alice"), Some("Hello Bob!"))
    );
    // And alice hears that bob has it, naming the message.
    alice.wait("bob's receipt", WAIT, |l| {
        l.contains("bob received \u{201c}Hello Bob!\u{201d}")
    });
}

#[test]
fn joiners_in_emoji_and_persian_reach_the_screen_intact_and_escapes_do_not() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    let mut bob = plain(d.path(), "bob", &relay.addr);
    let mut alice = json(d.path(), "alice", &relay.addr);
    let text = "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} coder \u{1F469}\u{200D}\u{1F4BB} \u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645} \u{202E}evil";
    alice.command(&serde_json::json!({"cmd":"send","to":["bob"],"text":text}).to_string());
    let line = bob.wait("the message", WAIT, |l| l.contains("family"));
    assert!(
        line.contains("\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}")
            && line.contains("\u{1F469}\u{200D}\u{1F4BB}")
            && line.contains("\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"),
        "{line}"
    );
    assert!(
        line.contains("\u{FFFD}evil") && !line.contains('\u{202E}'),
        "{line}"
    );
}

#[test]
fn send_beside_a_running_chat_goes_through_it_and_a_second_chat_says_the_state_is_in_use() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    let bob = json(d.path(), "bob", &relay.addr);
    let mut alice = json(d.path(), "alice", &relay.addr);
    // The chat owns alice's state: the script's message goes through it
    // (the local socket beside state.db), and the chat reports it too.
    let send = |text: &str| {
        run(
            &[
                "send",
                "alice",
                "--to",
                "bob",
                "--server",
                &relay.addr,
                text,
            ],
            d.path(),
        )
    };
    let o = send("from a script");
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("sent by the chat running"),
        "{:?}",
        text(&o)
    );
    let sending = alice.next("sending", WAIT);
    assert_eq!(sending["req"], "local-socket:1", "{sending}");
    assert_eq!(bob.next("message", WAIT)["text"], "from a script");
    // The socket takes sends only, and nothing but its owner reaches it.
    let sock = d.path().join("blindrelay-alice/chat.sock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // Once the chat has left, `send` owns the state itself again.
    alice.command(r#"{"cmd":"quit"}"#);
    alice.next("closed", WAIT);
    assert!(alice.child.wait().unwrap().success());
    drop(alice);
    assert!(!sock.exists(), "the socket goes with its chat");
    let o = send("on its own");
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!text(&o).0.contains("chat running"), "{:?}", text(&o));
    assert_eq!(bob.next("message", WAIT)["text"], "on its own");
    let _alice = json(d.path(), "alice", &relay.addr);
    // A second chat in JSON mode says it as a JSON event, and exits 1.
    let o = bin()
        .args(["chat", "alice", "--json", "--server", &relay.addr])
        .current_dir(d.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["event"].as_str(), first["fatal"].as_bool()),
        (Some("error"), Some(true))
    );
    assert!(
        first["text"].as_str().unwrap().contains("in use"),
        "{first}"
    );
}

#[test]
fn messages_waiting_at_start_are_shown_once_with_their_room_and_long_ones_shortened() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    // bob is known to the relay, and gets a room message while online.
    let mut bob = json(d.path(), "bob", &relay.addr);
    let mut alice = json(d.path(), "alice", &relay.addr);
    alice.command(r#"{"cmd":"all","text":"hello everyone"}"#);
    bob.next("message", WAIT);
    bob.command(r#"{"cmd":"quit"}"#);
    bob.next("closed", WAIT);
    drop(bob);
    let long: String = (1..=40).map(|i| format!("long line {i:02}\n")).collect();
    for t in ["waiting one", "waiting two", long.as_str()] {
        alice.command(&serde_json::json!({"cmd":"send","to":["bob"],"text":t}).to_string());
        alice.next("stored", WAIT);
    }
    for start in 0..3 {
        let mut bob = plain(d.path(), "bob", &relay.addr);
        // Everything bob's client printed (gather adds to `seen`).
        bob.gather(Duration::from_secs(2));
        let all: Vec<&String> = bob.seen.iter().collect();
        for t in ["waiting one", "waiting two", "long line 01"] {
            let n = all.iter().filter(|l| l.contains(t)).count();
            assert_eq!(n, 1, "start {start}: {t:?} shown {n} times:\n{all:#?}");
        }
        let room = all.iter().find(|l| l.contains("hello everyone")).unwrap();
        assert!(room.contains("to the room"), "{room}");
        if start > 0 {
            // From the history: shortened, not reprinted whole.
            assert!(!all.iter().any(|l| l.contains("long line 40")), "{all:#?}");
            assert!(
                all.iter().any(|l| l.contains("(39 more lines)")),
                "{all:#?}"
            );
        }
        assert!(bob.end_of_input(WAIT).success());
    }
}

#[test]
fn json_mode_says_sending_before_sent_and_answers_carry_their_request_id() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    let _bob = json(d.path(), "bob", &relay.addr);
    let mut alice = json(d.path(), "alice", &relay.addr);
    for i in 0..5 {
        alice.command(&format!(
            r#"{{"cmd":"send","to":["bob"],"text":"m{i}","req":"r{i}"}}"#
        ));
        let events = alice.until("sent", WAIT);
        let sending = events.iter().position(|v| v["event"] == "sending").unwrap();
        assert_eq!(events[sending]["req"], format!("r{i}"));
        assert_eq!(events.last().unwrap()["id"], events[sending]["id"]);
    }
    alice.command(r#"{"cmd":"verify","name":"Not A Name","req":42}"#);
    let e = alice.next("error", WAIT);
    assert_eq!(e["req"], "42");
    alice.command(r#"{"cmd":"help","req":"h"}"#);
    assert_eq!(alice.next("info", WAIT)["req"], "h");
    // A start-up failure is an event too.
    let o = bin()
        .args(["chat", "zed", "--json", "--server", &relay.addr])
        .current_dir(d.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["event"], "error");
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("blindrelay enroll zed"),
        "{v}"
    );
}

#[test]
fn send_reads_stdin_or_a_file_refuses_an_empty_message_and_counts_live_sessions() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    let bob = json(d.path(), "bob", &relay.addr);
    let mut child = bin()
        .args(["send", "alice", "--to", "bob", "--server", &relay.addr, "-"])
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\nsecond line\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("delivered live to 1 of their sessions"),
        "{out}"
    );
    assert_eq!(bob.next("message", WAIT)["text"], "from stdin\nsecond line");
    std::fs::write(d.path().join("note.txt"), "from a file\n").unwrap();
    let o = run(
        &[
            "send",
            "alice",
            "--to",
            "bob",
            "--server",
            &relay.addr,
            "--file",
            "note.txt",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(bob.next("message", WAIT)["text"], "from a file");
    assert_clean_error(
        &run(
            &["send", "alice", "--to", "bob", "--server", &relay.addr, ""],
            d.path(),
        ),
        "the message is empty",
    );
    let big = "x".repeat(64 * 1024 + 1);
    assert_clean_error(
        &run(
            &[
                "send",
                "alice",
                "--to",
                "bob",
                "--server",
                &relay.addr,
                &big,
            ],
            d.path(),
        ),
        "at most 65536 bytes",
    );
}

#[test]
fn a_chat_started_while_the_relay_is_down_connects_when_it_comes_up() {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &["alice"]);
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let alice = JsonClient::start(d.path(), "alice", &addr);
    let r = alice.next("reconnecting", WAIT);
    assert!(
        r["reason"].as_str().unwrap().contains("connection refused"),
        "{r}"
    );
    let _relay = start_relay_at(d.path(), &addr, &[]);
    alice.next("connected", Duration::from_secs(60));
}

#[test]
fn ctrl_d_leaves_the_line_client_at_once_and_the_relay_going_away_is_said_once() {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &["alice"]);
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let relay = start_relay_at(d.path(), &addr, &[]);
    let mut alice = plain(d.path(), "alice", &addr);
    drop(relay);
    let lost = alice.wait("connection lost", WAIT, |l| l.contains("connection lost"));
    assert!(!lost.contains("http") && !lost.contains("Some("), "{lost}");
    // Several reconnection attempts, one line.
    let more = alice.gather(Duration::from_secs(4));
    assert!(
        !more.iter().any(|l| l.contains("connection lost")),
        "{more:?}"
    );
    let _relay = start_relay_at(d.path(), &addr, &[]);
    alice.wait("reconnected", Duration::from_secs(60), |l| {
        l.starts_with("[reconnected as alice]")
    });
    assert!(alice.end_of_input(Duration::from_secs(5)).success());
}

#[test]
fn times_are_shown_in_the_users_time_zone() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    // Five hours east of UTC (POSIX writes the offset the other way).
    let mut bob = LineClient::start(d.path(), "bob", &relay.addr, &[("TZ", "XYZ-5")]);
    bob.wait("connected", WAIT, |l| l.starts_with("[connected as"));
    let mut alice = json(d.path(), "alice", &relay.addr);
    alice.command(r#"{"cmd":"send","to":["bob"],"text":"what time is it"}"#);
    let line = bob.wait("the message", WAIT, |l| l.contains("what time is it"));
    let utc_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        % 24;
    let shown: u64 = line[1..3].parse().unwrap();
    // (A message written just before the hour turns is allowed for.)
    assert!(
        shown == (utc_hour + 5) % 24 || shown == (utc_hour + 4) % 24,
        "{line} (UTC hour {utc_hour})"
    );
    assert!(!line.contains("UTC"), "{line}");
}

#[test]
fn a_server_named_without_a_port_means_the_default_port() {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &["alice"]);
    // Nothing listens on 127.0.0.1:8443 here (or the test machine runs a
    // relay): either way the address tried names the default port.
    let o = run(
        &["send", "alice", "--to", "bob", "--server", "127.0.0.1", "x"],
        d.path(),
    );
    let (out, err) = text(&o);
    assert!(
        o.status.success() || err.contains("127.0.0.1:8443"),
        "{out}{err}"
    );
    assert!(!err.contains("invalid"), "{err}");
}

#[test]
fn demo_help_and_its_long_message_limit_are_true() {
    let d = tempfile::tempdir().unwrap();
    let (out, _) = text(&run(&["demo", "--help"], d.path()));
    assert!(out.contains("three") && !out.contains("two users"), "{out}");
    let o = run(&["demo", "--long-chars", "70000"], d.path());
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("65536"), "{:?}", text(&o));
}

#[test]
fn a_send_from_a_script_does_not_make_everyone_see_online_then_left() {
    let d = tempfile::tempdir().unwrap();
    let relay = world(d.path(), &["alice", "bob"]);
    // alice has logged in before, so her key is no first contact for bob.
    let mut bob = plain(d.path(), "bob", &relay.addr);
    let alice = json(d.path(), "alice", &relay.addr);
    bob.wait("alice online", WAIT, |l| l == "* alice is online");
    alice.quit();
    bob.wait("alice gone", WAIT, |l| l == "* alice left");
    let o = run(
        &[
            "send",
            "alice",
            "--to",
            "bob",
            "--server",
            &relay.addr,
            "from cron",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    bob.wait("the message", WAIT, |l| l.contains("from cron"));
    bob.gather(Duration::from_secs(4));
    let all: Vec<&String> = bob.seen.iter().collect();
    let presence = all.iter().filter(|l| l.contains("alice is online")).count();
    assert_eq!(presence, 1, "{all:#?}");
    assert_eq!(
        all.iter().filter(|l| l.contains("alice left")).count(),
        1,
        "{all:#?}"
    );
}

#[test]
fn a_backlog_larger_than_the_event_queue_arrives_whole_and_a_command_is_still_answered() {
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &["alice", "bob"]);
    std::fs::write(d.path().join("relay.toml"), "rate_max_messages = 5000\n").unwrap();
    let relay = start_relay_at(d.path(), "127.0.0.1:0", &["--config", "relay.toml"]);
    // bob logs in once, so that alice can write to him while he is away.
    let bob = json(d.path(), "bob", &relay.addr);
    bob.quit();
    let mut alice = json(d.path(), "alice", &relay.addr);
    // More messages than the client's event queue (1024) holds.
    const N: usize = 1100;
    for i in 0..N {
        alice.command(&format!(
            r#"{{"cmd":"send","to":["bob"],"text":"backlog {i:04}"}}"#
        ));
    }
    for _ in 0..N {
        alice.next("stored", Duration::from_secs(60));
    }
    // bob starts with all of it waiting, and types a command at once.
    let mut bob = LineClient::start(d.path(), "bob", &relay.addr, &[("TZ", "UTC")]);
    bob.write("/who\n");
    bob.wait("the last message", Duration::from_secs(120), |l| {
        l.contains("backlog 1099")
    });
    bob.gather(Duration::from_secs(1));
    assert!(
        bob.seen
            .iter()
            .any(|l| l.starts_with("online, verified: alice")),
        "the command was never answered"
    );
    assert!(bob.end_of_input(WAIT).success());
}
