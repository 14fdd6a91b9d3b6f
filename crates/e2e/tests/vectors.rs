//! Known-answer vectors: a third-party implementation must reproduce these
//! bytes (PROTOCOL.md, "Test vectors").
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::collections::HashMap;
use std::path::PathBuf;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use blindrelay_e2e::seal::{MessageKey, seal_with};
use blindrelay_e2e::{
    AAD_LABEL, Content, Envelope, Freshness, LocalIdentity, SealParams, TrustRoot, VerifiedPeer,
    open,
};
use blindrelay_wire::{MessageId, UserName};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The `key = value` lines of a vectors file.
fn read_vectors(file: &str) -> HashMap<String, String> {
    std::fs::read_to_string(dir().join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn vectors() -> HashMap<String, String> {
    read_vectors("vectors.txt")
}

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn root() -> TrustRoot {
    TrustRoot::new(blindrelay_pki::store::read_cert_der(&dir().join("ca.pem")).unwrap()).unwrap()
}

fn identity(u: &str, now_s: u64) -> LocalIdentity {
    LocalIdentity::from_pem(
        &n(u),
        &std::fs::read(dir().join(format!("users/{u}.pem"))).unwrap(),
        &std::fs::read(dir().join(format!("users/{u}-key.pem"))).unwrap(),
        &root(),
        now_s,
    )
    .unwrap()
}

#[test]
fn aes_gcm_part_is_reproducible_from_the_inputs() {
    let v = vectors();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &unhex(&v["message_key"])).unwrap());
    let nonce: [u8; 12] = unhex(&v["nonce"]).try_into().unwrap();
    let mut buf = unhex(&v["plaintext"]);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(unhex(&v["aad"])),
        &mut buf,
    )
    .unwrap();
    assert_eq!(buf, unhex(&v["ciphertext"]));
}

#[test]
fn envelope_layout_matches_the_documented_fields() {
    let v = vectors();
    let env = Envelope::try_from(&unhex(&v["envelope"])[..]).unwrap();
    let h = env.header();
    assert_eq!(h.msg_id.0.to_vec(), unhex(&v["msg_id"]));
    assert_eq!(h.timestamp_ms.to_string(), v["timestamp_ms"]);
    assert_eq!(h.sender, n("alice"));
    assert_eq!(h.recipients, vec![n("bob")]);
    assert_eq!(h.fragment_count, 1);
    assert_eq!(env.aad(), unhex(&v["aad"]));
    assert!(env.aad().starts_with(AAD_LABEL));
    assert_eq!(env.nonce().to_vec(), unhex(&v["nonce"]));
    assert_eq!(env.ciphertext(), &unhex(&v["ciphertext"])[..]);
    assert_eq!(env.wrapped_keys()[0], unhex(&v["wrapped_key"]));
    let key: [u8; 32] = unhex(&v["message_key"]).try_into().unwrap();
    assert_eq!(h.key_commit, blindrelay_e2e::seal::key_commitment(&key));
    assert_eq!(h.key_commit.to_vec(), unhex(&v["key_commit"]));
}

#[test]
fn bob_opens_the_vector_envelope() {
    let v = vectors();
    let ts: u64 = v["timestamp_ms"].parse().unwrap();
    let bob = identity("bob", ts / 1000);
    let alice_cert = blindrelay_pki::store::read_cert_der(&dir().join("users/alice.pem")).unwrap();
    let alice = VerifiedPeer::verify(&n("alice"), &alice_cert, &root(), ts / 1000).unwrap();
    let env = Envelope::try_from(&unhex(&v["envelope"])[..]).unwrap();
    let opened = open(
        &env,
        &n("alice"),
        1,
        &alice,
        &bob,
        &Freshness::default(),
        ts + 1000,
    )
    .unwrap();
    assert_eq!(opened.content.encode(), unhex(&v["plaintext"]));
    assert_eq!(
        opened.content,
        Content::Text("Hello Bob! This is a known-answer vector.".into())
    );
}

#[test]
fn sealing_the_same_inputs_gives_the_same_deterministic_bytes() {
    let v = vectors();
    let ts: u64 = v["timestamp_ms"].parse().unwrap();
    let alice = identity("alice", ts / 1000);
    let bob_cert = blindrelay_pki::store::read_cert_der(&dir().join("users/bob.pem")).unwrap();
    let bob = VerifiedPeer::verify(&n("bob"), &bob_cert, &root(), ts / 1000).unwrap();
    let sealed = seal_with(
        &alice,
        &SealParams {
            msg_id: MessageId(unhex(&v["msg_id"]).try_into().unwrap()),
            timestamp_ms: ts,
            room: false,
            recipients: &[bob],
            content: &Content::decode(&unhex(&v["plaintext"])).unwrap(),
            fragment_room: 4000,
        },
        MessageKey::from_bytes_for_test_vectors(unhex(&v["message_key"]).try_into().unwrap()),
        unhex(&v["nonce"]).try_into().unwrap(),
    )
    .unwrap();
    let env = Envelope::try_from(sealed.envelope()).unwrap();
    assert_eq!(env.aad(), unhex(&v["aad"]));
    assert_eq!(env.ciphertext(), &unhex(&v["ciphertext"])[..]);
}

