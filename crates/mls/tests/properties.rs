//! The security properties of protocol v2, each a test that fails if the
//! property breaks: forward secrecy, post-compromise security, removal,
//! revocation, and what a malicious relay cannot do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{MlsError, Received};
use blindrelay_wire::UserName;
use common::*;

#[test]
fn two_people_with_two_devices_each_share_one_group_and_see_every_message() {
    let org = Org::new();
    let (mut a1, _) = org.device("alice", "laptop");
    let (mut a2, _) = org.device("alice", "phone");
    let (mut b1, _) = org.device("bob", "laptop");
    let (mut b2, _) = org.device("bob", "phone");
    let g = a1.create_group().unwrap();
    let add = a1.add(&g, &kps(&mut [&mut a2, &mut b1, &mut b2])).unwrap();
    land(&mut a1, &add, &mut [], &mut [&mut a2, &mut b1, &mut b2]);
    let members: Vec<String> = a1
        .members(&g)
        .unwrap()
        .into_iter()
        .map(|m| format!("{}@{}", m.user, m.device))
        .collect();
    assert_eq!(
        members,
        ["alice@laptop", "alice@phone", "bob@laptop", "bob@phone"]
    );
    // What one device sends reaches the other three, the sender's other
    // device included, with the sender named by its certificate.
    let m = a1.encrypt(&g, b"hello from the laptop").unwrap();
    for d in [&mut a2, &mut b1, &mut b2] {
        match d.receive(&m).unwrap() {
            Received::Message { sender, body, .. } => {
                assert_eq!(
                    (sender.user.as_str(), sender.device.as_str()),
                    ("alice", "laptop")
                );
                assert_eq!(body, b"hello from the laptop");
            }
            other => panic!("{other:?}"),
        }
    }
    let reply = b2.encrypt(&g, b"from bob's phone").unwrap();
    for d in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(body(d.receive(&reply).unwrap()), b"from bob's phone");
    }
    // Every member agrees on the group's history.
    let auth = a1.epoch_authenticator(&g).unwrap();
    for d in [&mut a2, &mut b1, &mut b2] {
        assert_eq!(d.epoch_authenticator(&g).unwrap(), auth);
    }
}

#[test]
fn a_state_copy_taken_after_reading_a_message_cannot_decrypt_it() {
    let org = Org::new();
    let (mut alice, mut bob, bob_files, g) = alice_and_bob(&org);
    let recorded = alice.encrypt(&g, b"secret").unwrap();
    assert_eq!(body(bob.receive(&recorded).unwrap()), b"secret");
    drop(bob);
    let stolen = org.dir.path().join("stolen-after.db");
    let mut thief = steal(&bob_files, &org, &stolen);
    // The thief holds everything bob's device held, and is still in the
    // group (it can read what comes next in this epoch)...
    let next = alice.encrypt(&g, b"next").unwrap();
    // ...but not the message already read.
    refused(thief.receive(&recorded));
    assert_eq!(body(thief.receive(&next).unwrap()), b"next");
}

#[test]
fn a_state_stolen_at_epoch_n_reads_nothing_after_the_victims_update() {
    let org = Org::new();
    let (mut alice, mut bob, bob_files, g) = alice_and_bob(&org);
    let stolen = org.dir.path().join("stolen-at-n.db");
    let mut thief = steal(&bob_files, &org, &stolen);
    // The copy is a real compromise at epoch N: it reads epoch N.
    let at_n = alice.encrypt(&g, b"epoch n").unwrap();
    assert_eq!(body(thief.receive(&at_n).unwrap()), b"epoch n");
    assert_eq!(body(bob.receive(&at_n).unwrap()), b"epoch n");
    // Bob's device updates its leaf; alice processes the commit.
    let update = bob.update(&g).unwrap();
    land(&mut bob, &update, &mut [&mut alice], &mut []);
    let after = alice.encrypt(&g, b"after the update").unwrap();
    assert_eq!(body(bob.receive(&after).unwrap()), b"after the update");
    // The thief sees the relay's whole traffic and still reads nothing.
    refused(thief.receive(&update.commit));
    refused(thief.receive(&after));
}

