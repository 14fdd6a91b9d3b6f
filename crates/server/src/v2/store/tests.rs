//! The mailbox layout on disk: one body per submission, deleted with its
//! last item; bodies delivered from disk, never from memory; an older
//! database converted at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;

use blindrelay_ds::{Delivery, DeviceId, Groups, Limits, Submission};
use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;
use rusqlite::Connection;

use super::DsDatabase;

fn dev(user: &str) -> DeviceId {
    DeviceId {
        user: UserName::new(user).unwrap(),
        device: DeviceName::new("l").unwrap(),
    }
}

fn count(db: &DsDatabase, table: &str) -> i64 {
    db.db
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// alice sends "hello" to bob and carol, stored as the relay does.
fn one_message(db: &mut DsDatabase) -> (Groups, [DeviceId; 3]) {
    let (a, b, c) = (dev("alice"), dev("bob"), dev("carol"));
    let mut g = db.load(Limits::default(), 1_000).unwrap().groups;
    g.restore(
        b"g".to_vec(),
        1,
        BTreeSet::from([a.clone(), b.clone(), c.clone()]),
    );
    let sub = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"hello".to_vec(),
    };
    g.submit(&a, sub).unwrap();
    let appended = g.mailboxes().take_appended();
    db.submit(None, None, &appended, (&a, 1_000)).unwrap();
    (g, [a, b, c])
}

#[test]
fn a_message_to_two_devices_is_stored_once_and_deleted_with_its_last_item() {
    let mut db = DsDatabase::in_memory().unwrap();
    let (mut g, [_, b, c]) = one_message(&mut db);
    assert_eq!(count(&db, "ds_body"), 1, "one body");
    assert_eq!(count(&db, "ds_item"), 2, "one item per recipient");
    for (d, left) in [(&b, 1), (&c, 0)] {
        g.mailboxes().ack(d, 0);
        let released = g.mailboxes().take_released();
        db.ack(&[(d.clone(), 0)], &released).unwrap();
        assert_eq!(count(&db, "ds_body"), left);
    }
    assert_eq!(count(&db, "ds_item"), 0);
}

#[test]
fn what_is_delivered_is_read_from_disk_and_survives_a_restart() {
    let mut db = DsDatabase::in_memory().unwrap();
    let (g, [_, b, _]) = one_message(&mut db);
    // Rebuilt from disk: the same items, the same charges.
    let again = db.load(Limits::default(), 1_000).unwrap().groups;
    let items = g.mailboxes_ref().pending(&b);
    assert_eq!(again.mailboxes_ref().pending(&b), items);
    assert_eq!(
        again.mailboxes_ref().queued_by(&dev("alice")),
        g.mailboxes_ref().queued_by(&dev("alice"))
    );
    // The bytes on disk are what bob is given: change them there, and he
    // is given the change (the memory holds no copy to fall back on).
    db.db
        .execute("UPDATE ds_body SET bytes = x'21'", [])
        .unwrap();
    let got = db.bodies(&items).unwrap();
    assert_eq!(
        got,
        [(
            0,
            Delivery::Group {
                group_id: b"g".to_vec(),
                message: b"!".to_vec()
            }
        )]
    );
    // A body that is gone (it expired meanwhile) is left out, not an error.
    db.db.execute("DELETE FROM ds_body", []).unwrap();
    assert!(db.bodies(&items).unwrap().is_empty());
}

#[test]
fn a_database_of_the_older_layout_is_converted_and_delivers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE ds_mailbox (
                 user TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL,
                 welcome INTEGER NOT NULL, group_id BLOB NOT NULL, bytes BLOB NOT NULL,
                 sender_user TEXT, sender_device TEXT, at INTEGER,
                 PRIMARY KEY (user, device, seq));
             INSERT INTO ds_mailbox VALUES ('bob', 'l', 4, 0, x'67', x'6869', 'alice', 'l', 900);
             INSERT INTO ds_mailbox VALUES ('bob', 'l', 5, 1, x'67', x'77', 'alice', 'l', 900);
             INSERT INTO ds_mailbox VALUES ('carol', 'l', 0, 0, x'67', x'6869', NULL, NULL, NULL);",
        )
        .unwrap();
    }
    let db = DsDatabase::open(&path).unwrap();
    let exists: i64 = db
        .db
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'ds_mailbox'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(exists, 0, "the old table is gone");
    let g = db.load(Limits::default(), 1_000).unwrap().groups;
    let bob = db.bodies(&g.mailboxes_ref().pending(&dev("bob"))).unwrap();
    assert_eq!(
        bob,
        [
            (
                4,
                Delivery::Group {
                    group_id: b"g".to_vec(),
                    message: b"hi".to_vec()
                }
            ),
            (
                5,
                Delivery::Welcome {
                    group_id: b"g".to_vec(),
                    welcome: b"w".to_vec()
                }
            )
        ]
    );
    assert_eq!(g.mailboxes_ref().pending(&dev("carol")).len(), 1);
    assert_eq!(g.mailboxes_ref().queued_by(&dev("alice")), 5);
    assert_eq!(g.mailboxes_ref().next_seq(&dev("bob")), 6);
    // Opening again converts nothing twice.
    drop(db);
    let db = DsDatabase::open(&path).unwrap();
    assert_eq!(count(&db, "ds_body"), 3);
}

