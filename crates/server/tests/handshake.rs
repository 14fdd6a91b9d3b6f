//! Every TLS-level refusal of the report (section 3, 6.2) and more: only
//! clients with a valid, unrevoked clientAuth certificate from our CA, over
//! TLS 1.3, get past the handshake.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::sync::Arc;
use std::time::Duration;

use blindrelay_net::{load_certs, load_private_key};
use blindrelay_pki::UserCertOptions;
use blindrelay_testkit::raw::{RECV_WAIT, RawClient, tls_connect};
use blindrelay_testkit::relay::config;
use blindrelay_testkit::{TestPki, TestRelay, logs};
use blindrelay_wire::UserName;
use blindrelay_wire::{GoodbyeCode, Message};
use rustls::{ClientConfig, RootCertStore};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn roots(pki: &TestPki) -> RootCertStore {
    let mut r = RootCertStore::empty();
    r.add(load_certs(&pki.pki.ca_cert_path()).unwrap().remove(0))
        .unwrap();
    r
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The client must not get a single application frame. In TLS 1.3 the
/// client's side of the handshake may complete before the server's verdict
/// arrives, so the refusal shows as an alert or EOF on the first read.
async fn assert_refused(addr: std::net::SocketAddr, cfg: ClientConfig) {
    match tls_connect(addr, cfg).await {
        Err(_) => {}
        Ok(mut s) => {
            let mut b = [0u8; 1];
            let r = tokio::time::timeout(RECV_WAIT, s.read(&mut b))
                .await
                .expect("server did not close");
            assert!(matches!(r, Ok(0) | Err(_)), "got application data: {r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_is_refused_and_logged() {
    let pki = TestPki::new(&["alice"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_no_client_auth();
    assert_refused(server.addr, cfg).await;
    logs::wait_for(&["TLS handshake refused", "client presented no certificate"])
        .await
        .unwrap();
    // The relay still serves legitimate users.
    let _alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_is_refused() {
    let pki = TestPki::new(&["alice"]).unwrap();
    let other = TestPki::new(&["alice"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    // Trusts our server, but authenticates with the other CA's alice.
    let chain = load_certs(&other.pki.user_cert_path(&n("alice"))).unwrap();
    let key = load_private_key(&other.pki.user_key_path(&n("alice"))).unwrap();
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_client_auth_cert(chain, key)
        .unwrap();
    assert_refused(server.addr, cfg).await;
    // Same CA name, different key: the signature check fails.
    logs::wait_for(&[
        "TLS handshake refused",
        "invalid client certificate: BadSignature",
    ])
    .await
    .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_refused() {
    let pki = TestPki::new(&[]).unwrap();
    let now = OffsetDateTime::now_utc();
    pki.issue_with(
        "expired-user",
        &UserCertOptions {
            not_before: now - time::Duration::days(10),
            not_after: now - time::Duration::days(1),
            server_auth_only: false,
        },
    )
    .unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    assert_refused(server.addr, pki.client_config("expired-user").unwrap()).await;
    logs::wait_for(&["TLS handshake refused", "Expired"])
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_only_certificate_is_refused() {
    let pki = TestPki::new(&[]).unwrap();
    pki.issue_with(
        "server-only",
        &UserCertOptions {
            server_auth_only: true,
            ..UserCertOptions::valid_for_days(1)
        },
    )
    .unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    assert_refused(server.addr, pki.client_config("server-only").unwrap()).await;
    logs::wait_for(&["TLS handshake refused", "invalid client certificate"])
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificate_is_refused() {
    let pki = TestPki::new(&["revoked-early", "alice"]).unwrap();
    pki.pki.revoke_user(&n("revoked-early")).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    assert_refused(server.addr, pki.client_config("revoked-early").unwrap()).await;
    logs::wait_for(&["TLS handshake refused", "Revoked"])
        .await
        .unwrap();
    let _alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_while_connected_disconnects_and_blocks_reconnect() {
    let pki = TestPki::new(&["revoked-live", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut victim = RawClient::connect(server.addr, &pki, "revoked-live")
        .await
        .unwrap();
    let mut bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    pki.pki.revoke_user(&n("revoked-live")).unwrap();
    assert_eq!(
        victim.expect_closed().await.unwrap(),
        Some(GoodbyeCode::Revoked)
    );
    logs::wait_for(&[
        "identity=revoked-live",
        "certificate revoked while connected",
    ])
    .await
    .unwrap();
    assert_refused(server.addr, pki.client_config("revoked-live").unwrap()).await;
    // Bob is unaffected.
    bob.send(&Message::Ping(7)).await.unwrap();
    assert_eq!(bob.recv_skip_presence().await.unwrap(), Message::Pong(7));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_users_leave_the_directory() {
    let pki = TestPki::new(&["gone", "alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    drop(RawClient::connect(server.addr, &pki, "gone").await.unwrap());
    let alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    assert_eq!(
        alice.directory,
        vec![n("gone")],
        "known offline user listed"
    );
    pki.pki.revoke_user(&n("gone")).unwrap();
    logs::wait_for(&["revoked users removed from the directory", "gone"])
        .await
        .unwrap();
    let bob = RawClient::connect(server.addr, &pki, "bob").await.unwrap();
    assert_eq!(bob.directory, vec![n("alice")]);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_style_reload_applies_a_new_crl() {
    let pki = TestPki::new(&["hup-user"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        blindrelay_server::Config {
            crl_poll_ms: 3_600_000,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut c = RawClient::connect(server.addr, &pki, "hup-user")
        .await
        .unwrap();
    pki.pki.revoke_user(&n("hup-user")).unwrap();
    server.reload_crl();
    assert_eq!(c.expect_closed().await.unwrap(), Some(GoodbyeCode::Revoked));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_only_client_is_refused() {
    let pki = TestPki::new(&["alice"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let n = n("alice");
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_client_auth_cert(
            load_certs(&pki.pki.user_cert_path(&n)).unwrap(),
            load_private_key(&pki.pki.user_key_path(&n)).unwrap(),
        )
        .unwrap();
    assert!(tls_connect(server.addr, cfg).await.is_err());
    logs::wait_for(&["TLS handshake refused", "incompatible client"])
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_closes_silent_tcp_connections() {
    let pki = TestPki::new(&[]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        blindrelay_server::Config {
            handshake_timeout_ms: 300,
            ..config()
        },
    )
    .await
    .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut b = [0u8; 16];
    let n = tokio::time::timeout(RECV_WAIT, tcp.read(&mut b))
        .await
        .expect("not closed");
    assert!(matches!(n, Ok(0) | Err(_)));
    logs::wait_for(&["TLS handshake refused", "not completed within 300 ms"])
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_handshake_slot() {
    let pki = TestPki::new(&["alice"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        blindrelay_server::Config {
            max_handshakes_per_ip: 3,
            ..config()
        },
    )
    .await
    .unwrap();
    // Three silent connections hold this address's handshake slots...
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a fourth is closed at once, without a handshake.
    let mut extra = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(RECV_WAIT, extra.read(&mut b))
        .await
        .expect("not closed");
    assert!(matches!(r, Ok(0) | Err(_)));
    logs::wait_for(&[
        "TLS handshake refused",
        "too many handshakes in progress from this address",
    ])
    .await
    .unwrap();
    // Once they give up, the address is welcome again.
    drop(silent);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _alice = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_connection_cap_holds_excess_connections_before_the_handshake() {
    let pki = TestPki::new(&["alice"]).unwrap();
    let server = TestRelay::with_config(
        &pki,
        blindrelay_server::Config {
            max_connections: 1,
            ..config()
        },
    )
    .await
    .unwrap();
    let first = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    // The second connection's TCP handshake completes in the kernel backlog,
    // but the relay does not accept it, so TLS cannot complete.
    let second = tokio::time::timeout(
        Duration::from_millis(700),
        tls_connect(server.addr, pki.client_config("alice").unwrap()),
    )
    .await;
    assert!(second.is_err(), "second connection was served past the cap");
    drop(first);
    // Once the first is gone, a new one gets in.
    let _third = RawClient::connect(server.addr, &pki, "alice")
        .await
        .unwrap();
    server.stop().await.unwrap();
}
