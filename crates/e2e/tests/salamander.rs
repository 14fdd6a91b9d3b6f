//! An "invisible salamander": one AES-GCM ciphertext that authenticates
//! under two keys, and the key commitment that refuses it.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

mod common;

use blindrelay_e2e::{Content, Envelope, OpenError, SealParams};
use blindrelay_wire::MessageId;
use common::*;

/// Multiplication in GF(2^128) as GCM defines it (NIST SP 800-38D,
/// algorithm 1), on blocks read big-endian. Test code: it builds an attack.
fn gf_mul(x: u128, y: u128) -> u128 {
    const R: u128 = 0xe1 << 120;
    let (mut z, mut v) = (0u128, y);
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 0 { v >> 1 } else { (v >> 1) ^ R };
    }
    z
}

fn gf_pow(mut x: u128, mut e: u128) -> u128 {
    let mut r = 1u128 << 127; // the field's one, in GCM's bit order
    while e > 0 {
        if e & 1 == 1 {
            r = gf_mul(r, x);
        }
        x = gf_mul(x, x);
        e >>= 1;
    }
    r
}

fn gf_inv(x: u128) -> u128 {
    gf_pow(x, u128::MAX - 1)
}

fn block(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a[..b.len()].copy_from_slice(b);
    u128::from_be_bytes(a)
}

/// AES-256 of one block.
fn aes(key: &[u8; 32], input: u128) -> u128 {
    use aws_lc_rs::cipher::{AES_256, EncryptingKey, UnboundCipherKey};
    let k = EncryptingKey::ecb(UnboundCipherKey::new(&AES_256, key).unwrap()).unwrap();
    let mut b = input.to_be_bytes();
    k.encrypt(&mut b).unwrap();
    u128::from_be_bytes(b)
}

fn ghash(h: u128, aad: &[u8], ct: &[u8]) -> u128 {
    let mut y = 0u128;
    for c in aad.chunks(16).chain(ct.chunks(16)) {
        y = gf_mul(y ^ block(c), h);
    }
    let lens = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    gf_mul(y ^ lens, h)
}

/// The GCM keystream for `len` bytes under `key` and the 96-bit `nonce`.
fn keystream(key: &[u8; 32], nonce: &[u8; 12], len: usize) -> Vec<u8> {
    (0..len.div_ceil(16) as u32)
        .flat_map(|i| {
            let mut ctr = [0u8; 16];
            ctr[..12].copy_from_slice(nonce);
            ctr[12..].copy_from_slice(&(i + 2).to_be_bytes());
            aes(key, u128::from_be_bytes(ctr)).to_be_bytes()
        })
        .take(len)
        .collect()
}

fn j0(nonce: &[u8; 12]) -> u128 {
    let mut b = [0u8; 16];
    b[..12].copy_from_slice(nonce);
    b[15] = 1;
    u128::from_be_bytes(b)
}

/// A ciphertext and tag that authenticate under both `k1` and `k2`: the
/// plaintext under `k1` is `p1` except its block `free`, which is solved
/// for so that the two tags agree.
fn salamander(
    k1: &[u8; 32],
    k2: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    p1: &[u8],
    free: usize,
) -> Vec<u8> {
    let ks1 = keystream(k1, nonce, p1.len());
    let mut ct: Vec<u8> = p1.iter().zip(&ks1).map(|(p, k)| p ^ k).collect();
    ct[free * 16..free * 16 + 16].fill(0);
    let (h1, h2) = (aes(k1, 0), aes(k2, 0));
    let blocks = p1.len().div_ceil(16) as u128;
    let e = blocks + 1 - free as u128;
    let x = gf_mul(
        ghash(h1, aad, &ct) ^ ghash(h2, aad, &ct) ^ aes(k1, j0(nonce)) ^ aes(k2, j0(nonce)),
        gf_inv(gf_pow(h1, e) ^ gf_pow(h2, e)),
    );
    ct[free * 16..free * 16 + 16].copy_from_slice(&x.to_be_bytes());
    let tag = ghash(h1, aad, &ct) ^ aes(k1, j0(nonce));
    ct.extend_from_slice(&tag.to_be_bytes());
    ct
}

fn oaep_wrap(cert_der: &[u8], key: &[u8; 32]) -> Vec<u8> {
    use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    let pk =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(cert.public_key().raw).unwrap())
            .unwrap();
    let mut out = vec![0u8; pk.ciphertext_size()];
    let n = pk
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            key,
            &mut out,
            Some(blindrelay_e2e::WRAP_LABEL),
        )
        .unwrap()
        .len();
    out.truncate(n);
    out
}

#[test]
fn the_key_commitment_is_what_refuses_one_ciphertext_under_two_keys() {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use blindrelay_e2e::seal::{MessageKey, seal_with};
    let (alice, bob, carol) = identities();
    let (k1, k2, nonce) = ([0x11u8; 32], [0x22u8; 32], [0x33u8; 12]);
    // A receipt confirming three ids: 51 bytes of plaintext, the ids taking
    // bytes 3.. so that block 1 (bytes 16..32) may be anything.
    let ids = vec![MessageId([4; 16]), MessageId([5; 16]), MessageId([6; 16])];
    let content = Content::Receipt(ids);
    let p1 = content.encode();
    assert_eq!(p1.len(), 51);
    // alice seals it honestly for bob and carol under k1, to get the header
    // and the layout...
    let honest = seal_with(
        alice,
        &SealParams {
            msg_id: MessageId([9; 16]),
            timestamp_ms: NOW_MS,
            room: false,
            recipients: &[peer("bob"), peer("carol")],
            content: &content,
            fragment_room: 4000,
        },
        MessageKey::from_bytes_for_test_vectors(k1),
        nonce,
    )
    .unwrap()
    .into_envelope();
    let parsed = Envelope::try_from(&honest[..]).unwrap();
    // ...then wraps k2 for carol instead and puts in a ciphertext that
    // authenticates under both keys, and signs the result: a sender who
    // wants bob and carol to read different things.
    let ct = salamander(&k1, &k2, &nonce, &parsed.aad(), &p1, 1);
    let mut forged = parsed.aad()[blindrelay_e2e::AAD_LABEL.len()..].to_vec();
    let bobs = &parsed.wrapped_keys()[0];
    forged.extend_from_slice(&(bobs.len() as u16).to_be_bytes());
    forged.extend_from_slice(bobs);
    let carols = oaep_wrap(&cert(&fx().pki, "carol"), &k2);
    forged.extend_from_slice(&(carols.len() as u16).to_be_bytes());
    forged.extend_from_slice(&carols);
    forged.extend_from_slice(&nonce);
    forged.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    forged.extend_from_slice(&ct);
    let forged = blindrelay_e2e::seal::resign_for_tests(alice, &forged).unwrap();
    // The ciphertext does open under carol's key, to other bytes:
    let mut under_k2 = ct.clone();
    let opened = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k2).unwrap())
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(parsed.aad()),
            &mut under_k2,
        )
        .unwrap()
        .to_vec();
    assert_ne!(opened, p1);
    // bob, whose key is the committed one, reads a receipt (the free block
    // changed some id bytes); carol's key is not the one the header commits
    // to, and that alone refuses it.
    assert!(matches!(
        open_as(bob, &forged, "alice"),
        Ok(Content::Receipt(ids)) if ids.len() == 3
    ));
    assert_eq!(
        open_as(carol, &forged, "alice"),
        Err(OpenError::Undecryptable)
    );
}