#[test]
fn a_removed_member_reads_nothing_sent_after_its_removal() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, carol_files) = org.device("carol", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    let before = org.dir.path().join("carol-before-removal.db");
    let mut carol_copy = steal(&carol_files, &org, &before);
    let remove = alice.remove(&g, &UserName::new("carol").unwrap()).unwrap();
    alice.commit_accepted(&g).unwrap();
    match bob.receive(&remove.commit).unwrap() {
        Received::Commit {
            removed,
            removed_me,
            ..
        } => {
            assert!(!removed_me);
            assert_eq!(removed.len(), 1);
            assert_eq!(removed[0].user, "carol");
        }
        other => panic!("{other:?}"),
    }
    match carol.receive(&remove.commit).unwrap() {
        Received::Commit { removed_me, .. } => assert!(removed_me),
        other => panic!("{other:?}"),
    }
    // Carol's device has forgotten the group.
    assert!(carol.group_ids().unwrap().is_empty());
    let after = alice.encrypt(&g, b"without carol").unwrap();
    assert_eq!(body(bob.receive(&after).unwrap()), b"without carol");
    refused(carol.receive(&after));
    // Even a copy of carol's state from before the removal reads nothing
    // after it, with or without the removal commit.
    refused(carol_copy.receive(&after));
    let _ = carol_copy.receive(&remove.commit);
    refused(carol_copy.receive(&after));
}

#[test]
fn a_revoked_device_is_refused_and_removed_at_the_next_commit() {
    let mut org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, carol_files) = org.device("carol", "phone");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    // The CA revokes carol's phone; alice's and bob's clients accept the
    // new CRL.
    org.revoke(&carol_files.cert_der);
    alice.trust().replace_root(org.trust_root());
    bob.trust().replace_root(org.trust_root());
    // Its messages are refused from now on...
    let from_revoked = carol.encrypt(&g, b"still here").unwrap();
    refused(bob.receive(&from_revoked));
    // ...and the next commit of any member removes it, though nobody
    // asked for it by name.
    let update = alice.update(&g).unwrap();
    alice.commit_accepted(&g).unwrap();
    match bob.receive(&update.commit).unwrap() {
        Received::Commit { removed, .. } => {
            assert_eq!(
                removed.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(),
                ["carol"]
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = carol.receive(&update.commit);
    let after = alice.encrypt(&g, b"after revocation").unwrap();
    assert_eq!(body(bob.receive(&after).unwrap()), b"after revocation");
    refused(carol.receive(&after));
}

#[test]
fn replayed_and_reordered_application_messages_are_refused_without_a_replay_cache() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let m1 = alice.encrypt(&g, b"one").unwrap();
    let m2 = alice.encrypt(&g, b"two").unwrap();
    let m3 = alice.encrypt(&g, b"three").unwrap();
    // A forged copy of m1 costs the genuine one nothing.
    let mut forged = m1.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    refused(bob.receive(&forged));
    assert_eq!(body(bob.receive(&m1).unwrap()), b"one");
    // A replay: the generation was used.
    refused(bob.receive(&m1));
    // Reordered: m3 before m2 is read, and m2 can never come after it.
    assert_eq!(body(bob.receive(&m3).unwrap()), b"three");
    refused(bob.receive(&m2));
    // A replay across a commit: the old epoch's keys are spent too.
    let update = alice.update(&g).unwrap();
    land(&mut alice, &update, &mut [&mut bob], &mut []);
    refused(bob.receive(&m3));
    // A replayed commit is refused as well.
    refused(bob.receive(&update.commit));
}

#[test]
fn the_relay_cannot_add_a_member_or_alter_a_commit() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, carol_files) = org.device("carol", "laptop");
    let (mut mallory, _) = org.device("mallory", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    // A valid certificate is not membership: mallory makes a group with
    // the same id at the same epoch and commits adding herself and a
    // friend; bob refuses it.
    let fake = mallory.create_group_with_id(g.clone()).unwrap();
    let step = mallory.update(&fake).unwrap();
    mallory.commit_accepted(&step.group_id).unwrap();
    let (mut friend, _) = org.device("friend", "laptop");
    let forged = mallory.add(&fake, &kps(&mut [&mut friend])).unwrap();
    assert_eq!(forged.epoch, bob.epoch(&g).unwrap());
    refused(bob.receive(&forged.commit));
    // A removed member's copy of the group cannot add anyone after its
    // removal.
    let copy = org.dir.path().join("carol-copy.db");
    let mut carol_copy = steal(&carol_files, &org, &copy);
    let remove = alice.remove(&g, &UserName::new("carol").unwrap()).unwrap();
    land(&mut alice, &remove, &mut [&mut bob], &mut []);
    let late = carol_copy.add(&g, &kps(&mut [&mut friend])).unwrap();
    refused(bob.receive(&late.commit));
    // Any byte of a commit changed: refused.
    let update = alice.update(&g).unwrap();
    for i in [0, update.commit.len() / 2, update.commit.len() - 1] {
        let mut bad = update.commit.clone();
        bad[i] ^= 1;
        refused(bob.receive(&bad));
    }
    land(&mut alice, &update, &mut [&mut bob], &mut []);
    assert_eq!(
        alice.members(&g).unwrap(),
        bob.members(&g).unwrap(),
        "the members agree on who is in the group"
    );
}

