//! Issue 29 through the real binary: a script's client killed with
//! SIGKILL in the middle of a burst it handed over, on the relay's limit,
//! sends the rest once it is started again; the reader sees each message
//! once. The same for protocol v2, and a v2 burst through a relay killed
//! and restarted in the middle of it.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use blindrelay_testkit::process::free_port;
use common::*;

#[test]
fn a_client_killed_mid_burst_sends_the_rest_after_a_restart_and_nothing_twice() {
    const N: usize = 40;
    let d = tempfile::tempdir().unwrap();
    // 20 messages per second: the burst takes two seconds to leave.
    std::fs::write(
        d.path().join("relay.toml"),
        "rate_max_messages = 20\nrate_window_ms = 1000\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    setup_roles(d.path(), &["alice", "bob"]);
    let _relay = start_relay_at(d.path(), &addr, &["--config", "relay.toml"]);
    let bob = JsonClient::start(d.path(), "bob", &addr);
    bob.next("connected", Duration::from_secs(10));
    let mut alice = JsonClient::start(d.path(), "alice", &addr);
    alice.next("connected", Duration::from_secs(10));
    let stdin = alice.child.stdin.as_mut().unwrap();
    for i in 0..N {
        writeln!(stdin, r#"{{"cmd":"send","to":"bob","text":"m{i:03}"}}"#).unwrap();
    }
    // Every command is in the outbox once its `sending` came; kill alice
    // when all are, and a few have left.
    let (mut queued, mut stored) = (0, 0);
    while queued < N || stored < 5 {
        let v = alice.events.recv_timeout(Duration::from_secs(30)).unwrap();
        match v["event"].as_str() {
            Some("sending") => queued += 1,
            Some("stored") => stored += 1,
            Some("error") => panic!("{v}"),
            _ => {}
        }
    }
    alice.child.kill().unwrap();
    let _ = alice.child.wait();
    drop(alice);
    let alice = JsonClient::start(d.path(), "alice", &addr);
    alice.next("connected", Duration::from_secs(10));
    let mut got: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < N {
        assert!(Instant::now() < deadline, "bob has {} of {N}", got.len());
        let Ok(v) = bob.events.recv_timeout(Duration::from_secs(30)) else {
            let mut a = Vec::new();
            while let Ok(e) = alice.events.try_recv() {
                a.push(e.to_string());
            }
            panic!("bob has {} of {N}: {got:?}; alice: {a:?}", got.len());
        };
        if v["event"] != "message" {
            continue;
        }
        *got.entry(v["text"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let quiet = Instant::now() + Duration::from_secs(2);
    while let Ok(v) = bob
        .events
        .recv_timeout(quiet.saturating_duration_since(Instant::now()))
    {
        if v["event"] == "message" {
            *got.entry(v["text"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert!(got.values().all(|n| *n == 1), "shown twice: {got:?}");
    assert!((0..N).all(|i| got.contains_key(&format!("m{i:03}"))));
    alice.quit();
    bob.quit();
}

/// A relay pacing v2 devices at 10 requests a second, alice's and bob's
/// laptops enrolled, and their one-to-one conversation made (alice's first
/// message read by bob): the relay's address, the relay, alice, bob.
fn v2_pair(
    d: &std::path::Path,
) -> (
    String,
    blindrelay_testkit::RelayProcess,
    JsonClient,
    JsonClient,
) {
    std::fs::write(
        d.join("relay.toml"),
        "v2_rate_max_requests = 10\nv2_person_rate_max_requests = 40\nrate_window_ms = 1000\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    setup_roles(d, &[]);
    let alice_dir = enroll_device(d, "alice", "laptop");
    let bob_dir = enroll_device(d, "bob", "laptop");
    let relay = start_relay_at(d, &addr, &["--config", "relay.toml"]);
    let bob = v2_chat(d, "bob", &bob_dir, &addr);
    let mut alice = v2_chat(d, "alice", &alice_dir, &addr);
    alice.command(r#"{"cmd":"send","to":"bob","text":"hello"}"#);
    alice.next("sent", Duration::from_secs(30));
    loop {
        let v = bob.next("message", Duration::from_secs(30));
        if v["text"] == "hello" {
            break;
        }
    }
    (addr, relay, alice, bob)
}

fn v2_chat(d: &std::path::Path, user: &str, dir: &str, addr: &str) -> JsonClient {
    let c = JsonClient::start_args(d, &[user, "--dir", dir, "--server", addr]);
    let v = c.next("connected", Duration::from_secs(30));
    assert_eq!(v["protocol"], "v2", "{v}");
    c
}

/// Reads bob's messages until every id of `want` came (and 2 s more, for
/// duplicates); returns how often each id came.
fn read_all(bob: &JsonClient, want: &HashSet<String>) -> HashMap<String, usize> {
    let mut got: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !want.iter().all(|id| got.contains_key(id)) {
        assert!(
            Instant::now() < deadline,
            "bob has {} of {}",
            got.len(),
            want.len()
        );
        let v = bob.next("message", Duration::from_secs(60));
        *got.entry(v["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let quiet = Instant::now() + Duration::from_secs(2);
    while let Ok(v) = bob
        .events
        .recv_timeout(quiet.saturating_duration_since(Instant::now()))
    {
        if v["event"] == "message" {
            *got.entry(v["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    got
}

#[test]
fn a_v2_client_killed_mid_burst_sends_what_it_took_after_a_restart_and_nothing_twice() {
    const N: usize = 40;
    let d = tempfile::tempdir().unwrap();
    let (addr, _relay, mut alice, bob) = v2_pair(d.path());
    let stdin = alice.child.stdin.as_mut().unwrap();
    for i in 0..N {
        writeln!(stdin, r#"{{"cmd":"send","to":"bob","text":"m{i:03}"}}"#).unwrap();
    }
    // What alice took (its `sending` came) must arrive; kill her halfway.
    let (mut taken, mut sent) = (HashSet::new(), 0);
    while taken.len() < N / 2 || sent < 5 {
        let v = alice.events.recv_timeout(Duration::from_secs(30)).unwrap();
        match v["event"].as_str() {
            Some("sending") => {
                taken.insert(v["id"].as_str().unwrap().to_string());
            }
            Some("sent") => sent += 1,
            Some("error") => panic!("{v}"),
            _ => {}
        }
    }
    // Messages were taken and not sent yet: only the outbox on disk has them.
    assert!(sent < taken.len(), "{sent} of {} sent", taken.len());
    alice.child.kill().unwrap();
    let _ = alice.child.wait();
    drop(alice);
    let alice = v2_chat(d.path(), "alice", "alice-laptop", &addr);
    let got = read_all(&bob, &taken);
    assert!(got.values().all(|n| *n == 1), "shown twice: {got:?}");
    // The restarted client paced from what the relay had counted before
    // the kill: it was never cut off.
    while let Ok(v) = alice.events.try_recv() {
        assert_ne!(v["event"], "reconnecting", "{v}");
    }
    alice.quit();
    bob.quit();
}

#[test]
fn a_v2_burst_through_a_relay_killed_and_restarted_mid_way_arrives_once() {
    const N: usize = 40;
    let d = tempfile::tempdir().unwrap();
    let (addr, relay, mut alice, bob) = v2_pair(d.path());
    let stdin = alice.child.stdin.as_mut().unwrap();
    for i in 0..N {
        writeln!(stdin, r#"{{"cmd":"send","to":"bob","text":"m{i:03}"}}"#).unwrap();
    }
    let mut relay = Some(relay);
    let mut restarted = None;
    let (mut taken, mut sent) = (HashSet::new(), HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while sent.len() < N {
        assert!(Instant::now() < deadline, "{} of {N} sent", sent.len());
        let v = alice.events.recv_timeout(Duration::from_secs(60)).unwrap();
        match v["event"].as_str() {
            Some("sending") => {
                taken.insert(v["id"].as_str().unwrap().to_string());
            }
            Some("sent") => {
                sent.insert(v["id"].as_str().unwrap().to_string());
            }
            Some("error" | "undelivered") => panic!("{v}"),
            _ => {}
        }
        if relay.is_some() && sent.len() >= N / 4 {
            let mut r = relay.take().unwrap();
            r.child.kill().unwrap();
            let _ = r.child.wait();
            drop(r);
            std::thread::sleep(Duration::from_millis(300));
            // The same address and store; both clients reconnect by
            // themselves.
            restarted = Some(start_relay_at(d.path(), &addr, &["--config", "relay.toml"]));
        }
    }
    assert!(restarted.is_some(), "the relay was restarted mid-burst");
    assert_eq!(taken, sent, "every message taken was sent, each once");
    let got = read_all(&bob, &taken);
    assert!(got.values().all(|n| *n == 1), "shown twice: {got:?}");
    alice.quit();
    bob.quit();
}

/// Hands `MAX_OUTBOX_WAITING + 10` messages to `c` through a relay that
/// takes 10 per 5 s: the chat says `outbox_full` and stops taking
/// commands, and refuses none.
fn outbox_fills(c: &mut JsonClient, to: &str) {
    const MAX: usize = 1_000; // blindrelay_client::store::MAX_OUTBOX_WAITING
    let stdin = c.child.stdin.as_mut().unwrap();
    for i in 0..MAX + 10 {
        writeln!(stdin, r#"{{"cmd":"send","to":"{to}","text":"m{i:04}"}}"#).unwrap();
    }
    let (mut taken, mut sent) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let full = loop {
        assert!(Instant::now() < deadline, "{taken} taken, no outbox_full");
        let v = c.events.recv_timeout(Duration::from_secs(60)).unwrap();
        match v["event"].as_str() {
            Some("sending") => taken += 1,
            Some("sent" | "stored") => sent += 1,
            Some("outbox_full") => break v,
            Some("error" | "undelivered") => panic!("{v}"),
            _ => {}
        }
    };
    assert!(full["waiting"].as_u64().unwrap() >= MAX as u64, "{full}");
    // Nothing more is taken while it is full (the relay takes two a
    // second, far from the tenth that would open it again); `sending`
    // events of what was taken before may still come (v1 prints them from
    // another task).
    let quiet = Instant::now() + Duration::from_secs(2);
    while let Ok(v) = c
        .events
        .recv_timeout(quiet.saturating_duration_since(Instant::now()))
    {
        match v["event"].as_str() {
            Some("sending") => taken += 1,
            Some("sent" | "stored") => sent += 1,
            Some("error" | "undelivered") => panic!("{v}"),
            _ => {}
        }
    }
    assert!(taken <= MAX + sent, "{taken} taken, {sent} sent");
    assert!(taken >= MAX, "{taken} taken");
}

#[test]
fn a_script_past_the_outbox_bound_is_told_and_slowed_down_not_refused_in_both_protocols() {
    let d = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    setup_roles(d.path(), &["alice", "bob"]);
    let alice_dir = enroll_device(d.path(), "carol", "laptop");
    let _bob_dir = enroll_device(d.path(), "dave", "laptop");
    let _relay = start_relay_at(d.path(), &addr, &[]);
    // Protocol v1: alice to bob.
    let bob = JsonClient::start(d.path(), "bob", &addr);
    bob.next("connected", Duration::from_secs(10));
    let mut alice = JsonClient::start(d.path(), "alice", &addr);
    alice.next("connected", Duration::from_secs(10));
    outbox_fills(&mut alice, "bob");
    // Protocol v2: carol's laptop to dave's.
    let dave = v2_chat(d.path(), "dave", "dave-laptop", &addr);
    let mut carol = v2_chat(d.path(), "carol", &alice_dir, &addr);
    outbox_fills(&mut carol, "dave");
    for c in [alice, bob, carol, dave] {
        let mut c = c;
        let _ = c.child.kill();
    }
}
