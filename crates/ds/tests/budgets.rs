//! What one person, or one device, may take of the groups the relay
//! keeps: groups created per person (however many devices it enrols) and
//! groups a device is a member of (issue 28, item 2).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use blindrelay_ds::{DeviceId, DsError, Groups, Limits, Submission};
use common::dev;

fn create(group: &[u8], members: &[&DeviceId]) -> Submission {
    let new: BTreeSet<DeviceId> = members[1..].iter().map(|d| (*d).clone()).collect();
    Submission::Commit {
        group_info: None,
        group_id: group.to_vec(),
        epoch: 0,
        members: members.iter().map(|d| (*d).clone()).collect(),
        commit: b"c".to_vec(),
        welcome: (!new.is_empty()).then(|| (new, b"w".to_vec())),
    }
}

#[test]
fn a_persons_devices_together_create_at_most_the_persons_share_of_groups() {
    let (m1, m2, m3) = (
        dev("mallory", "a"),
        dev("mallory", "b"),
        dev("mallory", "c"),
    );
    let alice = dev("alice", "l");
    let mut g = Groups::new(Limits {
        groups_per_device: 2,
        groups_per_person: 3,
        ..Limits::default()
    });
    g.submit(&m1, create(b"1", &[&m1])).unwrap();
    g.submit(&m1, create(b"2", &[&m1])).unwrap();
    g.submit(&m2, create(b"3", &[&m2])).unwrap();
    assert_eq!(g.created_by_person(&m1.user), 3);
    assert_eq!(
        g.submit(&m3, create(b"4", &[&m3])),
        Err(DsError::Capacity("this person created too many groups")),
        "a third device does not bring a new share"
    );
    // Someone else is not held back.
    g.submit(&alice, create(b"5", &[&alice])).unwrap();
    // A forgotten group gives its slot back to the person.
    g.forget_device(&m1);
    assert_eq!(g.created_by_person(&m1.user), 1);
    g.submit(&m3, create(b"4", &[&m3])).unwrap();
    // Restored groups count for their creator's person too.
    let mut again = Groups::new(Limits {
        groups_per_person: 1,
        ..Limits::default()
    });
    again.restore_with(
        b"x".to_vec(),
        1,
        BTreeSet::from([m1.clone()]),
        Some(m1.clone()),
    );
    assert!(matches!(
        again.submit(&m2, create(b"y", &[&m2])),
        Err(DsError::Capacity(_))
    ));
}

#[test]
fn a_device_is_a_member_of_at_most_its_share_of_groups_and_being_removed_from_one_frees_a_place() {
    let (a, b, v) = (dev("alice", "l"), dev("bob", "l"), dev("victim", "l"));
    let mut g = Groups::new(Limits {
        groups_per_member: 2,
        ..Limits::default()
    });
    g.submit(&a, create(b"1", &[&a, &v])).unwrap();
    g.submit(&b, create(b"2", &[&b, &v])).unwrap();
    assert_eq!(g.held_by(&v), 2);
    assert_eq!(
        g.submit(&a, create(b"3", &[&a, &v])),
        Err(DsError::Capacity(
            "a device would be a member of too many groups"
        )),
        "a new group that adds the device"
    );
    assert_eq!(g.held_by(&a), 1, "the refused group counts for nobody");
    // The same through a later commit of an existing group.
    g.submit(&a, create(b"3", &[&a])).unwrap();
    let add = Submission::Commit {
        group_info: None,
        group_id: b"3".to_vec(),
        epoch: 1,
        members: BTreeSet::from([a.clone(), v.clone()]),
        commit: b"c".to_vec(),
        welcome: Some((BTreeSet::from([v.clone()]), b"w".to_vec())),
    };
    assert!(matches!(
        g.submit(&a, add.clone()),
        Err(DsError::Capacity(_))
    ));
    // A creator at its limit cannot make a new group either.
    assert_eq!(g.held_by(&a), 2);
    assert!(matches!(
        g.submit(&a, create(b"4", &[&a])),
        Err(DsError::Capacity(_))
    ));
    // The victim is removed from group 1: a place is free again.
    let remove = Submission::Commit {
        group_info: None,
        group_id: b"1".to_vec(),
        epoch: 1,
        members: BTreeSet::from([a.clone()]),
        commit: b"c".to_vec(),
        welcome: None,
    };
    g.submit(&a, remove).unwrap();
    assert_eq!(g.held_by(&v), 1);
    g.submit(&a, add).unwrap();
    assert_eq!(g.held_by(&v), 2);
    // Revocation takes the device out of every group it held.
    g.forget_device(&v);
    assert_eq!(g.held_by(&v), 0);
}

