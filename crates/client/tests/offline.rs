//! Offline delivery that loses nothing: store-and-forward through the real
//! relay with its SQLite store, restarts, dropped connections, quotas,
//! expiry and replays.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::collections::HashSet;
use std::time::Duration;

use blindrelay_adversary::evil_relay::{EvilRelay, Tamper};
use blindrelay_client::{Event, UndeliveredReason};
use blindrelay_server::Config;
use common::*;

/// Waits for the `Stored` confirmation of each id.
async fn await_stored(u: &mut U, ids: &[blindrelay_wire::MessageId]) {
    let mut left: HashSet<_> = ids.iter().copied().collect();
    while !left.is_empty() {
        if let Event::Stored { msg_id, .. } = u
            .until("stored", |e| matches!(e, Event::Stored { .. }))
            .await
        {
            left.remove(&msg_id);
        }
    }
}

/// Collects `n` messages (texts in arrival order).
async fn collect(u: &mut U, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    while v.len() < n {
        v.push(u.text().await.1);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_user_reads_everything_once_in_order_after_a_relay_restart() {
    let s = setup(&["alice", "bob"]);
    let relay = Relay::start(&s, Config::default(), "127.0.0.1:0").await;
    // bob has logged in once, so the relay knows his certificate.
    let bob = user(&s, "bob", &relay.addr).await;
    bob.h.quit().await;
    drop(bob);
    let mut alice = user(&s, "alice", &relay.addr).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            alice
                .h
                .send(vec![n("bob")], format!("offline secret-{i:02}"), false)
                .await
                .unwrap(),
        );
    }
    await_stored(&mut alice, &ids).await;
    // Restart the relay: only the store survives.
    let addr = relay.stop().await;
    let relay = Relay::start(&s, Config::default(), &addr).await;
    // The database holds nothing readable.
    let mut raw = std::fs::read(s.dir.path().join("relay.db")).unwrap();
    raw.extend(std::fs::read(s.dir.path().join("relay.db-wal")).unwrap_or_default());
    assert!(
        !raw.windows(6).any(|w| w == b"secret"),
        "plaintext in the relay's store"
    );
    let st = s.dir.path().join("bob.db");
    let st2 = st.clone();
    let mut bob = user_with(&s, "bob", &relay.addr, move |c| c.state = Some(st2)).await;
    let got = collect(&mut bob, 8).await;
    let want: Vec<String> = (0..8).map(|i| format!("offline secret-{i:02}")).collect();
    assert_eq!(got, want);
    assert!(
        bob.messages_during_quiet().await.is_empty(),
        "a message came twice"
    );
    // Alice (reconnected by herself) gets bob's end-to-end receipts.
    let mut confirmed = HashSet::new();
    while confirmed.len() < 8 {
        if let Event::Delivered { msg_ids, by } = alice
            .until("receipt", |e| matches!(e, Event::Delivered { .. }))
            .await
        {
            assert_eq!(by.as_str(), "bob");
            confirmed.extend(msg_ids);
        }
    }
    assert_eq!(confirmed, ids.iter().copied().collect());
    // Acknowledged messages are gone: a new session of bob gets nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.h.quit().await;
    drop(bob);
    let mut bob = user_with(&s, "bob", &relay.addr, move |c| c.state = Some(st)).await;
    assert!(bob.messages_during_quiet().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_on_both_sides_lose_and_duplicate_nothing() {
    let s = setup(&["alice", "bob"]);
    let relay = Relay::start(
        &s,
        Config {
            rate_max_messages: 10_000,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await;
    let a_proxy = CutProxy::start(relay.addr.clone()).await;
    let b_proxy = CutProxy::start(relay.addr.clone()).await;
    let mut bob = user(&s, "bob", &b_proxy.addr).await;
    let mut alice = user(&s, "alice", &a_proxy.addr).await;
    alice.online("bob").await;
    const N: usize = 120;
    for i in 0..N {
        alice
            .h
            .send(vec![n("bob")], format!("m{i:03}"), false)
            .await
            .unwrap();
        if i == 40 {
            a_proxy.cut(); // the sender's connection drops mid-burst
        }
        if i == 80 {
            b_proxy.cut(); // and the recipient's
        }
    }
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {N} arrived",
            seen.len()
        );
        let (_, text, _) = bob.text().await;
        assert!(seen.insert(text.clone()), "{text} shown twice");
    }
    assert!(bob.messages_during_quiet().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_reported_and_expired_messages_are_not_delivered() {
    let s = setup(&["alice", "bob"]);
    let relay = Relay::start(
        &s,
        Config {
            quota_messages: 3,
            store_ttl_ms: 1_000,
            store_sweep_ms: 200,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await;
    let bob = user(&s, "bob", &relay.addr).await;
    bob.h.quit().await;
    drop(bob);
    let mut alice = user(&s, "alice", &relay.addr).await;
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(
            alice
                .h
                .send(vec![n("bob")], format!("fits {i}"), false)
                .await
                .unwrap(),
        );
    }
    await_stored(&mut alice, &ids).await;
    let over = alice
        .h
        .send(vec![n("bob")], "too many".into(), false)
        .await
        .unwrap();
    match alice
        .until("quota", |e| matches!(e, Event::Undelivered { .. }))
        .await
    {
        Event::Undelivered {
            msg_id,
            name,
            reason,
        } => {
            assert_eq!(
                (msg_id, name.as_str(), reason),
                (over, "bob", UndeliveredReason::QuotaExceeded)
            );
        }
        _ => unreachable!(),
    }
    // After the time to live the relay drops them.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let mut bob = user(&s, "bob", &relay.addr).await;
    assert!(bob.messages_during_quiet().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_hundreds_trips_no_limit() {
    let s = setup(&["alice", "bob"]);
    let relay = Relay::start(
        &s,
        Config {
            rate_max_messages: 10_000,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await;
    let bob = user(&s, "bob", &relay.addr).await;
    bob.h.quit().await;
    drop(bob);
    let mut alice = user(&s, "alice", &relay.addr).await;
    const N: usize = 400;
    let mut ids = vec![];
    for i in 0..N {
        ids.push(
            alice
                .h
                .send(vec![n("bob")], format!("backlog {i}"), false)
                .await
                .unwrap(),
        );
    }
    await_stored(&mut alice, &ids).await;
    // Default relay limits for bob: 10 messages / 5 s, 256-frame queue.
    let mut bob = user(&s, "bob", &relay.addr).await;
    let got = collect(&mut bob, N).await;
    assert_eq!(got.len(), N);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), N);
    // Still connected: a live message arrives.
    alice.send(&["bob"], "live after backlog").await;
    assert_eq!(bob.text().await.1, "live after backlog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_stored_envelope_is_rejected_after_a_restart() {
    let s = setup(&["alice", "bob"]);
    let evil = EvilRelay::start(&s.pki, Tamper::Honest).await.unwrap();
    let addr = evil.addr.to_string();
    let st = s.dir.path().join("bob-state.db");
    let st2 = st.clone();
    let mut alice = user(&s, "alice", &addr).await;
    let mut bob = user_with(&s, "bob", &addr, move |c| c.state = Some(st2)).await;
    alice.online("bob").await;
    alice.send(&["bob"], "pay 100 once").await;
    assert_eq!(bob.text().await.1, "pay 100 once");
    bob.h.quit().await;
    drop(bob);
    let mut bob = user_with(&s, "bob", &addr, move |c| c.state = Some(st)).await;
    // Days later (the stored window is the relay's TTL), the same envelope
    // comes back as if from the store: not shown again.
    assert!(evil.replay_all_as_stored() > 0);
    assert!(bob.messages_during_quiet().await.is_empty());
}
