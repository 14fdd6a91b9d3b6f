//! A running client follows its CRL file: a revocation takes effect without
//! a restart, and an older CRL put back is refused.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use blindrelay_client::{ClientError, Event};
use blindrelay_testkit::{TestPki, TestRelay, User};
use blindrelay_wire::UserName;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_picks_up_a_new_crl_file_without_restarting() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::start(&s).await.unwrap();
    let addr = relay.address();
    // Alice's own copy of the CRL, as the administrator handed it out.
    let alices_crl = s.path().join("alice-crl.pem");
    std::fs::copy(s.pki.crl_path(), &alices_crl).unwrap();
    let before = std::fs::read(&alices_crl).unwrap();
    let path = alices_crl.clone();
    let mut alice = User::connect_with(&s, "alice", &addr, |c| c.crl = Some(path))
        .await
        .unwrap();
    let _bob = User::connect(&s, "bob", &addr).await.unwrap();
    alice
        .wait_for("bob", |e| matches!(e, Event::Joined { .. }))
        .await
        .unwrap();
    // Bob's laptop is stolen: the administrator revokes him and alice's
    // machine receives the new crl.pem. Alice's client notices by itself.
    s.pki.revoke_user(&n("bob")).unwrap();
    std::fs::copy(s.pki.crl_path(), &alices_crl).unwrap();
    let w = alice.warning().await.unwrap();
    assert!(w.starts_with("REFUSED the certificate of bob"), "{w}");
    let err = alice
        .handle
        .send(vec![n("bob")], "x".into(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NoKey(_)), "{err}");
    // The old CRL put back cannot bring bob back.
    std::fs::write(&alices_crl, &before).unwrap();
    let w = alice.warning().await.unwrap();
    assert!(w.contains("rollback refused"), "{w}");
}
