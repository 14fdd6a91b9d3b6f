//! Sealing and opening one message, for one and ten recipients, against the
//! RSA-2048 bound (`openssl speed rsa2048` on the same machine): sealing
//! needs one private-key operation (the RSA-PSS signature) and one public
//! one per recipient (RSA-OAEP wrap); opening needs one private-key
//! operation (the RSA-OAEP unwrap) and one public one (the signature check).
//!
//! `cargo bench -p blindrelay-e2e --bench envelope`
#![allow(
    missing_docs, // criterion_group! generates an undocumented function
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use blindrelay_e2e::{
    Content, Envelope, Freshness, LocalIdentity, SealParams, TrustRoot, VerifiedPeer, open, seal,
};
use blindrelay_pki::{PkiDir, UserCertOptions};
use blindrelay_wire::{MessageId, UserName};
use criterion::{Criterion, criterion_group, criterion_main};

fn n(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn now_ms() -> u64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
}

struct World {
    _dir: tempfile::TempDir,
    alice: LocalIdentity,
    alice_peer: VerifiedPeer,
    others: Vec<LocalIdentity>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiDir::new(dir.path());
    pki.init("bench CA", false).unwrap();
    let root =
        TrustRoot::new(blindrelay_pki::store::read_cert_der(&pki.ca_cert_path()).unwrap()).unwrap();
    let now = now_ms() / 1000;
    let load = |u: &str| {
        pki.issue(&n(u), &UserCertOptions::valid_for_days(1), false)
            .unwrap();
        LocalIdentity::from_pem(
            &n(u),
            &std::fs::read(pki.user_cert_path(&n(u))).unwrap(),
            &std::fs::read(pki.user_key_path(&n(u))).unwrap(),
            &root,
            now,
        )
        .unwrap()
    };
    let alice = load("alice");
    let others: Vec<LocalIdentity> = (0..10).map(|i| load(&format!("u{i}"))).collect();
    let alice_peer = alice.cert().clone();
    World {
        _dir: dir,
        alice,
        alice_peer,
        others,
    }
}

fn sealed(w: &World, recipients: usize, text: &Content) -> Vec<u8> {
    let peers: Vec<VerifiedPeer> = w.others[..recipients]
        .iter()
        .map(|o| o.cert().clone())
        .collect();
    seal(
        &w.alice,
        &SealParams {
            msg_id: MessageId(rand_id()),
            timestamp_ms: now_ms(),
            room: recipients > 1,
            recipients: &peers,
            content: text,
            fragment_room: 4000,
        },
    )
    .unwrap()
    .into_envelope()
}

fn rand_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    blindrelay_e2e::seal::fill_random(&mut id).unwrap();
    id
}

fn bench(c: &mut Criterion) {
    let w = world();
    let text = Content::Text("x".repeat(200));
    for recipients in [1usize, 10] {
        c.bench_function(&format!("seal/{recipients}-recipient"), |b| {
            b.iter(|| sealed(&w, recipients, &text))
        });
        let env = sealed(&w, recipients, &text);
        c.bench_function(&format!("open/{recipients}-recipient"), |b| {
            b.iter(|| {
                let parsed = Envelope::try_from(env.as_slice()).unwrap();
                open(
                    &parsed,
                    &n("alice"),
                    parsed.header().fragment_count,
                    &w.alice_peer,
                    &w.others[0],
                    &Freshness::default(),
                    now_ms(),
                )
                .unwrap()
            })
        });
        c.bench_function(&format!("seal+open/{recipients}-recipient"), |b| {
            b.iter(|| {
                let env = sealed(&w, recipients, &text);
                let parsed = Envelope::try_from(env.as_slice()).unwrap();
                open(
                    &parsed,
                    &n("alice"),
                    parsed.header().fragment_count,
                    &w.alice_peer,
                    &w.others[0],
                    &Freshness::default(),
                    now_ms(),
                )
                .unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
