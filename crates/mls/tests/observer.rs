//! The relay's check of handshakes ([`Observer`]): it follows a group's
//! public state from its creator's GroupInfo through every commit our
//! devices make, and refuses what members would refuse (garbage, a commit
//! signed by another device than the submitter, a handshake hidden in a
//! PrivateMessage, a proposal other than leaving), so it never orders a
//! commit that no member can apply (issue 28 item 1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{Checked, Device, GroupName, MlsError, ObserveError, Observer, Outgoing};
use common::*;

fn names(u: &str, d: &str) -> (String, String) {
    (u.to_string(), d.to_string())
}

fn relay(org: &Org) -> Observer {
    Observer::new(org.trust())
}

/// The relay's check of `out`, submitted by `who`, against `state`
/// (`None`: a new group, checked from its GroupInfo).
fn check(
    obs: &Observer,
    state: Option<&[u8]>,
    out: &Outgoing,
    who: (&str, &str),
) -> Result<Checked, ObserveError> {
    // The relay sets its clock before each check.
    obs.trust().set_now(now());
    let who = names(who.0, who.1);
    match state {
        None => obs.create(
            &out.group_id,
            out.group_info.as_deref().unwrap(),
            &out.commit,
            &who,
        ),
        Some(s) => obs.commit(s, &out.group_id, out.epoch, &out.commit, &who),
    }
}

/// alice creates a named group with bob: the relay follows it.
fn started(org: &Org) -> (Observer, Device, Device, Vec<u8>, Checked) {
    let obs = relay(org);
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let g = alice
        .create_named_group(&GroupName::new("merger talks").unwrap())
        .unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    let checked = check(&obs, None, &add, ("alice", "laptop")).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    (obs, alice, bob, g, checked)
}

#[test]
fn the_relay_follows_a_group_through_every_commit_our_devices_make() {
    let org = Org::new();
    let (obs, mut alice, mut bob, g, first) = started(&org);
    assert_eq!(first.epoch, 1);
    assert_eq!(
        first.members,
        [names("alice", "laptop"), names("bob", "laptop")].into()
    );
    assert_eq!(first.added, [names("bob", "laptop")].into());
    // An add, a self-update, a rename and a removal, by either member.
    let (mut carol, _) = org.device("carol", "phone");
    let add = bob.add(&g, &kps(&mut [&mut carol])).unwrap();
    let c = check(&obs, Some(&first.state), &add, ("bob", "laptop")).unwrap();
    assert_eq!(c.added, [names("carol", "phone")].into());
    land(&mut bob, &add, &mut [&mut alice], &mut [&mut carol]);
    let upd = carol.update(&g).unwrap();
    let c = check(&obs, Some(&c.state), &upd, ("carol", "phone")).unwrap();
    assert!(c.added.is_empty());
    land(&mut carol, &upd, &mut [&mut alice, &mut bob], &mut []);
    let ren = alice.rename(&g, &GroupName::new("board").unwrap()).unwrap();
    let c = check(&obs, Some(&c.state), &ren, ("alice", "laptop")).unwrap();
    land(&mut alice, &ren, &mut [&mut bob, &mut carol], &mut []);
    assert_eq!(carol.name(&g).unwrap().unwrap().as_str(), "board");
    let rm = alice
        .remove(&g, &blindrelay_wire::UserName::new("bob").unwrap())
        .unwrap();
    let c = check(&obs, Some(&c.state), &rm, ("alice", "laptop")).unwrap();
    assert_eq!(
        c.members,
        [names("alice", "laptop"), names("carol", "phone")].into()
    );
    assert_eq!(c.epoch, alice.epoch(&g).unwrap() + 1);
    // A request to leave, then a commit that carries it by reference.
    land(&mut alice, &rm, &mut [&mut carol], &mut []);
    let leave = carol.leave(&g).unwrap();
    let epoch = carol.epoch(&g).unwrap();
    assert!(Observer::is_proposal(&leave, &g, epoch).unwrap());
    let state = obs
        .proposal(&c.state, &g, epoch, &leave, &names("carol", "phone"))
        .unwrap();
    alice.receive(&leave).unwrap();
    let out = alice.update(&g).unwrap();
    let c = check(&obs, Some(&state), &out, ("alice", "laptop")).unwrap();
    assert_eq!(c.members, [names("alice", "laptop")].into());
    alice.commit_accepted(&g).unwrap();
    // Application messages are PrivateMessages of application content.
    let m = alice.encrypt(&g, b"hi").unwrap();
    assert_eq!(Observer::is_proposal(&m, &g, epoch + 1), Ok(false));
    assert!(Observer::is_proposal(&m, &g, epoch).is_err());
}

