//! What the relay's storage relies on: every effect of an accepted
//! submission is reported (and nothing for a refused one), the state can
//! be put back from storage exactly, numbering never repeats, and a
//! person's devices can be listed without consuming anything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use blindrelay_ds::{BodyId, Delivery, DeviceId, Directory, DsError, Groups, Limits, Submission};
use blindrelay_wire::UserName;
use common::dev;

fn genesis(group: &[u8], members: &[&DeviceId]) -> Submission {
    Submission::Commit {
        group_info: None,
        group_id: group.to_vec(),
        epoch: 0,
        members: members.iter().map(|d| (*d).clone()).collect(),
        commit: b"c0".to_vec(),
        welcome: Some((
            members[1..].iter().map(|d| (*d).clone()).collect(),
            b"w0".to_vec(),
        )),
    }
}

#[test]
fn an_accepted_submission_reports_every_item_it_made_and_a_refused_one_none() {
    let (a, b, c) = (dev("alice", "l"), dev("bob", "l"), dev("carol", "l"));
    let mut g = Groups::new(Limits::default());
    g.submit(&a, genesis(b"g", &[&a, &b, &c])).unwrap();
    let made = g.mailboxes().take_appended();
    let welcome = Delivery::Welcome {
        group_id: b"g".to_vec(),
        welcome: b"w0".to_vec(),
    };
    // The committer gets its own commit back; the new devices the Welcome.
    let own = Delivery::Group {
        group_id: b"g".to_vec(),
        message: b"c0".to_vec(),
    };
    // The Welcome for two devices is one body, shared: two bodies, three
    // items.
    assert_eq!(
        made.bodies,
        vec![(BodyId(0), own), (BodyId(1), welcome)],
        "each body once"
    );
    assert_eq!(
        made.items,
        vec![
            (a.clone(), 0, BodyId(0)),
            (b.clone(), 0, BodyId(1)),
            (c.clone(), 0, BodyId(1))
        ]
    );
    assert!(g.mailboxes().take_appended().is_empty(), "taken once");
    let msg = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"m".to_vec(),
    };
    g.submit(&b, msg).unwrap();
    let made = g.mailboxes().take_appended();
    let item = Delivery::Group {
        group_id: b"g".to_vec(),
        message: b"m".to_vec(),
    };
    assert_eq!(made.bodies, vec![(BodyId(2), item)]);
    assert_eq!(
        made.items,
        vec![(a.clone(), 1, BodyId(2)), (c.clone(), 1, BodyId(2))]
    );
    // Refused: nothing made.
    let stale = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 9,
        message: b"x".to_vec(),
    };
    assert!(matches!(
        g.submit(&b, stale),
        Err(DsError::StaleEpoch { current: 1 })
    ));
    assert!(g.mailboxes().take_appended().is_empty());
    assert_eq!(g.get(b"g").map(|(e, m)| (e, m.len())), Some((1, 3)));
    assert!(g.get(b"nope").is_none());
}

#[test]
fn state_put_back_from_storage_behaves_as_before() {
    let (a, b) = (dev("alice", "l"), dev("bob", "l"));
    let mut g = Groups::new(Limits::default());
    g.restore(b"g".to_vec(), 5, BTreeSet::from([a.clone(), b.clone()]));
    g.mailboxes().restore_body(BodyId(30), 4, None, 0);
    assert!(g.mailboxes().restore_item(&b, 7, BodyId(30)));
    assert!(
        !g.mailboxes().restore_item(&b, 8, BodyId(31)),
        "an item without its body is not restored"
    );
    g.mailboxes().restored();
    assert!(g.mailboxes().take_released().is_empty());
    // The restored epoch decides: a commit for 4 is stale, for 5 wins.
    let commit = |epoch| Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch,
        members: BTreeSet::from([a.clone(), b.clone()]),
        commit: b"c".to_vec(),
        welcome: None,
    };
    assert_eq!(
        g.submit(&a, commit(4)),
        Err(DsError::StaleEpoch { current: 5 })
    );
    g.submit(&a, commit(5)).unwrap();
    // Numbering resumes after the restored item.
    let pending = g.mailboxes_ref().pending(&b);
    assert_eq!(pending.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [7, 8]);
    assert_eq!(g.mailboxes_ref().next_seq(&b), 9);
    assert_eq!(
        g.mailboxes_ref()
            .pending_from(&b, 8, (10, usize::MAX))
            .len(),
        1
    );
    assert_eq!(
        g.mailboxes_ref().pending_from(&b, 0, (1, usize::MAX)).len(),
        1
    );
    assert_eq!(
        g.mailboxes_ref()
            .pending_from(&b, 9, (10, usize::MAX))
            .len(),
        0
    );
    assert_eq!(g.mailboxes_ref().next_seq(&dev("nobody", "x")), 0);
    // A numbering restored past every item (all were acknowledged) is kept.
    g.mailboxes().restore_next(&a, 40);
    g.mailboxes().restore_next(&a, 3);
    assert_eq!(g.mailboxes_ref().next_seq(&a), 40);
    g.mailboxes().ack(&b, 8);
    g.submit(
        &a,
        Submission::Message {
            group_id: b"g".to_vec(),
            epoch: 6,
            message: b"n".to_vec(),
        },
    )
    .unwrap();
    assert_eq!(
        g.mailboxes_ref().pending(&b)[0].0,
        9,
        "numbers never repeat after an ack"
    );
    // Body numbers resume after the restored ones, and the acknowledged
    // bodies were released.
    assert_eq!(g.mailboxes_ref().pending(&b)[0].1, BodyId(32));
    // The restored body went with bob's ack; the commit's stays, alice's
    // copy still points at it.
    let released = g.mailboxes().take_released();
    assert_eq!(released, [BodyId(30)]);
}

