//! Envelope properties with real keys from a throwaway PKI.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use blindrelay_e2e::OpenError;
use blindrelay_e2e::content::MAX_TEXT_LEN;
use blindrelay_e2e::envelope::{MAX_PLAINTEXT_LEN, TAG_LEN};
use blindrelay_e2e::header::FLAG_ROOM;
use blindrelay_e2e::{
    Content, E2eError, Envelope, Freshness, SealParams, VerifiedPeer, open, safety_number, seal,
};
use blindrelay_wire::MAX_RECIPIENTS;
use blindrelay_wire::MessageId;
use common::*;
use proptest::prelude::*;

#[test]
fn round_trip_one_recipient() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "Hello Bob!");
    assert_eq!(
        open_as(bob, &env, "alice").unwrap(),
        Content::Text("Hello Bob!".into())
    );
}

#[test]
fn many_recipients_each_can_open_and_body_is_encrypted_once() {
    let (alice, bob, carol) = identities();
    // Dozens of recipients.
    let mut recips = vec![peer("bob"), peer("carol")];
    recips.extend_from_slice(&many_peers()[..38]);
    let text = "x".repeat(1000);
    let sealed = seal(
        alice,
        &SealParams {
            msg_id: MessageId([1; 16]),
            timestamp_ms: NOW_MS,
            room: true,
            recipients: &recips,
            content: &Content::Text(text.clone()),
            fragment_room: 3500,
        },
    )
    .unwrap();
    // The pieces are positioned, at most one room each, and make up the
    // envelope in order; their count is the one the header commits to.
    let pieces: Vec<_> = sealed.fragments().collect();
    assert_eq!(pieces.len(), usize::from(sealed.fragment_count()));
    for (i, (pos, piece)) in pieces.iter().enumerate() {
        assert_eq!(
            (usize::from(pos.index()), pos.count()),
            (i, sealed.fragment_count())
        );
        assert!(piece.len() <= 3500);
    }
    assert_eq!(
        pieces
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect::<Vec<u8>>(),
        sealed.envelope()
    );
    let env = sealed.into_envelope();
    let parsed = Envelope::try_from(&env[..]).unwrap();
    assert_eq!(parsed.header().recipients.len(), 40);
    assert!(parsed.header().flags & FLAG_ROOM != 0);
    // 40 wrapped keys of 256 bytes, one ciphertext of ~1 KB.
    assert!(env.len() < 40 * 258 + 1100 + 700, "{}", env.len());
    assert_eq!(
        parsed.header().fragment_count as usize,
        env.len().div_ceil(3500)
    );
    for who in [bob, carol] {
        assert_eq!(
            open_as(who, &env, "alice").unwrap(),
            Content::Text(text.clone())
        );
    }
}

#[test]
fn not_addressed_to_me() {
    let (alice, _, carol) = identities();
    let env = seal_to(alice, &[peer("bob")], "for bob only");
    assert_eq!(open_as(carol, &env, "alice"), Err(OpenError::NotForMe));
}

#[test]
fn relay_claiming_another_sender_is_detected() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "hi");
    let parsed = Envelope::try_from(&env[..]).unwrap();
    // Relay says it came from carol: mismatch with the envelope.
    assert_eq!(
        open(
            &parsed,
            &n("carol"),
            1,
            &peer("carol"),
            bob,
            &Freshness::default(),
            NOW_MS
        ),
        Err(OpenError::SenderMismatch)
    );
}

#[test]
fn the_relays_sender_and_the_verified_certificate_must_both_be_the_envelopes() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "hi");
    let parsed = Envelope::try_from(&env[..]).unwrap();
    let f = Freshness::default();
    // The relay names alice, but the caller checks against carol's
    // certificate; and the other way round.
    for (relay_says, cert_of) in [("alice", "carol"), ("carol", "alice")] {
        assert_eq!(
            open(&parsed, &n(relay_says), 1, &peer(cert_of), bob, &f, NOW_MS),
            Err(OpenError::SenderMismatch),
            "relay {relay_says}, certificate {cert_of}"
        );
    }
}

