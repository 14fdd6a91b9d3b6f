//! A group's life beyond messages: its name, and a member leaving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{GroupName, MlsError, Received};
use common::*;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_group_is_named_and_renamed_inside_the_group_where_the_relay_cannot_read_it() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let name = GroupName::new("Project Omega").unwrap();
    let g = alice.create_named_group(&name).unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    assert_eq!(bob.name(&g).unwrap(), Some(name.clone()));
    let new = GroupName::new("Launch day").unwrap();
    let rename = alice.rename(&g, &new).unwrap();
    alice.commit_accepted(&g).unwrap();
    match bob.receive(&rename.commit).unwrap() {
        Received::Commit { renamed, .. } => assert_eq!(renamed, Some(new.clone())),
        other => panic!("{other:?}"),
    }
    assert_eq!(alice.name(&g).unwrap(), Some(new.clone()));
    assert_eq!(bob.name(&g).unwrap(), Some(new.clone()));
    // Neither name is in anything the relay carried.
    for bytes in [&add.commit, add.welcome.as_ref().unwrap(), &rename.commit] {
        assert!(!contains(bytes, name.as_str().as_bytes()));
        assert!(!contains(bytes, new.as_str().as_bytes()));
    }
    // A commit that does not rename says so.
    let u = bob.update(&g).unwrap();
    bob.commit_accepted(&g).unwrap();
    match alice.receive(&u.commit).unwrap() {
        Received::Commit { renamed, .. } => assert_eq!(renamed, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_member_who_leaves_is_removed_by_the_next_commit_and_reads_nothing_after() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, _) = org.device("carol", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    let request = carol.leave(&g).unwrap();
    for d in [&mut alice, &mut bob] {
        match d.receive(&request).unwrap() {
            Received::LeaveRequest { member, .. } => assert_eq!(member.user, "carol"),
            other => panic!("{other:?}"),
        }
    }
    // Until someone commits it, nobody sends (RFC 9420); bob commits.
    assert!(alice.encrypt(&g, b"too early").is_err());
    let commit = bob.update(&g).unwrap();
    bob.commit_accepted(&g).unwrap();
    match alice.receive(&commit.commit).unwrap() {
        Received::Commit { removed, .. } => {
            assert_eq!(
                removed.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(),
                ["carol"]
            );
        }
        other => panic!("{other:?}"),
    }
    match carol.receive(&commit.commit).unwrap() {
        Received::Commit { removed_me, .. } => assert!(removed_me),
        other => panic!("{other:?}"),
    }
    assert!(carol.group_ids().unwrap().is_empty());
    let after = alice.encrypt(&g, b"after carol left").unwrap();
    assert!(matches!(bob.receive(&after), Ok(Received::Message { .. })));
    assert!(matches!(carol.receive(&after), Err(MlsError::Refused)));
}

#[test]
fn a_replayed_leave_request_is_refused_once_its_epoch_is_over() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let (mut carol, _) = org.device("carol", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut carol])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut carol]);
    // Carol's leave request, replayed by the relay after a commit carried
    // it out, is refused: its epoch is over.
    let request = carol.leave(&g).unwrap();
    bob.receive(&request).unwrap();
    let commit = bob.update(&g).unwrap();
    bob.commit_accepted(&g).unwrap();
    alice.receive(&request).unwrap();
    alice.receive(&commit.commit).unwrap();
    assert!(matches!(alice.receive(&request), Err(MlsError::Refused)));
    // And alice can send at once: nothing pending.
    let m = alice.encrypt(&g, b"still here").unwrap();
    assert!(matches!(bob.receive(&m), Ok(Received::Message { .. })));
}

#[test]
fn every_leaf_is_due_for_a_self_update_once_older_than_the_interval() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let g1 = alice.create_group().unwrap();
    let g2 = alice.create_group().unwrap();
    let add = alice.add(&g1, &kps(&mut [&mut bob])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob]);
    assert!(alice.groups_due_for_update().unwrap().is_empty());
    assert!(bob.groups_due_for_update().unwrap().is_empty());
    let later = now() + blindrelay_mls::device::SELF_UPDATE_INTERVAL.as_secs() + 3600;
    alice.trust().set_now(later);
    bob.trust().set_now(later);
    let mut due = alice.groups_due_for_update().unwrap();
    due.sort();
    let mut both = vec![g1.clone(), g2.clone()];
    both.sort();
    assert_eq!(due, both);
    // Alice's own commit refreshes her leaf in that group only...
    let u = alice.update(&g1).unwrap();
    alice.commit_accepted(&g1).unwrap();
    assert_eq!(alice.groups_due_for_update().unwrap(), vec![g2.clone()]);
    // ...and someone else's commit does not refresh bob's.
    bob.receive(&u.commit).unwrap();
    assert_eq!(bob.groups_due_for_update().unwrap(), vec![g1.clone()]);
    let u = bob.update(&g1).unwrap();
    bob.commit_accepted(&g1).unwrap();
    alice.receive(&u.commit).unwrap();
    assert!(bob.groups_due_for_update().unwrap().is_empty());
}
