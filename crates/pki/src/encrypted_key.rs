//! Private keys encrypted at rest with a passphrase: PKCS#8
//! `EncryptedPrivateKeyInfo` with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC),
//! PEM label `ENCRYPTED PRIVATE KEY`, the format `openssl pkcs8 -topk8 -v2
//! aes-256-cbc -v2prf hmacWithSHA256` writes and `openssl pkey` reads.
//!
//! The ASN.1 structures come from the `pkcs8`/`pkcs5` crates without their
//! cryptography; PBKDF2 and AES come from aws-lc-rs, the binary's one
//! cryptographic library. Only this one scheme is read back: any other KDF,
//! PRF or cipher is refused, and so is an iteration count below
//! [`MIN_ITERATIONS`] (too weak) or above [`MAX_ITERATIONS`] (a file must
//! not make the client compute for minutes). A wrong passphrase and a
//! corrupted file give the same error.

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2::{PBKDF2_HMAC_SHA256, derive};
use pkcs8::der::{Decode, EncodePem};
use pkcs8::pkcs5::pbes2::{EncryptionScheme, Kdf, Parameters, Pbkdf2Prf};
use pkcs8::{EncryptedPrivateKeyInfo, LineEnding};
use zeroize::Zeroizing;

/// PBKDF2 iterations for a key encrypted here (OWASP's figure for
/// PBKDF2-HMAC-SHA256).
pub const ITERATIONS: u32 = 600_000;
/// The fewest iterations a file may ask for.
pub const MIN_ITERATIONS: u32 = 100_000;
/// The most iterations a file may ask for.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Salt length written.
const SALT_LEN: usize = 16;
/// Salt lengths accepted.
const SALT_RANGE: std::ops::RangeInclusive<usize> = 8..=64;
/// The PEM marker of an encrypted key.
const ENCRYPTED_MARKER: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
/// Largest encrypted key file read (an RSA-4096 key is about 3.4 KiB).
const MAX_PEM_LEN: usize = 16 * 1024;

/// Why an encrypted key could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The passphrase is empty.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// Wrong passphrase, or the file was altered (indistinguishable).
    #[error("the key cannot be decrypted: wrong passphrase, or the file is damaged")]
    Undecryptable,
    /// Not an `ENCRYPTED PRIVATE KEY` of the one scheme read back.
    #[error("unsupported encrypted key: {0}")]
    Unsupported(&'static str),
    /// The cryptographic library failed (RNG).
    #[error("crypto failure")]
    Crypto,
}

/// True if `pem` holds an encrypted private key.
pub fn is_encrypted(pem: &[u8]) -> bool {
    pem.windows(ENCRYPTED_MARKER.len())
        .any(|w| w == ENCRYPTED_MARKER)
}

fn kek(
    passphrase: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let n = NonZeroU32::new(iterations).ok_or(KeyFileError::Unsupported("iteration count"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    derive(PBKDF2_HMAC_SHA256, n, salt, passphrase, out.as_mut_slice());
    Ok(out)
}

/// Encrypts a PKCS#8 private key (DER) under `passphrase`; returns PEM.
pub fn encrypt(pkcs8_der: &[u8], passphrase: &[u8]) -> Result<Zeroizing<String>, KeyFileError> {
    if passphrase.is_empty() {
        return Err(KeyFileError::EmptyPassphrase);
    }
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyFileError::Crypto)?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| KeyFileError::Crypto)?;
    let key = kek(passphrase, &salt, ITERATIONS)?;
    let cipher = UnboundCipherKey::new(&AES_256, key.as_slice())
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| KeyFileError::Crypto)?;
    let mut data = pkcs8_der.to_vec();
    cipher
        .less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| KeyFileError::Crypto)?;
    let params = Parameters::pbkdf2_sha256_aes256cbc(ITERATIONS, &salt, &iv)
        .map_err(|_| KeyFileError::Crypto)?;
    let info = EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: &data,
    };
    info.to_pem(LineEnding::LF)
        .map(Zeroizing::new)
        .map_err(|_| KeyFileError::Crypto)
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` PEM with `passphrase`; returns the
/// PKCS#8 DER.
pub fn decrypt(pem: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(KeyFileError::Unsupported("file too large"));
    }
    let text = std::str::from_utf8(pem).map_err(|_| KeyFileError::Unsupported("not PEM"))?;
    let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
        .map_err(|_| KeyFileError::Unsupported("not PEM"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(KeyFileError::Unsupported("not an ENCRYPTED PRIVATE KEY"));
    }
    let info = EncryptedPrivateKeyInfo::from_der(&der)
        .map_err(|_| KeyFileError::Unsupported("not an EncryptedPrivateKeyInfo"))?;
    let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        return Err(KeyFileError::Unsupported("only PBES2"));
    };
    let Kdf::Pbkdf2(kdf) = &params.kdf else {
        return Err(KeyFileError::Unsupported("only PBKDF2"));
    };
    if kdf.prf != Pbkdf2Prf::HmacWithSha256 {
        return Err(KeyFileError::Unsupported("only PBKDF2 with HMAC-SHA256"));
    }
    if kdf.key_length.is_some_and(|l| l != 32) {
        return Err(KeyFileError::Unsupported("key length"));
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&kdf.iteration_count) {
        return Err(KeyFileError::Unsupported(
            "iteration count outside 100000..=10000000",
        ));
    }
    if !SALT_RANGE.contains(&kdf.salt.len()) {
        return Err(KeyFileError::Unsupported("salt length"));
    }
    let EncryptionScheme::Aes256Cbc { iv } = params.encryption else {
        return Err(KeyFileError::Unsupported("only AES-256-CBC"));
    };
    if passphrase.is_empty() {
        return Err(KeyFileError::EmptyPassphrase);
    }
    let key = kek(passphrase, kdf.salt, kdf.iteration_count)?;
    let cipher = UnboundCipherKey::new(&AES_256, key.as_slice())
        .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
        .map_err(|_| KeyFileError::Crypto)?;
    let mut data = Zeroizing::new(info.encrypted_data.to_vec());
    let plain = cipher
        .decrypt(
            data.as_mut_slice(),
            DecryptionContext::Iv128(FixedLength::from(*iv)),
        )
        .map_err(|_| KeyFileError::Undecryptable)?;
    let out = Zeroizing::new(plain.to_vec());
    // Wrong passphrases mostly fail the padding; the rest fail here.
    if pkcs8::PrivateKeyInfo::from_der(&out).is_err() {
        return Err(KeyFileError::Undecryptable);
    }
    Ok(out)
}

/// An unencrypted PKCS#8 PEM private key from the DER `decrypt` returned.
pub fn to_pem(pkcs8_der: &[u8]) -> Result<Zeroizing<String>, KeyFileError> {
    pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, pkcs8_der)
        .map(Zeroizing::new)
        .map_err(|_| KeyFileError::Crypto)
}