// ---------- more-vectors.txt: frames, a receipt, fragments, a safety number ----------

fn more() -> HashMap<String, String> {
    read_vectors("more-vectors.txt")
}

fn peer_at(u: &str, now_s: u64) -> VerifiedPeer {
    let der = blindrelay_pki::store::read_cert_der(&dir().join(format!("users/{u}.pem"))).unwrap();
    VerifiedPeer::verify(&n(u), &der, &root(), now_s).unwrap()
}

/// A SEND frame's routed message, checked to re-encode to the same bytes.
fn routed(frame_hex: &str) -> blindrelay_wire::Routed {
    use blindrelay_wire::Message;
    let bytes = unhex(frame_hex);
    assert_eq!(bytes.len(), blindrelay_wire::FRAME_LEN);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(&m.encode().unwrap()[..], &bytes[..]);
    match m {
        Message::Send(r) => r,
        other => panic!("not a SEND: {other:?}"),
    }
}

#[test]
fn the_safety_number_vector_is_what_both_sides_compute() {
    let alice = blindrelay_pki::store::read_cert_der(&dir().join("users/alice.pem")).unwrap();
    let bob = blindrelay_pki::store::read_cert_der(&dir().join("users/bob.pem")).unwrap();
    let v = more();
    assert_eq!(
        blindrelay_e2e::safety_number(&alice, &bob),
        v["safety_number"]
    );
    assert_eq!(
        blindrelay_e2e::safety_number(&bob, &alice),
        v["safety_number"]
    );
}

#[test]
fn the_send_frame_vector_routes_and_opens() {
    use blindrelay_wire::{FragmentPos, RoutedFlags, Target};
    let v = more();
    let r = routed(&v["send_frame"]);
    assert_eq!(r.header.msg_id.0.to_vec(), unhex(&v["send_msg_id"]));
    assert_eq!(r.header.fragment, FragmentPos::SINGLE);
    assert_eq!(r.header.flags, RoutedFlags::NONE);
    assert_eq!(r.header.sender, n("alice"));
    assert_eq!(r.header.target, Target::Users(vec![n("bob")]));
    let ts = 1_800_000_000_000;
    let env = Envelope::try_from(&r.payload[..]).unwrap();
    let opened = open(
        &env,
        &n("alice"),
        1,
        &peer_at("alice", ts / 1000),
        &identity("bob", ts / 1000),
        &Freshness::default(),
        ts,
    )
    .unwrap();
    assert_eq!(
        opened.content,
        Content::Text("Hello Bob! This travels in one SEND frame.".into())
    );
}

#[test]
fn the_receipt_vector_confirms_the_send_vector() {
    use blindrelay_wire::RoutedFlags;
    let v = more();
    let r = routed(&v["receipt_frame"]);
    assert_eq!(r.header.flags, RoutedFlags::RECEIPT);
    assert_eq!(r.header.msg_id.0.to_vec(), unhex(&v["receipt_msg_id"]));
    let ts = 1_800_000_001_000;
    let env = Envelope::try_from(&r.payload[..]).unwrap();
    assert_eq!(env.header().recipients, vec![n("alice")]);
    assert!(!env.header().is_room());
    let opened = open(
        &env,
        &n("bob"),
        1,
        &peer_at("bob", ts / 1000),
        &identity("alice", ts / 1000),
        &Freshness::default(),
        ts,
    )
    .unwrap();
    let id = MessageId(unhex(&v["send_msg_id"]).try_into().unwrap());
    assert_eq!(opened.content, Content::Receipt(vec![id]));
    assert_eq!(opened.content.encode(), unhex(&v["receipt_plaintext"]));
}

#[test]
fn the_two_fragment_vector_reassembles_and_opens() {
    use blindrelay_wire::RoutedHeader;
    let v = more();
    let frames = [routed(&v["long_frame_0"]), routed(&v["long_frame_1"])];
    let room: usize = v["long_fragment_room"].parse().unwrap();
    assert_eq!(
        room,
        RoutedHeader::max_payload_len(&n("alice"), &frames[0].header.target)
    );
    let mut envelope = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(
            (f.header.fragment.index(), f.header.fragment.count()),
            (i as u16, 2)
        );
        assert_eq!(f.header.msg_id.0.to_vec(), unhex(&v["long_msg_id"]));
        envelope.extend_from_slice(&f.payload);
    }
    assert_eq!(frames[0].payload.len(), room);
    let ts = 1_800_000_002_000;
    let env = Envelope::try_from(&envelope[..]).unwrap();
    assert_eq!(env.header().fragment_count, 2);
    let opened = open(
        &env,
        &n("alice"),
        2,
        &peer_at("alice", ts / 1000),
        &identity("bob", ts / 1000),
        &Freshness::default(),
        ts,
    )
    .unwrap();
    assert_eq!(opened.content, Content::Text("0123456789".repeat(600)));
}
