//! The Delivery Service's rules, each at work and at its bounds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use blindrelay_ds::{
    Delivery, DeviceId, Directory, DsError, Groups, Kept, Limits, Submission, Verdict,
};
use blindrelay_wire::UserName;
use common::dev;
use proptest::prelude::*;

fn set(ds: &[&DeviceId]) -> BTreeSet<DeviceId> {
    ds.iter().map(|d| (*d).clone()).collect()
}

fn commit(group: &[u8], epoch: u64, members: &[&DeviceId], body: &[u8]) -> Submission {
    Submission::Commit {
        group_info: None,
        group_id: group.to_vec(),
        epoch,
        members: set(members),
        commit: body.to_vec(),
        welcome: None,
    }
}

/// A group's first commit by `members[0]`, welcoming the others.
fn genesis(group: &[u8], members: &[&DeviceId]) -> Submission {
    Submission::Commit {
        group_info: None,
        group_id: group.to_vec(),
        epoch: 0,
        members: set(members),
        commit: b"c0".to_vec(),
        welcome: Some((set(&members[1..]), b"w0".to_vec())),
    }
}

fn messages_of(groups: &mut Groups, kept: &mut Kept, d: &DeviceId) -> Vec<Vec<u8>> {
    kept.sync(groups.mailboxes());
    kept.pending(groups.mailboxes_ref(), d)
        .into_iter()
        .map(|(_, item)| match item {
            Delivery::Group { message, .. } => message,
            Delivery::Welcome { welcome, .. } => welcome,
        })
        .collect()
}

#[test]
fn the_first_commit_for_an_epoch_wins_and_a_later_one_is_told_the_epoch() {
    let (a, b, c) = (
        dev("alice", "laptop"),
        dev("bob", "laptop"),
        dev("carol", "phone"),
    );
    let mut groups = Groups::new(Limits::default());
    let mut kept = Kept::new();
    let g = b"group-1";
    let welcome = Submission::Commit {
        group_info: None,
        group_id: g.to_vec(),
        epoch: 0,
        members: set(&[&a, &b, &c]),
        commit: b"c0".to_vec(),
        welcome: Some((set(&[&b, &c]), b"w0".to_vec())),
    };
    assert_eq!(
        groups.submit(&a, welcome).unwrap(),
        Verdict::Accepted {
            epoch: 1,
            recipients: 0
        }
    );
    assert_eq!(groups.describe(g), Some((1, 3)));
    // Bob and carol commit at epoch 1; bob's arrives first.
    groups
        .submit(&b, commit(g, 1, &[&a, &b, &c], b"bob-1"))
        .unwrap();
    assert_eq!(
        groups.submit(&c, commit(g, 1, &[&a, &b, &c], b"carol-1")),
        Err(DsError::StaleEpoch { current: 2 })
    );
    // Carol processes bob's commit and retries at epoch 2.
    groups
        .submit(&c, commit(g, 2, &[&a, &b, &c], b"carol-2"))
        .unwrap();
    // Everyone sees one history, each committer its own commits too.
    assert_eq!(
        messages_of(&mut groups, &mut kept, &a),
        [b"c0".to_vec(), b"bob-1".to_vec(), b"carol-2".to_vec()]
    );
    assert_eq!(
        messages_of(&mut groups, &mut kept, &b),
        [b"w0".to_vec(), b"bob-1".to_vec(), b"carol-2".to_vec()]
    );
    assert_eq!(
        messages_of(&mut groups, &mut kept, &c),
        [b"w0".to_vec(), b"bob-1".to_vec(), b"carol-2".to_vec()]
    );
}

