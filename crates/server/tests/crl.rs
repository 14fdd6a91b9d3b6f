//! Revocation that holds at the relay: it uses a CRL only while the CA's
//! signature verifies and the CRL is current, and never goes back to an
//! older one.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::time::Duration;

use blindrelay_pki::crl::{CRL_GRACE_SECS, CrlError};
use blindrelay_pki::store::{PUBLIC_FILE_MODE, write_file};
use blindrelay_server::{Server, ServerError};
use blindrelay_testkit::raw::{RawClient, tls_connect};
use blindrelay_testkit::relay::config;
use blindrelay_testkit::{TestPki, TestRelay, logs};
use blindrelay_wire::{GoodbyeCode, Message, UserName};
use time::OffsetDateTime;

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

/// Writes a CRL signed by the test CA, with no entries, the given number
/// and a nextUpdate `next_in` seconds from now (negative: in the past).
fn write_crl(pki: &TestPki, number: u64, next_in: i64) {
    let now = OffsetDateTime::now_utc();
    let next = now + time::Duration::seconds(next_in);
    let this = next - time::Duration::days(30);
    let pem = pki
        .pki
        .load_ca()
        .unwrap()
        .sign_crl_for(&[], number, this, next)
        .unwrap();
    write_file(&pki.pki.crl_path(), pem.as_bytes(), PUBLIC_FILE_MODE).unwrap();
}

/// Reads the CRL frames the relay sends next, joined.
async fn read_crl(c: &mut RawClient) -> Vec<u8> {
    let mut der = Vec::new();
    loop {
        match c.recv().await.unwrap() {
            Message::Crl {
                index,
                count,
                chunk,
            } => {
                assert_eq!(
                    usize::from(index),
                    der.len() / blindrelay_wire::CRL_CHUNK_MAX
                );
                der.extend_from_slice(&chunk);
                if index + 1 == count {
                    return der;
                }
            }
            Message::Peer { .. } | Message::PeerLeft { .. } => {}
            other => panic!("expected the CRL, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_hands_out_the_current_crl_at_login_and_when_it_changes() {
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut c = RawClient::connect_raw(server.addr, &pki, "alice")
        .await
        .unwrap();
    assert!(matches!(c.recv().await.unwrap(), Message::Welcome(_)));
    // Right after the welcome, before the directory.
    let crl_der = |p: &TestPki| blindrelay_pki::store::read_crl_der(&p.pki.crl_path()).unwrap();
    assert_eq!(read_crl(&mut c).await, crl_der(&pki));
    assert!(matches!(
        c.recv().await.unwrap(),
        Message::DirectoryEnd { count: 0 }
    ));
    // A revocation: the new CRL reaches the sessions still connected.
    pki.pki.revoke_user(&n("bob")).unwrap();
    assert_eq!(read_crl(&mut c).await, crl_der(&pki));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_offer_crl_frames_is_never_sent_one() {
    // A client written before CRL frames (PROTOCOL.md says to reject an
    // unknown type) offers no ALPN protocol.
    let pki = TestPki::new(&["alice", "bob"]).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut cfg = pki.client_config("alice").unwrap();
    cfg.alpn_protocols.clear();
    let tls = tls_connect(server.addr, cfg).await.unwrap();
    let mut c = RawClient::wrap("alice", tls).unwrap();
    assert!(matches!(c.recv().await.unwrap(), Message::Welcome(_)));
    assert!(matches!(
        c.recv().await.unwrap(),
        Message::DirectoryEnd { count: 0 }
    ));
    pki.pki.revoke_user(&n("bob")).unwrap();
    // A client that does understand them sees the new CRL: the relay has
    // loaded it (and would have sent it to alice by now).
    let new = blindrelay_pki::store::read_crl_der(&pki.pki.crl_path()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut other = RawClient::connect_raw(server.addr, &pki, "alice")
            .await
            .unwrap();
        assert!(matches!(other.recv().await.unwrap(), Message::Welcome(_)));
        if read_crl(&mut other).await == new {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never loaded the new CRL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Some(m) = c.try_recv(Duration::from_millis(300)).await.unwrap() {
        assert!(
            matches!(m, Message::Peer { .. } | Message::PeerLeft { .. }),
            "{m:?}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_does_not_start_on_an_expired_crl_or_another_cas() {
    let pki = TestPki::new(&["alice"]).unwrap();
    write_crl(&pki, 2, -CRL_GRACE_SECS - 60);
    let r = Server::bind(config(), pki.pki.clone()).await;
    assert!(
        matches!(
            r,
            Err(ServerError::Crl {
                error: CrlError::Expired { .. },
                ..
            })
        ),
        "{:?}",
        r.err()
    );
    // Within the grace it starts.
    write_crl(&pki, 3, -CRL_GRACE_SECS + 3600);
    let within = Server::bind(config(), pki.pki.clone()).await;
    assert!(within.is_ok(), "{:?}", within.err());
    // Another CA's CRL.
    let other = TestPki::new(&[]).unwrap();
    std::fs::copy(other.pki.crl_path(), pki.pki.crl_path()).unwrap();
    assert!(matches!(
        Server::bind(config(), pki.pki.clone()).await,
        Err(ServerError::Crl {
            error: CrlError::NotFromCa,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_crl_cannot_bring_a_revoked_user_back() {
    let pki = TestPki::new(&["stolen", "bob"]).unwrap();
    let before = std::fs::read(pki.pki.crl_path()).unwrap();
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    let mut victim = RawClient::connect(server.addr, &pki, "stolen")
        .await
        .unwrap();
    pki.pki.revoke_user(&n("stolen")).unwrap();
    assert_eq!(
        victim.expect_closed().await.unwrap(),
        Some(GoodbyeCode::Revoked)
    );
    // Someone puts the CRL from before the revocation back (it is signed
    // by the CA and still current, but its number is lower).
    write_file(&pki.pki.crl_path(), &before, PUBLIC_FILE_MODE).unwrap();
    logs::wait_for(&["crl.pem refused", "rollback refused"])
        .await
        .unwrap();
    assert!(
        RawClient::connect(server.addr, &pki, "stolen")
            .await
            .is_err()
    );
    assert!(RawClient::connect(server.addr, &pki, "bob").await.is_ok());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_crl_expires_logins_are_refused_until_a_fresh_one_arrives() {
    let pki = TestPki::new(&["alice"]).unwrap();
    // A CRL whose grace ends two seconds from now.
    write_crl(&pki, 2, -CRL_GRACE_SECS + 2);
    let server = TestRelay::with_config(&pki, config()).await.unwrap();
    assert!(RawClient::connect(server.addr, &pki, "alice").await.is_ok());
    logs::wait_for(&["the CRL in use expired"]).await.unwrap();
    assert!(
        RawClient::connect(server.addr, &pki, "alice")
            .await
            .is_err()
    );
    logs::wait_for(&["connection refused: the relay's CRL expired"])
        .await
        .unwrap();
    // An expired CRL offered as a replacement is refused too.
    write_crl(&pki, 3, -CRL_GRACE_SECS - 1);
    logs::wait_for(&["crl.pem refused", "the CRL expired"])
        .await
        .unwrap();
    assert!(
        RawClient::connect(server.addr, &pki, "alice")
            .await
            .is_err()
    );
    // The administrator signs a fresh one.
    write_crl(&pki, 4, 30 * 86_400);
    logs::wait_for(&["the CRL is current again"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(RawClient::connect(server.addr, &pki, "alice").await.is_ok());
    server.stop().await.unwrap();
}
