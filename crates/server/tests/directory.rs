//! The directory the relay keeps across restarts: a login records a new
//! user or a changed certificate (and only then writes to the store).
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use std::time::Duration;

use blindrelay_wire::Message;
use common::*;

/// The directory a fresh `alice` session lists: (name, certificate DER).
async fn directory_of(addr: std::net::SocketAddr, pki: &TestPki) -> Vec<(String, Vec<u8>)> {
    let mut c = Client::connect_raw(addr, pki, "alice").await.unwrap();
    let mut out = Vec::new();
    loop {
        match c.recv().await {
            Message::Welcome { .. } => {}
            Message::Peer { name, cert_der, .. } => out.push((name.to_string(), cert_der)),
            Message::DirectoryEnd { .. } => return out,
            other => panic!("expected the directory, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_recorded_and_survives_a_restart() {
    let pki = TestPki::new(&["alice", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let bob_cert = |pki: &TestPki| {
        blindrelay_net::load_certs(&pki.pki.user_cert_path(&name("bob")))
            .unwrap()
            .remove(0)
            .to_vec()
    };
    let server = TestServer::start_durable(&pki, config(), &db).await;
    drop(Client::connect(server.addr, &pki, "bob").await);
    let first = bob_cert(&pki);
    // bob gets a new certificate (the old one is revoked) and logs in.
    pki.issue_with("bob", &blindrelay_pki::UserCertOptions::valid_for_days(1));
    let second = bob_cert(&pki);
    assert_ne!(first, second);
    server.handle.reload_crl();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(Client::connect(server.addr, &pki, "bob").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;

    // After a restart the directory has bob's new certificate.
    let server = TestServer::start_durable(&pki, config(), &db).await;
    let listed = directory_of(server.addr, &pki).await;
    assert_eq!(listed, vec![("bob".to_string(), second)]);
    server.shutdown().await;
}
