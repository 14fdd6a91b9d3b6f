//! End-to-end encryption for blindrelay, sans I/O.
//!
//! This crate owns everything a client needs to trust nothing but the CA and
//! the mathematics:
//!
//! * [`peer`]: [`VerifiedPeer`], a certificate that has been checked against
//!   the CA (chain, validity, `clientAuth`, key usages, optional CRL) *and*
//!   whose Common Name equals the name it was offered for; fingerprints and
//!   safety numbers.
//! * [`device`]: [`VerifiedDevice`], a device certificate (protocol v2)
//!   checked the same way, with its user, device name and P-256 key.
//! * [`identity`]: [`LocalIdentity`], the user's own certificate and RSA key
//!   (no `Debug`, zeroized on drop).
//! * [`header`] and [`envelope`]: the envelope's layout and its strict parser
//!   (the byte reader is `blindrelay_wire::codec`'s).
//! * [`seal`](mod@seal): a fresh AES-256-GCM key and nonce per message, the key
//!   wrapped for every recipient with RSA-2048-OAEP (SHA-256), all metadata
//!   bound as AAD, the whole envelope signed with RSA-PSS-SHA-256 under a
//!   domain-separation label; the fragment count decided and the envelope
//!   cut into positioned relay fragments.
//! * [`open`](mod@open): verifying and decrypting, with one error for every
//!   cryptographic failure.
//! * [`fragment`]: reassembling fragments with bounds on count, size and
//!   time.
//! * [`content`]: what is inside a message (text, receipt).
//! * [`error`]: what can fail, sealing ([`E2eError`]) and opening
//!   ([`OpenError`]).
//!
//! Replay protection needs persistent state, so [`open()`] hands the message
//! id and timestamp back to the caller, which checks and records them (the
//! client keeps them in its database).
//!
//! Byte layouts are in `PROTOCOL.md`; known-answer vectors in
//! `tests/vectors/`.
#![forbid(unsafe_code)]

pub mod content;
pub mod device;
pub mod envelope;
pub mod error;
pub mod fragment;
pub mod header;
pub mod identity;
pub mod open;
pub mod peer;
pub mod seal;

pub use content::Content;
pub use device::VerifiedDevice;
pub use envelope::Envelope;
pub use error::{E2eError, OpenError, PeerError};
pub use fragment::{Lane, Reassembler, ReassemblyError};
pub use header::Header;
pub use identity::LocalIdentity;
pub use open::{Freshness, Opened, open};
pub use peer::{TrustRoot, VerifiedPeer, fingerprint, key_fingerprint, safety_number};
pub use seal::{SealParams, Sealed, seal};

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
