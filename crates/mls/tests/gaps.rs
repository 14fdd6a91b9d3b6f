//! What a device does with what the relay (or an insider) hands it out of
//! place: a Welcome for a group it holds, messages from an epoch it has not
//! reached, a last-resort KeyPackage used more than once, and copies of
//! what it already processed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{Held, MlsError, Position};
use common::*;

#[test]
fn a_welcome_for_a_group_the_device_holds_is_refused_and_the_group_is_unchanged() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let (mut mallory, _) = org.device("mallory", "laptop");
    mallory.create_group_with_id(g.clone()).unwrap();
    let add = mallory.add(&g, &kps(&mut [&mut bob])).unwrap();
    mallory.commit_accepted(&g).unwrap();
    let before = bob.epoch_authenticator(&g).unwrap();
    assert!(matches!(
        bob.join(add.welcome.as_ref().unwrap()),
        Err(MlsError::GroupHeld)
    ));
    assert_eq!(bob.epoch_authenticator(&g).unwrap(), before);
    let people: Vec<String> = bob
        .members(&g)
        .unwrap()
        .into_iter()
        .map(|m| m.user)
        .collect();
    assert_eq!(people, ["alice", "bob"]);
    let m = alice.encrypt(&g, b"still ours").unwrap();
    assert_eq!(body(bob.receive(&m).unwrap()), b"still ours");
}

#[test]
fn a_message_from_a_later_epoch_is_ahead_and_held_and_the_device_will_not_send_until_it_catches_up()
{
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let c1 = alice.update(&g).unwrap();
    alice.commit_accepted(&g).unwrap();
    let c2 = alice.update(&g).unwrap();
    alice.commit_accepted(&g).unwrap();
    let m = alice.encrypt(&g, b"at epoch 3").unwrap();
    assert_eq!(bob.position(&c1.commit), Position::Now);
    assert_eq!(
        bob.position(&m),
        Position::Ahead {
            group_id: g.clone(),
            epoch: 3,
            current: 1
        }
    );
    assert_eq!(bob.hold(&g, 3, &m).unwrap(), Held::Kept);
    assert_eq!(bob.hold(&g, 2, &c2.commit).unwrap(), Held::Kept);
    assert_eq!(bob.behind(&g).unwrap(), Some((1, 3)));
    assert!(matches!(bob.encrypt(&g, b"stale"), Err(MlsError::Behind)));
    assert!(matches!(bob.update(&g), Err(MlsError::Behind)));
    // Nothing held is ready before the missing commit.
    assert!(bob.next_held(&g).unwrap().is_none());
    bob.receive(&c1.commit).unwrap();
    // Ready in epoch order: the commit (epoch 2) before the message.
    let (n, next) = bob.next_held(&g).unwrap().unwrap();
    assert_eq!(next, c2.commit);
    bob.release_held(n).unwrap();
    bob.receive(&next).unwrap();
    // At epoch 3 with a held message of epoch 3 (not yet released): no
    // longer behind.
    assert_eq!(bob.behind(&g).unwrap(), None);
    let (n, next) = bob.next_held(&g).unwrap().unwrap();
    bob.release_held(n).unwrap();
    assert_eq!(body(bob.receive(&next).unwrap()), b"at epoch 3");
    assert_eq!(bob.behind(&g).unwrap(), None);
    assert!(bob.encrypt(&g, b"fresh").is_ok());
    // A commit of a past epoch read back is a past handshake.
    assert_eq!(bob.position(&c1.commit), Position::PastHandshake);
}

#[test]
fn a_groups_hold_is_bounded() {
    let org = Org::new();
    let (_alice, mut bob, _, g) = alice_and_bob(&org);
    let big = vec![0u8; 1024 * 1024];
    let mut kept = 0;
    while bob.hold(&g, 5, &big).unwrap() == Held::Kept {
        kept += 1;
        assert!(kept <= 16);
    }
    assert_eq!(kept, 16, "16 MiB per group");
}

