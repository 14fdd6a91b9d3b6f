//! Real clients against the real relay, and against a malicious relay that
//! tries everything a compromised server could: every attempt is detected.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::time::Duration;

use blindrelay_adversary::evil_relay::{EvilRelay, Tamper};
use blindrelay_client::Event;
use blindrelay_client::Policy;
use blindrelay_pki::UserCertOptions;
use blindrelay_testkit::user::User;
use blindrelay_testkit::{TestPki, TestRelay, logs};

fn n(s: &str) -> blindrelay_wire::UserName {
    blindrelay_wire::UserName::new(s).unwrap()
}

/// How long "nothing else arrives" is watched for.
const QUIET: std::time::Duration = std::time::Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_both_ways_and_the_relay_logs_no_plaintext() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::start(&s).await.unwrap();
    let addr = relay.address();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    alice.wait_online("bob").await.unwrap();
    alice
        .send(&["bob"], "Hello Bob! secret-word-zebra")
        .await
        .unwrap();
    assert_eq!(
        bob.message().await.unwrap(),
        ("alice", "Hello Bob! secret-word-zebra", false)
    );
    match alice
        .wait_for("sent", |e| matches!(e, Event::Sent { .. }))
        .await
        .unwrap()
    {
        Event::Sent { delivered, .. } => assert_eq!(delivered, 1),
        _ => unreachable!(),
    }
    bob.send(&["alice"], "Hello Alice! secret-word-yak")
        .await
        .unwrap();
    assert_eq!(
        alice.message().await.unwrap().text,
        "Hello Alice! secret-word-yak"
    );
    // The relay ran with --verbose (it logs what it sees): never plaintext.
    let logs = logs::text();
    assert!(logs.contains("[SERVER SEES]"), "verbose preview missing");
    assert!(
        !logs.contains("secret-word"),
        "plaintext in the relay's logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_users_room_and_a_64_kib_message_without_tripping_the_rate_limit() {
    let s = TestPki::named("Client Test CA", &["alice", "bob", "carol", "dave"]).unwrap();
    let relay = TestRelay::start(&s).await.unwrap();
    let addr = relay.address();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut others = vec![];
    for u in ["bob", "carol", "dave"] {
        others.push(User::connect(&s, u, &addr).await.unwrap());
        alice.wait_online(u).await.unwrap();
    }
    let online = alice.handle.online().await.unwrap();
    assert_eq!(online.len(), 3);
    alice
        .handle
        .send(online, "room hello".into(), true)
        .await
        .unwrap();
    for o in &mut others {
        assert_eq!(o.message().await.unwrap(), ("alice", "room hello", true));
    }
    // The room message, the largest message (64 KiB, 17 frames) and 7 short
    // ones: 9 messages in the window but far more frames; the relay counts
    // messages, not frames.
    let big: String = "0123456789abcdef".repeat(4096);
    assert_eq!(big.len(), 64 * 1024);
    alice.send(&["bob"], &big).await.unwrap();
    for i in 0..7 {
        alice.send(&["carol"], &format!("short {i}")).await.unwrap();
    }
    assert_eq!(others[0].message().await.unwrap().text, big);
    for i in 0..7 {
        assert_eq!(
            others[1].message().await.unwrap().text,
            format!("short {i}")
        );
    }
    // And a message over the limit is refused locally.
    let too_big = "x".repeat(64 * 1024 + 1);
    assert!(
        alice
            .handle
            .send(vec![n("bob")], too_big, false)
            .await
            .is_err()
    );
    // Alice is still connected.
    alice.send(&["dave"], "still here").await.unwrap();
    assert_eq!(others[2].message().await.unwrap().text, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_relay_flipping_bits_is_detected() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::FlipBit).await.unwrap();
    let addr = evil.addr.to_string();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    alice.wait_online("bob").await.unwrap();
    for text in ["short", &"long ".repeat(3000)] {
        alice.send(&["bob"], text).await.unwrap();
        assert!(
            bob.warning()
                .await
                .unwrap()
                .contains("could not be authenticated or decrypted")
        );
        assert!(bob.quiet(QUIET).await.0.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_rejected_also_after_a_client_restart() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::Replay).await.unwrap();
    let addr = evil.addr.to_string();
    let state = s.dir.path().join("bob-state.db");
    let st = state.clone();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect_with(&s, "bob", &addr, |c| c.state = Some(st))
        .await
        .unwrap();
    alice.wait_online("bob").await.unwrap();
    alice.send(&["bob"], "pay 100").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "pay 100");
    assert!(bob.warning().await.unwrap().contains("replayed message"));
    // Bob restarts (new process state, same database); the relay replays.
    bob.handle.quit().await;
    drop(bob);
    let st = state.clone();
    let mut bob = User::connect_with(&s, "bob", &addr, |c| c.state = Some(st))
        .await
        .unwrap();
    assert!(evil.replay_all() > 0);
    assert!(bob.warning().await.unwrap().contains("replayed message"));
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retargeted_and_forged_sender_messages_are_rejected() {
    let s = TestPki::named("Client Test CA", &["alice", "bob", "carol"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::Retarget(n("carol")))
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    let mut carol = User::connect(&s, "carol", &addr).await.unwrap();
    alice.wait_online("bob").await.unwrap();
    alice.send(&["bob"], "for bob").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "for bob");
    assert!(
        carol
            .warning()
            .await
            .unwrap()
            .contains("not addressed to me")
    );
    assert!(carol.quiet(QUIET).await.0.is_empty());
    drop((alice, bob, carol, evil));

    let evil = EvilRelay::start(&s.pki, Tamper::ForgeSender(n("carol")))
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    let _carol = User::connect(&s, "carol", &addr).await.unwrap();
    alice.wait_online("bob").await.unwrap();
    bob.wait_online("carol").await.unwrap();
    alice.send(&["bob"], "from alice").await.unwrap();
    assert!(
        bob.warning()
            .await
            .unwrap()
            .contains("sender does not match")
    );
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_certificates_are_refused() {
    let s = TestPki::named("Client Test CA", &["alice", "bob", "mallory"]).unwrap();
    let other = TestPki::named("Client Test CA", &["bob"]).unwrap();
    let cases = [
        (
            s.cert_der("mallory").unwrap(),
            "certificate is for \"mallory\"",
        ),
        (other.cert_der("bob").unwrap(), "certificate rejected"),
    ];
    for (der, why) in cases {
        let evil = EvilRelay::start(
            &s.pki,
            Tamper::SwapCert {
                victim: n("bob"),
                cert_der: der,
            },
        )
        .await
        .unwrap();
        let addr = evil.addr.to_string();
        let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
        let bob = User::connect(&s, "bob", &addr).await.unwrap();
        let w = alice.warning().await.unwrap();
        assert!(w.contains("REFUSED") && w.contains(why), "{w}");
        assert!(
            alice
                .handle
                .send(vec![n("bob")], "secret".into(), false)
                .await
                .is_err()
        );
        // And bob's messages to alice are not accepted either.
        bob.send(&["alice"], "hi").await.unwrap();
        assert!(
            alice
                .warning()
                .await
                .unwrap()
                .contains("unknown or unverified sender")
        );
        assert!(alice.quiet(QUIET).await.0.is_empty());
    }
}

/// Alice (state in `state`) meets bob for the first time, notes their
/// safety number, and bob leaves.
async fn alice_met_bob_who_left(
    s: &TestPki,
    addr: &str,
    state: &std::path::Path,
) -> (User, String) {
    let st = state.to_path_buf();
    let mut alice = User::connect_with(s, "alice", addr, |c| c.state = Some(st))
        .await
        .unwrap();
    let bob = User::connect(s, "bob", addr).await.unwrap();
    match alice
        .wait_for("join", |e| matches!(e, Event::Joined { .. }))
        .await
        .unwrap()
    {
        Event::Joined { first_contact, .. } => assert!(first_contact),
        _ => unreachable!(),
    }
    let sn = alice.handle.safety_number(n("bob")).await.unwrap();
    bob.handle.quit().await;
    (alice, sn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_triggers_the_pin_warning_until_accepted() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::start(&s).await.unwrap();
    let addr = relay.address();
    let state = s.dir.path().join("alice.db");
    let (mut alice, sn_before) = alice_met_bob_who_left(&s, &addr, &state).await;
    // Bob gets a new certificate (new key) from the CA.
    s.pki
        .issue(&n("bob"), &UserCertOptions::valid_for_days(1), true)
        .unwrap();
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    match alice
        .wait_for("key change", |e| matches!(e, Event::KeyChanged { .. }))
        .await
        .unwrap()
    {
        Event::KeyChanged {
            name,
            pinned,
            offered,
        } => {
            assert_eq!(name.as_str(), "bob");
            assert_ne!(pinned, offered);
        }
        _ => unreachable!(),
    }
    let err = alice
        .handle
        .send(vec![n("bob")], "x".into(), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
    bob.send(&["alice"], "it's me").await.unwrap();
    // (The old certificate was revoked: the relay's new CRL may make alice
    // warn about it first.)
    alice
        .wait_for(
            "the held message",
            |e| matches!(e, Event::Warning(w) if w.contains("certificate changed")),
        )
        .await
        .unwrap();
    // Accepting without looking at the new safety number is refused.
    assert!(alice.handle.accept_key(n("bob")).await.is_err());
    // The user compares safety numbers, then accepts.
    let shown = alice.handle.safety_number(n("bob")).await.unwrap();
    assert!(shown.contains("NEW certificate"), "{shown}");
    alice.handle.accept_key(n("bob")).await.unwrap();
    let sn_after = alice.handle.safety_number(n("bob")).await.unwrap();
    assert_ne!(sn_before, sn_after);
    alice.send(&["bob"], "welcome back").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "welcome back");
    // The new pin persists across a restart: no warning next time.
    alice.handle.quit().await;
    drop(alice);
    let st = state.clone();
    let mut alice = User::connect_with(&s, "alice", &addr, |c| c.state = Some(st))
        .await
        .unwrap();
    alice.wait_online("bob").await.unwrap();
    alice.send(&["bob"], "after restart").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_for_the_same_key_is_silent_and_keeps_the_safety_number() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::start(&s).await.unwrap();
    let addr = relay.address();
    let state = s.dir.path().join("alice.db");
    let (mut alice, sn_before) = alice_met_bob_who_left(&s, &addr, &state).await;
    // Bob's certificate is renewed for the key he already has.
    let old = s.cert_der("bob").unwrap();
    let renewed = s.pki.renew(&n("bob"), 90).unwrap();
    assert!(renewed.revoked.is_none());
    assert_ne!(s.cert_der("bob").unwrap(), old);
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    // Alice sees bob come back as a known contact, with no warning.
    match alice
        .wait_for("bob's return", |e| {
            matches!(
                e,
                Event::Joined { .. } | Event::KeyChanged { .. } | Event::Warning(_)
            )
        })
        .await
        .unwrap()
    {
        Event::Joined {
            name,
            first_contact,
            ..
        } => assert!(name.as_str() == "bob" && !first_contact),
        other => panic!("a renewal raised {other:?}"),
    }
    assert_eq!(
        alice.handle.safety_number(n("bob")).await.unwrap(),
        sn_before
    );
    alice.send(&["bob"], "still you").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "still you");
    bob.send(&["alice"], "still me").await.unwrap();
    assert_eq!(alice.message().await.unwrap().text, "still me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_shown_late_and_one_past_the_clients_maximum_age_is_refused() {
    let s = TestPki::named("Client Test CA", &["alice", "bob", "carol"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::Delay(Duration::from_millis(1500)))
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    // bob shows messages older than 1 s as late; carol refuses them.
    let mut bob = User::connect_with(&s, "bob", &addr, |c| {
        c.policy = Policy {
            live_window_ms: 1000,
            ..Policy::default()
        }
    })
    .await
    .unwrap();
    let mut carol = User::connect_with(&s, "carol", &addr, |c| {
        c.policy = Policy {
            live_window_ms: 500,
            max_age_ms: 1000,
            ..Policy::default()
        }
    })
    .await
    .unwrap();
    alice.wait_online("bob").await.unwrap();
    alice.wait_online("carol").await.unwrap();
    alice.send(&["bob", "carol"], "old news").await.unwrap();
    match bob
        .wait_for("a message", |e| matches!(e, Event::Message { .. }))
        .await
        .unwrap()
    {
        Event::Message { text, late, .. } => assert!(late && text == "old news"),
        _ => unreachable!(),
    }
    assert!(carol.warning().await.unwrap().contains("too old"));
    assert!(carol.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_changes_its_ttl_between_sessions_cannot_replay_an_old_message() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::Honest).await.unwrap();
    let addr = evil.addr.to_string();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    // Short live windows, so that a client deriving its replay memory from
    // the relay's TTL would forget within one housekeeping tick.
    let mut bob = User::connect_with(&s, "bob", &addr, |c| {
        c.policy = Policy {
            live_window_ms: 1000,
            max_future_ms: 1000,
            ..Policy::default()
        }
    })
    .await
    .unwrap();
    alice.wait_online("bob").await.unwrap();
    alice.send(&["bob"], "pay 100").await.unwrap();
    assert_eq!(bob.message().await.unwrap(), ("alice", "pay 100", false));
    // One session announcing a TTL of 0, long enough for housekeeping...
    evil.set_store_ttl(0);
    evil.disconnect(&n("bob"));
    bob.wait_for("a new session", |e| matches!(e, Event::Connected { .. }))
        .await
        .unwrap();
    tokio::time::sleep(blindrelay_client::connection::TICK + Duration::from_secs(1)).await;
    // ...then one announcing 30 days, and the recorded message "from the
    // store".
    evil.set_store_ttl(30 * 24 * 3600);
    evil.disconnect(&n("bob"));
    bob.wait_for("a new session", |e| matches!(e, Event::Connected { .. }))
        .await
        .unwrap();
    assert!(evil.replay_all_as_stored() > 0);
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_flips_the_receipt_flag_cannot_suppress_the_genuine_message() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::FlipReceiptFlag)
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect(&s, "bob", &addr).await.unwrap();
    alice.wait_online("bob").await.unwrap();
    // The text arrives labelled as a receipt: refused, and not remembered.
    alice.send(&["bob"], "pay 100").await.unwrap();
    assert!(
        bob.warning()
            .await
            .unwrap()
            .contains("content does not match its label")
    );
    // The same frame with its true label (a resend, or the store) is shown:
    // the flipped copy could not make it look like a replay.
    assert!(evil.replay_all() > 0);
    assert_eq!(bob.message().await.unwrap(), ("alice", "pay 100", false));
    // bob's receipt reaches alice labelled as a text: refused too.
    assert!(
        alice
            .warning()
            .await
            .unwrap()
            .contains("content does not match its label")
    );
}