#[test]
fn only_members_submit_and_a_welcome_goes_only_to_new_devices() {
    let (a, b, m) = (
        dev("alice", "laptop"),
        dev("bob", "laptop"),
        dev("mallory", "x"),
    );
    let mut groups = Groups::new(Limits::default());
    let g = b"g";
    groups.submit(&a, genesis(g, &[&a, &b])).unwrap();
    assert_eq!(
        groups.submit(&m, commit(g, 1, &[&a, &b, &m], b"x")),
        Err(DsError::NotAMember)
    );
    let msg = Submission::Message {
        group_id: g.to_vec(),
        epoch: 1,
        message: b"hi".to_vec(),
    };
    assert_eq!(groups.submit(&m, msg), Err(DsError::NotAMember));
    // A commit that leaves out its own committer, welcomes a member, or
    // adds a device without welcoming it.
    assert_eq!(
        groups.submit(&a, commit(g, 1, &[&b], b"x")),
        Err(DsError::Membership)
    );
    let c = dev("carol", "laptop");
    assert_eq!(
        groups.submit(&a, commit(g, 1, &[&a, &b, &c], b"x")),
        Err(DsError::Membership)
    );
    let bad = Submission::Commit {
        group_info: None,
        group_id: g.to_vec(),
        epoch: 1,
        members: set(&[&a, &b]),
        commit: b"x".to_vec(),
        welcome: Some((set(&[&b]), b"w".to_vec())),
    };
    assert_eq!(groups.submit(&a, bad), Err(DsError::Membership));
    // An unknown group needs epoch 0.
    assert_eq!(
        groups.submit(&a, commit(b"other", 3, &[&a], b"x")),
        Err(DsError::UnknownGroup)
    );
    assert_eq!(groups.describe(g), Some((1, 2)));
}

#[test]
fn a_removed_device_gets_the_commit_that_removes_it_and_nothing_after() {
    let (a, b) = (dev("alice", "laptop"), dev("bob", "laptop"));
    let mut groups = Groups::new(Limits::default());
    let mut kept = Kept::new();
    let g = b"g";
    groups.submit(&a, genesis(g, &[&a, &b])).unwrap();
    groups
        .submit(&a, commit(g, 1, &[&a], b"remove-bob"))
        .unwrap();
    let msg = Submission::Message {
        group_id: g.to_vec(),
        epoch: 2,
        message: b"after".to_vec(),
    };
    assert_eq!(
        groups.submit(&a, msg).unwrap(),
        Verdict::Accepted {
            epoch: 2,
            recipients: 0
        }
    );
    assert_eq!(
        messages_of(&mut groups, &mut kept, &b),
        [b"w0".to_vec(), b"remove-bob".to_vec()]
    );
    let msg = Submission::Message {
        group_id: g.to_vec(),
        epoch: 2,
        message: b"x".to_vec(),
    };
    assert_eq!(groups.submit(&b, msg), Err(DsError::NotAMember));
}

#[test]
fn application_messages_are_carried_for_two_prior_epochs_only() {
    let a = dev("alice", "laptop");
    let b = dev("bob", "laptop");
    let mut groups = Groups::new(Limits::default());
    let g = b"g";
    groups.submit(&a, genesis(g, &[&a, &b])).unwrap();
    for e in 1..4 {
        groups.submit(&a, commit(g, e, &[&a, &b], b"c")).unwrap();
    }
    let at = |epoch| Submission::Message {
        group_id: g.to_vec(),
        epoch,
        message: b"m".to_vec(),
    };
    assert!(groups.submit(&a, at(4)).is_ok());
    assert!(groups.submit(&a, at(2)).is_ok());
    assert_eq!(
        groups.submit(&a, at(1)),
        Err(DsError::StaleEpoch { current: 4 })
    );
    assert_eq!(
        groups.submit(&a, at(5)),
        Err(DsError::StaleEpoch { current: 4 })
    );
}