#[test]
fn a_persons_devices_are_listed_without_consuming_anything() {
    let mut d = Directory::new(Limits::default());
    let (al, ap, b) = (
        dev("alice", "laptop"),
        dev("alice", "phone"),
        dev("bob", "l"),
    );
    d.upload(&al, vec![b"k1".to_vec()], None).unwrap();
    d.upload(&ap, vec![], Some(b"last".to_vec())).unwrap();
    d.upload(&b, vec![b"k".to_vec()], None).unwrap();
    let alice = UserName::new("alice").unwrap();
    assert_eq!(d.devices_of(&alice), vec![al.clone(), ap.clone()]);
    assert_eq!(d.remaining(&al), 1, "listing consumed nothing");
    // A device whose one-time KeyPackages are gone and has no last-resort
    // one is not listed.
    let claimed = d.claim(&alice, &b);
    assert_eq!(claimed.len(), 2);
    assert_eq!(d.devices_of(&alice), vec![ap]);
}

#[test]
fn every_bound_holds_at_its_exact_value() {
    let limits = Limits {
        key_packages_per_device: 3,
        key_package_bytes: 4,
        message_bytes: 10,
        members_per_group: 3,
        ..Limits::default()
    };
    let (a, b, c, d) = (
        dev("alice", "l"),
        dev("bob", "l"),
        dev("carol", "l"),
        dev("dave", "l"),
    );
    // KeyPackages: exactly the limit fits, one more does not.
    let mut dir = Directory::new(limits);
    assert_eq!(dir.upload(&a, vec![b"kp".to_vec(); 2], None), Ok(2));
    assert_eq!(dir.upload(&a, vec![b"k".to_vec()], None), Ok(3));
    assert_eq!(dir.remaining(&a), 3);
    assert_eq!(
        dir.upload(&a, vec![b"k".to_vec()], None),
        Err(DsError::TooManyKeyPackages)
    );
    assert_eq!(dir.remaining(&a), 3);
    assert_eq!(dir.remaining(&b), 0);
    // A KeyPackage of exactly the size limit is taken, one byte more not.
    assert_eq!(dir.upload(&b, vec![vec![1; 4]], None), Ok(1));
    assert_eq!(
        dir.upload(&c, vec![vec![1; 5]], None),
        Err(DsError::TooLarge)
    );
    assert_eq!(
        dir.upload(&c, vec![], Some(vec![1; 5])),
        Err(DsError::TooLarge)
    );
    // A Welcome of exactly the limit is carried, one byte more is not.
    let mut g = Groups::new(limits);
    let with_welcome = |len: usize| Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch: 0,
        members: BTreeSet::from([a.clone(), b.clone(), c.clone()]),
        commit: b"c".to_vec(),
        welcome: Some((BTreeSet::from([b.clone(), c.clone()]), vec![0; len])),
    };
    assert_eq!(g.submit(&a, with_welcome(11)), Err(DsError::TooLarge));
    // Exactly the member limit (3) fits.
    g.submit(&a, with_welcome(10)).unwrap();
    // A Welcome for a device that is not the one added is refused.
    let wrong = Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch: 1,
        members: BTreeSet::from([a.clone(), b.clone(), d.clone()]),
        commit: b"c".to_vec(),
        welcome: Some((BTreeSet::from([c.clone()]), b"w".to_vec())),
    };
    assert_eq!(g.submit(&a, wrong), Err(DsError::Membership));
    // Application messages: exactly the limit, then one byte more.
    let msg = |len: usize| Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: vec![1; len],
    };
    assert_eq!(g.submit(&b, msg(11)), Err(DsError::TooLarge));
    g.submit(&b, msg(10)).unwrap();
    assert_eq!(g.describe(b"g"), Some((1, 3)));
}

