//! What can fail: verifying a peer's certificate ([`PeerError`]), building
//! keys and sealing ([`E2eError`]), and opening a received envelope
//! ([`OpenError`]). Every cryptographic failure of
//! opening is the same [`OpenError::Undecryptable`], so nothing tells
//! which check failed.

use blindrelay_wire::UserName;

/// Errors building or using local keys and sealing envelopes (opening has
/// its own error: [`OpenError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// The user's own certificate does not verify.
    #[error("own certificate: {0}")]
    OwnCertificate(PeerError),
    /// A PEM file does not hold the object expected.
    #[error("not a PEM {0}")]
    Pem(&'static str),
    /// The private key is not an RSA PKCS#8 key that can sign and decrypt.
    #[error("the private key is not an RSA PKCS#8 key that can sign and decrypt")]
    PrivateKey,
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// A recipient's key cannot wrap a message key.
    #[error("the key of {0} cannot be used for RSA-OAEP")]
    PeerKey(UserName),
    /// Not 1 to 64 recipients.
    #[error("a message needs 1 to 64 recipients, not {0}")]
    RecipientCount(usize),
    /// The same recipient twice.
    #[error("duplicate recipient")]
    DuplicateRecipient,
    /// The text is too long.
    #[error("message of {len} bytes is longer than {max} bytes")]
    TooLong {
        /// Bytes of text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The routing header leaves no room for a payload.
    #[error("no room for a payload in a frame")]
    NoFragmentRoom,
    /// The envelope needs more fragments than a message may have.
    #[error("message needs {0} fragments, more than 64")]
    TooManyFragments(usize),
    /// The cryptographic library failed (RNG, encryption).
    #[error("crypto failure")]
    Crypto,
}

/// Why a received envelope was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a well-formed envelope.
    #[error("malformed envelope")]
    Malformed,
    /// The envelope's sender is not the one the relay delivered it from.
    #[error("sender in the envelope does not match the relay's sender")]
    SenderMismatch,
    /// The message is not addressed to this user.
    #[error("message not addressed to me")]
    NotForMe,
    /// Older than the maximum age.
    #[error("stale message ({age_ms} ms old)")]
    Stale {
        /// How old.
        age_ms: u64,
    },
    /// Timestamp too far in the future.
    #[error("message from the future ({ahead_ms} ms ahead)")]
    Future {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// Signature, key unwrap or decryption failed.
    #[error("message could not be authenticated or decrypted")]
    Undecryptable,
    /// Decrypted, but the content type is unknown.
    #[error("unsupported content")]
    UnknownContent,
}

/// Why a certificate is not accepted for a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The CA certificate or a CRL the client trusts is unusable.
    #[error("trust root unusable: {0}")]
    TrustRoot(webpki::Error),
    /// Chain, validity, EKU or revocation check failed, or the certificate
    /// cannot be parsed.
    #[error("certificate rejected: {0}")]
    Rejected(webpki::Error),
    /// The certificate has no usable Common Name.
    #[error("certificate has no valid user name")]
    NoIdentity,
    /// The certificate is fine but belongs to someone else.
    #[error("certificate is for \"{cn}\", offered as \"{offered}\"")]
    NameMismatch {
        /// Name the relay offered it for.
        offered: UserName,
        /// The certificate's CN.
        cn: UserName,
    },
    /// The key usage extension is missing or does not allow both
    /// `digitalSignature` and `keyEncipherment`.
    #[error("unusable key: key usage must allow digitalSignature and keyEncipherment")]
    KeyUsage,
    /// The key is not an RSA key of at least 2048 bits.
    #[error("unusable key: not an RSA key of at least 2048 bits")]
    KeyType,
    /// A device certificate holds neither an ECDSA P-256 nor an Ed25519 key.
    #[error("unusable device key: neither ECDSA P-256 nor Ed25519")]
    DeviceKeyType,
    /// A device certificate does not name exactly one device in a
    /// subjectAltName URI.
    #[error("not a device certificate: no single device URI")]
    DeviceName,
    /// The client's CRL is not from the CA, or no longer current: no
    /// certificate can be checked for revocation, so none is accepted.
    #[error("the client's CRL is unusable: {0}")]
    Crl(blindrelay_pki::crl::CrlError),
}
