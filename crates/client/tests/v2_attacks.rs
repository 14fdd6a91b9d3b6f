//! Protocol v2 against a malicious relay and a malicious colleague
//! (issue 21): a Welcome that would take over a held group, commits
//! withheld or reordered by the relay, a connection cut in the middle of a
//! batch, KeyPackage draining, and made-up devices in a commit. Each test
//! drives real devices through a real relay, or through the malicious
//! Delivery Service of `blindrelay-adversary` (the honest rules plus
//! keeping items back and handing them over in any order).
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use blindrelay_adversary::evil_ds::EvilDs;
use blindrelay_client::ClientError;
use blindrelay_client::v2::{Link, Member, V2Event};
use blindrelay_ds::{DeviceId, Down, RefusalCode, Request, Submission};
use blindrelay_server::Config;
use blindrelay_testkit::{TestPki, TestRelay};
use common::*;

fn refused(events: &[V2Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, V2Event::Refused { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_for_a_group_the_device_holds_is_refused_and_the_conversation_keeps_its_members()
{
    // The honest relay refuses the attack outright (below); a relay that
    // colludes with mallory carries it, and bob's device must refuse it.
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let addr = ds.address();
    let root = tempfile::tempdir().unwrap();
    let root = &root;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = alice.create_group(None, &[n("bob")]).await.unwrap();
    events_for(&mut bob, Duration::from_millis(500)).await;
    assert_eq!(bob.groups().unwrap().len(), 1);

    // mallory, enrolled but never a member, builds a group with the id of
    // bob's conversation with alice, adds bob, and files it under a fresh
    // label at the relay (a new group there).
    let (mut mallory, mut link) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    mallory.create_group_with_id(g.clone()).unwrap();
    let Down::Claimed { key_packages, .. } = link.request(Request::Claim(n("bob"))).await.unwrap()
    else {
        panic!("claim");
    };
    let kp = key_packages[0].key_package.clone();
    let out = mallory.add(&g, &[kp]).unwrap();
    let members: BTreeSet<DeviceId> = [id("mallory", "laptop"), id("bob", "laptop")].into();
    let answer = link
        .request(Request::Submit(Submission::Commit {
            group_info: None,
            group_id: b"a fresh label".to_vec(),
            epoch: 0,
            members,
            commit: out.commit,
            welcome: Some(([id("bob", "laptop")].into(), out.welcome.unwrap())),
        }))
        .await
        .unwrap();
    assert!(matches!(answer, Down::Accepted { .. }), "{answer:?}");

    // bob refuses it, says so, and his conversation is as it was.
    let ev = events_for(&mut bob, Duration::from_millis(800)).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::TakeoverRefused { .. })),
        "{ev:?}"
    );
    assert!(
        !ev.iter().any(|e| matches!(e, V2Event::Joined { .. })),
        "{ev:?}"
    );
    let held = bob.groups().unwrap();
    assert_eq!(held.len(), 1);
    let people: BTreeSet<String> = held[0].members.iter().map(|(u, _)| u.clone()).collect();
    assert_eq!(
        people,
        BTreeSet::from(["alice".to_string(), "bob".to_string()])
    );
    alice.send(&g, "still just us").await.unwrap();
    let ev = events_for(&mut bob, Duration::from_millis(800)).await;
    assert_eq!(texts(&ev), ["still just us"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_a_welcome_whose_commit_it_cannot_check() {
    // The takeover above, through the honest relay: a commit filed under
    // a label that is not its group's, or without the group's public
    // state, is never ordered, so its Welcome never reaches bob.
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = alice.create_group(None, &[n("bob")]).await.unwrap();
    events_for(&mut bob, Duration::from_millis(500)).await;
    let (mut mallory, mut link) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    mallory.create_group_with_id(g.clone()).unwrap();
    let Down::Claimed { key_packages, .. } = link.request(Request::Claim(n("bob"))).await.unwrap()
    else {
        panic!("claim");
    };
    let out = mallory
        .add(&g, &[key_packages[0].key_package.clone()])
        .unwrap();
    let members: BTreeSet<DeviceId> = [id("mallory", "laptop"), id("bob", "laptop")].into();
    for (label, info) in [
        (b"a fresh label".to_vec(), out.group_info.clone()),
        (b"a fresh label".to_vec(), None),
        (g.clone(), out.group_info.clone()),
    ] {
        let answer = link
            .request(Request::Submit(Submission::Commit {
                group_info: info,
                group_id: label,
                epoch: 0,
                members: members.clone(),
                commit: out.commit.clone(),
                welcome: Some(([id("bob", "laptop")].into(), out.welcome.clone().unwrap())),
            }))
            .await
            .unwrap();
        assert!(
            matches!(
                answer,
                Down::Refused {
                    why: blindrelay_ds::Refusal::Rules(
                        RefusalCode::Unverified | RefusalCode::StaleEpoch
                    ),
                    ..
                }
            ),
            "{answer:?}"
        );
    }
    let ev = events_for(&mut bob, Duration::from_millis(500)).await;
    assert!(
        !ev.iter()
            .any(|e| matches!(e, V2Event::TakeoverRefused { .. } | V2Event::Joined { .. })),
        "{ev:?}"
    );
}

/// alice, bob, carol and erin in one group through the malicious DS.
async fn four_in_a_group(pki: &TestPki, root: &Path, ds: &EvilDs) -> (Vec<Member>, Vec<u8>) {
    in_one_group(pki, root, &ds.address(), "alice", &["bob", "carol", "erin"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_shown_a_message_from_a_later_epoch_holds_it_and_sends_nothing_a_removed_member_could_read()
 {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = four_in_a_group(&pki, root.path(), &ds).await;
    let (bob, erin) = (id("bob", "laptop"), id("erin", "laptop"));
    ds.hold(&bob);
    ds.hold(&erin);
    // alice removes carol, then erin, then writes at epoch 3.
    m[0].remove(&g, &n("carol")).await.unwrap();
    m[0].remove(&g, &n("erin")).await.unwrap();
    m[0].send(&g, "after both removals").await.unwrap();
    assert_eq!(ds.held(&bob), 3);
    // The relay withholds both commits from bob and hands him the message.
    ds.release(&bob, &[2]);
    let ev = events_for(&mut m[1], Duration::from_millis(500)).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::Behind { at: 1, seen: 3, .. })),
        "bob is told a commit is missing: {ev:?}"
    );
    assert!(texts(&ev).is_empty());
    assert_eq!(refused(&ev), 0, "the message is held, not refused: {ev:?}");
    // bob sends nothing at the stale epoch (erin, removed, would read it):
    // what he writes waits in his outbox until the group has caught up.
    let err = m[1].send(&g, "written while behind").await;
    assert!(
        matches!(err, Err(ClientError::Kept { .. })),
        "a device that knows it is behind must not send: {err:?}"
    );
    assert!(m[1].update(&g).await.is_err(), "nor commit");
    // The held message survives a restart of bob's client.
    let cfg = cfg_for(&pki, root.path(), "bob", "laptop", &ds.address());
    let bob_m = m.remove(1);
    bob_m.close().await;
    let mut bob_m = Member::connect(&cfg, &root.path().join("bob-laptop/mls.db"))
        .await
        .unwrap();
    // The commits arrive at last: bob applies them, then reads the message.
    ds.release(&bob, &[0, 1]);
    let ev = events_for(&mut bob_m, Duration::from_millis(800)).await;
    assert_eq!(texts(&ev), ["after both removals"], "{ev:?}");
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::CaughtUp { at: 3, .. })),
        "{ev:?}"
    );
    // What waited goes first, at the epoch bob is at now.
    bob_m.send(&g, "now at epoch 3").await.unwrap();
    let ev = events_for(&mut m[0], Duration::from_millis(500)).await;
    assert_eq!(texts(&ev), ["written while behind", "now at epoch 3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_handed_over_out_of_order_are_held_and_applied_in_order() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = four_in_a_group(&pki, root.path(), &ds).await;
    let bob = id("bob", "laptop");
    ds.hold(&bob);
    m[0].update(&g).await.unwrap(); // epoch 1 -> 2
    m[2].sync(Duration::from_millis(200)).await.unwrap();
    m[2].update(&g).await.unwrap(); // 2 -> 3, by carol
    m[0].sync(Duration::from_millis(200)).await.unwrap();
    m[0].send(&g, "at epoch 3").await.unwrap();
    assert_eq!(ds.held(&bob), 3);
    // The second commit first, then the first, then the message.
    ds.release(&bob, &[1, 0, 2]);
    let ev = events_for(&mut m[1], Duration::from_millis(800)).await;
    assert_eq!(texts(&ev), ["at epoch 3"], "{ev:?}");
    assert_eq!(refused(&ev), 0, "{ev:?}");
    assert_eq!(m[1].device().epoch(&g).unwrap(), 3);
    assert_eq!(
        m[1].device().epoch_authenticator(&g).unwrap(),
        m[0].device().epoch_authenticator(&g).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_read_before_the_connection_drops_mid_batch_are_shown_once_after_reconnecting() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let addr = ds.address();
    let root = tempfile::tempdir().unwrap();
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let (g, _) = alice.create_group(None, &[n("bob")]).await.unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    // The relay's connection to bob drops after it sent him two of three
    // messages (a restart, a network failure), before he acknowledged any.
    ds.cut_after(&id("bob", "laptop"), 2);
    for t in ["one", "two", "three"] {
        alice.send(&g, t).await.unwrap();
    }
    let mut ev = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match bob.sync(Duration::from_millis(100)).await {
            Ok(e) => ev.extend(e),
            Err(_) => break,
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the relay cut the connection"
        );
    }
    let cfg = cfg_for(&pki, root.path(), "bob", "laptop", &addr);
    bob.reconnect(&cfg).await.unwrap();
    ev.extend(events_for(&mut bob, Duration::from_millis(600)).await);
    assert_eq!(texts(&ev), ["one", "two", "three"], "{ev:?}");
    assert_eq!(
        refused(&ev),
        0,
        "copies delivered again are not warnings: {ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_stays_addable_when_its_one_time_key_packages_are_claimed_past_a_claimers_share() {
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    // More groups than the claimer's share of one-time KeyPackages: the
    // last ones are made with bob's last-resort KeyPackage, twice.
    let share = blindrelay_ds::Limits::default().one_time_claims_per_claimer;
    let mut groups = Vec::new();
    for i in 0..share + 2 {
        let name = blindrelay_mls::GroupName::new(&format!("g{i}")).unwrap();
        let (g, _) = alice.create_group(Some(&name), &[n("bob")]).await.unwrap();
        groups.push(g);
    }
    let ev = events_for(&mut bob, Duration::from_millis(1500)).await;
    let joined = ev
        .iter()
        .filter(|e| matches!(e, V2Event::Joined { .. }))
        .count();
    assert_eq!(joined, share + 2, "{ev:?}");
    assert_eq!(bob.groups().unwrap().len(), share + 2);
    // mallory tries to drain bob's one-time KeyPackages (50 uploaded):
    // past its share it gets the last-resort one, again and again.
    let (_, mut mallory) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let mut one_time = 0;
    for _ in 0..60 {
        let Down::Claimed { key_packages, .. } =
            mallory.request(Request::Claim(n("bob"))).await.unwrap()
        else {
            panic!("claim");
        };
        one_time += usize::from(!key_packages[0].last_resort);
    }
    assert_eq!(one_time, share);
    // The relay still holds one-time KeyPackages for others to claim.
    let (_, mut carol) = raw_device(&pki, root.path(), "carol", "laptop", &addr).await;
    let Down::Claimed { key_packages, .. } = carol.request(Request::Claim(n("bob"))).await.unwrap()
    else {
        panic!("claim");
    };
    assert!(
        !key_packages[0].last_resort,
        "alice could not drain bob's one-time KeyPackages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_brings_in_a_device_the_relay_never_saw_is_refused() {
    let (pki, _relay, addr, root) = world().await;
    let (mut mallory, mut link) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let g = mallory.create_group().unwrap();
    let out = mallory.update(&g).unwrap();
    let made_up: BTreeSet<DeviceId> = (0..50).map(|i| id("ghost", &format!("d{i}"))).collect();
    let mut members = made_up.clone();
    members.insert(id("mallory", "laptop"));
    let answer = link
        .request(Request::Submit(Submission::Commit {
            group_info: out.group_info,
            group_id: g.clone(),
            epoch: 0,
            members,
            commit: out.commit,
            welcome: Some((made_up, vec![0; 1000])),
        }))
        .await
        .unwrap();
    assert!(
        matches!(
            answer,
            Down::Refused {
                why: blindrelay_ds::Refusal::Rules(RefusalCode::Membership),
                ..
            }
        ),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_of_one_name_are_never_resolved_by_id_order() {
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut mallory = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let team = blindrelay_mls::GroupName::new("team").unwrap();
    let (real, _) = alice.create_group(Some(&team), &[n("bob")]).await.unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    assert_eq!(bob.find_group("team").unwrap().unwrap().id, real);
    // mallory makes a look-alike "team" (its id chosen by mallory's side)
    // and adds bob.
    let (fake, _) = mallory
        .create_group(Some(&team), &[n("bob")])
        .await
        .unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    let err = bob.find_group("team").unwrap_err();
    let blindrelay_client::ClientError::AmbiguousGroup { name, choices } = &err else {
        panic!("{err}")
    };
    assert_eq!((name.as_str(), choices.len()), ("team", 2), "{err}");
    assert!(err.to_string().contains("2 groups"), "{err}");
    let tag = blindrelay_client::v2::groups::group_tag(&real);
    assert!(choices.contains(&format!("team#{tag}")), "{err}");
    assert_eq!(
        bob.find_group(&format!("team#{tag}")).unwrap().unwrap().id,
        real
    );
    let fake_tag = blindrelay_client::v2::groups::group_tag(&fake);
    assert_eq!(
        bob.find_group(&format!("team#{fake_tag}"))
            .unwrap()
            .unwrap()
            .id,
        fake
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_member_to_learn_of_a_revocation_commits_the_removal_at_once() {
    let (pki, relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut carol = device(&pki, root.path(), "carol", "laptop", &addr).await;
    let (g, _) = alice
        .create_group(None, &[n("bob"), n("carol")])
        .await
        .unwrap();
    events_for(&mut bob, Duration::from_millis(300)).await;
    events_for(&mut carol, Duration::from_millis(300)).await;
    pki.revoke_device("carol", "laptop").unwrap();
    relay.reload_crl();
    // Nobody asks for a commit: alice's device learns of the revocation
    // from the relay's CRL and removes carol by itself.
    events_for(&mut alice, Duration::from_millis(600)).await;
    let ev = events_for(&mut bob, Duration::from_millis(600)).await;
    let removed = ev.iter().any(|e| {
        matches!(e, V2Event::Changed { removed, .. }
        if removed.iter().any(|(u, _)| u == "carol"))
    });
    assert!(removed, "{ev:?}");
    assert_eq!(bob.device().members(&g).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_flooding_an_offline_devices_mailbox_gets_only_a_share_and_others_still_reach_it()
 {
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let mut mallory = device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let (g, _) = alice
        .create_group(None, &[n("bob"), n("mallory")])
        .await
        .unwrap();
    events_for(&mut mallory, Duration::from_millis(300)).await;
    bob.close().await;
    let epoch = mallory.device().epoch(&g).unwrap();
    // mallory submits 2 MiB items, well-formed application
    // PrivateMessages with made-up ciphertext (the relay cannot tell them
    // from real ones), until the relay refuses: a quarter of bob's 64 MiB
    // at most.
    let (_, mut raw) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let mut accepted = 0;
    loop {
        let answer = raw
            .request(Request::Submit(Submission::Message {
                group_id: g.clone(),
                epoch,
                message: blindrelay_adversary::forge::private_message(
                    &g,
                    epoch,
                    2 * 1024 * 1024 - 1024,
                ),
            }))
            .await
            .unwrap();
        match answer {
            Down::Accepted { .. } => accepted += 1,
            Down::Refused {
                why: blindrelay_ds::Refusal::Rules(RefusalCode::Capacity),
                ..
            } => break,
            other => panic!("{other:?}"),
        }
        assert!(accepted <= 8, "more than a quarter of bob's mailbox");
    }
    assert_eq!(
        accepted, 8,
        "16 MiB: eight items just under 2 MiB with their group ids"
    );
    // alice still reaches bob, and bob reads her.
    alice.send(&g, "still here").await.unwrap();
    let mut bob = device(&pki, root.path(), "bob", "laptop", &addr).await;
    let ev = events_for(&mut bob, Duration::from_millis(1500)).await;
    assert_eq!(texts(&ev), ["still here"], "{} events", ev.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_does_not_reset_a_devices_request_budget() {
    let pki = TestPki::new(&[]).unwrap();
    let cfg = Config {
        v2_rate_max_requests: 20,
        rate_window_ms: 60_000,
        ..blindrelay_testkit::relay::config()
    };
    let relay = TestRelay::with_config(&pki, cfg).await.unwrap();
    let addr = relay.address();
    let root = tempfile::tempdir().unwrap();
    let ask = Request::Devices(n("mallory"));
    // 15 requests, then a new connection: the budget is the device's.
    // (She does not pace herself as an honest device does.)
    let (_, mut first) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    first.pace(u32::MAX, 1);
    for _ in 0..15 {
        first.request(ask.clone()).await.unwrap();
    }
    first.close().await;
    let (_, mut second) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    second.pace(u32::MAX, 1);
    let mut answered = 0;
    for _ in 0..10 {
        if second.request(ask.clone()).await.is_err() {
            break;
        }
        answered += 1;
    }
    assert_eq!(answered, 5, "20 requests in the window, over both sessions");
    // Another device's budget is its own.
    let (_, mut alice) = raw_device(&pki, root.path(), "alice", "laptop", &addr).await;
    for _ in 0..15 {
        alice.request(ask.clone()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_shown_different_histories_by_the_relay_are_told_of_the_fork() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = four_in_a_group(&pki, root.path(), &ds).await;
    let carol = id("carol", "laptop");
    ds.hold(&carol);
    ds.fork(&carol);
    // alice's commit wins epoch 1 at the relay; carol never sees it, and
    // the relay "accepts" carol's commit for the same epoch too.
    m[0].update(&g).await.unwrap();
    m[2].update(&g).await.unwrap();
    assert_eq!(
        m[2].device().epoch(&g).unwrap(),
        m[0].device().epoch(&g).unwrap()
    );
    m[0].send(&g, "on alice's branch").await.unwrap();
    ds.stop_holding(&carol);
    let all: Vec<usize> = (0..ds.held(&carol)).collect();
    ds.release(&carol, &all);
    let ev = events_for(&mut m[2], Duration::from_millis(600)).await;
    assert!(
        ev.iter().any(|e| matches!(e, V2Event::Forked { .. })),
        "carol: {ev:?}"
    );
    assert!(texts(&ev).is_empty());
    // And bob, on alice's branch, is told when carol writes.
    events_for(&mut m[1], Duration::from_millis(300)).await;
    m[2].send(&g, "on carol's branch").await.unwrap();
    let ev = events_for(&mut m[1], Duration::from_millis(600)).await;
    assert!(
        ev.iter().any(|e| matches!(e, V2Event::Forked { .. })),
        "bob: {ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_can_never_be_added_costs_its_persons_other_devices_no_key_packages() {
    let (pki, relay, addr, root) = world().await;
    let mut laptop = device(&pki, root.path(), "alice", "laptop", &addr).await;
    let mut tablet = device(&pki, root.path(), "alice", "tablet", &addr).await;
    // alice's phone published KeyPackages, went offline, and was revoked:
    // the relay still lists it, but its KeyPackage never verifies again.
    let phone = device(&pki, root.path(), "alice", "phone", &addr).await;
    phone.close().await;
    pki.revoke_device("alice", "phone").unwrap();
    relay.reload_crl();
    laptop.sync(Duration::from_millis(200)).await.unwrap();
    let (g, _) = laptop.create_group(None, &[]).await.unwrap();
    events_for(&mut tablet, Duration::from_millis(300)).await;
    assert_eq!(
        laptop.device().members(&g).unwrap().len(),
        2,
        "laptop and tablet"
    );
    // A minute's maintenance many times over: no claim for the phone.
    laptop.set_maintenance_interval(Duration::from_millis(20));
    events_for(&mut laptop, Duration::from_millis(1000)).await;
    let cfg = cfg_for(&pki, root.path(), "alice", "tablet", &addr);
    let link = Link::connect(&cfg, &cfg.load_key().unwrap()).await.unwrap();
    let left = link.key_packages;
    assert!(
        left >= 48,
        "the tablet's one-time KeyPackages were burnt: {left} left"
    );
}
