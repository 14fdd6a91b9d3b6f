//! A stock mls-rs client (no blindrelay code but the identity provider
//! every member must run), for interoperation and for handshakes our own
//! devices would never make.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use blindrelay_mls::{CIPHER_SUITE, DeviceKey};
use mls_rs::Client;
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::x509::CertificateChain;
use mls_rs::mls_rules::{DefaultMlsRules, EncryptionOptions};
use mls_rs_core::crypto::SignaturePublicKey;
use mls_rs_crypto_awslc::AwsLcCryptoProvider;

use super::Org;

/// A stock mls-rs client for a device of `org` (the library's default
/// rules, but for whether handshakes are encrypted).
pub fn stock(
    org: &Org,
    user: &str,
    device: &str,
    encrypt_handshakes: bool,
) -> Client<impl mls_rs::client_builder::MlsConfig> {
    stock_with(
        org,
        user,
        device,
        encrypt_handshakes,
        AwsLcCryptoProvider::new(),
    )
}

/// [`stock`] over another crypto provider (a modified client).
pub fn stock_with<P: mls_rs::CryptoProvider + Clone + 'static>(
    org: &Org,
    user: &str,
    device: &str,
    encrypt_handshakes: bool,
    crypto: P,
) -> Client<impl mls_rs::client_builder::MlsConfig> {
    let f = org.enrol(user, device);
    let key = DeviceKey::from_pem(&f.key_pem).unwrap();
    let public = key.public().to_vec();
    use mls_rs::CipherSuiteProvider;
    let cs = crypto.cipher_suite_provider(CIPHER_SUITE).unwrap();
    // The stock client takes the raw scalar, as mls-rs's own examples do.
    let pkcs8 = <rustls_pki_types::PrivatePkcs8KeyDer<'static> as rustls_pki_types::pem::PemObject>::from_pem_slice(
        f.key_pem.expose_pem().as_bytes(),
    )
    .unwrap();
    let secret = pkcs8_scalar(pkcs8.secret_pkcs8_der());
    assert_eq!(
        cs.signature_key_derive_public(&secret).unwrap().as_ref(),
        public.as_slice()
    );
    let identity = SigningIdentity::new(
        CertificateChain::from(vec![f.cert_der]).into_credential(),
        SignaturePublicKey::from(public),
    );
    let rules = DefaultMlsRules::new().with_encryption_options(EncryptionOptions::new(
        encrypt_handshakes,
        mls_rs::client_builder::PaddingMode::None,
    ));
    Client::builder()
        .mls_rules(rules)
        .crypto_provider(crypto)
        .identity_provider(org.trust().identity_provider())
        // It can be in a named group (it declares the name's type).
        .extension_type(blindrelay_mls::name::GROUP_NAME_EXTENSION)
        .signing_identity(identity, secret, CIPHER_SUITE)
        .build()
}

fn pkcs8_scalar(pkcs8: &[u8]) -> mls_rs_core::crypto::SignatureSecretKey {
    use aws_lc_rs::encoding::AsBigEndian;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).unwrap();
    let bin = pair.private_key().as_be_bytes().unwrap();
    mls_rs_core::crypto::SignatureSecretKey::new(bin.as_ref().to_vec())
}