#[test]
fn forged_sender_signature_fails_identically() {
    // Mallory builds an envelope claiming to be alice: she can write the
    // header, but cannot sign as alice.
    let mallory = me("mallory");
    let (_, bob, _) = identities();
    let env = seal_to(&mallory, &[peer("bob")], "I am alice");
    let mut forged = env.clone();
    // Replace sender "mallory" by "alice" + keep lengths consistent: rebuild
    // via the header offsets (version, flags, id, ts, count, key commitment).
    let name_at = 1 + 1 + 16 + 8 + 2 + 32;
    assert_eq!(&forged[name_at + 1..name_at + 8], b"mallory");
    forged.splice(name_at..name_at + 8, [5u8, b'a', b'l', b'i', b'c', b'e']);
    assert_eq!(
        open_as(bob, &forged, "alice"),
        Err(OpenError::Undecryptable)
    );
}

#[test]
fn stale_and_future_messages_are_refused() {
    let (alice, bob, _) = identities();
    let f = Freshness::default();
    for (ts, want) in [(NOW_MS - 61_000, "stale"), (NOW_MS + 31_000, "future")] {
        let env = seal(
            alice,
            &SealParams {
                msg_id: MessageId([2; 16]),
                timestamp_ms: ts,
                room: false,
                recipients: &[peer("bob")],
                content: &Content::Text("t".into()),
                fragment_room: 4000,
            },
        )
        .unwrap();
        let p = Envelope::try_from(env.envelope()).unwrap();
        let r = open(&p, &n("alice"), 1, &peer("alice"), bob, &f, NOW_MS);
        match (want, r) {
            ("stale", Err(OpenError::Stale { .. })) | ("future", Err(OpenError::Future { .. })) => {
            }
            (w, other) => panic!("{w}: {other:?}"),
        }
    }
    // A longer window (stored delivery) accepts the old one.
    let long = Freshness {
        max_age_ms: 7 * 86_400_000,
        ..f
    };
    assert!(long.check(NOW_MS - 3_600_000, NOW_MS).is_ok());
}

#[test]
fn fragment_count_must_match_the_relay() {
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "hi");
    let p = Envelope::try_from(&env[..]).unwrap();
    assert_eq!(
        open(
            &p,
            &n("alice"),
            2,
            &peer("alice"),
            bob,
            &Freshness::default(),
            NOW_MS
        ),
        Err(OpenError::Malformed)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_flipped_bit_anywhere_is_rejected(byte in 0usize..2000, bit in 0u8..8) {
        let (alice, bob, _) = identities();
        let env = seal_to(alice, &[peer("bob")], "integrity matters");
        let mut t = env.clone();
        let i = byte % t.len();
        t[i] ^= 1 << bit;
        prop_assert!(open_as(bob, &t, "alice").is_err(), "flip at {} accepted", i);
    }

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = Envelope::try_from(&bytes[..]);
    }

    #[test]
    fn truncation_or_extension_is_rejected(cut in 1usize..600, extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let (alice, bob, _) = identities();
        let env = seal_to(alice, &[peer("bob")], "length matters");
        let short = &env[..env.len() - cut.min(env.len())];
        prop_assert!(open_as(bob, short, "alice").is_err());
        let mut long = env.clone();
        long.extend_from_slice(&extra);
        prop_assert!(open_as(bob, &long, "alice").is_err());
    }
}

#[test]
fn safety_numbers_match_on_both_sides_and_differ_per_pair() {
    let f = fx();
    let (a, b, c) = (
        cert(&f.pki, "alice"),
        cert(&f.pki, "bob"),
        cert(&f.pki, "carol"),
    );
    let ab = safety_number(&a, &b);
    assert_eq!(ab, safety_number(&b, &a));
    assert_ne!(ab, safety_number(&a, &c));
    assert_eq!(ab.split(' ').count(), 12);
    assert!(
        ab.split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit()))
    );
}

#[test]
fn every_message_uses_a_fresh_key_and_nonce() {
    use blindrelay_e2e::seal::key_commitment;
    let (alice, _, _) = identities();
    let sealed: Vec<Envelope> = (0..8)
        .map(|_| Envelope::try_from(&seal_to(alice, &[peer("bob")], "same")[..]).unwrap())
        .collect();
    // The header commits to the message key: distinct commitments are
    // distinct keys, and none is the all-zero key.
    let mut commitments: Vec<[u8; 32]> = sealed.iter().map(|e| e.header().key_commit).collect();
    let mut nonces: Vec<[u8; 12]> = sealed.iter().map(|e| *e.nonce()).collect();
    assert!(!commitments.contains(&key_commitment(&[0; 32])));
    assert!(!nonces.contains(&[0; 12]));
    commitments.sort();
    commitments.dedup();
    nonces.sort();
    nonces.dedup();
    assert_eq!((commitments.len(), nonces.len()), (8, 8));
}

