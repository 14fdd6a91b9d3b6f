//! Re-joining a group whose missing commit never comes (issue 21): a
//! malicious relay withholds commits from a device for good; the device
//! re-joins by external commit from the GroupInfo a member published, and
//! a device the relay hides its removal from cannot get back in. And the
//! real relay's rules for publishing and handing out GroupInfos.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::path::Path;
use std::time::Duration;

use blindrelay_adversary::evil_ds::EvilDs;
use blindrelay_client::v2::{Member, RejoinBlocked, V2Event};
use blindrelay_ds::{Down, Refusal, RefusalCode, Request};
use blindrelay_testkit::TestPki;
use common::*;

/// alice, bob and carol in one group through `addr`.
async fn three(pki: &TestPki, root: &Path, addr: &str) -> (Vec<Member>, Vec<u8>) {
    in_one_group(pki, root, addr, "alice", &["bob", "carol"]).await
}

/// The relay keeps two of alice's commits from bob for good and hands him
/// her message after them: bob is behind (his events are returned).
async fn cut_off_bob(ds: &EvilDs, m: &mut [Member], g: &[u8]) -> Vec<V2Event> {
    let bob = id("bob", "laptop");
    ds.hold(&bob);
    m[0].update(g).await.unwrap();
    m[0].update(g).await.unwrap();
    m[2].sync(Duration::from_millis(300)).await.unwrap();
    m[0].send(g, "sent while bob was cut off").await.unwrap();
    ds.release(&bob, &[2]);
    ds.stop_holding(&bob);
    events_for(&mut m[1], Duration::from_millis(400)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_missing_commits_never_come_rejoins_and_reads_and_writes_again() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = three(&pki, root.path(), &ds.address()).await;
    // Two commits bob never gets, then a message he does.
    let ev = cut_off_bob(&ds, &mut m, &g).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::Behind { at: 1, seen: 3, .. })),
        "{ev:?}"
    );
    // Still cut off once the wait is over: bob re-joins by himself.
    m[1].set_rejoin_after(Duration::ZERO);
    let ev = events_for(&mut m[1], Duration::from_millis(600)).await;
    assert!(
        ev.iter().any(|e| matches!(
            e,
            V2Event::Rejoined {
                at: 4,
                unread: 1,
                ..
            }
        )),
        "bob re-joins, and is told the held message is lost: {ev:?}"
    );
    // alice and carol see bob's re-join as such, nothing else.
    for i in [0, 2] {
        let ev = events_for(&mut m[i], Duration::from_millis(400)).await;
        assert!(
            ev.iter()
                .any(|e| matches!(e, V2Event::MemberRejoined { who, .. } if who.0 == "bob")),
            "{ev:?}"
        );
        assert!(!ev.iter().any(|e| matches!(e, V2Event::Changed { .. })));
    }
    assert_eq!(
        m[1].device().epoch_authenticator(&g).unwrap(),
        m[0].device().epoch_authenticator(&g).unwrap()
    );
    m[0].send(&g, "welcome back").await.unwrap();
    let ev = events_for(&mut m[1], Duration::from_millis(400)).await;
    assert_eq!(texts(&ev), ["welcome back"], "{ev:?}");
    m[1].send(&g, "thanks").await.unwrap();
    let ev = events_for(&mut m[0], Duration::from_millis(400)).await;
    assert_eq!(texts(&ev), ["thanks"], "{ev:?}");
    let ev = events_for(&mut m[2], Duration::from_millis(400)).await;
    assert_eq!(texts(&ev), ["welcome back", "thanks"], "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_the_relay_hides_its_removal_from_cannot_rejoin_or_read() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = three(&pki, root.path(), &ds.address()).await;
    let carol = id("carol", "laptop");
    ds.hold(&carol);
    // A commit and a message carol is kept from, then her removal.
    m[0].update(&g).await.unwrap();
    m[0].send(&g, "at epoch 2").await.unwrap();
    m[0].remove(&g, &n("carol")).await.unwrap();
    m[0].send(&g, "not for carol").await.unwrap();
    // The relay hides the commits and hands carol the message, and the
    // GroupInfo published after her removal when she asks.
    ds.release(&carol, &[1]);
    m[2].set_rejoin_after(Duration::ZERO);
    let ev = events_for(&mut m[2], Duration::from_millis(600)).await;
    assert!(texts(&ev).is_empty(), "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(
            e,
            V2Event::RejoinBlocked {
                why: RejoinBlocked::NotListed,
                ..
            }
        )),
        "{ev:?}"
    );
    assert!(!ev.iter().any(|e| matches!(e, V2Event::Rejoined { .. })));
    // Tried once, then not again before REJOIN_RETRY.
    let blocked = |ev: &[V2Event]| {
        ev.iter()
            .filter(|e| matches!(e, V2Event::RejoinBlocked { .. }))
            .count()
    };
    assert_eq!(blocked(&ev), 1, "{ev:?}");
    let ev = events_for(&mut m[2], Duration::from_millis(300)).await;
    assert_eq!(blocked(&ev), 0, "{ev:?}");
    assert!(m[2].send(&g, "am I still in?").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_keeps_only_a_members_genuine_group_info_and_hands_it_only_to_members() {
    let (pki, _relay, addr, root) = world().await;
    let (m, g) = three(&pki, root.path(), &addr).await;
    drop(m);
    // alice's commit published the GroupInfo of epoch 1: bob may have it.
    let (_, mut bob) = raw_device(&pki, root.path(), "bob", "laptop", &addr).await;
    let Down::GroupInfo {
        epoch, group_info, ..
    } = bob.request(Request::GroupInfo(g.clone())).await.unwrap()
    else {
        panic!("a member gets the group's GroupInfo");
    };
    assert_eq!(epoch, 1);
    // mallory, enrolled but not a member, gets nothing.
    let (_, mut mallory) = raw_device(&pki, root.path(), "mallory", "laptop", &addr).await;
    let refusal = |d: Down| match d {
        Down::Refused {
            why: Refusal::Rules(c),
            ..
        } => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refusal(
            mallory
                .request(Request::GroupInfo(g.clone()))
                .await
                .unwrap()
        ),
        RefusalCode::NotAMember
    );
    let publish = |info: Vec<u8>| Request::Publish {
        group_id: g.clone(),
        epoch: 1,
        group_info: info,
    };
    assert_eq!(
        refusal(mallory.request(publish(group_info.clone())).await.unwrap()),
        RefusalCode::NotAMember
    );
    // bob may not publish alice's GroupInfo as his, nor garbage.
    assert_eq!(
        refusal(bob.request(publish(group_info.clone())).await.unwrap()),
        RefusalCode::Unverified
    );
    assert_eq!(
        refusal(
            bob.request(publish(b"not a group info".to_vec()))
                .await
                .unwrap()
        ),
        RefusalCode::Unverified
    );
    // At the size bound it is checked; past it, refused unread.
    assert_eq!(
        refusal(bob.request(publish(vec![0; 16 * 1024])).await.unwrap()),
        RefusalCode::Unverified
    );
    assert_eq!(
        refusal(bob.request(publish(vec![0; 16 * 1024 + 1])).await.unwrap()),
        RefusalCode::TooLarge
    );
    // An unknown group.
    assert_eq!(
        refusal(bob.request(Request::GroupInfo(vec![7; 32])).await.unwrap()),
        RefusalCode::UnknownGroup
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_relay_orders_a_members_rejoin_by_external_commit() {
    let (pki, _relay, addr, root) = world().await;
    let mut alice = device(&pki, root.path(), "alice", "laptop", &addr).await;
    // bob's device is driven by hand, so that it can skip two commits.
    let (mut bob, mut link) = raw_device(&pki, root.path(), "bob", "laptop", &addr).await;
    let one_time = bob.key_packages(3).unwrap();
    let up = link
        .request(Request::Upload {
            one_time,
            last_resort: None,
        })
        .await
        .unwrap();
    assert!(matches!(up, Down::Uploaded { .. }), "{up:?}");
    let (g, _) = alice.create_group(None, &[n("bob")]).await.unwrap();
    let (seq, welcome) = link
        .next_delivery(Duration::from_secs(2))
        .await
        .unwrap()
        .unwrap();
    let blindrelay_ds::Delivery::Welcome { welcome, .. } = welcome else {
        panic!("a Welcome");
    };
    bob.join(&welcome).unwrap();
    link.ack(seq).await.unwrap();
    alice.update(&g).await.unwrap();
    alice.update(&g).await.unwrap();
    alice.send(&g, "lost to bob").await.unwrap();
    // bob loses both commits and holds the message.
    for _ in 0..3 {
        let (seq, item) = link
            .next_delivery(Duration::from_secs(2))
            .await
            .unwrap()
            .unwrap();
        let blindrelay_ds::Delivery::Group { message, .. } = item else {
            panic!("a group message");
        };
        if let blindrelay_mls::Position::Ahead { epoch: 3, .. } = bob.position(&message) {
            let is_app = bob.hold(&g, 3, &message).unwrap();
            assert_eq!(is_app, blindrelay_mls::Held::Kept);
        }
        link.ack(seq).await.unwrap();
    }
    assert_eq!(bob.behind(&g).unwrap(), Some((1, 3)));
    let Down::GroupInfo {
        group_info, tree, ..
    } = link.request(Request::GroupInfo(g.clone())).await.unwrap()
    else {
        panic!("the GroupInfo alice published");
    };
    let (out, members) = bob.rejoin(&g, &group_info, &tree).unwrap();
    let members = members.iter().map(|m| id(&m.user, &m.device)).collect();
    let answer = link
        .request(Request::Submit(blindrelay_ds::Submission::Commit {
            group_id: g.clone(),
            epoch: out.epoch,
            members,
            commit: out.commit,
            welcome: None,
            group_info: None,
        }))
        .await
        .unwrap();
    assert!(
        matches!(answer, Down::Accepted { epoch: 4, .. }),
        "{answer:?}"
    );
    assert_eq!(bob.rejoin_accepted(&g).unwrap(), (4, 1));
    let ev = events_for(&mut alice, Duration::from_millis(400)).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::MemberRejoined { who, .. } if who.0 == "bob")),
        "{ev:?}"
    );
    assert_eq!(
        bob.epoch_authenticator(&g).unwrap(),
        alice.device().epoch_authenticator(&g).unwrap()
    );
    // bob (by hand) published nothing for epoch 4: the relay hands out no
    // GroupInfo of an earlier epoch.
    let answer = link.request(Request::GroupInfo(g.clone())).await.unwrap();
    assert!(
        matches!(
            answer,
            Down::Refused {
                why: Refusal::Rules(RefusalCode::NoGroupInfo),
                ..
            }
        ),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoin_whose_answer_is_lost_is_settled_at_the_next_connection() {
    // The connection drops at bob's re-join, after the relay ordered it
    // (the answer is lost) or before (the re-join is lost).
    for ordered in [true, false] {
        let pki = TestPki::new(&[]).unwrap();
        let ds = EvilDs::start(&pki.pki).await.unwrap();
        let root = tempfile::tempdir().unwrap();
        let (mut m, g) = three(&pki, root.path(), &ds.address()).await;
        let bob = id("bob", "laptop");
        cut_off_bob(&ds, &mut m, &g).await;
        ds.cut_at_submit(&bob, ordered);
        m[1].set_rejoin_after(Duration::ZERO);
        let end = tokio::time::Instant::now() + Duration::from_secs(3);
        while m[1].sync(Duration::from_millis(100)).await.is_ok() {
            assert!(tokio::time::Instant::now() < end, "the relay cut bob off");
        }
        let cfg = cfg_for(&pki, root.path(), "bob", "laptop", &ds.address());
        m[1].reconnect(&cfg).await.unwrap();
        // Settled either way: nothing is left waiting.
        assert!(m[1].device().pending_rejoins().is_empty(), "{ordered}");
        let ev = events_for(&mut m[1], Duration::from_millis(600)).await;
        assert!(
            ev.iter()
                .any(|e| matches!(e, V2Event::Rejoined { unread: 1, .. })),
            "ordered: {ordered}: {ev:?}"
        );
        // Taken from the mailbox (ordered), or made again (lost): one
        // re-join either way.
        assert_eq!(m[1].device().epoch(&g).unwrap(), 4);
        m[1].send(&g, "back").await.unwrap();
        let ev = events_for(&mut m[0], Duration::from_millis(400)).await;
        assert!(texts(&ev).contains(&"back".to_string()), "{ev:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_nothing_current_to_rejoin_from_says_so_and_rejoins_once_there_is() {
    let pki = TestPki::new(&[]).unwrap();
    let ds = EvilDs::start(&pki.pki).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut m, g) = three(&pki, root.path(), &ds.address()).await;
    cut_off_bob(&ds, &mut m, &g).await;
    let not_published = |ev: &[V2Event]| {
        ev.iter().any(|e| {
            matches!(
                e,
                V2Event::RejoinBlocked {
                    why: RejoinBlocked::NotPublished,
                    ..
                }
            )
        })
    };
    // Nothing published at all.
    ds.forget_publications();
    ds.keep_publications(false);
    m[1].set_rejoin_after(Duration::ZERO);
    let ev = events_for(&mut m[1], Duration::from_millis(300)).await;
    assert!(not_published(&ev), "{ev:?}");
    // Only an older epoch's GroupInfo: the re-join made from it loses to
    // the commit after it.
    ds.keep_publications(true);
    m[0].update(&g).await.unwrap();
    ds.keep_publications(false);
    m[0].update(&g).await.unwrap();
    m[1].set_rejoin_after(Duration::ZERO);
    let ev = events_for(&mut m[1], Duration::from_millis(300)).await;
    assert!(not_published(&ev), "{ev:?}");
    assert!(!ev.iter().any(|e| matches!(e, V2Event::Rejoined { .. })));
    // The next commit publishes the current state: bob re-joins.
    ds.keep_publications(true);
    m[0].update(&g).await.unwrap();
    m[1].set_rejoin_after(Duration::ZERO);
    let ev = events_for(&mut m[1], Duration::from_millis(400)).await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, V2Event::Rejoined { at: 7, .. })),
        "{ev:?}"
    );
}
