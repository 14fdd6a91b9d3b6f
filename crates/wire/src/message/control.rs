//! Keep-alive, acknowledgements and goodbye: PING, PONG, ACK, GOODBYE.
//!
//! ```text
//! PING / PONG: value u64
//! ACK:         count u8 (1..=MAX_ACK_IDS) | (sender name | msg_id[16]) * count
//! GOODBYE:     code u8 | reason_len u8 (<= REASON_MAX_LEN) | reason
//! ```

use super::routed::MessageId;
use crate::codec::{Reader, put_name};
use crate::text::is_display_control;
use crate::{UserName, WireError};

/// The most messages one `Ack` may acknowledge (64 x (33 + 16) bytes fits
/// a frame).
pub const MAX_ACK_IDS: usize = 64;
/// The longest goodbye reason, in bytes.
pub const REASON_MAX_LEN: usize = 200;

/// Why a connection is being closed. Values are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodbyeCode {
    /// Normal close (client quitting, or server shutting down).
    Normal = 0,
    /// The server is shutting down.
    Shutdown = 1,
    /// Too many messages in the rate window.
    RateLimited = 2,
    /// The identity is in its cool-down period after a rate-limit disconnect.
    CoolDown = 3,
    /// A newer session of the same identity replaced this one.
    SessionLimit = 4,
    /// The certificate was revoked.
    Revoked = 5,
    /// Nothing was received within the idle timeout.
    IdleTimeout = 6,
    /// A frame or message violated the protocol.
    ProtocolViolation = 7,
    /// Repeated messages with a forged sender.
    Spoofing = 8,
    /// The client did not read its frames fast enough.
    TooSlow = 9,
}

impl GoodbyeCode {
    /// A stable snake_case name, for programs (JSON events, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Shutdown => "shutdown",
            Self::RateLimited => "rate_limited",
            Self::CoolDown => "cool_down",
            Self::SessionLimit => "session_limit",
            Self::Revoked => "revoked",
            Self::IdleTimeout => "idle_timeout",
            Self::ProtocolViolation => "protocol_violation",
            Self::Spoofing => "spoofing",
            Self::TooSlow => "too_slow",
        }
    }

    /// What the code means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Normal => "closed normally",
            Self::Shutdown => "the relay is shutting down",
            Self::RateLimited => "too many messages too fast",
            Self::CoolDown => "waiting out a cool-down after too many messages",
            Self::SessionLimit => "replaced by a newer session of the same user",
            Self::Revoked => "the certificate was revoked",
            Self::IdleTimeout => "idle for too long",
            Self::ProtocolViolation => "the relay received something it does not accept",
            Self::Spoofing => "messages with a forged sender",
            Self::TooSlow => "this client read too slowly",
        }
    }

    /// Maps a code byte; an unknown code is malformed.
    pub fn from_u8(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            0 => Self::Normal,
            1 => Self::Shutdown,
            2 => Self::RateLimited,
            3 => Self::CoolDown,
            4 => Self::SessionLimit,
            5 => Self::Revoked,
            6 => Self::IdleTimeout,
            7 => Self::ProtocolViolation,
            8 => Self::Spoofing,
            9 => Self::TooSlow,
            _ => return Err(WireError::InvalidField("goodbye code")),
        })
    }
}

impl std::fmt::Display for GoodbyeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Appends an ACK body.
pub(crate) fn put_ack(b: &mut Vec<u8>, ids: &[(UserName, MessageId)]) -> Result<(), WireError> {
    let n = u8::try_from(ids.len())
        .ok()
        .filter(|n| (1..=MAX_ACK_IDS).contains(&usize::from(*n)))
        .ok_or(WireError::InvalidField("ack count"))?;
    b.push(n);
    for (sender, id) in ids {
        put_name(b, sender);
        b.extend_from_slice(&id.0);
    }
    Ok(())
}

/// Reads an ACK body.
pub(crate) fn get_ack(r: &mut Reader<'_>) -> Result<Vec<(UserName, MessageId)>, WireError> {
    let n = usize::from(r.u8("ack count")?);
    if n == 0 || n > MAX_ACK_IDS {
        return Err(WireError::InvalidField("ack count"));
    }
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let sender = r.name("ack sender")?;
        ids.push((sender, MessageId::read(r)?));
    }
    Ok(ids)
}

fn check_reason(reason: &str) -> Result<(), WireError> {
    if reason.len() > REASON_MAX_LEN || reason.chars().any(is_display_control) {
        return Err(WireError::InvalidField("reason"));
    }
    Ok(())
}

/// Appends a GOODBYE body.
pub(crate) fn put_goodbye(
    b: &mut Vec<u8>,
    code: GoodbyeCode,
    reason: &str,
) -> Result<(), WireError> {
    check_reason(reason)?;
    b.push(code as u8);
    b.push(u8::try_from(reason.len()).map_err(|_| WireError::InvalidField("reason"))?);
    b.extend_from_slice(reason.as_bytes());
    Ok(())
}

/// Reads a GOODBYE body.
pub(crate) fn get_goodbye(r: &mut Reader<'_>) -> Result<(GoodbyeCode, String), WireError> {
    let code = GoodbyeCode::from_u8(r.u8("goodbye code")?)?;
    let raw = r.short_bytes("reason")?;
    let reason = std::str::from_utf8(raw)
        .map_err(|_| WireError::InvalidField("reason"))?
        .to_owned();
    check_reason(&reason)?;
    Ok((code, reason))
}
