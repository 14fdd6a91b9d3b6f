//! Groups over time: restarts, a member offline for a week, a group of
//! 100 devices with churn. The relay here is an ordered log per group,
//! as the real one keeps; each device reads it from where it joined.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use blindrelay_mls::{Device, DeviceKey, MlsStore, Received};
use common::*;

#[test]
fn a_device_restarted_from_its_database_carries_on_where_it_stopped() {
    let org = Org::new();
    let (mut alice, mut bob, bob_files, g) = alice_and_bob(&org);
    let m1 = alice.encrypt(&g, b"one").unwrap();
    assert_eq!(body(bob.receive(&m1).unwrap()), b"one");
    drop(bob);
    let mut bob = org.open(&bob_files);
    assert_eq!(bob.group_ids().unwrap(), vec![g.clone()]);
    // Read once: the restart did not bring m1's key back.
    assert!(bob.receive(&m1).is_err());
    let m2 = alice.encrypt(&g, b"two").unwrap();
    assert_eq!(body(bob.receive(&m2).unwrap()), b"two");
    let reply = bob.encrypt(&g, b"back").unwrap();
    assert_eq!(body(alice.receive(&reply).unwrap()), b"back");
}

#[test]
fn a_pending_commit_survives_a_restart_and_applies_once_ordered() {
    let org = Org::new();
    let (mut alice, alice_files) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob])).unwrap();
    // The relay stored the commit, then alice's device crashed before
    // hearing so.
    drop(alice);
    let mut alice = org.open(&alice_files);
    alice.commit_accepted(&g).unwrap();
    bob.join(add.welcome.as_ref().unwrap()).unwrap();
    let m = bob.encrypt(&g, b"hi").unwrap();
    assert_eq!(body(alice.receive(&m).unwrap()), b"hi");
}

#[test]
fn old_epochs_are_deleted_beyond_the_retention_bound() {
    let org = Org::new();
    let (mut alice, mut bob, _, g) = alice_and_bob(&org);
    for _ in 0..6 {
        let u = alice.update(&g).unwrap();
        land(&mut alice, &u, &mut [&mut bob], &mut []);
    }
    for d in [&alice, &bob] {
        let kept = d.store().epoch_count(&g).unwrap();
        assert!(
            kept <= blindrelay_mls::MAX_EPOCH_RETENTION,
            "{kept} epochs kept"
        );
    }
}

#[test]
fn a_member_offline_for_a_week_catches_up_in_order() {
    let org = Org::new();
    let (mut alice, _) = org.device("alice", "laptop");
    let (mut bob, _) = org.device("bob", "phone");
    let (mut dave, _) = org.device("dave", "laptop");
    let (mut erin, _) = org.device("erin", "laptop");
    let g = alice.create_group().unwrap();
    let add = alice.add(&g, &kps(&mut [&mut bob, &mut dave])).unwrap();
    land(&mut alice, &add, &mut [], &mut [&mut bob, &mut dave]);
    // Dave goes away. For a week, alice and bob talk, update, and add
    // erin; the relay keeps dave's mailbox in order.
    let mut mailbox = Vec::new();
    let mut sent = Vec::new();
    let start = now();
    for day in 0..7u64 {
        for d in [&mut alice, &mut bob, &mut erin] {
            d.trust().set_now(start + day * 24 * 3600);
        }
        let text = format!("day {day} from alice");
        let m = alice.encrypt(&g, text.as_bytes()).unwrap();
        bob.receive(&m).unwrap();
        if day > 3 {
            erin.receive(&m).unwrap();
        }
        mailbox.push(m);
        sent.push(text);
        let u = if day == 3 {
            let add = bob.add(&g, &kps(&mut [&mut erin])).unwrap();
            land(&mut bob, &add, &mut [&mut alice], &mut [&mut erin]);
            add
        } else {
            let u = bob.update(&g).unwrap();
            let mut others: Vec<&mut Device> = vec![&mut alice];
            if day > 3 {
                others.push(&mut erin);
            }
            land(&mut bob, &u, &mut others, &mut []);
            u
        };
        mailbox.push(u.commit.clone());
    }
    // A week later dave reads his mailbox once, in the relay's order.
    dave.trust().set_now(start + 7 * 24 * 3600);
    let mut read = Vec::new();
    for entry in &mailbox {
        match dave.receive(entry).unwrap() {
            Received::Message { body, .. } => read.push(String::from_utf8(body).unwrap()),
            Received::Commit { .. } | Received::LeaveRequest { .. } => {}
        }
    }
    assert_eq!(read, sent);
    assert_eq!(dave.members(&g).unwrap(), alice.members(&g).unwrap());
    assert_eq!(
        dave.epoch_authenticator(&g).unwrap(),
        alice.epoch_authenticator(&g).unwrap()
    );
}

/// A deterministic pseudo-random sequence (no dependency for a test).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

struct Seat {
    name: String,
    device: Device,
    /// Position in the log from which this device reads.
    cursor: usize,
    /// Messages it read, in order.
    read: Vec<String>,
    /// Log positions during which it was a member: [from, to).
    from: usize,
    to: Option<usize>,
}

enum Entry {
    Commit(Vec<u8>),
    Message(String, Vec<u8>),
}

