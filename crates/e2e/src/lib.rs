//! End-to-end encryption for blindrelay, sans I/O.
//!
//! This crate owns everything a client needs to trust nothing but the CA and
//! the mathematics:
//!
//! * [`peer`]: [`VerifiedPeer`], a certificate that has been checked against
//!   the CA (chain, validity, `clientAuth`, key usages, optional CRL) *and*
//!   whose Common Name equals the name it was offered for; fingerprints and
//!   safety numbers.
//! * [`identity`]: [`LocalIdentity`], the user's own certificate and RSA key
//!   (no `Debug`, zeroized on drop).
//! * [`envelope`]: sealing and opening a message: a fresh AES-256-GCM key and
//!   nonce per message, the key wrapped for every recipient with
//!   RSA-2048-OAEP (SHA-256), all metadata bound as AAD, and the whole
//!   envelope signed with RSA-PSS-SHA-256 under a domain-separation label.
//! * [`fragment`]: splitting an envelope into relay fragments and
//!   reassembling them with bounds on count, size and time.
//! * [`content`]: what is inside a message (text).
//!
//! Replay protection needs persistent state, so [`envelope::open`] hands the
//! message id and timestamp back to the caller, which checks and records
//! them (the client keeps them in its database).
//!
//! Byte layouts are in `PROTOCOL.md`; known-answer vectors in
//! `tests/vectors/`.
#![forbid(unsafe_code)]

pub mod content;
pub mod envelope;
pub mod fragment;
pub mod identity;
pub mod peer;

pub use content::Content;
pub use envelope::{Envelope, Freshness, Header, Opened, SealParams, open, seal};
pub use fragment::{Reassembler, ReassemblyError, split};
pub use identity::LocalIdentity;
pub use peer::{PeerError, TrustRoot, VerifiedPeer, fingerprint, safety_number};

/// Domain-separation label of the RSA-OAEP key wrap (the OAEP label).
pub const WRAP_LABEL: &[u8] = b"blindrelay/v1/wrap";
/// Prefix of the AES-GCM additional authenticated data.
pub const AAD_LABEL: &[u8] = b"blindrelay/v1/aad\0";
/// Prefix of the signed data.
pub const SIGN_LABEL: &[u8] = b"blindrelay/v1/sign\0";
/// Prefix of the message-key commitment hash.
pub const KEY_COMMIT_LABEL: &[u8] = b"blindrelay/v1/key-commit\0";
/// Prefix of the safety-number hash.
pub const SAFETY_LABEL: &[u8] = b"blindrelay/v1/safety-number\0";

/// Errors building or using local keys and envelopes (not opening: see
/// [`envelope::OpenError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// The key or certificate cannot be used.
    #[error("key: {0}")]
    Key(String),
    /// A parameter is out of range (too many recipients, message too long...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The cryptographic library failed (RNG, encryption).
    #[error("crypto failure")]
    Crypto,
}

pub use envelope::OpenError;