#[test]
fn a_full_mailbox_refuses_the_whole_submission_and_an_ack_makes_room() {
    // Shares are tested apart (restore.rs): here a sender may fill it.
    let limits = Limits {
        mailbox_messages: 2,
        sender_share_divisor: 1,
        ..Limits::default()
    };
    let (a, b, c) = (
        dev("alice", "laptop"),
        dev("bob", "laptop"),
        dev("carol", "laptop"),
    );
    let mut groups = Groups::new(limits);
    let mut kept = Kept::new();
    let g = b"g";
    groups.submit(&a, genesis(g, &[&a, &b, &c])).unwrap();
    let m = |t: &[u8]| Submission::Message {
        group_id: g.to_vec(),
        epoch: 1,
        message: t.to_vec(),
    };
    groups.submit(&a, m(b"1")).unwrap();
    // Bob and carol each hold 2: full. Nothing is delivered to anyone.
    assert!(matches!(
        groups.submit(&a, m(b"2")),
        Err(DsError::Capacity(_))
    ));
    assert!(matches!(
        groups.submit(&a, commit(g, 1, &[&a, &b, &c], b"c1")),
        Err(DsError::Capacity(_))
    ));
    assert_eq!(
        groups.describe(g),
        Some((1, 3)),
        "the refused commit changed nothing"
    );
    let seq = groups.mailboxes().pending(&b)[1].0;
    groups.mailboxes().ack(&b, seq);
    assert!(
        matches!(groups.submit(&a, m(b"2")), Err(DsError::Capacity(_))),
        "carol is still full"
    );
    let seq = groups.mailboxes().pending(&c)[1].0;
    groups.mailboxes().ack(&c, seq);
    groups.submit(&a, m(b"2")).unwrap();
    assert_eq!(messages_of(&mut groups, &mut kept, &b), [b"2".to_vec()]);
}

#[test]
fn sizes_and_group_counts_are_bounded() {
    let limits = Limits {
        message_bytes: 10,
        groups: 1,
        members_per_group: 2,
        ..Limits::default()
    };
    let (a, b, c) = (
        dev("alice", "laptop"),
        dev("bob", "laptop"),
        dev("carol", "laptop"),
    );
    let mut groups = Groups::new(limits);
    assert_eq!(
        groups.submit(&a, commit(b"g", 0, &[&a], &[0; 11])),
        Err(DsError::TooLarge)
    );
    groups.submit(&a, commit(b"g", 0, &[&a], &[0; 10])).unwrap();
    assert!(matches!(
        groups.submit(&a, commit(b"h", 0, &[&a], b"x")),
        Err(DsError::Capacity(_))
    ));
    let too_many = Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch: 1,
        members: set(&[&a, &b, &c]),
        commit: b"x".to_vec(),
        welcome: Some((set(&[&b, &c]), b"w".to_vec())),
    };
    assert_eq!(groups.submit(&a, too_many), Err(DsError::Membership));
}

#[test]
fn a_claim_returns_one_key_package_per_device_and_the_last_resort_stays() {
    let limits = Limits {
        key_packages_per_device: 2,
        key_package_bytes: 4,
        ..Limits::default()
    };
    let mut dir = Directory::new(limits);
    let (laptop, phone, other) = (
        dev("alice", "laptop"),
        dev("alice", "phone"),
        dev("bob", "x"),
    );
    assert_eq!(
        dir.upload(
            &laptop,
            vec![b"l1".to_vec(), b"l2".to_vec()],
            Some(b"lR".to_vec())
        ),
        Ok(2)
    );
    assert_eq!(dir.upload(&phone, vec![b"p1".to_vec()], None), Ok(1));
    dir.upload(&other, vec![b"o1".to_vec()], None).unwrap();
    // Too many, too large, empty: refused, nothing kept.
    assert_eq!(
        dir.upload(&laptop, vec![b"l3".to_vec()], None),
        Err(DsError::TooManyKeyPackages)
    );
    assert_eq!(
        dir.upload(&phone, vec![b"12345".to_vec()], None),
        Err(DsError::TooLarge)
    );
    assert_eq!(
        dir.upload(&phone, vec![Vec::new()], None),
        Err(DsError::TooLarge)
    );
    assert_eq!(dir.remaining(&phone), 1);
    let alice = UserName::new("alice").unwrap();
    let first = dir.claim(&alice, &other);
    let got: Vec<_> = first
        .iter()
        .map(|c| (c.device.to_string(), c.key_package.clone(), c.last_resort))
        .collect();
    assert_eq!(
        got,
        [
            ("alice@laptop".into(), b"l1".to_vec(), false),
            ("alice@phone".into(), b"p1".to_vec(), false)
        ]
    );
    dir.claim(&alice, &other);
    // The laptop is down to its last resort, which stays; the phone had none.
    for _ in 0..2 {
        let c = dir.claim(&alice, &other);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].key_package.as_slice(), c[0].last_resort),
            (&b"lR"[..], true)
        );
    }
    assert_eq!(dir.remaining(&other), 1, "another person's are untouched");
    // A device claiming its own person gets the others' only.
    let own = dir.claim(&alice, &laptop);
    assert!(own.iter().all(|c| c.device != laptop));
    dir.forget(&laptop);
    assert!(dir.claim(&alice, &other).is_empty());
}

