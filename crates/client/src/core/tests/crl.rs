//! The client's CRL: taken only from the CA, never older than the one in
//! use, kept across restarts, and no certificate accepted once it expired.

use blindrelay_pki::crl::CRL_GRACE_SECS;
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;

use super::*;

/// A CRL of the test CA revoking `users`, with the given number, current
/// from a day before NOW until `next_s` (Unix seconds).
fn crl(users: &[&str], number: u64, next_s: i64) -> Vec<u8> {
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let serials: Vec<Vec<u8>> = users
        .iter()
        .map(|u| blindrelay_pki::CertInfo::from_der(&cert(u)).unwrap().serial)
        .collect();
    let now_s = (NOW_MS / 1000) as i64;
    let pem = pki()
        .1
        .load_ca()
        .unwrap()
        .sign_crl_for(&serials, number, at(now_s - 86_400), at(next_s))
        .unwrap();
    CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn month_from_now() -> i64 {
    (NOW_MS / 1000) as i64 + 30 * 86_400
}

#[test]
fn a_new_crl_withdraws_trust_from_a_revoked_peer_at_once() {
    let (mut alice, mut bob) = pair();
    let revoking_bob = crl(&["bob"], 2, month_from_now());
    let events = alice.offer_crl(&revoking_bob, CrlSource::File, NOW_MS);
    let w = warnings(&events);
    assert!(
        w.iter()
            .any(|w| w.starts_with("REFUSED the certificate of bob")),
        "{w:?}"
    );
    assert!(matches!(
        alice.send_text(&[n("bob")], "x", false, NOW_MS),
        Err(ClientError::NoKey(_))
    ));
    let (_, frames) = send(&mut bob, "alice", "it's me");
    let events = feed(&mut alice, delivered(&frames, RoutedFlags::NONE), NOW_MS);
    assert!(shown(&events).is_empty());
    // Carol is not listed: still trusted.
    assert!(alice.send_text(&[n("carol")], "hi", false, NOW_MS).is_ok());
    // Offered again, it is no change, and no news.
    // The same CRL again (from the relay, say) is no news.
    assert!(
        alice
            .offer_crl(&revoking_bob, CrlSource::Relay, NOW_MS)
            .is_empty()
    );
}

#[test]
fn an_older_crl_is_refused_and_the_newest_is_kept() {
    let mut alice = logged_in("alice", Policy::default());
    let newest = crl(&["carol"], 5, month_from_now());
    assert!(
        warnings(&alice.offer_crl(&newest, CrlSource::File, NOW_MS))
            .iter()
            .all(|w| !w.contains("refused:"))
    );
    assert_eq!(alice.store.crl().unwrap().as_deref(), Some(&newest[..]));
    // The CRL from before carol's revocation, signed by the CA, current.
    for (older, source) in [
        (crl(&[], 4, month_from_now()), CrlSource::File),
        (crl(&[], 5, month_from_now()), CrlSource::Relay),
    ] {
        let w = warnings(&alice.offer_crl(&older, source, NOW_MS));
        assert!(
            w.iter().any(|w| w.contains("rollback refused")),
            "{source}: {w:?}"
        );
        assert_eq!(alice.store.crl().unwrap().as_deref(), Some(&newest[..]));
    }
    assert!(matches!(
        alice.send_text(&[n("carol")], "x", false, NOW_MS),
        Err(ClientError::NoKey(_))
    ));
    // Another CA's CRL is not taken.
    let other = TestCa::new();
    let w = warnings(&alice.offer_crl(&other.crl(9), CrlSource::Relay, NOW_MS));
    assert!(
        w.iter().any(|w| w.contains("not signed by the CA")),
        "{w:?}"
    );
    // After a restart, the stored CRL is the floor: the file's older one
    // is refused.
    let mut again = core_with("alice", Policy::default());
    again.store.set_crl(&newest).unwrap();
    assert!(again.load_stored_crl(NOW_MS).is_empty());
    let w = warnings(&again.offer_crl(&crl(&[], 4, month_from_now()), CrlSource::File, NOW_MS));
    assert!(w.iter().any(|w| w.contains("rollback refused")), "{w:?}");
}

#[test]
fn once_the_crl_expires_nobody_is_trusted_until_a_fresh_one_arrives() {
    let mut alice = logged_in("alice", Policy::default());
    let next = (NOW_MS / 1000) as i64 + 86_400;
    alice.offer_crl(&crl(&[], 2, next), CrlSource::File, NOW_MS);
    // The last second of the grace: still fine.
    let last_ok = (next + CRL_GRACE_SECS) as u64 * 1000;
    assert!(warnings(&alice.tick(last_ok)).is_empty());
    assert!(alice.send_text(&[n("bob")], "x", false, last_ok).is_ok());
    // One second later: said once, and every peer refused.
    let expired = last_ok + 1000;
    let w = warnings(&alice.tick(expired));
    assert!(w.iter().any(|w| w.contains("the CRL expired")), "{w:?}");
    assert!(
        w.iter()
            .any(|w| w.starts_with("REFUSED the certificate of bob"))
    );
    assert!(warnings(&alice.tick(expired + 5000)).is_empty());
    assert!(matches!(
        alice.send_text(&[n("bob")], "x", false, expired),
        Err(ClientError::NoKey(_))
    ));
    // A fresh CRL, and the relay's directory again: trusted again.
    let fresh = crl(&[], 3, (expired / 1000) as i64 + 30 * 86_400);
    assert!(warnings(&alice.offer_crl(&fresh, CrlSource::Relay, expired)).is_empty());
    alice.handle(
        Message::Peer {
            event: PeerEvent::Joined,
            name: n("bob"),
            cert_der: cert("bob"),
        },
        expired,
    );
    assert!(alice.send_text(&[n("bob")], "x", false, expired).is_ok());
}

/// Another CA, for a CRL the client must not take.
struct TestCa(blindrelay_pki::CertificateAuthority);

impl TestCa {
    fn new() -> Self {
        Self(blindrelay_pki::CertificateAuthority::create("Other CA").unwrap())
    }
    fn crl(&self, number: u64) -> Vec<u8> {
        let pem = self.0.sign_crl(&[], number).unwrap();
        CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }
}
