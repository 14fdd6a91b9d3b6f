use super::*;
use crate::store::conformance;

#[test]
fn the_sqlite_store_keeps_the_contract() {
    conformance::pins_and_replays(&mut SqliteStore::in_memory().unwrap());
    conformance::outbox_and_history(&mut SqliteStore::in_memory().unwrap());
    conformance::send_window(&mut SqliteStore::in_memory().unwrap());
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
