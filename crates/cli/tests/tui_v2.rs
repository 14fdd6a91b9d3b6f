//! The full-screen client on a device never waits for the relay (issue
//! 22): with the relay's answers held back for 10 s in the middle of
//! making a group, typing and scrolling go on, and the group is made when
//! the answers come.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::tmux::{Tmux, tmux_available};
use common::*;

/// A TCP proxy in front of the relay that can hold back what the relay
/// sends (TLS passes through untouched: only its timing changes).
struct SlowRelay {
    addr: String,
    hold_until: Arc<Mutex<Option<Instant>>>,
}

impl SlowRelay {
    fn start(relay: &str) -> SlowRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hold_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (relay, hold) = (relay.to_string(), hold_until.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(&relay) else {
                    continue;
                };
                let (mut c_rd, mut u_wr) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_rd, &mut u_wr);
                });
                let (mut u_rd, mut c_wr, hold) = (upstream, client, hold.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match u_rd.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let until = *hold.lock().unwrap();
                        if let Some(t) = until {
                            std::thread::sleep(t.saturating_duration_since(Instant::now()));
                        }
                        if c_wr.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SlowRelay { addr, hold_until }
    }

    /// Holds everything the relay sends from now on for `d`.
    fn hold(&self, d: Duration) {
        *self.hold_until.lock().unwrap() = Some(Instant::now() + d);
    }
}

#[test]
fn the_full_screen_client_types_and_scrolls_while_the_relay_answers_a_group_10_s_late() {
    if !tmux_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    setup_roles(d.path(), &[]);
    let relay = start_relay_at(d.path(), "127.0.0.1:0", &[]);
    let alice_dir = enroll_device(d.path(), "alice", "laptop");
    let bob_dir = enroll_device(d.path(), "bob", "laptop");
    // bob's device connects once, so that the relay holds its KeyPackages.
    must(
        d.path(),
        &[
            "send",
            "bob",
            "--dir",
            &bob_dir,
            "--server",
            &relay.addr,
            "--to",
            "bob",
            "hi me",
        ],
    );
    let slow = SlowRelay::start(&relay.addr);
    let alice = Tmux::start(
        d.path(),
        &format!("chat alice --dir {alice_dir} --server {}", slow.addr),
        100,
        24,
    );
    alice.wait("the connection", |s| {
        s.contains("\u{2502} connected \u{2502}")
    });
    // A conversation longer than the screen, to scroll.
    for i in 0..40 {
        alice.keys(&[&format!("/msg bob line {i:02}"), "Enter"]);
    }
    let s = alice.wait("the last line", |s| s.contains("line 39"));
    assert!(!s.contains("line 00"), "{s}");
    // The relay's answers come 10 s late from now: making a group waits
    // for them (a KeyPackage claim, then the commit).
    slow.hold(Duration::from_secs(10));
    let asked = Instant::now();
    alice.keys(&["/group create crew bob", "Enter"]);
    alice.keys(&["still typing"]);
    let s = alice.wait("the typed text", |s| s.contains("still typing"));
    assert!(
        !s.contains("crew (protocol v2"),
        "the group waits for the relay: {s}"
    );
    alice.keys(&["PPage"; 3]);
    let s = alice.wait("earlier lines", |s| s.contains("line 0"));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the screen waited for the relay ({:?})",
        asked.elapsed()
    );
    assert!(!s.contains("crew (protocol v2"), "{s}");
    // The answers come: the group is made.
    alice.wait("the group made", |s| s.contains("crew (protocol v2"));
    assert!(asked.elapsed() >= Duration::from_secs(9));
    alice.keys(&["C-c"]);
    alice.wait("the exit", |s| s.contains("EXITED:0"));
}
