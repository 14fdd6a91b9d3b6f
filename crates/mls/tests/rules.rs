//! The device's rules at their bounds: prior epochs, the plaintext limit,
//! what a commit reports, used KeyPackages, a refused commit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{MAX_EPOCH_RETENTION, MAX_PLAINTEXT, MlsError, Received};
use common::*;

#[test]
fn a_message_from_up_to_two_epochs_back_is_read_and_an_older_one_is_refused() {
    assert_eq!(MAX_EPOCH_RETENTION, 2);
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    // Alice writes one message per epoch while bob's commits overtake
    // them in the relay's order.
    let mut late = Vec::new();
    for i in 0..3 {
        late.push(
            alice
                .encrypt(&g, format!("sent at epoch {}", 1 + i).as_bytes())
                .unwrap(),
        );
        let u = bob.update(&g).unwrap();
        land(&mut bob, &u, &mut [&mut alice], &mut []);
    }
    // Bob is at epoch 4: epochs 3 and 2 are kept, epoch 1 is gone.
    assert_eq!(bob.epoch(&g).unwrap(), 4);
    assert!(matches!(bob.receive(&late[0]), Err(MlsError::Refused)));
    for (i, m) in late.iter().enumerate().skip(1) {
        match bob.receive(m).unwrap() {
            Received::Message { body, .. } => {
                assert_eq!(body, format!("sent at epoch {}", 1 + i).as_bytes())
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_plaintext_limit_is_exact() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let m = alice.encrypt(&g, &vec![b'x'; MAX_PLAINTEXT]).unwrap();
    assert!(
        matches!(bob.receive(&m), Ok(Received::Message { body, .. }) if body.len() == MAX_PLAINTEXT)
    );
    assert!(matches!(
        alice.encrypt(&g, &vec![b'x'; MAX_PLAINTEXT + 1]),
        Err(MlsError::TooLarge)
    ));
}

#[test]
fn a_commit_reports_who_committed_and_who_joined() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, _) = org.device("carol", "phone");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    let add = bob.add(&g, &kps(&mut [&mut carol])).unwrap();
    bob.commit_accepted(&g).unwrap();
    match alice.receive(&add.commit).unwrap() {
        Received::Commit {
            committer,
            added,
            removed,
            removed_me,
            epoch,
            ..
        } => {
            assert_eq!(
                (committer.user.as_str(), committer.device.as_str()),
                ("bob", "laptop")
            );
            let added: Vec<_> = added
                .iter()
                .map(|m| (m.user.as_str(), m.device.as_str()))
                .collect();
            assert_eq!(added, [("carol", "phone")]);
            assert!(removed.is_empty() && !removed_me);
            assert_eq!(epoch, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_used_key_package_is_deleted_with_its_private_keys() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, bob_files) = org.device("bob", "laptop");
    let kp = bob.key_packages(2).unwrap();
    assert_eq!(bob.store().key_package_count().unwrap(), 2);
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kp[..1]).unwrap();
    alice.commit_accepted(&g).unwrap();
    let welcome = add.welcome.unwrap();
    bob.join(&welcome).unwrap();
    // The used one is gone; the unused one stays for the next group.
    assert_eq!(bob.store().key_package_count().unwrap(), 1);
    // A copy of bob's state cannot open the recorded Welcome again.
    drop(bob);
    let copy = org.dir.path().join("bob-after-join.db");
    let mut thief = steal(&bob_files, &org, &copy);
    thief.store().forget_group(&g).unwrap();
    assert!(matches!(thief.join(&welcome), Err(MlsError::Refused)));
}

#[test]
fn after_the_relay_refuses_its_commit_a_device_can_send_at_once() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    let win = alice.update(&g).unwrap();
    bob.update(&g).unwrap();
    alice.commit_accepted(&g).unwrap();
    bob.commit_refused(&g).unwrap();
    // Bob's message, written before the winner reached him, is read by
    // alice from her prior epoch.
    let m = bob
        .encrypt(&g, b"written before the winner arrived")
        .unwrap();
    bob.receive(&win.commit).unwrap();
    assert!(matches!(alice.receive(&m), Ok(Received::Message { .. })));
    // A second refusal, with nothing pending, changes nothing.
    assert!(matches!(bob.commit_refused(&g), Ok(())));
}

#[test]
fn every_commit_carries_a_path_an_add_alone_too() {
    // With a path, the committer's new leaf (its certificate inside) is
    // in the commit; an add without one would carry only the joiner's.
    let org = Org::new();
    let (mut alice, alice_files) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    let cert = &alice_files.cert_der;
    assert!(
        add.commit.windows(cert.len()).any(|w| w == cert.as_slice()),
        "the add carries alice's new leaf"
    );
}

#[test]
fn application_messages_are_padded_with_padme() {
    // Padme (PROTOCOL.md 11.2) rounds these small contents to multiples of
    // 8 or 16 bytes; mls-rs's default step function would round them to
    // multiples of 32, leaving at most three sizes for 0 to 64 bytes of text.
    let org = Org::new();
    let (mut alice, _, _, g) = alice_and_bob(&org);
    let sizes: std::collections::BTreeSet<usize> = (0..=64)
        .map(|n| alice.encrypt(&g, &vec![b'x'; n]).unwrap().len())
        .collect();
    assert!(sizes.len() >= 5, "{sizes:?}");
}
