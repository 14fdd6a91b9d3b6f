//! A running client follows its CRL file: a revocation takes effect without
//! a restart, and an older CRL put back is refused.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use blindrelay_adversary::evil_relay::{EvilRelay, Tamper};
use blindrelay_client::{ClientConfig, ClientError, Event, connect};
use blindrelay_testkit::{TestPki, TestRelay, User, WAIT};
use blindrelay_wire::UserName;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_picks_up_a_new_crl_file_without_restarting() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    // A relay that hands out no CRL: the file is alice's only source.
    let relay = EvilRelay::start(&s.pki, Tamper::Honest).await.unwrap();
    let addr = relay.addr.to_string();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_crl_file_learns_a_revocation_from_the_relay() {
    let s = TestPki::named("Client Test CA", &["alice", "bob"]).unwrap();
    let relay = TestRelay::start(&s).await.unwrap();
    let addr = relay.address();
    let mut alice = User::connect_with(&s, "alice", &addr, |c| c.crl = None)
        .await
        .unwrap();
    let _bob = User::connect(&s, "bob", &addr).await.unwrap();
    alice
        .wait_for("bob", |e| matches!(e, Event::Joined { .. }))
        .await
        .unwrap();
    // Only the CA and the relay get the new CRL; the relay hands it on,
    // and alice checks it against the CA herself.
    s.pki.revoke_user(&n("bob")).unwrap();
    let w = alice.warning().await.unwrap();
    assert!(w.starts_with("REFUSED the certificate of bob"), "{w}");
    let err = alice
        .handle
        .send(vec![n("bob")], "x".into(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NoKey(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_handing_out_an_older_crl_cannot_bring_a_revoked_user_back() {
    let s = TestPki::named("Client Test CA", &["alice", "mallory"]).unwrap();
    let old = blindrelay_pki::store::read_crl_der(&s.pki.crl_path()).unwrap();
    // The relay ignores revocations and hands out the CRL from before
    // mallory's; alice has the current one.
    let evil = EvilRelay::start(&s.pki, Tamper::OldCrl(old)).await.unwrap();
    s.pki.revoke_user(&n("mallory")).unwrap();
    let addr = evil.addr.to_string();
    let alice_dir = s.pki.user_dir(&n("alice"));
    let mut cfg = ClientConfig::from_dir(alice_dir.root(), n("alice"), &addr);
    cfg.crl = Some(s.pki.crl_path());
    cfg.state = None;
    let (alice, mut events) = connect(&cfg).await.unwrap();
    let mut login = Vec::new();
    loop {
        let e = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(e, Event::Connected { .. }) {
            break;
        }
        login.push(e);
    }
    assert!(
        login.iter().any(|e| matches!(e, Event::Warning(w)
            if w.starts_with("the relay's CRL refused: rollback refused"))),
        "{login:?}"
    );
    // Mallory comes online through the relay: still revoked for alice.
    let _mallory = User::connect(&s, "mallory", &addr).await.unwrap();
    let refused = loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Warning(w) if w.contains("mallory") => break w,
            Event::Joined { name, .. } if name.as_str() == "mallory" => {
                panic!("a revoked user was trusted")
            }
            _ => {}
        }
    };
    assert!(refused.contains("CertRevoked"), "{refused}");
    let err = alice
        .send(vec![n("mallory")], "x".into(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NoKey(_)), "{err}");
}
