//! Server configuration: every limit the relay enforces, with its default.
//!
//! A TOML file given with `--config` may set any of these fields; missing
//! fields keep their defaults, unknown fields are an error. Durations are in
//! milliseconds.
//!
//! ```toml
//! listen = "127.0.0.1:8443"
//! max_connections = 4096
//! rate_max_messages = 10
//! rate_window_ms = 5000
//! ```

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::ServerError;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// All tunables of the relay.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Connections held at once, handshaking or established. A permit is
    /// taken *before* `accept`, so excess connections wait in the kernel
    /// backlog instead of costing memory.
    pub max_connections: usize,
    /// The TLS handshake must complete within this time.
    pub handshake_timeout_ms: u64,
    /// TLS handshakes in progress at once from one source address; more are
    /// closed at once (connections past the handshake do not count).
    pub max_handshakes_per_ip: usize,
    /// A session that receives nothing for this long is closed. Clients are
    /// told to send a keep-alive every `keepalive_ms`.
    pub idle_timeout_ms: u64,
    /// Keep-alive interval announced to clients in `Welcome`.
    pub keepalive_ms: u64,
    /// Once a frame has started, its remaining bytes must arrive within this time.
    pub frame_timeout_ms: u64,
    /// A batch of frames to one client must be written within this time.
    pub write_timeout_ms: u64,
    /// Messages (first fragments) one identity may send per rate window.
    pub rate_max_messages: u16,
    /// Length of the sliding rate window.
    pub rate_window_ms: u64,
    /// Protocol v2 requests (all but acknowledgements) one device may make
    /// per rate window, across its sessions; announced in HELLO, and
    /// clients pace themselves within it. Creating a group with two people
    /// is about four requests, a message one.
    pub v2_rate_max_requests: u16,
    /// Protocol v2 requests all devices of one person together may make
    /// per rate window: more devices do not multiply a person's share. A
    /// device over it cools down like one over its own budget.
    pub v2_person_rate_max_requests: u16,
    /// After a rate-limit disconnect the identity is refused for this long;
    /// every refused attempt restarts the period.
    pub cooldown_ms: u64,
    /// Sessions one identity may hold at once; a new one past the cap closes
    /// the oldest.
    pub max_sessions_per_identity: usize,
    /// Frames queued for one session before it is considered a slow reader
    /// and disconnected.
    pub outgoing_queue_frames: usize,
    /// Frames with a forged sender per connection: the ones before this are
    /// dropped silently, this one closes the connection.
    pub spoof_strikes: u32,
    /// A message to everyone online counts against the sender's message
    /// budget once per this many recipient sessions it reaches (at least
    /// once), so its fan-out costs what the same message to named
    /// recipients would.
    pub room_sessions_per_message: usize,
    /// How often `crl.pem` is checked for changes.
    pub crl_poll_ms: u64,
    /// How long shutdown waits for sessions to say goodbye.
    pub shutdown_grace_ms: u64,
    /// Log a short base64 preview of every relayed payload (what the server sees).
    pub verbose: bool,
    /// Stored messages older than this are deleted (and clients accept
    /// messages from the store up to this age).
    pub store_ttl_ms: u64,
    /// Messages stored for one recipient; a sender whose message does not
    /// fit is told so.
    pub quota_messages: u64,
    /// Bytes stored for one recipient.
    pub quota_bytes: u64,
    /// How often expired messages are removed.
    pub store_sweep_ms: u64,
    /// Acknowledgement frames one identity may send per rate window (each
    /// acknowledges up to `MAX_ACK_IDS`, 64, messages). Not counted as
    /// messages.
    pub ack_rate_max: u16,
    /// Delivery receipts one identity may send per rate window. Not counted
    /// as messages.
    pub receipt_rate_max: u16,
    /// Logins (new sessions) one identity may make per rate window; past it
    /// the identity enters the cool-down.
    pub login_rate_max: u16,
    /// Frames of the login backlog queued for one session; the backlog is
    /// streamed with backpressure, never dropped.
    pub backlog_queue_frames: usize,
    /// Messages of one session waiting for their store commit; past this the
    /// session stops reading until commits catch up.
    pub max_inflight_stores: usize,
    /// How long a message that reached every recipient live waits for
    /// their acknowledgements before it is committed to the store. Copies
    /// acknowledged within it are never written; STATUS *stored* is sent
    /// when every copy is acknowledged or committed, so a confirmation
    /// still means the message cannot be lost. 0 commits every message at
    /// once. At most [`MAX_WRITE_BEHIND_MS`].
    pub write_behind_ms: u64,
}

/// Why a configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that must be positive is 0.
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    /// A value is above its maximum.
    #[error("{field} must be at most {max}")]
    TooLarge {
        /// The key.
        field: &'static str,
        /// Its maximum.
        max: u64,
    },
    /// Clients would be dropped for idleness between two keep-alives.
    #[error("keepalive_ms must be shorter than idle_timeout_ms")]
    KeepaliveNotShorter,
    /// One device pacing itself within its announced budget would use up
    /// its person's.
    #[error("v2_person_rate_max_requests must be at least v2_rate_max_requests")]
    PersonBudgetBelowDevice,
}

