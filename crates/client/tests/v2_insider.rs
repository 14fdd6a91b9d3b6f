//! Protocol v2 against a malicious colleague (issue 28): an enrolled
//! device, a member of the group, speaking raw DS_UP through the honest
//! relay. It cannot make the relay order a commit that members cannot
//! apply (the relay checks every commit against the group's public state),
//! so the group keeps working, and the offender can be removed.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::time::Duration;

use blindrelay_adversary::forge;
use blindrelay_client::v2::V2Event;
use blindrelay_ds::{Down, Refusal, RefusalCode, Request, Submission};
use common::*;

fn unverified(d: Down) -> bool {
    matches!(
        d,
        Down::Refused {
            why: Refusal::Rules(RefusalCode::Unverified),
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_brick_a_group_with_commits_no_member_can_apply() {
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut mallory = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let (g, _) = alice
        .create_group(None, &[n("bob"), n("mallory")])
        .await
        .unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    events_for(&mut mallory, Duration::from_millis(300)).await;
    let epoch = mallory.device().epoch(&g).unwrap();
    let (_, mut raw) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let members: std::collections::BTreeSet<_> = [
        id("alice", "laptop"),
        id("bob", "laptop"),
        id("mallory", "laptop"),
    ]
    .into();
    let commit = |bytes: Vec<u8>| {
        Request::Submit(Submission::Commit {
            group_id: g.clone(),
            epoch,
            members: members.clone(),
            commit: bytes,
            welcome: None,
            group_info: None,
        })
    };
    // Three commits that are no valid MLS commit, as in the report: bytes,
    // her genuine commit with a byte of its content changed, and a commit
    // hidden in a PrivateMessage where the relay cannot check it.
    let genuine = mallory.device().update(&g).unwrap();
    mallory.device().commit_refused(&g).unwrap();
    let mut changed = genuine.commit.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 1;
    for bad in [vec![0x42; 300], changed] {
        assert!(unverified(raw.request(commit(bad)).await.unwrap()));
    }
    let hidden = Request::Submit(Submission::Message {
        group_id: g.clone(),
        epoch,
        message: forge::private_commit(&g, epoch, 400),
    });
    assert!(unverified(raw.request(hidden).await.unwrap()));

    // The group did not move: alice and bob talk, bob's key update goes
    // through, and alice removes mallory.
    alice.send(&g, "still fine?").await.unwrap();
    let ev = events_for(&mut bob, Duration::from_millis(800)).await;
    assert_eq!(texts(&ev), ["still fine?"]);
    bob.update(&g).await.unwrap();
    events_for(&mut alice, Duration::from_millis(500)).await;
    alice.remove(&g, &n("mallory")).await.unwrap();
    let ev = events_for(&mut bob, Duration::from_millis(800)).await;
    assert!(
        !ev.iter()
            .any(|e| matches!(e, blindrelay_client::v2::V2Event::Refused { .. })),
        "{ev:?}"
    );
    bob.send(&g, "just us").await.unwrap();
    let ev = events_for(&mut alice, Duration::from_millis(800)).await;
    assert_eq!(texts(&ev), ["just us"]);
    assert_eq!(alice.device().epoch(&g).unwrap(), epoch + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_signed_by_another_device_than_the_session_is_refused() {
    // mallory's phone makes a genuine commit; her laptop's session submits
    // it. The relay orders only what the submitting device signed.
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut phone = device(&pki, root.path(), "mallory", "phone", &addr).await;
    let _laptop = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let (g, _) = alice.create_group(None, &[n("mallory")]).await.unwrap();
    events_for(&mut phone, Duration::from_millis(300)).await;
    let out = phone.device().update(&g).unwrap();
    phone.device().commit_refused(&g).unwrap();
    let (_, mut raw) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let members = [
        id("alice", "laptop"),
        id("mallory", "laptop"),
        id("mallory", "phone"),
    ]
    .into();
    let answer = raw
        .request(Request::Submit(Submission::Commit {
            group_id: g.clone(),
            epoch: out.epoch,
            members,
            commit: out.commit,
            welcome: None,
            group_info: None,
        }))
        .await
        .unwrap();
    assert!(unverified(answer));
    // The phone's own session may submit it (it is the phone's commit).
    phone.update(&g).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_nobody_can_apply_stalls_nobody_for_good_the_group_is_made_again_without_its_author()
 {
    // What the relay's check cannot see: mallory's commit carries a wrong
    // membership tag. The relay orders it; alice and bob cannot apply it.
    // The tag is not signed (the relay could have spoilt it), so neither
    // device blames mallory; alice makes the group again without her.
    // (A commit whose signed content is bad names its author:
    // `crates/mls/tests/observer.rs`.)
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut mallory = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let team = blindrelay_mls::GroupName::new("team").unwrap();
    let (g, _) = alice
        .create_group(Some(&team), &[n("bob"), n("mallory")])
        .await
        .unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    events_for(&mut mallory, Duration::from_millis(300)).await;
    let mut bad = mallory.device().update(&g).unwrap();
    mallory.device().commit_refused(&g).unwrap();
    let last = bad.commit.len() - 1;
    bad.commit[last] ^= 1;
    let (_, mut raw) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let answer = raw
        .request(Request::Submit(Submission::Commit {
            group_id: g.clone(),
            epoch: bad.epoch,
            members: [
                id("alice", "laptop"),
                id("bob", "laptop"),
                id("mallory", "laptop"),
            ]
            .into(),
            commit: bad.commit,
            welcome: None,
            group_info: None,
        }))
        .await
        .unwrap();
    assert!(matches!(answer, Down::Accepted { .. }), "{answer:?}");
    for m in [&mut alice, &mut bob] {
        let ev = events_for(m, Duration::from_millis(800)).await;
        assert!(
            ev.iter().any(|e| matches!(e, V2Event::Refused { .. })),
            "{ev:?}"
        );
        assert!(
            !ev.iter().any(|e| matches!(e, V2Event::BadCommit { .. })),
            "{ev:?}"
        );
    }
    // alice makes "team" again without mallory; bob joins it; they talk.
    let (fresh, _) = alice.recreate(&g, &n("mallory")).await.unwrap();
    assert!(alice.groups().unwrap().iter().all(|i| i.id != g));
    let ev = events_for(&mut bob, Duration::from_millis(800)).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::Joined { group } if *group == fresh)),
        "{ev:?}"
    );
    alice.send(&fresh, "without her").await.unwrap();
    let ev = events_for(&mut bob, Duration::from_millis(800)).await;
    assert_eq!(texts(&ev), ["without her"]);
    let info = alice
        .groups()
        .unwrap()
        .into_iter()
        .find(|i| i.id == fresh)
        .unwrap();
    assert_eq!(info.name.as_deref(), Some("team"));
    assert!(info.members.iter().all(|(u, _)| u != "mallory"));
    let ev = events_for(&mut mallory, Duration::from_millis(300)).await;
    assert!(
        !ev.iter().any(|e| matches!(e, V2Event::Joined { .. })),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_use_on_the_relays_default_limits_never_trips_them() {
    // Issue 28.4: two group creations, a removal and messages within a
    // few seconds, on the relay's default configuration.
    let pki = blindrelay_testkit::TestPki::new(&[]).unwrap();
    let relay =
        blindrelay_testkit::TestRelay::with_config(&pki, blindrelay_testkit::relay::config())
            .await
            .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let _carol = device(&pki, root.path(), "carol", "laptop", &addr).await;
    let one = blindrelay_mls::GroupName::new("one").unwrap();
    let two = blindrelay_mls::GroupName::new("two").unwrap();
    let (g1, _) = alice
        .create_group(Some(&one), &[n("bob"), n("carol")])
        .await
        .unwrap();
    let (g2, _) = alice.create_group(Some(&two), &[n("bob")]).await.unwrap();
    alice.remove(&g1, &n("carol")).await.unwrap();
    for i in 0..5 {
        alice.send(&g1, &format!("one {i}")).await.unwrap();
        alice.send(&g2, &format!("two {i}")).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(texts(&bob.sync(Duration::from_millis(200)).await.unwrap()));
        if got.len() == 10 {
            break;
        }
    }
    assert_eq!(got.len(), 10, "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_relays_budget_is_paced_not_cut_off() {
    // The relay allows 20 requests per second per device and says so in
    // HELLO; alice sends 60 messages at once. Her link paces them: every
    // one is accepted and bob reads all 60, in order.
    let pki = blindrelay_testkit::TestPki::new(&[]).unwrap();
    let cfg = blindrelay_server::Config {
        v2_rate_max_requests: 20,
        rate_window_ms: 1_000,
        ..blindrelay_testkit::relay::config()
    };
    let relay = blindrelay_testkit::TestRelay::with_config(&pki, cfg)
        .await
        .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = alice.create_group(None, &[n("bob")]).await.unwrap();
    let start = std::time::Instant::now();
    for i in 0..60 {
        alice.send(&g, &format!("m{i}")).await.unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "paced: {:?}",
        start.elapsed()
    );
    let mut got = Vec::new();
    for _ in 0..50 {
        got.extend(texts(&bob.sync(Duration::from_millis(200)).await.unwrap()));
        if got.len() >= 60 {
            break;
        }
    }
    let want: Vec<String> = (0..60).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_past_its_budget_cools_down_and_logins_are_limited_per_device() {
    // Issue 28.2: budgets end in a cool-down that reconnecting does not
    // skip, and logins are limited per device.
    let pki = blindrelay_testkit::TestPki::new(&[]).unwrap();
    let cfg = blindrelay_server::Config {
        v2_rate_max_requests: 5,
        rate_window_ms: 60_000,
        cooldown_ms: 1_500,
        login_rate_max: 4,
        ..blindrelay_testkit::relay::config()
    };
    let relay = blindrelay_testkit::TestRelay::with_config(&pki, cfg)
        .await
        .unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let ask = Request::Devices(n("mallory"));
    let (_, mut m) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    m.pace(u32::MAX, 1);
    let mut answered = 0;
    while m.request(ask.clone()).await.is_ok() {
        answered += 1;
        assert!(answered <= 5);
    }
    assert_eq!(answered, 5);
    // At once: refused (cool-down); another device is not affected.
    let cfg_m = cfg_for(&pki, root.path(), "mallory", "laptop", &addr);
    let key = cfg_m.load_key().unwrap();
    assert!(
        blindrelay_client::v2::Link::connect(&cfg_m, &key)
            .await
            .is_err()
    );
    let (_, _alice) = raw_device(&pki, root.path(), "alice", "laptop", &addr).await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        blindrelay_client::v2::Link::connect(&cfg_m, &key)
            .await
            .is_ok()
    );
    // bob: four logins in the window, not a fifth.
    let cfg_b = cfg_for(&pki, root.path(), "bob", "laptop", &addr);
    let key_b = cfg_b.load_key().unwrap();
    for _ in 0..4 {
        let l = blindrelay_client::v2::Link::connect(&cfg_b, &key_b)
            .await
            .unwrap();
        l.close().await;
    }
    assert!(
        blindrelay_client::v2::Link::connect(&cfg_b, &key_b)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_routes_by_the_verified_tree_not_by_the_committers_word() {
    // mallory's genuine key update announces a membership without bob:
    // the relay reads the members from the tree, so bob still gets the
    // commit and everything after it.
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut mallory = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let (g, _) = alice
        .create_group(None, &[n("bob"), n("mallory")])
        .await
        .unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    events_for(&mut mallory, Duration::from_millis(300)).await;
    let out = mallory.device().update(&g).unwrap();
    let (_, mut raw) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let answer = raw
        .request(Request::Submit(Submission::Commit {
            group_id: g.clone(),
            epoch: out.epoch,
            members: [id("alice", "laptop"), id("mallory", "laptop")].into(),
            commit: out.commit,
            welcome: None,
            group_info: None,
        }))
        .await
        .unwrap();
    assert!(matches!(answer, Down::Accepted { .. }), "{answer:?}");
    mallory.device().commit_accepted(&g).unwrap();
    events_for(&mut alice, Duration::from_millis(500)).await;
    alice.send(&g, "bob, still there?").await.unwrap();
    let ev = events_for(&mut bob, Duration::from_millis(1000)).await;
    assert_eq!(texts(&ev), ["bob, still there?"], "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_a_devices_state_is_refused_as_locked() {
    // Two processes on one device's state would reuse its sending keys:
    // the second is refused, with the lock file named.
    let (pki, _relay, addr, root) = world().await;
    let first = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let cfg = common::cfg_for(&pki, root.path(), "alice", "laptop", &addr);
    let state = root.path().join("alice-laptop").join("mls.db");
    let Err(err) = blindrelay_client::v2::Member::connect(&cfg, &state).await else {
        panic!("a second process was let in")
    };
    assert!(
        matches!(&err, blindrelay_client::ClientError::DeviceLocked { path } if path == &state.with_extension("lock")),
        "{err}"
    );
    first.close().await;
    // Once the first has gone, the state is free.
    let again = blindrelay_client::v2::Member::connect(&cfg, &state)
        .await
        .unwrap();
    again.close().await;
}
