use super::*;
use crate::store::conformance;

#[test]
fn the_sqlite_store_keeps_the_contract() {
    conformance::pins_and_replays(&mut SqliteStore::in_memory().unwrap());
    conformance::outbox_and_history(&mut SqliteStore::in_memory().unwrap());
    conformance::send_window(&mut SqliteStore::in_memory().unwrap());
    conformance::same_millisecond_order(&mut SqliteStore::in_memory().unwrap());
}

#[test]
fn a_state_file_has_one_owner_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path);
    assert!(
        matches!(&second, Err(StoreError::InUse { path: p }) if *p == path),
        "a second owner must be refused"
    );
    drop(first);
    SqliteStore::open(&path).expect("free again once the first owner has gone");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(lock_path(&path))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn pins_of_an_older_database_are_moved_to_the_key_and_stay_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let der = blindrelay_pki::store::read_cert_der(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../e2e/tests/vectors/users/bob.pem"
    )))
    .unwrap();
    let bob = UserName::new("bob").unwrap();
    {
        // Version 0: the pin is the SHA-256 of the certificate.
        let mut s = SqliteStore::open(&path).unwrap();
        // (SHA-256 of the whole certificate.)
        let old = blindrelay_e2e::key_fingerprint(&der);
        assert_ne!(old, blindrelay_e2e::fingerprint(&der));
        s.pin(&bob, &old, &der, 0).unwrap();
        s.db.execute_batch("PRAGMA user_version = 0").unwrap();
    }
    let mut s = SqliteStore::open(&path).unwrap();
    let key = blindrelay_e2e::fingerprint(&der);
    assert_eq!(s.check_pin(&bob, &key, &der, 1).unwrap(), PinCheck::Match);
    let version: i64 =
        s.db.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_version_1_database_keeps_its_outbox_and_history_and_takes_v2_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let old = Outgoing {
        msg_id: MessageId([1; 16]),
        recipients: vec![UserName::new("bob").unwrap()],
        text: "from before".into(),
        room: false,
        created_ms: 1,
        group: None,
    };
    {
        let mut s = SqliteStore::open(&path).unwrap();
        s.outbox_add(&old).unwrap();
        // Version 1's layout: no group column.
        s.db.execute_batch(
            "ALTER TABLE outbox DROP COLUMN grp; ALTER TABLE history DROP COLUMN grp;
             PRAGMA user_version = 1",
        )
        .unwrap();
    }
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.outbox_unconfirmed().unwrap(), vec![old.clone()]);
    let new = Outgoing {
        msg_id: MessageId([2; 16]),
        recipients: Vec::new(),
        created_ms: 2,
        group: Some(vec![7; 32]),
        ..old.clone()
    };
    s.outbox_add(&new).unwrap();
    assert_eq!(s.outbox_unconfirmed().unwrap(), vec![old, new]);
    let version: i64 =
        s.db.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn pins_and_replays_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let bob = UserName::new("bob").unwrap();
    let id = MessageId([3; 16]);
    {
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.check_pin(&bob, &[1; 32], b"c1", 0).unwrap(),
            PinCheck::FirstUse
        );
        assert!(s.record_seen(&bob, &id, 1000).unwrap());
    }
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.check_pin(&bob, &[2; 32], b"c2", 0).unwrap(),
        PinCheck::Changed { pinned: [1; 32] }
    );
    assert!(s.seen(&bob, &id).unwrap());
}
