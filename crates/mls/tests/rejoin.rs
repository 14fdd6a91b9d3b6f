//! Re-joining by external commit: a device cut off from a commit for good
//! puts itself back in the group from a GroupInfo a member published, and
//! nobody else can use that GroupInfo to get in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{Device, MlsError, ObserveError, Observer, Outgoing, Received};
use common::*;

/// The relay's view of one group: its observer and the public state.
struct Relay {
    observer: Observer,
    state: Vec<u8>,
}

fn names(user: &str) -> (String, String) {
    (user.to_string(), "laptop".to_string())
}

impl Relay {
    /// Orders `out` (a group's first commit, or a later one) by `user`.
    fn order(org: &Org, relay: Option<Relay>, out: &Outgoing, user: &str) -> Relay {
        let (observer, checked) = match relay {
            None => {
                let o = Observer::new(org.trust());
                let c = o.create(
                    &out.group_id,
                    out.group_info.as_ref().unwrap(),
                    &out.commit,
                    &names(user),
                );
                (o, c)
            }
            Some(r) => {
                let c = r.observer.commit(
                    &r.state,
                    &out.group_id,
                    out.epoch,
                    &out.commit,
                    &names(user),
                );
                (r.observer, c)
            }
        };
        Relay {
            state: checked.unwrap().state,
            observer,
        }
    }

    fn tree(&self) -> Vec<u8> {
        self.observer.tree(&self.state).unwrap()
    }
}

/// alice, bob and carol in one group, and the relay following it.
fn three(org: &Org) -> (Device, Device, Device, Vec<u8>, Relay) {
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, _) = org.device("carol", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    let relay = Relay::order(org, None, &add, "alice");
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    (alice, bob, carol, g, relay)
}

/// alice commits twice, and bob gets neither commit but alice's message
/// after them: he is behind for good.
fn cut_off_bob(
    org: &Org,
    alice: &mut Device,
    bob: &mut Device,
    carol: &mut Device,
    g: &[u8],
    mut relay: Relay,
) -> Relay {
    for _ in 0..2 {
        let c = alice.update(g).unwrap();
        relay = Relay::order(org, Some(relay), &c, "alice");
        alice.commit_accepted(g).unwrap();
        carol.receive(&c.commit).unwrap();
    }
    let m = alice.encrypt(g, b"sent while bob was cut off").unwrap();
    bob.hold(g, 3, &m).unwrap();
    assert_eq!(bob.behind(g).unwrap(), Some((1, 3)));
    relay
}

