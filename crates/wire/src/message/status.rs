//! STATUS and STATUSES: what happened to a message a client sent.
//!
//! ```text
//! status:   msg_id[16] | code u8 | fields
//! STATUSES: count u8 (2..=MAX_STATUSES) | status * count
//! ```

use super::routed::MessageId;
use crate::codec::{Reader, put_name};
use crate::{UserName, WireError};

/// The most statuses one `Statuses` message may carry (64 x at most 50
/// bytes fits a frame).
pub const MAX_STATUSES: usize = 64;

/// What happened to a message the client sent (server to client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    /// The relay accepted the whole message and forwarded it to `delivered`
    /// online sessions.
    Accepted {
        /// Number of recipient sessions the message was written to.
        delivered: u16,
    },
    /// This recipient is known but has no session now; the message was not
    /// delivered to them. (Reserved: this relay stores instead.)
    Offline(UserName),
    /// The relay has never seen this recipient.
    Unknown(UserName),
    /// The whole message is durably stored (committed) for this many
    /// recipients; it stays stored until each acknowledges it.
    Stored {
        /// Recipients it was stored for.
        recipients: u16,
    },
    /// This recipient's mailbox is full (message or byte quota): the message
    /// was not stored for them.
    QuotaExceeded(UserName),
}

/// Appends one status: `msg_id: 16 | code: u8 | fields`.
pub(crate) fn put_status(b: &mut Vec<u8>, msg_id: &MessageId, kind: &StatusKind) {
    b.extend_from_slice(&msg_id.0);
    match kind {
        StatusKind::Accepted { delivered } => {
            b.push(0);
            b.extend_from_slice(&delivered.to_be_bytes());
        }
        StatusKind::Offline(n) => {
            b.push(1);
            put_name(b, n);
        }
        StatusKind::Unknown(n) => {
            b.push(2);
            put_name(b, n);
        }
        StatusKind::Stored { recipients } => {
            b.push(3);
            b.extend_from_slice(&recipients.to_be_bytes());
        }
        StatusKind::QuotaExceeded(n) => {
            b.push(4);
            put_name(b, n);
        }
    }
}

/// Reads one status.
pub(crate) fn get_status(r: &mut Reader<'_>) -> Result<(MessageId, StatusKind), WireError> {
    let id = MessageId::read(r)?;
    let kind = match r.u8("status code")? {
        0 => StatusKind::Accepted {
            delivered: r.u16("delivered")?,
        },
        1 => StatusKind::Offline(r.name("recipient")?),
        2 => StatusKind::Unknown(r.name("recipient")?),
        3 => StatusKind::Stored {
            recipients: r.u16("stored recipients")?,
        },
        4 => StatusKind::QuotaExceeded(r.name("recipient")?),
        _ => return Err(WireError::InvalidField("status code")),
    };
    Ok((id, kind))
}

/// Appends a STATUSES body.
pub(crate) fn put_statuses(
    b: &mut Vec<u8>,
    list: &[(MessageId, StatusKind)],
) -> Result<(), WireError> {
    let n = u8::try_from(list.len())
        .ok()
        .filter(|n| (2..=MAX_STATUSES).contains(&usize::from(*n)))
        .ok_or(WireError::InvalidField("status count"))?;
    b.push(n);
    for (msg_id, kind) in list {
        put_status(b, msg_id, kind);
    }
    Ok(())
}

/// Reads a STATUSES body.
pub(crate) fn get_statuses(r: &mut Reader<'_>) -> Result<Vec<(MessageId, StatusKind)>, WireError> {
    let n = usize::from(r.u8("status count")?);
    if !(2..=MAX_STATUSES).contains(&n) {
        return Err(WireError::InvalidField("status count"));
    }
    let mut list = Vec::with_capacity(n);
    for _ in 0..n {
        list.push(get_status(r)?);
    }
    Ok(list)
}
