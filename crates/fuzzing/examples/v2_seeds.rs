//! Writes the seed corpora of the v2 fuzz targets (`fuzz/corpus/ds_*`,
//! `fuzz/corpus/mls_intake`, `fuzz/corpus/relay_check`): valid inputs, so the fuzzers start inside
//! the decoders and the Delivery Service's rules.
//!
//! `cargo run -p blindrelay-fuzzing --example v2_seeds` (from the
//! workspace root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use blindrelay_ds::{Claimed, Delivery, DeviceId, Down, Refusal, RefusalCode, Request, Submission};
use blindrelay_pki::DeviceName;
use blindrelay_wire::UserName;

fn dev(u: &str, d: &str) -> DeviceId {
    DeviceId {
        user: UserName::new(u).unwrap(),
        device: DeviceName::new(d).unwrap(),
    }
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// `[sender][len u16][request]` for the relay's intake target.
fn framed(parts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (who, b) in parts {
        out.push(*who);
        out.extend_from_slice(&u16::try_from(b.len()).unwrap().to_be_bytes());
        out.extend_from_slice(b);
    }
    out
}

fn main() {
    let (a, b) = (dev("a", "x"), dev("b", "x"));
    let upload = Request::Upload {
        one_time: vec![b"kp-1".to_vec(), b"kp-2".to_vec()],
        last_resort: Some(b"kp-last".to_vec()),
    };
    let claim = Request::Claim(UserName::new("b").unwrap());
    let genesis = Request::Submit(Submission::Commit {
        group_info: Some(b"group info".to_vec()),
        group_id: b"g".to_vec(),
        epoch: 0,
        members: BTreeSet::from([a.clone(), b.clone()]),
        commit: b"commit".to_vec(),
        welcome: Some((BTreeSet::from([b.clone()]), b"welcome".to_vec())),
    });
    let message = Request::Submit(Submission::Message {
        group_id: b"g".to_vec(),
        epoch: 1,
        message: b"hello".to_vec(),
    });
    let enc = |r: &Request, n: u32| r.encode(n).unwrap();
    write(
        "ds_request",
        "group",
        &framed(&[
            (1, enc(&upload, 1)),
            (0, enc(&claim, 2)),
            (0, enc(&genesis, 3)),
            (0, enc(&message, 4)),
            (1, enc(&Request::Ack(1), 5)),
            (
                0,
                enc(
                    &Request::Publish {
                        group_id: b"g".to_vec(),
                        epoch: 1,
                        group_info: b"group info".to_vec(),
                    },
                    6,
                ),
            ),
            (1, enc(&Request::GroupInfo(b"g".to_vec()), 7)),
        ]),
    );
    write(
        "ds_request",
        "devices",
        &framed(&[(2, enc(&Request::Devices(UserName::new("a").unwrap()), 9))]),
    );
    let downs = [
        (
            "hello",
            Down::Hello {
                device: a.clone(),
                key_packages: 3,
                budget: 100,
                window_ms: 5000,
            },
        ),
        (
            "claimed",
            Down::Claimed {
                req: 2,
                key_packages: vec![Claimed {
                    device: b.clone(),
                    key_package: b"kp".to_vec(),
                    last_resort: true,
                }],
            },
        ),
        (
            "delivery",
            Down::Delivery {
                seq: 7,
                item: Delivery::Welcome {
                    group_id: b"g".to_vec(),
                    welcome: b"w".to_vec(),
                },
            },
        ),
        (
            "group_info",
            Down::GroupInfo {
                req: 5,
                epoch: 2,
                group_info: b"info".to_vec(),
                tree: b"tree".to_vec(),
            },
        ),
        (
            "refused",
            Down::Refused {
                req: 4,
                why: Refusal::Rules(RefusalCode::StaleEpoch),
                epoch: 3,
            },
        ),
    ];
    for (name, d) in downs {
        write("ds_down", name, &d.encode().unwrap());
    }
    // Chunks: a message of three, then a single one.
    let payload: Vec<u8> = (0..250u8).collect();
    let mut seq = Vec::new();
    for (i, part) in payload.chunks(100).enumerate() {
        seq.extend_from_slice(&[
            1,
            0,
            u8::try_from(i).unwrap(),
            3,
            u8::try_from(part.len()).unwrap(),
        ]);
        seq.extend_from_slice(part);
    }
    write("ds_chunks", "three", &seq);
    write("ds_chunks", "one", &[2, 0, 0, 1, 4, b'a', b'b', b'c', b'd']);
    // The device's intake: an MLS KeyPackage and a PrivateMessage-shaped
    // header (version 1, wire format 2) the fuzzer grows from.
    // The relay's check gets the same MLS bytes (from another
    // organisation: their signatures cannot verify in the fuzzing one).
    for (name, bytes) in blindrelay_fuzzing::v2::mls_seeds().expect("a throwaway organisation") {
        write("mls_intake", name, &bytes);
        write("relay_check", name, &bytes);
    }
}