#[test]
fn mailboxes_are_bounded_in_bytes_per_device_and_together() {
    let (a, b, c) = (dev("alice", "l"), dev("bob", "l"), dev("carol", "l"));
    // Per device: 10 bytes (an item counts its group id, 1 byte here).
    // One sender here: its share is the whole mailbox.
    let limits = Limits {
        mailbox_bytes: 10,
        sender_share_divisor: 1,
        ..Limits::default()
    };
    let mut g = Groups::new(limits);
    g.restore(b"g".to_vec(), 1, BTreeSet::from([a.clone(), b.clone()]));
    let msg = |len: usize| Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: vec![0; len],
    };
    g.submit(&a, msg(5)).unwrap();
    g.submit(&a, msg(3)).unwrap(); // 6 + 4 = 10: exactly full
    assert!(matches!(g.submit(&a, msg(0)), Err(DsError::Capacity(_))));
    let seq = g.mailboxes_ref().pending(&b)[0].0;
    g.mailboxes().ack(&b, seq);
    g.submit(&a, msg(5)).unwrap(); // the ack made room
    // Together: 12 bytes across two groups' recipients.
    let limits = Limits {
        total_mailbox_bytes: 12,
        sender_share_divisor: 1,
        ..Limits::default()
    };
    let mut g = Groups::new(limits);
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([a.clone(), b.clone(), c.clone()]),
    );
    // A body counts once however many devices it goes to: two messages
    // to bob and carol are 6 + 6 bytes.
    g.submit(&a, msg(5)).unwrap();
    g.submit(&a, msg(5)).unwrap();
    assert_eq!(g.mailboxes_ref().total_bytes(), 12);
    assert!(matches!(g.submit(&b, msg(0)), Err(DsError::Capacity(_))));
    // A commit and its Welcome are checked together: neither goes in.
    let before = g.mailboxes_ref().pending(&c).len();
    let commit = Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch: 1,
        members: BTreeSet::from([a.clone(), b.clone(), c.clone(), dev("dave", "l")]),
        commit: vec![],
        welcome: Some((BTreeSet::from([dev("dave", "l")]), vec![0; 1])),
    };
    assert!(matches!(g.submit(&a, commit), Err(DsError::Capacity(_))));
    assert_eq!(g.mailboxes_ref().pending(&c).len(), before);
    assert_eq!(g.describe(b"g"), Some((1, 3)));
}

#[test]
fn one_person_fills_at_most_a_share_of_a_recipients_mailbox_and_others_still_reach_it() {
    let (alice, bob, m1, m2) = (
        dev("alice", "l"),
        dev("bob", "l"),
        dev("mallory", "l"),
        dev("mallory", "phone"),
    );
    let limits = Limits {
        mailbox_messages: 8,
        mailbox_bytes: 1000,
        sender_share_divisor: 4,
        ..Limits::default()
    };
    let mut g = Groups::new(limits);
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([alice.clone(), bob.clone(), m1.clone(), m2.clone()]),
    );
    let msg = |len: usize| Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: vec![0; len],
    };
    // mallory's person (both devices) gets 2 of bob's 8 items.
    g.submit(&m1, msg(1)).unwrap();
    g.submit(&m2, msg(1)).unwrap();
    assert_eq!(
        g.submit(&m1, msg(1)),
        Err(DsError::Capacity(
            "the sender's share of a recipient's mailbox is used up"
        ))
    );
    assert!(matches!(g.submit(&m2, msg(1)), Err(DsError::Capacity(_))));
    // alice still reaches bob.
    g.submit(&alice, msg(1)).unwrap();
    // In bytes too: 250 per person.
    let mut g = Groups::new(Limits {
        sender_share_divisor: 4,
        mailbox_bytes: 1000,
        ..Limits::default()
    });
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([alice.clone(), bob.clone(), m1.clone()]),
    );
    g.submit(&m1, msg(248)).unwrap(); // 249 with the group id
    assert!(matches!(g.submit(&m1, msg(1)), Err(DsError::Capacity(_))));
    g.submit(&alice, msg(248)).unwrap();
    // Reading makes room for mallory again.
    for d in [&alice, &bob] {
        let last = g.mailboxes_ref().pending(d).last().unwrap().0;
        g.mailboxes().ack(d, last);
    }
    g.submit(&m1, msg(100)).unwrap();
}