/// Upper bound of `write_behind_ms`: a sender waits at most this long for
/// STATUS *stored* of a message its recipients received but did not
/// acknowledge.
pub const MAX_WRITE_BEHIND_MS: u64 = 10_000;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            max_connections: 4096,
            handshake_timeout_ms: 10_000,
            max_handshakes_per_ip: 64,
            idle_timeout_ms: 60_000,
            keepalive_ms: 20_000,
            frame_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            rate_max_messages: 10,
            rate_window_ms: 5_000,
            v2_rate_max_requests: 100,
            v2_person_rate_max_requests: 400,
            cooldown_ms: 30_000,
            max_sessions_per_identity: 4,
            outgoing_queue_frames: 256,
            spoof_strikes: 3,
            room_sessions_per_message: blindrelay_wire::MAX_RECIPIENTS,
            crl_poll_ms: 1_000,
            shutdown_grace_ms: 3_000,
            verbose: false,
            store_ttl_ms: 7 * 24 * 3600 * 1000,
            quota_messages: 10_000,
            quota_bytes: 64 * 1024 * 1024,
            store_sweep_ms: 60_000,
            ack_rate_max: 200,
            receipt_rate_max: 60,
            login_rate_max: 10,
            backlog_queue_frames: 64,
            max_inflight_stores: 64,
            write_behind_ms: 500,
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|error| ServerError::ConfigFile {
            path: path.to_path_buf(),
            error,
        })?;
        let cfg: Config = toml::from_str(&text).map_err(|e| ServerError::ConfigSyntax {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that every value is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("max_connections", self.max_connections as u64),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("max_handshakes_per_ip", self.max_handshakes_per_ip as u64),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("keepalive_ms", self.keepalive_ms),
            ("frame_timeout_ms", self.frame_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("rate_max_messages", u64::from(self.rate_max_messages)),
            ("rate_window_ms", self.rate_window_ms),
            ("v2_rate_max_requests", u64::from(self.v2_rate_max_requests)),
            (
                "v2_person_rate_max_requests",
                u64::from(self.v2_person_rate_max_requests),
            ),
            (
                "max_sessions_per_identity",
                self.max_sessions_per_identity as u64,
            ),
            ("outgoing_queue_frames", self.outgoing_queue_frames as u64),
            (
                "room_sessions_per_message",
                self.room_sessions_per_message as u64,
            ),
            ("crl_poll_ms", self.crl_poll_ms),
            ("store_ttl_ms", self.store_ttl_ms),
            ("quota_messages", self.quota_messages),
            ("quota_bytes", self.quota_bytes),
            ("store_sweep_ms", self.store_sweep_ms),
            ("ack_rate_max", u64::from(self.ack_rate_max)),
            ("receipt_rate_max", u64::from(self.receipt_rate_max)),
            ("login_rate_max", u64::from(self.login_rate_max)),
            ("backlog_queue_frames", self.backlog_queue_frames as u64),
            ("max_inflight_stores", self.max_inflight_stores as u64),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        let ttl_max = u64::from(u32::MAX) * 1000;
        if self.store_ttl_ms > ttl_max {
            return Err(ConfigError::TooLarge {
                field: "store_ttl_ms",
                max: ttl_max,
            });
        }
        if self.write_behind_ms > MAX_WRITE_BEHIND_MS {
            return Err(ConfigError::TooLarge {
                field: "write_behind_ms",
                max: MAX_WRITE_BEHIND_MS,
            });
        }
        if self.keepalive_ms >= self.idle_timeout_ms {
            return Err(ConfigError::KeepaliveNotShorter);
        }
        if self.v2_person_rate_max_requests < self.v2_rate_max_requests {
            return Err(ConfigError::PersonBudgetBelowDevice);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_report() {
        let c = Config::default();
        assert_eq!((c.rate_max_messages, c.rate_window_ms), (10, 5000));
        assert_eq!(c.v2_rate_max_requests, 100);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn partial_file_keeps_defaults_and_unknown_fields_fail() {
        let c: Config = toml::from_str("rate_max_messages = 3\n").unwrap();
        assert_eq!(c.rate_max_messages, 3);
        assert_eq!(c.rate_window_ms, 5000);
        assert!(toml::from_str::<Config>("rate_max = 3\n").is_err());
        let bad = Config {
            rate_window_ms: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("rate_window_ms")));
        let bad = Config {
            keepalive_ms: 60_000,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::KeepaliveNotShorter));
        let bad = Config {
            v2_rate_max_requests: 500,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::PersonBudgetBelowDevice));
        let equal = Config {
            v2_rate_max_requests: 400,
            ..Config::default()
        };
        assert_eq!(equal.validate(), Ok(()), "one device per person is fine");
    }
}