#[test]
fn a_device_cut_off_for_good_rejoins_from_the_published_group_info_and_reads_what_follows() {
    let org = Org::new();
    let (mut alice, mut bob, mut carol, g, relay) = three(&org);
    let relay = cut_off_bob(&org, &mut alice, &mut bob, &mut carol, &g, relay);
    let (epoch, info) = alice.group_info(&g).unwrap();
    assert_eq!(epoch, 3);
    // The relay checks what alice publishes against the group's state.
    assert_eq!(
        relay
            .observer
            .check_group_info(&relay.state, &info, &names("alice")),
        Ok(3)
    );
    let (out, members) = bob.rejoin(&g, &info, &relay.tree()).unwrap();
    assert_eq!(out.epoch, 3);
    assert_eq!(members.len(), 3);
    // It removes bob's own old leaf, and nothing else.
    assert_eq!(out.removed.len(), 1);
    assert_eq!(out.removed[0].user, "bob");
    // The relay orders it as bob's; members take it as bob's re-join.
    let relay = Relay::order(&org, Some(relay), &out, "bob");
    for d in [&mut alice, &mut carol] {
        match d.receive(&out.commit).unwrap() {
            Received::Commit {
                committer,
                added,
                removed,
                rejoined,
                epoch,
                ..
            } => {
                assert_eq!(committer.user, "bob");
                assert!(rejoined);
                assert!(added.is_empty() && removed.is_empty());
                assert_eq!(epoch, 4);
            }
            other => panic!("{other:?}"),
        }
    }
    // The message of the epoch bob skipped is lost, and said to be.
    assert_eq!(bob.rejoin_accepted(&g).unwrap(), (4, 1));
    assert_eq!(bob.behind(&g).unwrap(), None);
    assert!(!bob.holds_messages(&g).unwrap());
    assert_eq!(
        bob.epoch_authenticator(&g).unwrap(),
        alice.epoch_authenticator(&g).unwrap()
    );
    let m = alice.encrypt(&g, b"welcome back").unwrap();
    assert_eq!(body(bob.receive(&m).unwrap()), b"welcome back");
    let m = bob.encrypt(&g, b"thanks").unwrap();
    assert_eq!(body(carol.receive(&m).unwrap()), b"thanks");
    // Bob's next commit is a member's again, and the relay follows; its
    // readers name bob as its committer, and it is no re-join.
    let c = bob
        .remove(&g, &blindrelay_wire::UserName::new("carol").unwrap())
        .unwrap();
    Relay::order(&org, Some(relay), &c, "bob");
    bob.commit_accepted(&g).unwrap();
    match alice.receive(&c.commit).unwrap() {
        Received::Commit {
            committer,
            added,
            removed,
            rejoined,
            ..
        } => {
            assert_eq!(committer.user, "bob");
            assert!(!rejoined);
            assert!(added.is_empty());
            let removed: Vec<&str> = removed.iter().map(|m| m.user.as_str()).collect();
            assert_eq!(removed, ["carol"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_device_that_is_not_behind_does_not_rejoin() {
    let org = Org::new();
    let (mut alice, mut bob, _carol, g, relay) = three(&org);
    let (_, info) = alice.group_info(&g).unwrap();
    assert!(matches!(
        bob.rejoin(&g, &info, &relay.tree()),
        Err(MlsError::NotBehind)
    ));
}

#[test]
fn a_group_info_signed_by_a_device_that_was_not_a_member_is_refused() {
    let org = Org::new();
    let (mut alice, mut bob, mut carol, g, relay) = three(&org);
    cut_off_bob(&org, &mut alice, &mut bob, &mut carol, &g, relay);
    // mallory, never a member, makes a group with the same id, adds bob
    // (with a KeyPackage the relay handed her) and moves it past bob's
    // epoch; with the relay's help she offers it to bob.
    let (mut mallory, _) = org.device("mallory", "laptop");
    mallory.create_group_with_id(g.clone()).unwrap();
    let add = mallory.add(&g, &kps(&mut [&mut bob])).unwrap();
    let mut fake = Relay::order(&org, None, &add, "mallory");
    mallory.commit_accepted(&g).unwrap();
    for _ in 0..3 {
        let c = mallory.update(&g).unwrap();
        fake = Relay::order(&org, Some(fake), &c, "mallory");
        mallory.commit_accepted(&g).unwrap();
    }
    let (_, info) = mallory.group_info(&g).unwrap();
    let before = bob.epoch_authenticator(&g).unwrap();
    refused(bob.rejoin(&g, &info, &fake.tree()).map(|_| ()));
    assert_eq!(bob.epoch_authenticator(&g).unwrap(), before);
    assert_eq!(bob.behind(&g).unwrap(), Some((1, 3)));
}

#[test]
fn a_device_the_newest_group_info_no_longer_lists_does_not_push_itself_back_in() {
    let org = Org::new();
    let (mut alice, mut bob, mut carol, g, relay) = three(&org);
    let c = alice
        .remove(&g, &blindrelay_wire::UserName::new("bob").unwrap())
        .unwrap();
    let relay = Relay::order(&org, Some(relay), &c, "alice");
    alice.commit_accepted(&g).unwrap();
    carol.receive(&c.commit).unwrap();
    let m = alice.encrypt(&g, b"after bob left").unwrap();
    bob.hold(&g, 2, &m).unwrap();
    let (_, info) = alice.group_info(&g).unwrap();
    assert!(matches!(
        bob.rejoin(&g, &info, &relay.tree()),
        Err(MlsError::NotListed)
    ));
}

#[test]
fn an_external_commit_that_replaces_no_leaf_is_refused_by_members_and_by_the_relay() {
    let org = Org::new();
    let (mut alice, _bob, mut carol, g, relay) = three(&org);
    let (_, info) = alice.group_info(&g).unwrap();
    let info_msg = mls_rs::MlsMessage::from_bytes(&info).unwrap();
    let tree = mls_rs::group::ExportedTree::from_bytes(&relay.tree()).unwrap();
    // mallory, enrolled but never a member, holds the published GroupInfo
    // (the relay handed it to her) and commits herself in.
    let mallory = common::stock::stock(&org, "mallory", "laptop", false);
    let (_, commit) = mallory
        .external_commit_builder()
        .unwrap()
        .with_tree_data(tree)
        .build(info_msg)
        .unwrap();
    let commit = commit.to_bytes().unwrap();
    assert_eq!(
        relay
            .observer
            .commit(&relay.state, &g, 1, &commit, &names("mallory"))
            .err(),
        Some(ObserveError::Invalid)
    );
    let before = carol.epoch_authenticator(&g).unwrap();
    refused(carol.receive(&commit));
    assert_eq!(carol.epoch_authenticator(&g).unwrap(), before);
    refused(alice.receive(&commit));
}

#[test]
fn a_group_info_the_relay_would_keep_must_be_the_current_epochs_and_signed_by_its_publisher() {
    let org = Org::new();
    let (mut alice, _bob, mut carol, g, relay) = three(&org);
    let (_, info) = alice.group_info(&g).unwrap();
    // Published by alice, not by carol.
    assert_eq!(
        relay
            .observer
            .check_group_info(&relay.state, &info, &names("carol")),
        Err(ObserveError::NotSender)
    );
    // Once another commit is ordered, it is stale.
    let c = carol.update(&g).unwrap();
    let relay = Relay::order(&org, Some(relay), &c, "carol");
    assert!(matches!(
        relay
            .observer
            .check_group_info(&relay.state, &info, &names("alice")),
        Err(ObserveError::Shape(_))
    ));
    // Not a GroupInfo at all.
    assert!(
        relay
            .observer
            .check_group_info(&relay.state, &c.commit, &names("carol"))
            .is_err()
    );
}

#[test]
fn a_rejoin_waits_for_the_relay_and_is_recognised_when_it_comes_back() {
    let org = Org::new();
    let (mut alice, mut bob, mut carol, g, relay) = three(&org);
    let relay = cut_off_bob(&org, &mut alice, &mut bob, &mut carol, &g, relay);
    let (_, info) = alice.group_info(&g).unwrap();
    assert!(bob.pending_rejoins().is_empty());
    let (out, _) = bob.rejoin(&g, &info, &relay.tree()).unwrap();
    // Nothing changes before the relay orders it.
    assert_eq!(bob.epoch(&g).unwrap(), 1);
    assert_eq!(bob.pending_rejoins(), vec![g.clone()]);
    assert_eq!(bob.is_own_rejoin(&out.commit), Some(g.clone()));
    assert_eq!(bob.is_own_rejoin(b"something else"), None);
    // Refused: dropped, and the group is as it was (still behind).
    bob.rejoin_refused(&g);
    assert!(bob.pending_rejoins().is_empty());
    assert_eq!(bob.is_own_rejoin(&out.commit), None);
    assert!(matches!(
        bob.rejoin_accepted(&g),
        Err(MlsError::NoPendingCommit)
    ));
    assert_eq!(bob.behind(&g).unwrap(), Some((1, 3)));
    assert!(bob.holds_messages(&g).unwrap());
}

#[test]
fn a_group_info_of_another_group_or_of_an_epoch_not_past_the_devices_is_refused() {
    let org = Org::new();
    let (mut alice, mut bob, mut carol, g, relay) = three(&org);
    // The GroupInfo of bob's own epoch (1), before the commits he missed.
    let (_, stale) = alice.group_info(&g).unwrap();
    let stale_tree = relay.tree();
    let relay = cut_off_bob(&org, &mut alice, &mut bob, &mut carol, &g, relay);
    refused(bob.rejoin(&g, &stale, &stale_tree).map(|_| ()));
    // A genuine GroupInfo, by alice, of another group bob is in, past
    // bob's epoch in this one.
    let g2 = alice.create_group().unwrap();
    let add = alice.add(&g2, &kps(&mut [&mut bob])).unwrap();
    let mut other = Relay::order(&org, None, &add, "alice");
    alice.commit_accepted(&g2).unwrap();
    for _ in 0..2 {
        let c = alice.update(&g2).unwrap();
        other = Relay::order(&org, Some(other), &c, "alice");
        alice.commit_accepted(&g2).unwrap();
    }
    let (epoch, info2) = alice.group_info(&g2).unwrap();
    assert_eq!(epoch, 3);
    refused(bob.rejoin(&g, &info2, &other.tree()).map(|_| ()));
    assert!(bob.pending_rejoins().is_empty());
    // The right one still works.
    let (_, info) = alice.group_info(&g).unwrap();
    bob.rejoin(&g, &info, &relay.tree()).unwrap();
}