#[test]
fn the_header_commits_to_the_message_key() {
    use blindrelay_e2e::seal::key_commitment;
    let (alice, bob, _) = identities();
    let env = seal_to(alice, &[peer("bob")], "committed");
    let parsed = Envelope::try_from(&env[..]).unwrap();
    // Distinct keys give distinct commitments; the header carries one.
    assert_ne!(key_commitment(&[1; 32]), key_commitment(&[2; 32]));
    assert_ne!(parsed.header().key_commit, [0u8; 32]);
    // A sender who signs a header committing to another key than the one
    // wrapped for the recipient is rejected.
    let mut header_and_rest = env[..env.len() - 2 - 256].to_vec();
    let at = 1 + 1 + 16 + 8 + 2;
    header_and_rest[at..at + 32].copy_from_slice(&key_commitment(&[7; 32]));
    let forged = blindrelay_e2e::seal::resign_for_tests(alice, &header_and_rest).unwrap();
    assert_eq!(
        open_as(bob, &forged, "alice"),
        Err(OpenError::Undecryptable)
    );
}

/// `env` again with `ct` as its ciphertext and a dummy signature: what the
/// parser sees (it checks structure; the signature is checked on opening).
fn with_ciphertext(env: &Envelope, ct: &[u8]) -> Vec<u8> {
    let mut b = env.aad()[blindrelay_e2e::AAD_LABEL.len()..].to_vec();
    for w in env.wrapped_keys() {
        b.extend_from_slice(&(w.len() as u16).to_be_bytes());
        b.extend_from_slice(w);
    }
    b.extend_from_slice(env.nonce());
    b.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    b.extend_from_slice(ct);
    b.extend_from_slice(&256u16.to_be_bytes());
    b.extend_from_slice(&[7; 256]);
    b
}

#[test]
fn the_ciphertext_length_bounds_are_exact() {
    let (alice, bob, _) = identities();
    // The longest text there is has the longest ciphertext allowed.
    let longest = Content::Text("x".repeat(MAX_TEXT_LEN));
    let env = seal(
        alice,
        &SealParams {
            msg_id: MessageId([5; 16]),
            timestamp_ms: NOW_MS,
            room: false,
            recipients: &[peer("bob")],
            content: &longest,
            fragment_room: 4000,
        },
    )
    .unwrap()
    .into_envelope();
    let parsed = Envelope::try_from(&env[..]).unwrap();
    assert_eq!(parsed.as_bytes(), &env[..]);
    assert_eq!(parsed.ciphertext().len(), MAX_PLAINTEXT_LEN + TAG_LEN);
    assert_eq!(open_as(bob, &env, "alice").unwrap(), longest);
    let parses = |len: usize| Envelope::try_from(&with_ciphertext(&parsed, &vec![0; len])[..]);
    // A content-type byte and the tag at least; at most the longest.
    assert!(parses(TAG_LEN + 1).is_ok());
    assert!(parses(MAX_PLAINTEXT_LEN + TAG_LEN).is_ok());
    for len in [0, TAG_LEN, MAX_PLAINTEXT_LEN + TAG_LEN + 1] {
        assert!(parses(len).is_err(), "{len}");
    }
}

#[test]
fn seal_refuses_what_no_recipient_could_accept() {
    let (alice, _, _) = identities();
    let short = Content::Text("hi".into());
    let too_long = Content::Text("x".repeat(MAX_TEXT_LEN + 1));
    let sealing = |recipients: &[VerifiedPeer], content: &Content| {
        seal(
            alice,
            &SealParams {
                msg_id: MessageId([6; 16]),
                timestamp_ms: NOW_MS,
                room: false,
                recipients,
                content,
                fragment_room: 4000,
            },
        )
    };
    let mut most = vec![peer("bob"), peer("carol")];
    most.extend_from_slice(many_peers());
    assert_eq!(most.len(), MAX_RECIPIENTS);
    assert!(sealing(&most, &short).is_ok());
    most.push(peer("alice"));
    for r in [&most[..], &[]] {
        assert!(
            matches!(sealing(r, &short), Err(E2eError::RecipientCount(k)) if k == r.len()),
            "{} recipients",
            r.len()
        );
    }
    assert!(matches!(
        sealing(&most[..1], &too_long),
        Err(E2eError::TooLong { len, max }) if len == MAX_TEXT_LEN + 1 && max == MAX_TEXT_LEN
    ));
}
