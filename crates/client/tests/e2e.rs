//! Real clients against the real relay, and against a malicious relay that
//! tries everything a compromised server could: every attempt is detected.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::time::Duration;

use blindrelay_adversary::evil_relay::{EvilRelay, Tamper};
use blindrelay_client::Event;
use blindrelay_e2e::Freshness;
use blindrelay_pki::UserCertOptions;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_both_ways_and_the_relay_logs_no_plaintext() {
    let s = setup(&["alice", "bob"]);
    let (addr, _stop) = relay(&s).await;
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user(&s, "bob", &addr).await;
    alice.online("bob").await;
    alice.send(&["bob"], "Hello Bob! secret-word-zebra").await;
    assert_eq!(
        bob.text().await,
        ("alice".into(), "Hello Bob! secret-word-zebra".into(), false)
    );
    match alice
        .until("sent", |e| matches!(e, Event::Sent { .. }))
        .await
    {
        Event::Sent { delivered, .. } => assert_eq!(delivered, 1),
        _ => unreachable!(),
    }
    bob.send(&["alice"], "Hello Alice! secret-word-yak").await;
    assert_eq!(alice.text().await.1, "Hello Alice! secret-word-yak");
    // The relay ran with --verbose (it logs what it sees): never plaintext.
    let logs = String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned();
    assert!(logs.contains("[SERVER SEES]"), "verbose preview missing");
    assert!(
        !logs.contains("secret-word"),
        "plaintext in the relay's logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_users_room_and_a_64_kib_message_without_tripping_the_rate_limit() {
    let s = setup(&["alice", "bob", "carol", "dave"]);
    let (addr, _stop) = relay(&s).await;
    let mut alice = user(&s, "alice", &addr).await;
    let mut others = vec![];
    for u in ["bob", "carol", "dave"] {
        others.push(user(&s, u, &addr).await);
        alice.online(u).await;
    }
    let online = alice.h.online().await.unwrap();
    assert_eq!(online.len(), 3);
    alice
        .h
        .send(online, "room hello".into(), true)
        .await
        .unwrap();
    for o in &mut others {
        assert_eq!(o.text().await, ("alice".into(), "room hello".into(), true));
    }
    // The room message, the largest message (64 KiB, 17 frames) and 7 short
    // ones: 9 messages in the window but far more frames; the relay counts
    // messages, not frames.
    let big: String = "0123456789abcdef".repeat(4096);
    assert_eq!(big.len(), 64 * 1024);
    alice.send(&["bob"], &big).await;
    for i in 0..7 {
        alice.send(&["carol"], &format!("short {i}")).await;
    }
    assert_eq!(others[0].text().await.1, big);
    for i in 0..7 {
        assert_eq!(others[1].text().await.1, format!("short {i}"));
    }
    // And a message over the limit is refused locally.
    let too_big = "x".repeat(64 * 1024 + 1);
    assert!(alice.h.send(vec![n("bob")], too_big, false).await.is_err());
    // Alice is still connected.
    alice.send(&["dave"], "still here").await;
    assert_eq!(others[2].text().await.1, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_relay_flipping_bits_is_detected() {
    let s = setup(&["alice", "bob"]);
    let evil = EvilRelay::start(&s.pki, Tamper::FlipBit).await.unwrap();
    let addr = evil.addr.to_string();
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user(&s, "bob", &addr).await;
    alice.online("bob").await;
    for text in ["short", &"long ".repeat(3000)] {
        alice.send(&["bob"], text).await;
        assert!(
            bob.warning()
                .await
                .contains("could not be authenticated or decrypted")
        );
        assert!(bob.messages_during_quiet().await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_rejected_also_after_a_client_restart() {
    let s = setup(&["alice", "bob"]);
    let evil = EvilRelay::start(&s.pki, Tamper::Replay).await.unwrap();
    let addr = evil.addr.to_string();
    let state = s.dir.path().join("bob-state.db");
    let st = state.clone();
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user_with(&s, "bob", &addr, |c| c.state = Some(st)).await;
    alice.online("bob").await;
    alice.send(&["bob"], "pay 100").await;
    assert_eq!(bob.text().await.1, "pay 100");
    assert!(bob.warning().await.contains("replayed message"));
    // Bob restarts (new process state, same database); the relay replays.
    bob.h.quit().await;
    drop(bob);
    let st = state.clone();
    let mut bob = user_with(&s, "bob", &addr, |c| c.state = Some(st)).await;
    assert!(evil.replay_all() > 0);
    assert!(bob.warning().await.contains("replayed message"));
    assert!(bob.messages_during_quiet().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retargeted_and_forged_sender_messages_are_rejected() {
    let s = setup(&["alice", "bob", "carol"]);
    let evil = EvilRelay::start(&s.pki, Tamper::Retarget(n("carol")))
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user(&s, "bob", &addr).await;
    let mut carol = user(&s, "carol", &addr).await;
    alice.online("bob").await;
    alice.send(&["bob"], "for bob").await;
    assert_eq!(bob.text().await.1, "for bob");
    assert!(carol.warning().await.contains("not addressed to me"));
    assert!(carol.messages_during_quiet().await.is_empty());
    drop((alice, bob, carol, evil));

    let evil = EvilRelay::start(&s.pki, Tamper::ForgeSender(n("carol")))
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user(&s, "bob", &addr).await;
    let _carol = user(&s, "carol", &addr).await;
    alice.online("bob").await;
    bob.online("carol").await;
    alice.send(&["bob"], "from alice").await;
    assert!(bob.warning().await.contains("sender does not match"));
    assert!(bob.messages_during_quiet().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_certificates_are_refused() {
    let s = setup(&["alice", "bob", "mallory"]);
    let other = setup(&["bob"]);
    let cases = [
        (
            std::fs::read(s.pki.user_cert_path(&n("mallory"))).unwrap(),
            "certificate is for \"mallory\"",
        ),
        (
            std::fs::read(other.pki.user_cert_path(&n("bob"))).unwrap(),
            "certificate rejected",
        ),
    ];
    for (pem, why) in cases {
        let der = rustls_pki_types_pem(&pem);
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
        let mut alice = user(&s, "alice", &addr).await;
        let bob = user(&s, "bob", &addr).await;
        let w = alice.warning().await;
        assert!(w.contains("REFUSED") && w.contains(why), "{w}");
        assert!(
            alice
                .h
                .send(vec![n("bob")], "secret".into(), false)
                .await
                .is_err()
        );
        // And bob's messages to alice are not accepted either.
        bob.send(&["alice"], "hi").await;
        assert!(
            alice
                .warning()
                .await
                .contains("unknown or unverified sender")
        );
        assert!(alice.messages_during_quiet().await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_triggers_the_pin_warning_until_accepted() {
    let s = setup(&["alice", "bob"]);
    let (addr, _stop) = relay(&s).await;
    let state = s.dir.path().join("alice.db");
    let st = state.clone();
    let mut alice = user_with(&s, "alice", &addr, |c| c.state = Some(st)).await;
    let bob = user(&s, "bob", &addr).await;
    match alice
        .until("join", |e| matches!(e, Event::Joined { .. }))
        .await
    {
        Event::Joined { first_contact, .. } => assert!(first_contact),
        _ => unreachable!(),
    }
    let sn_before = alice.h.safety_number(n("bob")).await.unwrap();
    bob.h.quit().await;
    drop(bob);
    // Bob gets a new certificate (new key) from the CA.
    s.pki
        .issue(&n("bob"), &UserCertOptions::valid_for_days(1), true)
        .unwrap();
    let mut bob = user(&s, "bob", &addr).await;
    match alice
        .until("key change", |e| matches!(e, Event::KeyChanged { .. }))
        .await
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
        .h
        .send(vec![n("bob")], "x".into(), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
    bob.send(&["alice"], "it's me").await;
    assert!(alice.warning().await.contains("certificate changed"));
    // Accepting without looking at the new safety number is refused.
    assert!(alice.h.accept_key(n("bob")).await.is_err());
    // The user compares safety numbers, then accepts.
    let shown = alice.h.safety_number(n("bob")).await.unwrap();
    assert!(shown.contains("NEW certificate"), "{shown}");
    alice.h.accept_key(n("bob")).await.unwrap();
    let sn_after = alice.h.safety_number(n("bob")).await.unwrap();
    assert_ne!(sn_before, sn_after);
    alice.send(&["bob"], "welcome back").await;
    assert_eq!(bob.text().await.1, "welcome back");
    // The new pin persists across a restart: no warning next time.
    alice.h.quit().await;
    drop(alice);
    let st = state.clone();
    let mut alice = user_with(&s, "alice", &addr, |c| c.state = Some(st)).await;
    alice.online("bob").await;
    alice.send(&["bob"], "after restart").await;
    assert_eq!(bob.text().await.1, "after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_messages_are_rejected() {
    let s = setup(&["alice", "bob"]);
    let evil = EvilRelay::start(&s.pki, Tamper::Delay(Duration::from_millis(1500)))
        .await
        .unwrap();
    let addr = evil.addr.to_string();
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user_with(&s, "bob", &addr, |c| {
        c.freshness = Freshness {
            max_age_ms: 1000,
            ..Freshness::default()
        }
    })
    .await;
    alice.online("bob").await;
    alice.send(&["bob"], "old news").await;
    assert!(bob.warning().await.contains("too old"));
    assert!(bob.messages_during_quiet().await.is_empty());
}
