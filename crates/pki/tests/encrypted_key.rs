//! Keys encrypted at rest: what we write, OpenSSL reads, and the reverse;
//! a wrong passphrase and a damaged file look the same; weak or exotic
//! parameters are refused.
#![cfg(test)] // clippy.toml: test code may unwrap, expect, panic and index

use std::process::Command;

use blindrelay_pki::encrypted_key::{KeyFileError, decrypt, encrypt, is_encrypted, to_pem};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

fn p256_pkcs8() -> Vec<u8> {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    kp.serialize_der()
}

fn has_openssl() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

#[test]
fn a_key_encrypted_here_decrypts_with_its_passphrase_only() {
    let der = p256_pkcs8();
    let pem = encrypt(&der, b"correct horse").unwrap();
    assert!(is_encrypted(pem.as_bytes()));
    assert!(!pem.contains("BEGIN PRIVATE KEY"));
    assert_eq!(&*decrypt(pem.as_bytes(), b"correct horse").unwrap(), &der);
    assert_eq!(
        decrypt(pem.as_bytes(), b"correct horsf").unwrap_err(),
        KeyFileError::Undecryptable
    );
    assert_eq!(
        decrypt(pem.as_bytes(), b"").unwrap_err(),
        KeyFileError::EmptyPassphrase
    );
    assert_eq!(
        encrypt(&der, b"").unwrap_err(),
        KeyFileError::EmptyPassphrase
    );
    // Two encryptions of one key differ (salt, IV).
    assert_ne!(*encrypt(&der, b"correct horse").unwrap(), *pem);
    // The plain PEM it turns back into is a PKCS#8 key.
    let plain = to_pem(&der).unwrap();
    assert_eq!(
        PrivatePkcs8KeyDer::from_pem_slice(plain.as_bytes())
            .unwrap()
            .secret_pkcs8_der(),
        &der[..]
    );
}

#[test]
fn a_damaged_file_fails_like_a_wrong_passphrase() {
    let der = p256_pkcs8();
    let pem = encrypt(&der, b"pw").unwrap();
    // Flip one base64 character near the end of the ciphertext.
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    let last = lines.len() - 2;
    let mut chars: Vec<char> = lines[last].chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    lines[last] = chars.into_iter().collect();
    let damaged = lines.join("\n");
    assert!(matches!(
        decrypt(damaged.as_bytes(), b"pw"),
        Err(KeyFileError::Undecryptable | KeyFileError::Unsupported(_))
    ));
    assert!(matches!(
        decrypt(
            b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
            b"pw"
        ),
        Err(KeyFileError::Unsupported(_))
    ));
    assert!(matches!(
        decrypt(&vec![b'A'; 20_000], b"pw"),
        Err(KeyFileError::Unsupported(_))
    ));
}

#[test]
fn openssl_reads_what_we_write_and_we_read_what_it_writes() {
    if !has_openssl() {
        if std::env::var_os("BLINDRELAY_CI").is_some() {
            panic!("openssl is missing");
        }
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let der = p256_pkcs8();
    // Ours, read by OpenSSL.
    let ours = d.path().join("ours.pem");
    std::fs::write(&ours, encrypt(&der, b"s3cret phrase").unwrap().as_bytes()).unwrap();
    let out = Command::new("openssl")
        .args([
            "pkey",
            "-outform",
            "DER",
            "-passin",
            "pass:s3cret phrase",
            "-in",
        ])
        .arg(&ours)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // openssl pkey writes the key back as PKCS#8: the same key.
    let plain_ours = d.path().join("plain.pem");
    std::fs::write(&plain_ours, to_pem(&der).unwrap().as_bytes()).unwrap();
    let reference = Command::new("openssl")
        .args(["pkey", "-outform", "DER", "-in"])
        .arg(&plain_ours)
        .output()
        .unwrap();
    assert_eq!(out.stdout, reference.stdout);
    // OpenSSL's, with the parameters we accept, read by us; with a weak
    // iteration count (OpenSSL's default, 2048) or another cipher, refused.
    let openssl_encrypts = |cipher: &str, iter: &str, pass: &str| {
        let out = d.path().join(format!("{cipher}-{iter}.pem"));
        let made = Command::new("openssl")
            .args([
                "pkcs8",
                "-topk8",
                "-v2",
                cipher,
                "-v2prf",
                "hmacWithSHA256",
                "-iter",
                iter,
            ])
            .arg("-passout")
            .arg(format!("pass:{pass}"))
            .arg("-in")
            .arg(&plain_ours)
            .arg("-out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        std::fs::read(&out).unwrap()
    };
    let theirs = openssl_encrypts("aes-256-cbc", "200000", "their phrase");
    assert_eq!(&*decrypt(&theirs, b"their phrase").unwrap(), &der);
    let weak = openssl_encrypts("aes-256-cbc", "2048", "pw");
    assert!(matches!(
        decrypt(&weak, b"pw"),
        Err(KeyFileError::Unsupported(_))
    ));
    let aes128 = openssl_encrypts("aes-128-cbc", "200000", "pw");
    assert_eq!(
        decrypt(&aes128, b"pw").unwrap_err(),
        KeyFileError::Unsupported("only AES-256-CBC")
    );
}
