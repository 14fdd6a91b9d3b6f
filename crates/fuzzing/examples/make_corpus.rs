//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`.
//!
//! `cargo run -p blindrelay-fuzzing --example make_corpus -- fuzz/corpus`
//!
//! The seeds are valid inputs of every kind, so that the fuzzers (and the
//! property tests, which mutate them) start deep inside each decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use blindrelay_e2e::{Content, SealParams, VerifiedPeer, seal};
use blindrelay_fuzzing::{NOW_MS, keys};
use blindrelay_pki::{CertificateAuthority, UserCertOptions};
use blindrelay_wire::{
    FragmentPos, GoodbyeCode, Message, MessageId, PeerEvent, Routed, RoutedFlags, RoutedHeader,
    StatusKind, Target, UserName, Welcome,
};

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

fn messages(cert: &[u8]) -> Vec<(&'static str, Message)> {
    let routed = |flags, target, payload: &[u8], pos: FragmentPos| Routed {
        header: RoutedHeader {
            msg_id: MessageId([7; 16]),
            fragment: pos,
            flags,
            sender: n("alice"),
            target,
        },
        payload: payload.to_vec(),
    };
    let one = FragmentPos::new(0, 1).unwrap();
    vec![
        ("ping", Message::Ping(42)),
        ("pong", Message::Pong(42)),
        (
            "send",
            Message::Send(routed(
                RoutedFlags::NONE,
                Target::Users(vec![n("bob")]),
                b"opaque",
                one,
            )),
        ),
        (
            "send-many",
            Message::Send(routed(
                RoutedFlags::NONE,
                Target::Users(vec![n("bob"), n("carol"), n("dave.x_1-2")]),
                &[0xab; 300],
                FragmentPos::new(2, 5).unwrap(),
            )),
        ),
        (
            "send-everyone",
            Message::Send(routed(RoutedFlags::NONE, Target::Everyone, b"room", one)),
        ),
        (
            "deliver-receipt",
            Message::Deliver(routed(
                RoutedFlags::RECEIPT.with(RoutedFlags::STORED),
                Target::Users(vec![n("bob")]),
                b"r",
                one,
            )),
        ),
        (
            "ack",
            Message::Ack(vec![
                (n("alice"), MessageId([1; 16])),
                (n("bob"), MessageId([2; 16])),
            ]),
        ),
        (
            "status-accepted",
            Message::Status {
                msg_id: MessageId([3; 16]),
                kind: StatusKind::Accepted { delivered: 2 },
            },
        ),
        (
            "status-unknown",
            Message::Status {
                msg_id: MessageId([3; 16]),
                kind: StatusKind::Unknown(n("zed")),
            },
        ),
        (
            "status-stored",
            Message::Status {
                msg_id: MessageId([3; 16]),
                kind: StatusKind::Stored { recipients: 1 },
            },
        ),
        (
            "status-quota",
            Message::Status {
                msg_id: MessageId([3; 16]),
                kind: StatusKind::QuotaExceeded(n("bob")),
            },
        ),
        (
            "statuses",
            Message::Statuses(vec![
                (MessageId([3; 16]), StatusKind::Accepted { delivered: 1 }),
                (MessageId([3; 16]), StatusKind::Stored { recipients: 1 }),
                (MessageId([4; 16]), StatusKind::QuotaExceeded(n("bob"))),
            ]),
        ),
        (
            "welcome",
            Message::Welcome(Welcome {
                identity: n("alice"),
                rate_max: 10,
                rate_window_ms: 5000,
                keepalive_ms: 30_000,
                max_fragments: 64,
                store_ttl_s: 604_800,
            }),
        ),
        (
            "peer",
            Message::Peer {
                event: PeerEvent::Joined,
                name: n("alice"),
                cert_der: cert.to_vec(),
            },
        ),
        ("directory-end", Message::DirectoryEnd { count: 3 }),
        ("peer-left", Message::PeerLeft { name: n("bob") }),
        (
            "crl",
            Message::Crl {
                index: 0,
                count: 1,
                chunk: vec![0x30, 0x82, 0x01, 0x00],
            },
        ),
        (
            "goodbye",
            Message::Goodbye {
                code: GoodbyeCode::RateLimited,
                reason: "rate limit: 11 messages in 5000 ms".into(),
            },
        ),
    ]
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let k = keys();

    for (name, m) in messages(&k.alice_der) {
        let f = m.to_frame().unwrap();
        let mut typed = vec![f.kind() as u8];
        typed.extend_from_slice(f.body());
        write(&dir, "message", name, &typed);
        // Frames are stored without their zero padding; the target pads.
        let full = f.encode();
        let end = full.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write(&dir, "frame", name, &full[..end]);
    }

    let alice_v = VerifiedPeer::verify(&n("alice"), &k.alice_der, &k.root, NOW_MS / 1000).unwrap();
    let bob_v = k.bob.cert().clone();
    let cases: Vec<(&str, bool, Vec<VerifiedPeer>, Content)> = vec![
        (
            "text",
            false,
            vec![bob_v.clone()],
            Content::Text("hello bob".into()),
        ),
        (
            "room",
            true,
            vec![alice_v.clone(), bob_v.clone()],
            Content::Text("hello room".into()),
        ),
        (
            "receipt",
            false,
            vec![bob_v.clone()],
            Content::Receipt(vec![MessageId([9; 16]), MessageId([8; 16])]),
        ),
        ("long", false, vec![bob_v], Content::Text("x".repeat(9000))),
    ];
    for (i, (name, room, recipients, content)) in cases.into_iter().enumerate() {
        let env = seal(
            &k.alice,
            &SealParams {
                msg_id: MessageId([i as u8 + 1; 16]),
                timestamp_ms: NOW_MS,
                room,
                recipients: &recipients,
                content: &content,
                fragment_room: 4000,
            },
        )
        .unwrap()
        .into_envelope();
        write(&dir, "envelope", name, &env);
        // The signed part: the envelope without its signature length and
        // signature (RSA-2048: 2 + 256 bytes).
        write(&dir, "envelope_resigned", name, &env[..env.len() - 258]);
    }

    write(&dir, "certificate", "alice", &k.alice_der);
    write(&dir, "certificate", "bob", k.bob.cert().cert_der());
    write(&dir, "certificate", "ca", k.root.ca_der());
    let ca = CertificateAuthority::create("fuzz seed CA").unwrap();
    let server = ca.issue_server(&["localhost".into()]).unwrap();
    write(&dir, "certificate", "server", &server.cert_der);
    let user = ca
        .issue_user(&n("carol"), &UserCertOptions::valid_for_days(30))
        .unwrap();
    write(&dir, "certificate", "carol", &user.cert_der);
    let crl = ca.sign_crl(&[vec![1, 2, 3], vec![0x7f; 16]], 7).unwrap();
    write(&dir, "certificate", "crl", &crl_der(&crl));

    // Reassembly: records of [op, id, lane/pos, count, len, payload...].
    let mut seq = Vec::new();
    for i in 0..3u8 {
        seq.extend_from_slice(&[3, 1, i << 1, 3, 4]);
        seq.extend_from_slice(b"abcd");
    }
    write(&dir, "reassembly", "complete", &seq);
    let mut flood = Vec::new();
    for id in 0..12u8 {
        flood.extend_from_slice(&[id % 3, id, 0, 7, 200]);
        flood.extend_from_slice(&[id; 200]);
    }
    write(&dir, "reassembly", "flood", &flood);
    println!("wrote seeds into {}", dir.display());
}

fn crl_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}
