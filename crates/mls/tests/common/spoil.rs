//! A crypto provider for a member with a modified client: aws-lc's, except
//! that, once told to, it spoils every HPKE ciphertext it seals (one bit of
//! each). A commit made with it is signed as usual, passes every check the
//! relay can make, and cannot be applied by anyone else: the path secrets
//! encrypted to them do not decrypt.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, CryptoProvider, HpkeCiphertext, HpkePsk, HpkePublicKey,
    HpkeSecretKey, SignaturePublicKey, SignatureSecretKey,
};
use mls_rs_crypto_awslc::{AwsLcCipherSuite, AwsLcCryptoProvider};
use zeroize::Zeroizing;

/// aws-lc, with a switch that spoils sealed HPKE ciphertexts.
#[derive(Clone, Default)]
pub struct Spoiling {
    inner: AwsLcCryptoProvider,
    /// Set: every HPKE ciphertext sealed from now on is spoilt.
    pub on: Arc<AtomicBool>,
}

/// [`Spoiling`]'s ciphersuite.
#[derive(Clone)]
pub struct SpoilingSuite {
    inner: AwsLcCipherSuite,
    on: Arc<AtomicBool>,
}

impl CryptoProvider for Spoiling {
    type CipherSuiteProvider = SpoilingSuite;

    fn supported_cipher_suites(&self) -> Vec<CipherSuite> {
        self.inner.supported_cipher_suites()
    }

    fn cipher_suite_provider(&self, cs: CipherSuite) -> Option<SpoilingSuite> {
        Some(SpoilingSuite {
            inner: self.inner.cipher_suite_provider(cs)?,
            on: self.on.clone(),
        })
    }
}

type E = <AwsLcCipherSuite as CipherSuiteProvider>::Error;

impl CipherSuiteProvider for SpoilingSuite {
    type Error = E;
    type HpkeContextS = <AwsLcCipherSuite as CipherSuiteProvider>::HpkeContextS;
    type HpkeContextR = <AwsLcCipherSuite as CipherSuiteProvider>::HpkeContextR;

    fn cipher_suite(&self) -> CipherSuite {
        self.inner.cipher_suite()
    }
    fn hash(&self, data: &[u8]) -> Result<Vec<u8>, E> {
        self.inner.hash(data)
    }
    fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, E> {
        self.inner.mac(key, data)
    }
    fn aead_seal(&self, k: &[u8], d: &[u8], aad: Option<&[u8]>, n: &[u8]) -> Result<Vec<u8>, E> {
        self.inner.aead_seal(k, d, aad, n)
    }
    fn aead_open(
        &self,
        k: &[u8],
        c: &[u8],
        aad: Option<&[u8]>,
        n: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, E> {
        self.inner.aead_open(k, c, aad, n)
    }
    fn aead_key_size(&self) -> usize {
        self.inner.aead_key_size()
    }
    fn aead_nonce_size(&self) -> usize {
        self.inner.aead_nonce_size()
    }
    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>, E> {
        self.inner.kdf_extract(salt, ikm)
    }
    fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, E> {
        self.inner.kdf_expand(prk, info, len)
    }
    fn kdf_extract_size(&self) -> usize {
        self.inner.kdf_extract_size()
    }
    fn hpke_seal(
        &self,
        remote: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
    ) -> Result<HpkeCiphertext, E> {
        let mut c = self.inner.hpke_seal(remote, info, aad, pt)?;
        if self.on.load(Ordering::Relaxed)
            && let Some(b) = c.ciphertext.first_mut()
        {
            *b ^= 1;
        }
        Ok(c)
    }
    fn hpke_seal_psk(
        &self,
        remote: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
        psk: HpkePsk<'_>,
    ) -> Result<HpkeCiphertext, E> {
        self.inner.hpke_seal_psk(remote, info, aad, pt, psk)
    }
    fn hpke_open(
        &self,
        c: &HpkeCiphertext,
        sk: &HpkeSecretKey,
        pk: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, E> {
        self.inner.hpke_open(c, sk, pk, info, aad)
    }
    fn hpke_open_psk(
        &self,
        c: &HpkeCiphertext,
        sk: &HpkeSecretKey,
        pk: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        psk: HpkePsk<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, E> {
        self.inner.hpke_open_psk(c, sk, pk, info, aad, psk)
    }
    fn hpke_setup_s(
        &self,
        remote: &HpkePublicKey,
        info: &[u8],
    ) -> Result<(Vec<u8>, Self::HpkeContextS), E> {
        self.inner.hpke_setup_s(remote, info)
    }
    fn hpke_setup_r(
        &self,
        kem_output: &[u8],
        sk: &HpkeSecretKey,
        pk: &HpkePublicKey,
        info: &[u8],
    ) -> Result<Self::HpkeContextR, E> {
        self.inner.hpke_setup_r(kem_output, sk, pk, info)
    }
    fn kem_derive(&self, ikm: &[u8]) -> Result<(HpkeSecretKey, HpkePublicKey), E> {
        self.inner.kem_derive(ikm)
    }
    fn kem_generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), E> {
        self.inner.kem_generate()
    }
    fn kem_public_key_validate(&self, key: &HpkePublicKey) -> Result<(), E> {
        self.inner.kem_public_key_validate(key)
    }
    fn random_bytes(&self, out: &mut [u8]) -> Result<(), E> {
        self.inner.random_bytes(out)
    }
    fn signature_key_generate(&self) -> Result<(SignatureSecretKey, SignaturePublicKey), E> {
        self.inner.signature_key_generate()
    }
    fn signature_key_derive_public(
        &self,
        sk: &SignatureSecretKey,
    ) -> Result<SignaturePublicKey, E> {
        self.inner.signature_key_derive_public(sk)
    }
    fn sign(&self, sk: &SignatureSecretKey, data: &[u8]) -> Result<Vec<u8>, E> {
        self.inner.sign(sk, data)
    }
    fn verify(&self, pk: &SignaturePublicKey, sig: &[u8], data: &[u8]) -> Result<(), E> {
        self.inner.verify(pk, sig, data)
    }
}
