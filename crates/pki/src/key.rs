//! Private keys.
//!
//! A [`PrivateKeyPem`] holds a PKCS#8 PEM private key. It deliberately has no
//! `Debug`, `Display` or `Clone`, and its memory is zeroized when dropped.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A PKCS#8 private key in PEM form. Never logged, never printed.
///
/// It cannot be formatted with `{:?}`:
///
/// ```compile_fail
/// fn leak(k: &blindrelay_pki::PrivateKeyPem) -> String { format!("{k:?}") }
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// Wraps PEM text; the caller's buffer should itself be zeroizing.
    pub fn new(pem: Zeroizing<String>) -> Self {
        Self(pem.as_str().to_owned())
    }

    /// The PEM text.
    pub fn expose_pem(&self) -> &str {
        &self.0
    }

    /// Loads the key into rcgen for signing. The decoded DER is wiped
    /// when dropped, and so is rcgen's copy (its `zeroize` feature).
    pub(crate) fn to_key_pair(&self) -> Result<rcgen::KeyPair, crate::PkiError> {
        use rustls_pki_types::PrivateKeyDer;
        use rustls_pki_types::pem::PemObject;
        let der = Zeroizing::new(
            PrivateKeyDer::from_pem_slice(self.0.as_bytes())
                .map_err(|_| crate::PkiError::Generate("not a PEM private key".into()))?,
        );
        Ok(rcgen::KeyPair::try_from(&*der)?)
    }
}

/// A passphrase that protects a private key at rest. No `Debug`, no
/// `Display`; wiped when dropped.
///
/// ```compile_fail
/// fn leak(p: &blindrelay_pki::key::Passphrase) -> String { format!("{p:?}") }
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps `text`, without a trailing line break (as read from a file).
    pub fn new(text: Zeroizing<String>) -> Self {
        Self(text.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// The bytes that go into the key derivation.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}