#[test]
fn a_last_resort_key_package_lets_two_groups_add_the_device() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let kp = bob.last_resort_key_package().unwrap();
    for _ in 0..2 {
        let g = alice.create_group().unwrap();
        let add = alice.add(&g, std::slice::from_ref(&kp)).unwrap();
        alice.commit_accepted(&g).unwrap();
        bob.join(add.welcome.as_ref().unwrap()).unwrap();
    }
    // A one-time KeyPackage's key is gone after one use.
    let one = bob.key_packages(1).unwrap();
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &one).unwrap();
    alice.commit_accepted(&g).unwrap();
    let w = add.welcome.unwrap();
    bob.join(&w).unwrap();
    let g2 = alice.create_group().unwrap();
    let add = alice.add(&g2, &one).unwrap();
    alice.commit_accepted(&g2).unwrap();
    refused(bob.join(add.welcome.as_ref().unwrap()));
}

#[test]
fn only_the_two_newest_last_resort_key_packages_keep_their_keys() {
    let org = Org::new();
    let (mut bob, _) = org.device("bob", "laptop");
    let before = bob.store().key_package_ids().unwrap().len();
    for _ in 0..4 {
        bob.last_resort_key_package().unwrap();
    }
    assert_eq!(bob.store().key_package_ids().unwrap().len(), before + 2);
}

#[test]
fn what_was_processed_is_known_by_its_bytes() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let m = alice.encrypt(&g, b"once").unwrap();
    assert!(!bob.already_processed(&m).unwrap());
    bob.receive(&m).unwrap();
    assert!(bob.already_processed(&m).unwrap());
    // A refused message is not remembered as processed.
    let mut forged = alice.encrypt(&g, b"x").unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    refused(bob.receive(&forged));
    assert!(!bob.already_processed(&forged).unwrap());
}

#[test]
fn a_message_from_another_history_of_the_group_is_told_apart_as_a_fork() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let (mut carol, _) = org.device("carol", "laptop");
    let add = alice.add(&g, &kps(&mut [&mut carol])).unwrap();
    land(&mut alice, &add, &mut [&mut bob], &mut [&mut carol]);
    // The relay accepts two commits for epoch 2: alice's goes to bob,
    // carol keeps her own.
    let a = alice.update(&g).unwrap();
    alice.commit_accepted(&g).unwrap();
    bob.receive(&a.commit).unwrap();
    carol.update(&g).unwrap();
    carol.commit_accepted(&g).unwrap();
    assert_eq!(carol.epoch(&g).unwrap(), alice.epoch(&g).unwrap());
    let from_a = alice.encrypt(&g, b"branch a").unwrap();
    assert_eq!(body(bob.receive(&from_a).unwrap()), b"branch a");
    assert!(
        matches!(carol.receive(&from_a), Err(MlsError::Forked { epoch: 3 })),
        "carol tells the other branch apart"
    );
    let from_c = carol.encrypt(&g, b"branch c").unwrap();
    assert!(matches!(
        bob.receive(&from_c),
        Err(MlsError::Forked { epoch: 3 })
    ));
    // On one branch, an unreadable copy is a plain refusal, not a fork.
    refused(bob.receive(&from_a));
    let mut forged = alice.encrypt(&g, b"x").unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    refused(bob.receive(&forged));
}

#[test]
fn a_restarted_device_refuses_a_welcome_for_a_group_it_holds_on_disk() {
    let org = Org::new();
    let (_alice, bob, bob_files, g) = alice_and_bob(&org);
    drop(bob);
    // Opened again: the group is on disk, not in memory.
    let mut bob = org.open(&bob_files);
    let (mut mallory, _) = org.device("mallory", "laptop");
    mallory.create_group_with_id(g.clone()).unwrap();
    let add = mallory.add(&g, &kps(&mut [&mut bob])).unwrap();
    mallory.commit_accepted(&g).unwrap();
    assert!(matches!(
        bob.join(add.welcome.as_ref().unwrap()),
        Err(MlsError::GroupHeld)
    ));
}

#[test]
fn the_newest_crl_is_kept_and_replaced_in_the_devices_database() {
    let store = blindrelay_mls::MlsStore::in_memory().unwrap();
    assert_eq!(store.crl().unwrap(), None);
    store.set_crl(b"first").unwrap();
    assert_eq!(store.crl().unwrap(), Some(b"first".to_vec()));
    store.set_crl(b"second").unwrap();
    assert_eq!(store.crl().unwrap(), Some(b"second".to_vec()));
}
