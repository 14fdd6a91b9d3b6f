//! The login sequence and presence: WELCOME, PEER, DIRECTORY_END,
//! PEER_LEFT (relay to client).
//!
//! ```text
//! WELCOME:       identity name | rate_max u16 | rate_window_ms u32
//!                | keepalive_ms u32 | max_fragments u16 | store_ttl_s u32
//! PEER:          event u8 | name | cert_len u16 (1..=CERT_MAX_LEN) | cert
//! DIRECTORY_END: count u16
//! PEER_LEFT:     name
//! ```

use crate::codec::{Reader, put_long_bytes, put_name};
use crate::{UserName, WireError};

/// The largest DER certificate a `Peer` message may carry.
pub const CERT_MAX_LEN: usize = 3072;

/// The relay's first frame after the handshake: who it bound the
/// connection to and the limits it enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The identity the server bound this connection to.
    pub identity: UserName,
    /// Messages allowed per rate window.
    pub rate_max: u16,
    /// Length of the rate window in milliseconds.
    pub rate_window_ms: u32,
    /// The client must send something at least this often (milliseconds).
    pub keepalive_ms: u32,
    /// The most fragments one message may have.
    pub max_fragments: u16,
    /// How long the relay stores undelivered messages, in seconds.
    pub store_ttl_s: u32,
}

impl Welcome {
    pub(crate) fn encode(&self, b: &mut Vec<u8>) {
        put_name(b, &self.identity);
        b.extend_from_slice(&self.rate_max.to_be_bytes());
        b.extend_from_slice(&self.rate_window_ms.to_be_bytes());
        b.extend_from_slice(&self.keepalive_ms.to_be_bytes());
        b.extend_from_slice(&self.max_fragments.to_be_bytes());
        b.extend_from_slice(&self.store_ttl_s.to_be_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            identity: r.name("identity")?,
            rate_max: r.u16("rate max")?,
            rate_window_ms: r.u32("rate window")?,
            keepalive_ms: r.u32("keepalive")?,
            max_fragments: r.u16("max fragments")?,
            store_ttl_s: r.u32("store ttl")?,
        })
    }
}

/// Why a `Peer` message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// Part of the directory sent right after login.
    Listed = 0,
    /// The user has just come online.
    Joined = 1,
    /// Part of the directory: a known user who is offline.
    Offline = 2,
}

/// Appends a PEER body.
pub(crate) fn put_peer(
    b: &mut Vec<u8>,
    event: PeerEvent,
    name: &UserName,
    cert_der: &[u8],
) -> Result<(), WireError> {
    if cert_der.is_empty() || cert_der.len() > CERT_MAX_LEN {
        return Err(WireError::InvalidField("certificate length"));
    }
    b.push(event as u8);
    put_name(b, name);
    put_long_bytes(b, cert_der)
}

/// Reads a PEER body.
pub(crate) fn get_peer(r: &mut Reader<'_>) -> Result<(PeerEvent, UserName, Vec<u8>), WireError> {
    let event = match r.u8("peer event")? {
        0 => PeerEvent::Listed,
        1 => PeerEvent::Joined,
        2 => PeerEvent::Offline,
        _ => return Err(WireError::InvalidField("peer event")),
    };
    let name = r.name("peer name")?;
    let cert = r.long_bytes("certificate")?;
    if cert.is_empty() || cert.len() > CERT_MAX_LEN {
        return Err(WireError::InvalidField("certificate length"));
    }
    Ok((event, name, cert.to_vec()))
}