#[test]
fn one_device_has_a_bound_on_what_it_has_waiting_in_all_mailboxes() {
    let a = dev("alice", "l");
    let others: Vec<DeviceId> = (0..4).map(|i| dev(&format!("u{i}"), "l")).collect();
    let mut members: BTreeSet<DeviceId> = others.iter().cloned().collect();
    members.insert(a.clone());
    let mut g = Groups::new(Limits {
        queued_bytes_per_sender: 40,
        ..Limits::default()
    });
    g.restore(b"g".to_vec(), 1, members);
    let msg = |len: usize| Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: vec![0; len],
    };
    // Each 10-byte message goes to 4 devices as one body: charged 10.
    for _ in 0..4 {
        g.submit(&a, msg(9)).unwrap();
    }
    assert_eq!(g.mailboxes_ref().queued_by(&a), 40);
    assert_eq!(g.mailboxes_ref().bodies(), 4);
    assert_eq!(
        g.submit(&a, msg(0)),
        Err(DsError::Capacity(
            "the sender has too much waiting in mailboxes"
        ))
    );
    // Another device is not held back by alice's.
    g.submit(&others[0], msg(9)).unwrap();
    // Read by everyone: alice may send again.
    for d in &others {
        let last = g.mailboxes_ref().pending(d).last().map(|(s, _)| *s);
        if let Some(s) = last {
            g.mailboxes().ack(d, s);
        }
    }
    assert_eq!(g.mailboxes_ref().queued_by(&a), 0);
    g.submit(&a, msg(9)).unwrap();
}

#[test]
fn items_expire_after_their_time_to_live_and_their_charges_go_with_them() {
    let (a, b) = (dev("alice", "l"), dev("bob", "l"));
    let mut g = Groups::new(Limits {
        mailbox_ttl_secs: 100,
        ..Limits::default()
    });
    g.restore(b"g".to_vec(), 1, BTreeSet::from([a.clone(), b.clone()]));
    let msg = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"m".to_vec(),
    };
    g.mailboxes().set_now(1_000);
    g.submit(&a, msg.clone()).unwrap();
    g.mailboxes().set_now(1_050);
    g.submit(&a, msg.clone()).unwrap();
    assert!(
        g.mailboxes().expire(1_100).is_empty(),
        "exactly the TTL: kept"
    );
    assert_eq!(g.mailboxes().expire(1_101), vec![(b.clone(), 0)]);
    assert_eq!(g.mailboxes_ref().pending(&b).len(), 1);
    assert_eq!(g.mailboxes_ref().queued_by(&a), 2);
    assert_eq!(g.mailboxes().expire(1_151), vec![(b.clone(), 1)]);
    assert_eq!(g.mailboxes_ref().queued_by(&a), 0);
    // Restored items keep their time and sender.
    g.mailboxes()
        .restore_body(BodyId(50), 4, Some(a.clone()), 1_000);
    assert!(g.mailboxes().restore_item(&b, 9, BodyId(50)));
    assert_eq!(g.mailboxes_ref().queued_by(&a), 4);
    assert_eq!(g.mailboxes().expire(1_200), vec![(b.clone(), 9)]);
}

#[test]
fn a_mailbox_full_in_bytes_refuses_even_when_every_sender_is_within_its_share() {
    let (a, b, c, r) = (dev("a", "l"), dev("b", "l"), dev("c", "l"), dev("r", "l"));
    // 20 bytes, 10 per person: a and b fill it, c is within its share.
    let mut g = Groups::new(Limits {
        mailbox_bytes: 20,
        sender_share_divisor: 2,
        ..Limits::default()
    });
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([a.clone(), b.clone(), c.clone(), r.clone()]),
    );
    let msg = |len: usize| Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: vec![0; len],
    };
    g.submit(&a, msg(9)).unwrap();
    g.submit(&b, msg(9)).unwrap();
    assert_eq!(
        g.submit(&c, msg(0)),
        Err(DsError::Capacity("a recipient's mailbox is full"))
    );
}

#[test]
fn an_acknowledged_item_gives_back_exactly_its_share() {
    let (m, r) = (dev("mallory", "l"), dev("r", "l"));
    let mut g = Groups::new(Limits {
        mailbox_messages: 8,
        sender_share_divisor: 4,
        ..Limits::default()
    });
    g.restore(b"g".to_vec(), 1, BTreeSet::from([m.clone(), r.clone()]));
    let msg = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"m".to_vec(),
    };
    g.submit(&m, msg.clone()).unwrap();
    g.submit(&m, msg.clone()).unwrap();
    // r reads one of mallory's two: room for exactly one more.
    let first = g.mailboxes_ref().pending(&r)[0].0;
    g.mailboxes().ack(&r, first);
    g.submit(&m, msg.clone()).unwrap();
    assert!(matches!(g.submit(&m, msg), Err(DsError::Capacity(_))));
}