#[test]
fn a_claimer_past_its_share_of_one_devices_one_time_key_packages_gets_the_last_resort_one() {
    let limits = Limits {
        one_time_claims_per_claimer: 2,
        ..Limits::default()
    };
    let mut dir = Directory::new(limits);
    let (bob, alice, carol) = (
        dev("bob", "laptop"),
        dev("alice", "laptop"),
        dev("carol", "laptop"),
    );
    let kps: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'k', i]).collect();
    dir.upload(&bob, kps, Some(b"last".to_vec())).unwrap();
    let user = UserName::new("bob").unwrap();
    let take = |dir: &mut Directory, who: &DeviceId| {
        let c = dir.claim(&user, who);
        assert_eq!(c.len(), 1);
        c[0].last_resort
    };
    assert!(!take(&mut dir, &alice));
    assert!(!take(&mut dir, &alice));
    // alice's share is used: the last-resort one, and the one-time ones stay.
    assert!(take(&mut dir, &alice));
    assert!(take(&mut dir, &alice));
    assert_eq!(dir.remaining(&bob), 3);
    // Another claimer has a share of its own.
    assert!(!take(&mut dir, &carol));
    assert_eq!(dir.remaining(&bob), 2);
    // bob's next upload gives every claimer its share again.
    dir.upload(&bob, vec![b"k9".to_vec()], None).unwrap();
    assert!(!take(&mut dir, &alice));
}

#[test]
fn the_relay_knows_devices_that_published_key_packages_and_not_after_they_are_forgotten() {
    let mut dir = Directory::new(Limits::default());
    let bob = dev("bob", "laptop");
    assert!(!dir.knows(&bob));
    dir.upload(&bob, vec![b"k".to_vec()], None).unwrap();
    assert!(dir.knows(&bob));
    assert!(!dir.knows(&dev("bob", "phone")));
    dir.forget(&bob);
    assert!(!dir.knows(&bob));
}

#[test]
fn newcomers_are_the_members_a_commit_names_that_the_group_lacks() {
    let mut groups = Groups::new(Limits::default());
    let (a, b, c) = (dev("a", "x"), dev("b", "x"), dev("c", "x"));
    let first = genesis(b"g", &[&a, &b]);
    let mut names: Vec<String> = groups
        .newcomers(&first)
        .iter()
        .map(|d| d.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a@x", "b@x"]);
    groups.submit(&a, first).unwrap();
    let next = Submission::Commit {
        group_info: None,
        group_id: b"g".to_vec(),
        epoch: 1,
        members: set(&[&a, &b, &c]),
        commit: b"c1".to_vec(),
        welcome: Some((set(&[&c]), b"w1".to_vec())),
    };
    let names: Vec<String> = groups
        .newcomers(&next)
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(names, ["c@x"]);
    let message = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"m".to_vec(),
    };
    assert!(groups.newcomers(&message).is_empty());
}