#[test]
fn a_forked_group_is_detected_by_its_members() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, _) = org.device("carol", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    // Alice and bob commit at the same epoch. An honest relay orders one
    // and refuses the other; this one tells both they won, and shows
    // carol alice's commit only.
    let a = alice.update(&g).unwrap();
    let b = bob.update(&g).unwrap();
    alice.commit_accepted(&g).unwrap();
    bob.commit_accepted(&g).unwrap();
    carol.receive(&a.commit).unwrap();
    assert_eq!(alice.epoch(&g).unwrap(), bob.epoch(&g).unwrap());
    // Same epoch number, different histories: the epoch authenticators
    // (derived from the transcript) differ, and nothing crosses the fork.
    assert_eq!(
        alice.epoch_authenticator(&g).unwrap(),
        carol.epoch_authenticator(&g).unwrap()
    );
    assert_ne!(
        alice.epoch_authenticator(&g).unwrap(),
        bob.epoch_authenticator(&g).unwrap()
    );
    // Nothing crosses the fork, and each side is told it is one: the
    // message carries the tag of bob's history (device/fork.rs).
    let from_bob = bob.encrypt(&g, b"on the other branch").unwrap();
    assert!(matches!(
        alice.receive(&from_bob),
        Err(MlsError::Forked { epoch: 2 })
    ));
    assert!(matches!(
        carol.receive(&from_bob),
        Err(MlsError::Forked { epoch: 2 })
    ));
    // The losing commit, delivered late, is refused as well.
    refused(carol.receive(&b.commit));
}

#[test]
fn a_tampered_welcome_or_one_from_a_revoked_creator_is_refused() {
    let mut org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    alice.commit_accepted(&g).unwrap();
    let welcome = add.welcome.clone().unwrap();
    for i in [welcome.len() / 3, welcome.len() / 2, welcome.len() - 1] {
        let mut bad = welcome.clone();
        bad[i] ^= 0x40;
        refused(bob.join(&bad));
    }
    assert!(bob.group_ids().unwrap().is_empty());
    // Mallory's certificate is revoked, but her own client does not know
    // yet: she makes a group and welcomes carol, whose client does know.
    let (mut mallory, mallory_files) = org.device("mallory", "laptop");
    let (mut carol, _) = org.device("carol", "laptop");
    org.revoke(&mallory_files.cert_der);
    carol.trust().replace_root(org.trust_root());
    let mg = mallory.create_group().unwrap();
    let lure = mallory.add(&mg, &kps(&mut [&mut carol])).unwrap();
    refused(carol.join(lure.welcome.as_ref().unwrap()));
    assert!(carol.group_ids().unwrap().is_empty());
    // The genuine Welcome still works.
    bob.join(&welcome).unwrap();
}

#[test]
fn a_losing_commit_is_dropped_and_retried_after_the_winner() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, _) = org.device("carol", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    // Both commit at epoch 1; the relay orders alice's and refuses bob's.
    let win = alice.update(&g).unwrap();
    let lose = bob.add(&g, &kps(&mut [&mut carol])).unwrap();
    assert_eq!(win.epoch, lose.epoch);
    // While a commit waits, this device sends nothing in the group.
    assert!(matches!(
        bob.encrypt(&g, b"x"),
        Err(MlsError::CommitPending)
    ));
    alice.commit_accepted(&g).unwrap();
    bob.commit_refused(&g).unwrap();
    bob.receive(&win.commit).unwrap();
    let retry = bob.add(&g, &kps(&mut [&mut carol])).unwrap();
    assert_eq!(retry.epoch, win.epoch + 1);
    land(&mut bob, &retry, &mut [&mut alice], &mut [&mut carol]);
    let m = carol.encrypt(&g, b"joined after the retry").unwrap();
    assert_eq!(body(alice.receive(&m).unwrap()), b"joined after the retry");
    assert_eq!(body(bob.receive(&m).unwrap()), b"joined after the retry");
}
