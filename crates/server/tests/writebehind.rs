//! Write-behind: a message every recipient got live is confirmed by their
//! acknowledgements without a store write, and whatever they do not
//! acknowledge in time (or when the relay stops) is committed and survives
//! a restart.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::time::Duration;

use blindrelay_server::Config;
use blindrelay_testkit::raw::RawClient;
use blindrelay_testkit::relay::config;
use blindrelay_testkit::{TestPki, TestRelay};
use blindrelay_wire::UserName;
use blindrelay_wire::{Message, MessageId, Routed, StatusKind};

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

async fn expect_deliver(c: &mut RawClient, payload: &[u8]) -> Routed {
    match c.recv_skip_presence().await.unwrap() {
        Message::Deliver(r) => {
            assert_eq!(r.payload, payload);
            r
        }
        other => panic!("{} expected Deliver, got {other:?}", c.name),
    }
}

/// Reads `alice`'s statuses for `id` until `Stored`; returns it and the
/// time it took.
async fn until_stored(c: &mut RawClient, id: MessageId, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.try_recv(left).await {
            Ok(Some(Message::Status {
                msg_id,
                kind: StatusKind::Stored { recipients },
            })) if msg_id == id => return recipients,
            Ok(Some(_)) => {}
            Ok(None) => panic!("no Stored for the message within {within:?}"),
            Err(e) => panic!("stream ended: {e}"),
        }
    }
}

fn config_with(write_behind_ms: u64) -> Config {
    Config {
        write_behind_ms,
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_confirm_a_live_message_long_before_the_hold_ends() {
    let pki = TestPki::new(&["alice", "bob", "carol"]).unwrap();
    // The hold is far longer than the test may wait: only the two ACKs
    // can produce the confirmation.
    let server = TestRelay::with_config(&pki, config_with(10_000))
        .await
        .unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let mut carol = RawClient::connect(server.addr, &pki, "carol")
        .await
        .unwrap();
    let id = alice.send_to(&["bob", "carol"], b"to both").await.unwrap();
    expect_deliver(&mut bob, b"to both").await;
    expect_deliver(&mut carol, b"to both").await;
    bob.send(&Message::Ack(vec![(n("alice"), id)]))
        .await
        .unwrap();
    // One of two acknowledged: no confirmation yet.
    let quiet = Duration::from_millis(500);
    loop {
        match alice.try_recv(quiet).await {
            Ok(Some(Message::Status {
                kind: StatusKind::Stored { .. },
                ..
            })) => panic!("confirmed before every recipient acknowledged"),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("{e}"),
        }
    }
    carol
        .send(&Message::Ack(vec![(n("alice"), id)]))
        .await
        .unwrap();
    assert_eq!(
        until_stored(&mut alice, id, Duration::from_secs(3)).await,
        2
    );
    // Nothing was left in the store for either of them.
    drop((bob, carol));
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    bob.expect_silence(Duration::from_millis(400))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_live_message_is_committed_after_the_hold_and_survives_a_restart() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let server = TestRelay::start_durable(&pki, config_with(300), &db)
        .await
        .unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let id = alice
        .send_to(&["bob"], b"never acknowledged")
        .await
        .unwrap();
    expect_deliver(&mut bob, b"never acknowledged").await;
    // bob does not acknowledge: after the hold the relay commits it.
    assert_eq!(
        until_stored(&mut alice, id, Duration::from_secs(5)).await,
        1
    );
    drop(bob);
    server.stop().await.unwrap();

    let server = TestRelay::start_durable(&pki, config_with(300), &db)
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let r = expect_deliver(&mut bob, b"never acknowledged").await;
    assert_eq!(r.header.flags, blindrelay_wire::RoutedFlags::STORED);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_commits_every_held_message() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let server = TestRelay::start_durable(&pki, config_with(10_000), &db)
        .await
        .unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    for i in 0..5u8 {
        alice.send_to(&["bob"], &[i; 10]).await.unwrap();
    }
    for i in 0..5u8 {
        expect_deliver(&mut bob, &[i; 10]).await;
    }
    // Stop long before the 10 s hold ends; the shutdown must not wait for
    // it either (TestServer::shutdown allows a few seconds).
    let stopped = tokio::time::Instant::now();
    server.stop().await.unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(5));
    // alice is told that all five are stored before she is told goodbye.
    let mut stored = 0;
    loop {
        match alice.try_recv(Duration::from_secs(2)).await {
            Ok(Some(Message::Status {
                kind: StatusKind::Stored { recipients: 1 },
                ..
            })) => stored += 1,
            Ok(Some(Message::Goodbye { .. })) | Ok(None) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
    assert_eq!(stored, 5, "every held message confirmed before the goodbye");
    drop((alice, bob));

    let server = TestRelay::start_durable(&pki, config_with(10_000), &db)
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    // Held messages released together are committed concurrently, so the
    // backlog has all of them, not necessarily in sending order.
    let mut got = Vec::new();
    for _ in 0..5 {
        match bob.recv_skip_presence().await.unwrap() {
            Message::Deliver(r) => {
                assert_eq!(r.header.flags, blindrelay_wire::RoutedFlags::STORED);
                got.push(r.payload);
            }
            other => panic!("expected Deliver, got {other:?}"),
        }
    }
    got.sort();
    assert_eq!(got, (0..5u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
    bob.expect_silence(Duration::from_millis(300))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_logs_in_during_the_hold_gets_the_held_message() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config_with(10_000))
        .await
        .unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    alice.send_to(&["bob"], b"held").await.unwrap();
    expect_deliver(&mut bob, b"held").await;
    // bob's connection drops before he acknowledges; he comes back at once.
    drop(bob);
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let r = expect_deliver(&mut bob, b"held").await;
    assert_eq!(r.header.flags, blindrelay_wire::RoutedFlags::STORED);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_behind_off_commits_before_confirming() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config_with(0)).await.unwrap();
    let mut alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    let id = alice.send_to(&["bob"], b"x").await.unwrap();
    expect_deliver(&mut bob, b"x").await;
    // No ACK, no hold: confirmed as soon as it is committed.
    assert_eq!(
        until_stored(&mut alice, id, Duration::from_secs(2)).await,
        1
    );
    server.stop().await.unwrap();
}

#[test]
fn the_hold_is_bounded() {
    let c = Config {
        write_behind_ms: blindrelay_server::config::MAX_WRITE_BEHIND_MS + 1,
        ..Config::default()
    };
    assert!(c.validate().is_err());
}