#[test]
fn a_group_of_100_devices_with_churn_delivers_every_message_once_in_order() {
    let org = Org::new();
    let open = |user: &str, dev: &str| {
        let f = org.enrol(user, dev);
        let key = DeviceKey::from_pem(&f.key_pem).unwrap();
        Device::open(key, f.cert_der, org.trust(), MlsStore::in_memory().unwrap()).unwrap()
    };
    let mut seats: Vec<Seat> = Vec::new();
    for i in 0..100 {
        // 50 people, two devices each.
        let (user, dev) = (format!("user{}", i / 2), format!("d{}", i % 2));
        seats.push(Seat {
            name: format!("{user}@{dev}"),
            device: open(&user, &dev),
            cursor: 0,
            read: Vec::new(),
            from: 0,
            to: None,
        });
    }
    let g = seats[0].device.create_group().unwrap();
    let kps: Vec<Vec<u8>> = seats[1..]
        .iter_mut()
        .map(|s| s.device.key_packages(1).unwrap().remove(0))
        .collect();
    let add = seats[0].device.add(&g, &kps).unwrap();
    seats[0].device.commit_accepted(&g).unwrap();
    for s in seats[1..].iter_mut() {
        s.device.join(add.welcome.as_ref().unwrap()).unwrap();
    }
    let mut log: Vec<Entry> = Vec::new();
    let mut rng = Lcg(7);
    let mut seq = 0;
    for round in 0..8 {
        let active: Vec<usize> = (0..seats.len())
            .filter(|&i| seats[i].to.is_none())
            .collect();
        // A few members send.
        for _ in 0..3 {
            let i = active[rng.below(active.len())];
            seq += 1;
            let text = format!("{} #{seq}", seats[i].name);
            let m = seats[i].device.encrypt(&g, text.as_bytes()).unwrap();
            log.push(Entry::Message(seats[i].name.clone(), m));
        }
        // One member removes another (one of the two devices of a
        // person, by person) and adds a newcomer.
        let committer = active[rng.below(active.len())];
        let victim = loop {
            let v = active[rng.below(active.len())];
            if seats[v].name.split('@').next() != seats[committer].name.split('@').next() {
                break v;
            }
        };
        let victim_user = seats[victim].name.split('@').next().unwrap().to_string();
        let newcomer = format!("new{round}");
        let mut joiner = Seat {
            name: format!("{newcomer}@d0"),
            device: open(&newcomer, "d0"),
            cursor: 0,
            read: Vec::new(),
            from: 0,
            to: None,
        };
        let kp = joiner.device.key_packages(1).unwrap();
        // The committer has read everything before it commits.
        catch_up(&mut seats, &log);
        let out = seats[committer]
            .device
            .remove(&g, &blindrelay_wire::UserName::new(&victim_user).unwrap())
            .unwrap();
        seats[committer].device.commit_accepted(&g).unwrap();
        log.push(Entry::Commit(out.commit.clone()));
        let pos = log.len();
        for s in seats.iter_mut() {
            if s.name.starts_with(&format!("{victim_user}@")) && s.to.is_none() {
                s.to = Some(pos);
            }
        }
        seats[committer].cursor = pos;
        // Everyone reads up to here before the next commit.
        catch_up(&mut seats, &log);
        let add = seats[committer].device.add(&g, &kp).unwrap();
        seats[committer].device.commit_accepted(&g).unwrap();
        log.push(Entry::Commit(add.commit.clone()));
        seats[committer].cursor = log.len();
        joiner.device.join(add.welcome.as_ref().unwrap()).unwrap();
        joiner.cursor = log.len();
        joiner.from = log.len();
        seats.push(joiner);
        catch_up(&mut seats, &log);
    }
    // Every device read exactly the messages sent while it was a member,
    // by others, in the relay's order.
    for s in &seats {
        let end = s.to.unwrap_or(log.len());
        let expected: Vec<String> = log[s.from..end]
            .iter()
            .filter_map(|e| match e {
                Entry::Message(from, _) if *from != s.name => Some(from.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(s.read.len(), expected.len(), "{}", s.name);
        for (got, from) in s.read.iter().zip(&expected) {
            assert!(
                got.starts_with(&format!("{from} #")),
                "{} read {got}",
                s.name
            );
        }
        let seqs: Vec<u32> = s
            .read
            .iter()
            .map(|t| t.rsplit('#').next().unwrap().parse().unwrap())
            .collect();
        let sorted = {
            let mut c = seqs.clone();
            c.sort_unstable();
            c.dedup();
            c
        };
        assert_eq!(seqs, sorted, "{}: once each, in order", s.name);
    }
    let remaining: Vec<&Seat> = seats.iter().filter(|s| s.to.is_none()).collect();
    assert_eq!(remaining.len(), 100 - 8 * 2 + 8);
}

/// Each member still in the group reads the log from its cursor; a
/// removed member reads up to and including its removal.
fn catch_up(seats: &mut [Seat], log: &[Entry]) {
    for s in seats.iter_mut() {
        let end = s.to.unwrap_or(log.len());
        while s.cursor < end {
            let entry = &log[s.cursor];
            s.cursor += 1;
            match entry {
                Entry::Message(from, _) if *from == s.name => {}
                Entry::Message(_, m) => match s.device.receive(m).unwrap() {
                    Received::Message { body, .. } => s.read.push(String::from_utf8(body).unwrap()),
                    other => panic!("{other:?}"),
                },
                Entry::Commit(c) => {
                    s.device.receive(c).unwrap();
                }
            }
        }
    }
}
