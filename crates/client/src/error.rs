//! What can go wrong in the client, as types: the caller can tell a missing
//! file from a refused login from a recipient without a verified key.
//!
//! One rule for every error type of the workspace: an error either prints
//! its cause in its own message or returns it from `source()`, never both,
//! so that a chain printed in full (`anyhow`'s `{:#}`) says everything once.

use blindrelay_wire::{FrameType, GoodbyeCode, UserName, WireError};

use crate::store::StoreError;

impl ClientError {
    /// True for failures that may pass by themselves (the relay is down,
    /// restarting, unreachable or cooling this identity down for now), as
    /// opposed to a refusal or a local problem that trying again will not
    /// fix.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::ConnectTimeout(_)
                | Self::ClosedByRelay
                | Self::Refused {
                    code: GoodbyeCode::CoolDown,
                    ..
                }
        )
    }
}

/// Client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A local file cannot be read.
    #[error("cannot read {what} {path}: {error}")]
    ReadFile {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The CA certificate or the CRL is unusable.
    #[error(transparent)]
    Pki(#[from] blindrelay_pki::PkiError),
    /// The CA certificate or the CRL cannot be trusted.
    #[error(transparent)]
    TrustRoot(#[from] blindrelay_e2e::PeerError),
    /// The user's own certificate or key is unusable.
    #[error(transparent)]
    Identity(blindrelay_e2e::E2eError),
    /// The TLS configuration cannot be built from the files.
    #[error(transparent)]
    Tls(#[from] blindrelay_net::NetError),
    /// The client's policy windows do not fit together.
    #[error("invalid policy: {0}")]
    Policy(&'static str),
    /// The relay's name is not a valid DNS name or IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The local database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A message with no recipient.
    #[error("no recipient")]
    NoRecipient,
    /// A request label longer than the client keeps.
    #[error("request label longer than {max} bytes")]
    TagTooLong {
        /// The limit.
        max: usize,
    },
    /// A message with no text.
    #[error("nothing to send: the message is empty")]
    Empty,
    /// No verified certificate for this user: the relay offered none, or
    /// one that was refused (revoked, expired, not from the CA).
    #[error(
        "no valid certificate for {0} (none offered, or it was refused: revoked, expired or not from our CA); nothing can be sent to {0}"
    )]
    NoKey(UserName),
    /// This user's certificate changed and the change is not accepted yet.
    #[error("{0}'s certificate changed; compare safety numbers (/verify {0}), then /accept {0}")]
    KeyChanged(UserName),
    /// `/accept` for a user whose certificate did not change.
    #[error("{0} has no changed key to accept")]
    NothingToAccept(UserName),
    /// `/accept` before the new safety number was displayed.
    #[error("compare the safety number first: /verify {0}")]
    NotCompared(UserName),
    /// The text is longer than a message may be.
    #[error("cannot send: message longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Sealing failed.
    #[error("cannot send: {0}")]
    Seal(blindrelay_e2e::E2eError),
    /// A frame could not be encoded.
    #[error("cannot send: {0}")]
    Encode(WireError),
    /// The relay cannot be reached.
    #[error("cannot reach {server}: {}", blindrelay_net::explain_io(error))]
    Unreachable {
        /// `host:port`.
        server: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error(
        "TLS handshake with {server} failed: {}",
        blindrelay_net::explain_io(error)
    )]
    Handshake {
        /// `host:port`.
        server: String,
        /// What failed.
        error: std::io::Error,
    },
    /// Connecting took too long.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    /// The relay's first frame did not arrive or was invalid.
    #[error("login failed: {0}")]
    Login(blindrelay_net::NetError),
    /// The relay closed the connection before its first frame.
    #[error("the relay closed the connection")]
    ClosedByRelay,
    /// The relay refused the login.
    #[error("refused by the relay: {code} ({reason})")]
    Refused {
        /// Its goodbye code.
        code: GoodbyeCode,
        /// Its reason.
        reason: String,
    },
    /// The relay's first frame was not WELCOME.
    #[error(
        "the relay did not start the session as the protocol says (frame {0:?} before WELCOME)"
    )]
    NoWelcome(FrameType),
    /// Writing to the relay failed.
    #[error("write failed: {0}")]
    Write(blindrelay_net::NetError),
    /// The connection task has stopped.
    #[error("the connection has stopped")]
    Stopped,
    /// The CSPRNG failed.
    #[error("crypto failure")]
    Crypto,
    /// The device's MLS state refused or failed an operation.
    #[error("MLS: {0}")]
    Mls(#[from] blindrelay_mls::MlsError),
    /// The device's MLS state could not be read or written.
    #[error("MLS storage: {0}")]
    MlsStorage(#[from] blindrelay_mls::StorageError),
    /// The relay's Delivery Service refused a request.
    #[error("{}", refusal_text(.0))]
    RequestRefused(blindrelay_ds::Refusal),
    /// The relay answered a request with something else than its answer.
    #[error("the relay answered with something other than {expected}")]
    UnexpectedAnswer {
        /// The answer that was due.
        expected: &'static str,
    },
    /// The connection to the relay (protocol v2) ended or failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Another process holds this device's state.
    #[error("another blindrelay process is using this device ({}): one process per device", .path.display())]
    DeviceLocked {
        /// The lock file (`STATE.lock`).
        path: std::path::PathBuf,
    },
    /// The lock file of this device's state cannot be opened or locked.
    #[error("cannot lock {}: {error}", .path.display())]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The device's private key could not be re-encoded for MLS.
    #[error("device key: {0}")]
    DeviceKey(blindrelay_pki::encrypted_key::KeyFileError),
    /// The CRL file does not verify against the CA.
    #[error("crl.pem: {0}")]
    Crl(blindrelay_pki::crl::CrlError),
    /// Other members' commits kept winning the epoch.
    #[error("other members' commits won {attempts} times in a row; try again")]
    CommitRaced {
        /// How many commits were made and lost.
        attempts: usize,
    },
    /// Several of this device's groups have the name asked for.
    #[error("{} groups are called {name:?}; say which: {}", .choices.len(), .choices.join(", "))]
    AmbiguousGroup {
        /// The name.
        name: String,
        /// How to name each (`NAME#TAG`).
        choices: Vec<String>,
    },
    /// What was asked of a group cannot be done (the reason says why).
    #[error("{0}")]
    Group(&'static str),
    /// The outbox holds [`crate::store::MAX_OUTBOX_WAITING`] messages the
    /// relay has not taken yet: this one was not taken (try again once
    /// some are sent).
    #[error(
        "the outbox is full ({waiting} messages waiting for the relay): try again once some are sent"
    )]
    OutboxFull {
        /// Messages waiting.
        waiting: u64,
    },
    /// A message was kept in the outbox and not sent yet (the group is
    /// behind, or the relay asked to wait): it goes, with its id, when
    /// the group allows, at this device's next chat or send.
    #[error(
        "not sent yet ({why}): kept in the outbox, and sent when the group allows (this device's next chat or send)"
    )]
    Kept {
        /// The message's id.
        id: blindrelay_wire::MessageId,
        /// Why it waits.
        why: &'static str,
    },
    /// A KeyPackage claimed for one device belongs to another: nobody was
    /// added.
    #[error("the relay offered a KeyPackage of {owner} as {offered}'s: nothing was added")]
    ForeignKeyPackage {
        /// The device it was offered as.
        offered: String,
        /// The device it belongs to.
        owner: String,
    },
}

fn refusal_text(why: &blindrelay_ds::Refusal) -> String {
    match why {
        blindrelay_ds::Refusal::Storage => "the relay could not store it; try again".into(),
        blindrelay_ds::Refusal::Rules(c) => format!("the relay refused it: {}", c.describe()),
    }
}

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The connection ended: the relay closed it (its reason), the
    /// network failed, or the relay broke the protocol (which way).
    #[error("{0}")]
    Ended(String),
    /// The connection was already closed.
    #[error("the connection is closed")]
    Closed,
    /// No answer within [`crate::v2::link::ANSWER_TIMEOUT`].
    #[error("the relay did not answer in time")]
    Timeout,
    /// The relay's first message was not HELLO.
    #[error("the relay's first message was not HELLO")]
    NoHello,
    /// A request could not be encoded or cut into chunks (too large).
    #[error("cannot send the request: {0}")]
    Encode(blindrelay_wire::WireError),
    /// The relay sent more mailbox items than a mailbox holds while an
    /// answer was awaited.
    #[error("the relay sent more than a mailbox holds")]
    Overflow,
}