#[test]
fn the_relay_never_reads_a_group_name() {
    let org = Org::new();
    let (_, _, _, _, first) = started(&org);
    let needle = b"merger talks";
    assert!(!first.state.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn a_commit_that_is_not_a_valid_mls_commit_is_refused() {
    let org = Org::new();
    let (obs, mut alice, _bob, g, first) = started(&org);
    let mut out = alice.update(&g).unwrap();
    // Garbage, and the real commit with one byte of its signature flipped.
    let genuine = out.commit.clone();
    out.commit = vec![0u8; 300];
    assert!(check(&obs, Some(&first.state), &out, ("alice", "laptop")).is_err());
    let mut flipped = genuine.clone();
    let last = flipped.len() / 2;
    flipped[last] ^= 1;
    out.commit = flipped;
    assert!(check(&obs, Some(&first.state), &out, ("alice", "laptop")).is_err());
    out.commit = genuine;
    check(&obs, Some(&first.state), &out, ("alice", "laptop")).unwrap();
}

#[test]
fn a_commit_signed_by_another_device_than_the_submitter_is_refused() {
    let org = Org::new();
    let (obs, mut alice, _bob, g, first) = started(&org);
    let out = alice.update(&g).unwrap();
    assert_eq!(
        check(&obs, Some(&first.state), &out, ("bob", "laptop")).unwrap_err(),
        ObserveError::NotSender
    );
    assert_eq!(
        check(&obs, Some(&first.state), &out, ("alice", "phone")).unwrap_err(),
        ObserveError::NotSender
    );
}

#[test]
fn a_new_group_is_checked_from_its_creators_group_info() {
    let org = Org::new();
    let obs = relay(&org);
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    // Another device presents alice's group as its own.
    assert_eq!(
        check(&obs, None, &add, ("mallory", "laptop")).unwrap_err(),
        ObserveError::NotSender
    );
    // A GroupInfo for another group id.
    let who = names("alice", "laptop");
    assert!(
        obs.create(
            b"another id",
            add.group_info.as_deref().unwrap(),
            &add.commit,
            &who
        )
        .is_err()
    );
    // No GroupInfo at all.
    assert!(obs.create(&g, &add.commit, &add.commit, &who).is_err());
    check(&obs, None, &add, ("alice", "laptop")).unwrap();
}

#[test]
fn a_commit_for_another_epoch_or_state_is_refused() {
    let org = Org::new();
    let (obs, mut alice, mut bob, g, first) = started(&org);
    let upd = alice.update(&g).unwrap();
    let next = check(&obs, Some(&first.state), &upd, ("alice", "laptop")).unwrap();
    land(&mut alice, &upd, &mut [&mut bob], &mut []);
    // Replayed against the state it already moved on from.
    assert!(check(&obs, Some(&next.state), &upd, ("alice", "laptop")).is_err());
    // A state that is not one.
    assert_eq!(
        check(&obs, Some(b"not a state"), &upd, ("alice", "laptop")).unwrap_err(),
        ObserveError::State
    );
}

#[test]
fn only_a_request_to_leave_is_a_proposal_the_relay_keeps() {
    let org = Org::new();
    let (obs, mut alice, mut bob, g, first) = started(&org);
    let epoch = alice.epoch(&g).unwrap();
    // bob's request to leave, submitted by alice's session.
    let leave = bob.leave(&g).unwrap();
    assert_eq!(
        obs.proposal(&first.state, &g, epoch, &leave, &names("alice", "laptop"))
            .unwrap_err(),
        ObserveError::NotSender
    );
    // A commit is not a proposal, and a proposal for another epoch is not
    // this epoch's.
    bob.commit_refused(&g).ok();
    let upd = alice.update(&g).unwrap();
    assert!(Observer::is_proposal(&upd.commit, &g, epoch).is_err());
    assert!(Observer::is_proposal(&leave, &g, epoch + 1).is_err());
    assert!(Observer::is_proposal(b"garbage", &g, epoch).is_err());
    obs.proposal(&first.state, &g, epoch, &leave, &names("bob", "laptop"))
        .unwrap();
}

#[test]
fn a_member_refuses_a_handshake_inside_a_private_message() {
    // A client that encrypts its handshakes (a stock mls-rs client here)
    // shares a group with ours. Its commit would pass the relay as an
    // application message, unchecked, so our device refuses it and stays
    // where the relay's order is.
    use mls_rs::{ExtensionList, MlsMessage};
    let org = Org::new();
    let hidden = common::stock::stock(&org, "mallory", "stock", true);
    let mut mg = hidden
        .create_group(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let (mut ours, _) = org.device("bob", "laptop");
    let kp = MlsMessage::from_bytes(&ours.key_packages(1).unwrap()[0]).unwrap();
    let out = mg.commit_builder().add_member(kp).unwrap().build().unwrap();
    mg.apply_pending_commit().unwrap();
    ours.trust().set_now(now());
    let g = ours
        .join(&out.welcome_messages[0].to_bytes().unwrap())
        .unwrap();
    let upd = mg.commit(Vec::new()).unwrap();
    let bytes = upd.commit_message.to_bytes().unwrap();
    assert_eq!(
        upd.commit_message.wire_format(),
        mls_rs::WireFormat::PrivateMessage
    );
    let epoch = ours.epoch(&g).unwrap();
    assert!(matches!(ours.receive(&bytes), Err(MlsError::Refused)));
    assert_eq!(ours.epoch(&g).unwrap(), epoch);
    // And the relay refuses it as a message: not application content.
    assert!(Observer::is_proposal(&bytes, &g, epoch).is_err());
}

#[test]
fn a_member_names_the_author_of_a_signed_commit_it_cannot_apply() {
    // mallory's modified client spoils the path secrets it encrypts to the
    // others. Her commit is signed and passes the relay's check; no member
    // can apply it; alice's device says that mallory made it.
    use mls_rs::{ExtensionList, MlsMessage};
    use std::sync::atomic::Ordering;
    let org = Org::new();
    let (obs, mut alice, mut bob, g, first) = started(&org);
    let spoil = common::spoil::Spoiling::default();
    let mallory = common::stock::stock_with(&org, "mallory", "stock", false, spoil.clone());
    let kp = mallory
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    // A stock KeyPackage is valid from the second it was made (ours are
    // backdated): the device's clock must not be behind it.
    alice.trust().set_now(now());
    bob.trust().set_now(now());
    let add = alice.add(&g, &[kp.to_bytes().unwrap()]).unwrap();
    let state = check(&obs, Some(&first.state), &add, ("alice", "laptop"))
        .unwrap()
        .state;
    land(&mut alice, &add, &mut [&mut bob], &mut []);
    let (mut mg, _) = mallory
        .join_group(
            None,
            &MlsMessage::from_bytes(add.welcome.as_ref().unwrap()).unwrap(),
            None,
        )
        .unwrap();
    spoil.on.store(true, Ordering::Relaxed);
    let bad = mg
        .commit(Vec::new())
        .unwrap()
        .commit_message
        .to_bytes()
        .unwrap();
    let epoch = alice.epoch(&g).unwrap();
    let who = names("mallory", "stock");
    obs.trust().set_now(now());
    obs.commit(&state, &g, epoch, &bad, &who).unwrap();
    for m in [&mut alice, &mut bob] {
        match m.receive(&bad) {
            Err(MlsError::BadCommit { epoch: e, by }) => {
                assert_eq!(
                    (by.user.as_str(), by.device.as_str(), e),
                    ("mallory", "stock", epoch)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.epoch(&g).unwrap(), epoch);
    }
    // The same commit with a byte of its signed content changed, bytes
    // that are no commit, and one whose membership tag (not signed: the
    // relay could change it) is spoilt: refused, nobody named.
    let mut forged = bad.clone();
    let mid = forged.len() / 2;
    forged[mid] ^= 1;
    assert!(matches!(bob.receive(&forged), Err(MlsError::Refused)));
    assert!(matches!(bob.receive(&[0u8; 200]), Err(MlsError::Refused)));
    spoil.on.store(false, Ordering::Relaxed);
    let mut tagged = alice.update(&g).unwrap();
    alice.commit_refused(&g).unwrap();
    let last = tagged.commit.len() - 1;
    tagged.commit[last] ^= 1;
    assert!(matches!(
        bob.receive(&tagged.commit),
        Err(MlsError::Refused)
    ));
}