proptest! {
    /// Whatever the interleaving of commits (some stale) and messages from
    /// three devices, the devices that are members throughout hold the
    /// same history: every commit, and every message but their own.
    #[test]
    fn members_throughout_see_one_history(ops in proptest::collection::vec((0usize..3, any::<bool>(), 0u64..4), 1..60)) {
        let devs = [dev("alice", "a"), dev("bob", "b"), dev("carol", "c")];
        let all: Vec<&DeviceId> = devs.iter().collect();
        let mut groups = Groups::new(Limits::default());
        let mut kept = Kept::new();
        let g = b"g";
        groups.submit(&devs[0], genesis(g, &all)).unwrap();
        // (sender, body, is a commit)
        let mut accepted: Vec<(usize, Vec<u8>, bool)> = vec![(0, b"c0".to_vec(), true)];
        for (n, (who, is_commit, lag)) in ops.into_iter().enumerate() {
            let (epoch, _) = groups.describe(g).unwrap();
            let body = format!("{n}").into_bytes();
            let sub = if is_commit {
                commit(g, epoch.saturating_sub(lag % 2), &all, &body)
            } else {
                Submission::Message { group_id: g.to_vec(), epoch: epoch.saturating_sub(lag), message: body.clone() }
            };
            if groups.submit(&devs[who], sub).is_ok() {
                accepted.push((who, body, is_commit));
            }
        }
        for (i, d) in devs.iter().enumerate() {
            let expected: Vec<Vec<u8>> = accepted
                .iter()
                .enumerate()
                // Devices welcomed by the first commit do not get it.
                .filter(|(n, (w, _, commit))| (*commit || *w != i) && !(*n == 0 && i != 0))
                .map(|(_, (_, b, _))| b.clone())
                .collect();
            let mut got = messages_of(&mut groups, &mut kept, d);
            if i != 0 {
                got.remove(0); // the Welcome
            }
            prop_assert_eq!(got, expected);
        }
    }
}

#[test]
fn one_device_creates_at_most_its_share_of_groups_and_a_forgotten_groups_slot_comes_back() {
    let (a, b) = (dev("alice", "laptop"), dev("bob", "laptop"));
    let mut groups = Groups::new(Limits {
        groups_per_device: 2,
        ..Limits::default()
    });
    groups.submit(&a, genesis(b"g1", &[&a, &b])).unwrap();
    groups.submit(&a, commit(b"g2", 0, &[&a], b"c0")).unwrap();
    assert_eq!(groups.created_by(&a), 2);
    assert_eq!(
        groups.submit(&a, commit(b"g3", 0, &[&a], b"c0")),
        Err(DsError::Capacity("this device created too many groups"))
    );
    // Another device is not held back by alice's groups.
    groups.submit(&b, commit(b"g3", 0, &[&b], b"c0")).unwrap();
    // A later commit in alice's group does not count as a creation.
    groups
        .submit(&b, commit(b"g1", 1, &[&a, &b], b"c1"))
        .unwrap();
    assert_eq!(groups.created_by(&a), 2);
    assert_eq!(groups.creator_of(b"g1"), Some(&a));
    // alice's device is revoked: g2 (only her) is gone, g1 keeps bob, and
    // her slots come back.
    let f = groups.forget_device(&a);
    assert_eq!(f.removed, vec![b"g2".to_vec()]);
    assert_eq!(f.changed, vec![(b"g1".to_vec(), 2, set(&[&b]))]);
    assert_eq!(groups.describe(b"g2"), None);
    assert_eq!(groups.created_by(&a), 1, "g1 still exists");
    // Restored groups count against their creator.
    let mut again = Groups::new(Limits {
        groups_per_device: 1,
        ..Limits::default()
    });
    again.restore_with(b"x".to_vec(), 3, set(&[&a]), Some(a.clone()));
    assert!(matches!(
        again.submit(&a, commit(b"y", 0, &[&a], b"c0")),
        Err(DsError::Capacity(_))
    ));
}

#[test]
fn forgetting_a_device_drops_its_claim_counts_and_no_one_elses() {
    let limits = Limits {
        one_time_claims_per_claimer: 1,
        ..Limits::default()
    };
    let mut dir = Directory::new(limits);
    let (bob, alice, carol) = (dev("bob", "l"), dev("alice", "l"), dev("carol", "l"));
    let kps: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'k', i]).collect();
    dir.upload(&bob, kps, Some(b"last".to_vec())).unwrap();
    let user = UserName::new("bob").unwrap();
    let one_time = |dir: &mut Directory, who: &DeviceId| !dir.claim(&user, who)[0].last_resort;
    assert!(one_time(&mut dir, &alice));
    assert!(one_time(&mut dir, &carol));
    // alice is revoked and enrolled again under the same name: her count
    // went with her; carol's stays.
    dir.forget(&alice);
    assert!(one_time(&mut dir, &alice));
    assert!(!one_time(&mut dir, &carol), "carol's share is still used");
}
