//! The fuzz entry points on the stable toolchain: every committed seed, every
//! committed regression input, random bytes, and random mutations of the
//! seeds. cargo-fuzz (`fuzz/`) runs the same functions for hours; this runs
//! them for seconds in every CI build.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::path::PathBuf;

use blindrelay_fuzzing::{TARGETS, keys};
use proptest::prelude::*;

fn corpus_dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target)
}

fn files(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(corpus_dir(kind, target)) else {
        return Vec::new();
    };
    let mut v: Vec<(String, Vec<u8>)> = rd
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    files("corpus", target)
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

fn target(name: &str) -> fn(&[u8]) {
    TARGETS.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn every_target_has_seeds_and_they_pass() {
    for (name, f) in TARGETS {
        let s = files("corpus", name);
        assert!(s.len() >= 2, "fuzz/corpus/{name} has {} seeds", s.len());
        for (file, bytes) in s {
            eprintln!("seed {name}/{file}");
            f(&bytes);
        }
    }
}

#[test]
fn regression_inputs_pass() {
    // Inputs that once crashed a target (fuzz/regressions/<target>/) stay
    // here forever.
    for (name, f) in TARGETS {
        for (file, bytes) in files("regressions", name) {
            eprintln!("regression {name}/{file}");
            f(&bytes);
        }
    }
}

#[test]
fn seeds_reach_the_deep_paths() {
    // The seeds are only useful if they are valid: check that each kind
    // decodes (or opens) successfully, so the fuzzers start inside.
    for bytes in seeds("frame") {
        let mut full = bytes.clone();
        full.resize(blindrelay_wire::FRAME_LEN, 0);
        blindrelay_wire::Message::decode(&full).unwrap();
    }
    let k = keys();
    let alice = blindrelay_wire::UserName::new("alice").unwrap();
    let alice_v = blindrelay_e2e::VerifiedPeer::verify(
        &alice,
        &k.alice_der,
        &k.root,
        blindrelay_fuzzing::NOW_MS / 1000,
    )
    .unwrap();
    for bytes in seeds("envelope") {
        let env = blindrelay_e2e::Envelope::try_from(bytes.as_slice()).unwrap();
        let opened = blindrelay_e2e::open(
            &env,
            &alice,
            env.header().fragment_count,
            &alice_v,
            &k.bob,
            &blindrelay_e2e::Freshness::default(),
            blindrelay_fuzzing::NOW_MS,
        );
        assert!(opened.is_ok(), "seed envelope does not open: {opened:?}");
    }
}

#[test]
fn the_v2_seeds_decode_so_the_fuzzers_start_inside() {
    for bytes in seeds("ds_down") {
        blindrelay_ds::Down::decode(&bytes).unwrap();
    }
    for bytes in seeds("ds_request") {
        let mut rest = bytes.as_slice();
        while let [_, hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            blindrelay_ds::Request::decode(&tail[..len]).unwrap();
            rest = &tail[len..];
        }
    }
}

/// One mutation of a seed.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len().max(1);
        match m {
            Mutation::FlipBit(i, bit) => {
                if !b.is_empty() {
                    b[i % len] ^= 1 << bit;
                }
            }
            Mutation::SetByte(i, v) => {
                if !b.is_empty() {
                    b[i % len] = *v;
                }
            }
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::Insert(i, bytes) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Mutation::Duplicate(i, n) => {
                let at = i % len;
                let end = (at + n).min(b.len());
                if at < end {
                    let copy = b[at..end].to_vec();
                    b.splice(end..end, copy);
                }
            }
        }
    }
    b
}

fn mutated_seeds(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let s = seeds(name);
    (0..s.len(), prop::collection::vec(mutation(), 1..6))
        .prop_map(move |(i, muts)| apply(s[i].clone(), &muts))
}

macro_rules! fuzz_props {
    ($modname:ident, $name:literal, $cases:expr, $max_len:expr) => {
        mod $modname {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases($cases))]
                #[test]
                fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..$max_len)) {
                    target($name)(&data);
                }
                #[test]
                fn mutated_seeds(data in super::mutated_seeds($name)) {
                    target($name)(&data);
                }
            }
        }
    };
}

fuzz_props!(frame, "frame", 1024, 4200);
fuzz_props!(message, "message", 1024, 4200);
fuzz_props!(envelope, "envelope", 512, 2000);
fuzz_props!(envelope_resigned, "envelope_resigned", 96, 2000);
fuzz_props!(certificate, "certificate", 512, 1500);
fuzz_props!(reassembly, "reassembly", 512, 3000);
fuzz_props!(ds_request, "ds_request", 512, 2000);
fuzz_props!(ds_down, "ds_down", 512, 2000);
fuzz_props!(ds_chunks, "ds_chunks", 512, 2000);
fuzz_props!(mls_intake, "mls_intake", 256, 2500);
fuzz_props!(relay_check, "relay_check", 128, 2500);
