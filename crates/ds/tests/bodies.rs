//! What is queued is one body per submission, pointed at by every
//! recipient's item, charged once to its sender and to all mailboxes
//! together, and released for deletion when the last item pointing at it
//! is acknowledged or expires (issue 28, item 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use blindrelay_ds::{BodyId, DeviceId, DsError, Groups, Kept, Limits, Submission};
use common::dev;

fn people(n: usize) -> Vec<DeviceId> {
    (0..n).map(|i| dev(&format!("u{i}"), "l")).collect()
}

fn message(len: usize) -> Submission {
    Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: vec![7; len],
    }
}

#[test]
fn a_welcome_to_many_devices_is_one_body_charged_once_to_its_sender() {
    // 100 new devices and a 100-byte Welcome: 10 000 bytes if copied per
    // recipient, 100 as one body. The sender may queue 1 000.
    let a = dev("alice", "l");
    let new = people(100);
    let mut g = Groups::new(Limits {
        queued_bytes_per_sender: 1_000,
        total_mailbox_bytes: 1_000,
        ..Limits::default()
    });
    let mut members: BTreeSet<DeviceId> = new.iter().cloned().collect();
    members.insert(a.clone());
    let genesis = Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch: 0,
        members,
        commit: vec![1; 9],
        welcome: Some((new.iter().cloned().collect(), vec![2; 99])),
    };
    g.submit(&a, genesis).unwrap();
    let made = g.mailboxes().take_appended();
    assert!(!made.is_empty());
    assert_eq!(
        made.bodies.len(),
        2,
        "the commit and the Welcome, once each"
    );
    assert_eq!(made.items.len(), 101);
    assert_eq!(g.mailboxes_ref().queued_by(&a), 10 + 100);
    assert_eq!(g.mailboxes_ref().total_bytes(), 110);
    assert_eq!(g.mailboxes_ref().bodies(), 2);
}

#[test]
fn a_body_is_released_only_when_its_last_item_goes_and_a_refusal_makes_none() {
    let (a, b, c) = (dev("alice", "l"), dev("bob", "l"), dev("carol", "l"));
    let mut g = Groups::new(Limits {
        mailbox_ttl_secs: 100,
        ..Limits::default()
    });
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([a.clone(), b.clone(), c.clone()]),
    );
    let mut kept = Kept::new();
    g.mailboxes().set_now(1_000);
    g.submit(&a, message(4)).unwrap();
    kept.sync(g.mailboxes());
    assert_eq!(kept.len(), 1);
    // Bob read it; carol did not: the body stays.
    g.mailboxes().ack(&b, 0);
    assert!(g.mailboxes().take_released().is_empty());
    assert_eq!(g.mailboxes_ref().queued_by(&a), 5);
    // Carol read it: the body goes, and so do its charges.
    g.mailboxes().ack(&c, 0);
    assert_eq!(g.mailboxes().take_released(), [BodyId(0)]);
    assert_eq!(g.mailboxes_ref().queued_by(&a), 0);
    assert_eq!(g.mailboxes_ref().total_bytes(), 0);
    // A refused submission makes no body.
    let stale = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 7,
        message: vec![1],
    };
    assert!(matches!(
        g.submit(&a, stale),
        Err(DsError::StaleEpoch { .. })
    ));
    assert!(g.mailboxes().take_appended().is_empty());
    assert_eq!(g.mailboxes_ref().bodies(), 0);
    // Expiry releases like an acknowledgement does.
    g.submit(&a, message(4)).unwrap();
    g.mailboxes().expire(1_101);
    assert_eq!(g.mailboxes().take_released(), [BodyId(1)]);
}

#[test]
fn a_message_to_nobody_else_makes_no_body() {
    let a = dev("alice", "l");
    let mut g = Groups::new(Limits::default());
    g.restore(b"g".to_vec(), 1, BTreeSet::from([a.clone()]));
    g.submit(&a, message(4)).unwrap();
    assert!(g.mailboxes().take_appended().is_empty());
    assert_eq!(g.mailboxes_ref().queued_by(&a), 0);
}

#[test]
fn at_start_up_a_body_no_item_points_at_is_released_and_numbering_resumes_past_it() {
    let (a, b) = (dev("alice", "l"), dev("bob", "l"));
    let mut g = Groups::new(Limits::default());
    g.restore(b"g".to_vec(), 1, BTreeSet::from([a.clone(), b.clone()]));
    let m = g.mailboxes();
    m.restore_body(BodyId(3), 5, Some(a.clone()), 0);
    m.restore_body(BodyId(9), 5, Some(a.clone()), 0);
    assert!(m.restore_item(&b, 0, BodyId(3)));
    m.restored();
    assert_eq!(m.take_released(), [BodyId(9)]);
    assert_eq!(m.queued_by(&a), 5, "the orphan's charge went with it");
    g.submit(&a, message(1)).unwrap();
    let made = g.mailboxes().take_appended();
    assert_eq!(made.bodies[0].0, BodyId(10));
}

