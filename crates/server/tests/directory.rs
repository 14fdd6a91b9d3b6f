//! The directory the relay keeps across restarts: a login records a new
//! user or a changed certificate (and only then writes to the store).
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::time::Duration;

use blindrelay_testkit::raw::RawClient;
use blindrelay_testkit::relay::config;
use blindrelay_testkit::{TestPki, TestRelay};
use blindrelay_wire::Message;
use blindrelay_wire::UserName;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// The directory a fresh `alice` session lists: (name, certificate DER).
async fn directory_of(addr: std::net::SocketAddr, pki: &TestPki) -> Vec<(String, Vec<u8>)> {
    let mut c = RawClient::connect_raw(addr, pki, "alice").await.unwrap();
    let mut out = Vec::new();
    loop {
        match c.recv().await.unwrap() {
            Message::Welcome(_) | Message::Crl { .. } => {}
            Message::Peer { name, cert_der, .. } => out.push((name.to_string(), cert_der)),
            Message::DirectoryEnd { .. } => return out,
            other => panic!("expected the directory, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_recorded_and_survives_a_restart() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let bob_cert = |pki: &TestPki| {
        blindrelay_net::load_certs(&pki.pki.user_cert_path(&n("bob")))
            .unwrap()
            .remove(0)
            .to_vec()
    };
    let server = TestRelay::start_durable(&pki, config(), &db).await.unwrap();
    drop(RawClient::connect(server.addr, &pki, "bob").await.unwrap());
    let first = bob_cert(&pki);
    // bob gets a new certificate (the old one is revoked) and logs in.
    pki.issue_with("bob", &blindrelay_pki::UserCertOptions::valid_for_days(1))
        .unwrap();
    let second = bob_cert(&pki);
    assert_ne!(first, second);
    server.reload_crl();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(RawClient::connect(server.addr, &pki, "bob").await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop().await.unwrap();

    // After a restart the directory has bob's new certificate.
    let server = TestRelay::start_durable(&pki, config(), &db).await.unwrap();
    let listed = directory_of(server.addr, &pki).await;
    assert_eq!(listed, vec![("bob".to_string(), second)]);
    server.stop().await.unwrap();
}
