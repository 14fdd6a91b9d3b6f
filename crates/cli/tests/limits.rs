//! Issue 29 through the real binary: a script's client killed with
//! SIGKILL in the middle of a burst it handed over, on the relay's limit,
//! sends the rest once it is started again; the reader sees each message
//! once. (Protocol v1, whose outbox is on disk; v2 has none yet.)
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::collections::HashMap;
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