#[test]
fn a_persons_devices_together_have_at_most_the_persons_share_waiting() {
    // Each device may have 30 bytes waiting, the person 40: her second
    // device gets 10 more, not 30, and someone else is not held back.
    let (m1, m2) = (dev("mallory", "a"), dev("mallory", "b"));
    let bob = dev("bob", "l");
    let mut g = Groups::new(Limits {
        queued_bytes_per_sender: 30,
        queued_bytes_per_person: 40,
        ..Limits::default()
    });
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([m1.clone(), m2.clone(), bob.clone()]),
    );
    for _ in 0..3 {
        g.submit(&m1, message(9)).unwrap();
    }
    g.submit(&m2, message(9)).unwrap();
    assert_eq!(g.mailboxes_ref().queued_by_person(&m1.user), 40);
    assert_eq!(
        g.submit(&m2, message(0)),
        Err(DsError::Capacity(
            "the sender's person has too much waiting in mailboxes"
        ))
    );
    g.submit(&bob, message(9)).unwrap();
    // Read: the person's share comes back.
    g.mailboxes().ack(&bob, 3);
    g.mailboxes().ack(&m1, 0);
    g.mailboxes().ack(&m2, 3);
    assert_eq!(g.mailboxes_ref().queued_by_person(&m1.user), 0);
    g.submit(&m2, message(9)).unwrap();
}

#[test]
fn a_read_of_a_mailbox_is_bounded_in_bytes_but_always_gives_one_item() {
    let (a, b) = (dev("alice", "l"), dev("bob", "l"));
    let mut g = Groups::new(Limits::default());
    g.restore(b"g".to_vec(), 1, BTreeSet::from([a.clone(), b.clone()]));
    for len in [9, 9, 9] {
        g.submit(&a, message(len)).unwrap();
    }
    let m = g.mailboxes_ref();
    let seqs = |v: Vec<(u64, BodyId)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(
        seqs(m.pending_from(&b, 0, (10, 20))),
        [0, 1],
        "10 + 10 bytes"
    );
    assert_eq!(seqs(m.pending_from(&b, 0, (10, 19))), [0]);
    assert_eq!(seqs(m.pending_from(&b, 0, (10, 1))), [0], "one item anyway");
    assert_eq!(seqs(m.pending_from(&b, 1, (1, 100))), [1]);
    assert!(m.pending_from(&b, 3, (10, 100)).is_empty());
}

#[test]
fn a_revoked_devices_mailbox_is_emptied_and_what_only_it_pointed_at_released() {
    let (a, b, c) = (dev("alice", "l"), dev("bob", "l"), dev("carol", "l"));
    let mut g = Groups::new(Limits::default());
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([a.clone(), b.clone(), c.clone()]),
    );
    let mut kept = Kept::new();
    g.submit(&a, message(4)).unwrap(); // to bob and carol: body 0
    g.mailboxes().ack(&c, 0);
    g.submit(&c, message(4)).unwrap(); // to alice and bob: body 1
    kept.sync(g.mailboxes());
    assert_eq!(kept.len(), 2);
    assert!(!kept.is_empty());
    g.mailboxes().audit().unwrap();
    // bob is revoked: body 0 was his alone now, body 1 is alice's too.
    g.forget_device(&b);
    kept.sync(g.mailboxes());
    assert!(g.mailboxes_ref().pending(&b).is_empty());
    assert_eq!(kept.len(), 1);
    assert!(kept.get(BodyId(0)).is_none() && kept.get(BodyId(1)).is_some());
    assert_eq!(g.mailboxes_ref().queued_by(&a), 0, "alice's body went");
    g.mailboxes().audit().unwrap();
    // His numbering is kept: a device of that name never sees a number
    // again.
    assert_eq!(g.mailboxes_ref().next_seq(&b), 2);
    g.mailboxes().ack(&a, 0);
    kept.sync(g.mailboxes());
    assert!(kept.is_empty());
    g.mailboxes().audit().unwrap();
}

#[test]
fn body_numbers_never_go_back_when_the_state_is_rebuilt() {
    let a = dev("alice", "l");
    let mut g = Groups::new(Limits::default());
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([a.clone(), dev("bob", "l")]),
    );
    g.mailboxes().restore_next_body(BodyId(40));
    g.mailboxes().restore_next_body(BodyId(7));
    assert_eq!(g.mailboxes_ref().next_body(), BodyId(40));
    g.submit(&a, message(1)).unwrap();
    assert_eq!(g.mailboxes().take_appended().bodies[0].0, BodyId(40));
    assert_eq!(g.mailboxes_ref().next_body(), BodyId(41));
}