#[test]
fn an_item_whose_body_is_gone_is_dropped_at_start_up_and_never_given_a_new_body() {
    let mut db = DsDatabase::in_memory().unwrap();
    let (_, [a, b, _]) = one_message(&mut db);
    // A body deleted while an item still points at it (an acknowledgement
    // of another device deleted it after this device's write failed).
    db.db.execute("DELETE FROM ds_body", []).unwrap();
    let mut g = db.load(Limits::default(), 1_000).unwrap().groups;
    assert_eq!(
        count(&db, "ds_item"),
        0,
        "the item without its body is gone"
    );
    assert!(g.mailboxes_ref().pending(&b).is_empty());
    // A new message gets body number 0 again: nothing old points at it.
    g.restore(b"g".to_vec(), 1, BTreeSet::from([a.clone(), b.clone()]));
    let sub = Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"new".to_vec(),
    };
    g.submit(&a, sub).unwrap();
    let appended = g.mailboxes().take_appended();
    db.submit(None, None, &appended, (&a, 1_000)).unwrap();
    let again = db.load(Limits::default(), 1_000).unwrap().groups;
    let got = db.bodies(&again.mailboxes_ref().pending(&b)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 1, "bob's numbering went on");
    again.mailboxes_ref().audit().unwrap();
}

#[test]
fn expiry_deletes_every_devices_items_and_their_bodies_together() {
    let mut db = DsDatabase::in_memory().unwrap();
    let (mut g, [_, b, c]) = one_message(&mut db);
    let expired = g.mailboxes().expire(1_000 + 15 * 24 * 3600);
    assert_eq!(expired.len(), 2);
    let released = g.mailboxes().take_released();
    db.ack(&expired, &released).unwrap();
    assert_eq!((count(&db, "ds_item"), count(&db, "ds_body")), (0, 0));
    let again = db.load(Limits::default(), 1_000).unwrap().groups;
    assert!(again.mailboxes_ref().pending(&b).is_empty());
    assert!(again.mailboxes_ref().pending(&c).is_empty());
}

#[test]
fn a_database_of_the_first_layout_without_senders_is_converted_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE ds_mailbox (
                 user TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL,
                 welcome INTEGER NOT NULL, group_id BLOB NOT NULL, bytes BLOB NOT NULL,
                 PRIMARY KEY (user, device, seq));
             INSERT INTO ds_mailbox VALUES ('bob', 'l', 2, 0, x'67', x'6869');",
        )
        .unwrap();
    }
    let db = DsDatabase::open(&path).unwrap();
    let g = db.load(Limits::default(), 1_000).unwrap().groups;
    let bob = db.bodies(&g.mailboxes_ref().pending(&dev("bob"))).unwrap();
    assert_eq!(
        bob,
        [(
            2,
            Delivery::Group {
                group_id: b"g".to_vec(),
                message: b"hi".to_vec()
            }
        )]
    );
    assert_eq!(
        g.mailboxes_ref().queued_by(&dev("alice")),
        0,
        "charged to nobody"
    );
    assert_eq!(g.mailboxes_ref().total_bytes(), 3);
}

#[test]
fn a_body_no_item_points_at_is_deleted_at_start_up() {
    let mut db = DsDatabase::in_memory().unwrap();
    let (_, [_, b, c]) = one_message(&mut db);
    // Both items went (their deletion committed) but the body stayed: a
    // crash between the two in an older relay.
    db.db.execute("DELETE FROM ds_item", []).unwrap();
    let g = db.load(Limits::default(), 1_000).unwrap().groups;
    assert_eq!(count(&db, "ds_body"), 0, "the orphan body is gone");
    assert!(g.mailboxes_ref().pending(&b).is_empty());
    assert!(g.mailboxes_ref().pending(&c).is_empty());
    assert_eq!(g.mailboxes_ref().total_bytes(), 0);
}

#[test]
fn the_read_only_connection_reads_what_was_committed_and_passes_over_what_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DsDatabase::open(&dir.path().join("v2.db")).unwrap();
    let reader = db.take_reader().expect("a file has a reader");
    assert!(db.take_reader().is_none(), "taken once");
    let (g, [_, b, _]) = one_message(&mut db);
    let items = g.mailboxes_ref().pending(&b);
    assert_eq!(reader.bodies(&items).unwrap(), db.bodies(&items).unwrap());
    assert_eq!(reader.bodies(&items).unwrap().len(), 1);
    db.db.execute("DELETE FROM ds_body", []).unwrap();
    assert!(reader.bodies(&items).unwrap().is_empty());
    assert!(DsDatabase::in_memory().unwrap().take_reader().is_none());
}

#[test]
fn a_published_group_info_is_replaced_by_the_next_and_goes_with_its_group() {
    let mut db = DsDatabase::in_memory().unwrap();
    assert_eq!(db.group_info(b"g").unwrap(), None);
    db.set_group_info(b"g", 1, b"one").unwrap();
    db.set_group_info(b"g", 2, b"two").unwrap();
    db.set_group_info(b"h", 5, b"other").unwrap();
    assert_eq!(db.group_info(b"g").unwrap(), Some((2, b"two".to_vec())));
    // The group is forgotten (its last member revoked): so is its GroupInfo.
    let gone = blindrelay_ds::Forgotten {
        changed: Vec::new(),
        removed: vec![b"g".to_vec()],
    };
    db.forget(&dev("alice"), &gone, &[]).unwrap();
    assert_eq!(db.group_info(b"g").unwrap(), None);
    assert_eq!(db.group_info(b"h").unwrap(), Some((5, b"other".to_vec())));
}
