//! Offline delivery that loses nothing: store-and-forward through the real
//! relay with its SQLite store, restarts, dropped connections, quotas,
//! expiry and replays.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::collections::HashSet;
use std::time::Duration;

use blindrelay_adversary::evil_relay::{EvilRelay, Tamper};
use blindrelay_client::{Event, UndeliveredReason};
use blindrelay_server::Config;
use blindrelay_testkit::user::User;
use blindrelay_testkit::{CutProxy, TestPki, TestRelay};

fn n(s: &str) -> blindrelay_wire::UserName {
    blindrelay_wire::UserName::new(s).unwrap()
}

/// How long "nothing else arrives" is watched for.
const QUIET: std::time::Duration = std::time::Duration::from_millis(500);

/// Waits for the `Stored` confirmation of each id.
async fn await_stored(u: &mut User, ids: &[blindrelay_wire::MessageId]) {
    let mut left: HashSet<_> = ids.iter().copied().collect();
    while !left.is_empty() {
        if let Event::Stored { msg_id, .. } = u
            .wait_for("stored", |e| matches!(e, Event::Stored { .. }))
            .await
            .unwrap()
        {
            left.remove(&msg_id);
        }
    }
}

/// Collects `n` messages (texts in arrival order).
async fn collect(u: &mut User, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    while v.len() < n {
        v.push(u.message().await.unwrap().text);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_user_reads_everything_once_in_order_after_a_relay_restart() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::builder(&s)
        .config(Config::default())
        .durable(&s.path().join("relay.db"))
        .start()
        .await
        .unwrap();
    // bob has logged in once, so the relay knows his certificate.
    let bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    bob.handle.quit().await;
    drop(bob);
    let mut alice = User::connect(&s, "alice", &relay.address()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            alice
                .handle
                .send(vec![n("bob")], format!("offline secret-{i:02}"), false)
                .await
                .unwrap(),
        );
    }
    await_stored(&mut alice, &ids).await;
    // Restart the relay: only the store survives.
    let addr = relay.stop().await.unwrap();
    let relay = TestRelay::builder(&s)
        .config(Config::default())
        .durable(&s.path().join("relay.db"))
        .at(addr)
        .start()
        .await
        .unwrap();
    // The database holds nothing readable.
    let mut raw = std::fs::read(s.dir.path().join("relay.db")).unwrap();
    raw.extend(std::fs::read(s.dir.path().join("relay.db-wal")).unwrap_or_default());
    assert!(
        !raw.windows(6).any(|w| w == b"secret"),
        "plaintext in the relay's store"
    );
    let st = s.dir.path().join("bob.db");
    let st2 = st.clone();
    let mut bob = User::connect_with(&s, "bob", &relay.address(), move |c| c.state = Some(st2))
        .await
        .unwrap();
    let got = collect(&mut bob, 8).await;
    let want: Vec<String> = (0..8).map(|i| format!("offline secret-{i:02}")).collect();
    assert_eq!(got, want);
    assert!(bob.quiet(QUIET).await.0.is_empty(), "a message came twice");
    // Alice (reconnected by herself) gets bob's end-to-end receipts.
    let mut confirmed = HashSet::new();
    while confirmed.len() < 8 {
        if let Event::Delivered { msg_ids, by } = alice
            .wait_for("receipt", |e| matches!(e, Event::Delivered { .. }))
            .await
            .unwrap()
        {
            assert_eq!(by.as_str(), "bob");
            confirmed.extend(msg_ids);
        }
    }
    assert_eq!(confirmed, ids.iter().copied().collect());
    // Acknowledged messages are gone: a new session of bob gets nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.handle.quit().await;
    drop(bob);
    let mut bob = User::connect_with(&s, "bob", &relay.address(), move |c| c.state = Some(st))
        .await
        .unwrap();
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_on_both_sides_lose_and_duplicate_nothing() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::builder(&s)
        .config(Config {
            rate_max_messages: 10_000,
            ..Config::default()
        })
        .durable(&s.path().join("relay.db"))
        .start()
        .await
        .unwrap();
    let a_proxy = CutProxy::start(relay.addr).await.unwrap();
    let b_proxy = CutProxy::start(relay.addr).await.unwrap();
    let mut bob = User::connect(&s, "bob", &b_proxy.addr.to_string())
        .await
        .unwrap();
    let mut alice = User::connect(&s, "alice", &a_proxy.addr.to_string())
        .await
        .unwrap();
    alice.wait_online("bob").await.unwrap();
    const N: usize = 120;
    for i in 0..N {
        alice
            .handle
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
        let text = bob.message().await.unwrap().text;
        assert!(seen.insert(text.clone()), "{text} shown twice");
    }
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_reported_and_expired_messages_are_not_delivered() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::builder(&s)
        .config(Config {
            quota_messages: 3,
            store_ttl_ms: 1_000,
            store_sweep_ms: 200,
            ..Config::default()
        })
        .durable(&s.path().join("relay.db"))
        .start()
        .await
        .unwrap();
    let bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    bob.handle.quit().await;
    drop(bob);
    let mut alice = User::connect(&s, "alice", &relay.address()).await.unwrap();
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(
            alice
                .handle
                .send(vec![n("bob")], format!("fits {i}"), false)
                .await
                .unwrap(),
        );
    }
    await_stored(&mut alice, &ids).await;
    let over = alice
        .handle
        .send(vec![n("bob")], "too many".into(), false)
        .await
        .unwrap();
    match alice
        .wait_for("quota", |e| matches!(e, Event::Undelivered { .. }))
        .await
        .unwrap()
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
    let mut bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_hundreds_trips_no_limit() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::builder(&s)
        .config(Config {
            rate_max_messages: 10_000,
            ..Config::default()
        })
        .durable(&s.path().join("relay.db"))
        .start()
        .await
        .unwrap();
    let bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    bob.handle.quit().await;
    drop(bob);
    let mut alice = User::connect(&s, "alice", &relay.address()).await.unwrap();
    const N: usize = 400;
    let mut ids = vec![];
    let mut stored = HashSet::new();
    for i in 0..N {
        ids.push(
            alice
                .handle
                .send(vec![n("bob")], format!("backlog {i}"), false)
                .await
                .unwrap(),
        );
        // A user interface reads its events while it sends (a full event
        // queue holds the connection back).
        while let Ok(e) = alice.events.try_recv() {
            if let Event::Stored { msg_id, .. } = e {
                stored.insert(msg_id);
            }
        }
    }
    ids.retain(|id| !stored.contains(id));
    await_stored(&mut alice, &ids).await;
    // Default relay limits for bob: 10 messages / 5 s, 256-frame queue.
    let mut bob = User::connect(&s, "bob", &relay.address()).await.unwrap();
    let got = collect(&mut bob, N).await;
    assert_eq!(got.len(), N);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), N);
    // Still connected: a live message arrives.
    alice.send(&["bob"], "live after backlog").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "live after backlog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_stored_envelope_is_rejected_after_a_restart() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let evil = EvilRelay::start(&s.pki, Tamper::Honest).await.unwrap();
    let addr = evil.addr.to_string();
    let st = s.dir.path().join("bob-state.db");
    let st2 = st.clone();
    let mut alice = User::connect(&s, "alice", &addr).await.unwrap();
    let mut bob = User::connect_with(&s, "bob", &addr, move |c| c.state = Some(st2))
        .await
        .unwrap();
    alice.wait_online("bob").await.unwrap();
    alice.send(&["bob"], "pay 100 once").await.unwrap();
    assert_eq!(bob.message().await.unwrap().text, "pay 100 once");
    bob.handle.quit().await;
    drop(bob);
    let mut bob = User::connect_with(&s, "bob", &addr, move |c| c.state = Some(st))
        .await
        .unwrap();
    // Days later (the stored window is the relay's TTL), the same envelope
    // comes back as if from the store: not shown again.
    assert!(evil.replay_all_as_stored() > 0);
    assert!(bob.quiet(QUIET).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_state_and_the_relays_store_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let s = TestPki::named("Client Test CA", &["alice"]).unwrap();
    // A state directory and database someone left readable by everyone.
    let state_dir = s.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = state_dir.join("alice.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The relay's store, new.
    let store = s.path().join("relay").join("relay.db");
    let relay = TestRelay::builder(&s)
        .durable(&store)
        .start()
        .await
        .unwrap();
    let mut cfg = blindrelay_client::ClientConfig::from_dir(
        s.pki.user_dir(&n("alice")).root(),
        n("alice"),
        &relay.address(),
    );
    cfg.state = Some(db.clone());
    let (client, mut events) = blindrelay_client::connect(&cfg).await.unwrap();
    // The user is told, before anything else.
    for _ in 0..2 {
        match events.recv().await.unwrap() {
            Event::Warning(w) => assert!(w.contains("readable by other users"), "{w}"),
            other => panic!("expected a warning, got {other:?}"),
        }
    }
    let wal = |p: &std::path::Path| {
        let mut w = p.as_os_str().to_owned();
        w.push("-wal");
        std::path::PathBuf::from(w)
    };
    assert_eq!((mode(&state_dir), mode(&db)), (0o700, 0o600));
    assert_eq!(mode(&wal(&db)), 0o600);
    assert_eq!(
        (
            mode(store.parent().unwrap()),
            mode(&store),
            mode(&wal(&store))
        ),
        (0o700, 0o600, 0o600)
    );
    client.quit().await;
    relay.stop().await.unwrap();
}