#[test]
fn a_persons_devices_take_at_most_its_hourly_share_of_one_time_key_packages_then_last_resort_ones()
{
    use blindrelay_ds::Directory;
    use blindrelay_ds::directory::CLAIM_PERIOD_SECS;
    let mut d = Directory::new(Limits {
        one_time_claims_per_hour: 3,
        ..Limits::default()
    });
    d.set_now(10_000);
    let m = dev("mallory", "l");
    let people: Vec<DeviceId> = (0..5).map(|i| dev(&format!("u{i}"), "l")).collect();
    for p in &people {
        d.upload(p, vec![b"one".to_vec(); 4], Some(b"last".to_vec()))
            .unwrap();
    }
    // Spread over five people, mallory still takes only three one-time
    // KeyPackages; the others are last-resort, and nobody's drained.
    let kinds: Vec<bool> = people
        .iter()
        .map(|p| d.claim(&p.user, &m)[0].last_resort)
        .collect();
    assert_eq!(kinds, [false, false, false, true, true]);
    assert_eq!(d.remaining(&people[4]), 4);
    // Her other device shares her person's count; someone else's share
    // is their own.
    assert!(d.claim(&people[4].user, &dev("mallory", "phone"))[0].last_resort);
    assert!(!d.claim(&people[4].user, &dev("bob", "l"))[0].last_resort);
    // An hour later, mallory's share is back.
    d.set_now(10_000 + CLAIM_PERIOD_SECS - 1);
    assert!(d.claim(&people[4].user, &m)[0].last_resort);
    d.set_now(10_000 + CLAIM_PERIOD_SECS);
    assert!(!d.claim(&people[4].user, &m)[0].last_resort);
}

#[test]
fn the_hourly_claim_counts_drop_only_finished_periods_once_past_their_bound() {
    use blindrelay_ds::Directory;
    use blindrelay_ds::directory::{CLAIM_PERIOD_SECS, SWEEP_AT};
    let mut d = Directory::new(Limits {
        one_time_claims_per_hour: 1,
        key_packages_per_device: SWEEP_AT + 10,
        ..Limits::default()
    });
    let target = dev("target", "l");
    d.upload(
        &target,
        vec![b"k".to_vec(); SWEEP_AT + 5],
        Some(b"last".to_vec()),
    )
    .unwrap();
    d.set_now(1_000);
    let busy = dev("busy", "l");
    assert!(!d.claim(&target.user, &busy)[0].last_resort);
    // SWEEP_AT persons counted: busy (its hour about to end) and others.
    d.set_now(1_000 + CLAIM_PERIOD_SECS - 1);
    for i in 0..SWEEP_AT - 1 {
        let c = dev(&format!("c{i}"), "l");
        assert!(!d.claim(&target.user, &c)[0].last_resort);
    }
    assert_eq!(d.claim_counts(), SWEEP_AT);
    // busy's hour is over; at the bound, nothing is swept yet.
    d.set_now(1_000 + CLAIM_PERIOD_SECS);
    assert!(d.claim(&target.user, &dev("c0", "l"))[0].last_resort);
    assert_eq!(d.claim_counts(), SWEEP_AT, "not past the bound");
    // A claim that takes no one-time KeyPackage counts nobody new.
    let mut only_last = Directory::new(Limits {
        one_time_claims_per_hour: 0,
        ..Limits::default()
    });
    only_last
        .upload(&target, vec![b"k".to_vec()], Some(b"last".to_vec()))
        .unwrap();
    assert!(only_last.claim(&target.user, &busy)[0].last_resort);
    assert_eq!(only_last.claim_counts(), 0);
    // One more person: past the bound, busy's finished hour is dropped and
    // the others' running hours are kept.
    let late = dev("late", "l");
    assert!(!d.claim(&target.user, &late)[0].last_resort);
    assert_eq!(d.claim_counts(), SWEEP_AT + 1);
    assert!(d.claim(&target.user, &dev("c1", "l"))[0].last_resort);
    assert_eq!(d.claim_counts(), SWEEP_AT, "busy's finished hour dropped");
    assert!(!d.claim(&target.user, &busy)[0].last_resort);
    assert!(d.claim(&target.user, &busy)[0].last_resort);
}
