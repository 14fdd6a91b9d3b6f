//! The windows that protect the user, as the client's own policy.
//!
//! How late a message may arrive, how long the replay cache remembers a
//! message, how long the outbox keeps trying: each is decided here, from
//! the client's configuration. What the relay announces (its store TTL in
//! WELCOME) is informative only: it can never shorten what the client
//! remembers or lengthen what it accepts.
//!
//! The rules, with `now` the client's clock and `ts` the time the sender
//! wrote the message (in the signed header):
//! * `ts > now + max_future_ms`: refused (left on the relay: it may become
//!   acceptable when the clocks agree);
//! * `now - ts > max_age_ms`: refused for good;
//! * `now - ts > live_window_ms`: shown, with its date, as delivered late;
//! * the replay cache keeps every accepted message while a copy of it could
//!   still be accepted: `max_age_ms + max_future_ms`;
//! * the outbox sends an unconfirmed message again for `max_age_ms` (the
//!   resend keeps the original time, so a recipient with the same policy
//!   would refuse it after that), then drops it and says so.

use blindrelay_e2e::Freshness;

use crate::error::ClientError;

/// The longest `max_age_ms` a client may be configured with (90 days).
pub const MAX_POLICY_AGE_MS: u64 = 90 * 24 * 3600 * 1000;

/// The client's windows. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A message older than this on arrival is shown as delivered late.
    pub live_window_ms: u64,
    /// A message older than this is refused; the replay cache and the
    /// outbox keep their entries this long.
    pub max_age_ms: u64,
    /// A message dated further ahead than this is refused.
    pub max_future_ms: u64,
    /// Messages from one sender the replay cache holds at once; past it,
    /// that sender's messages (and only theirs) are refused until old
    /// entries expire.
    pub max_seen_per_sender: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            live_window_ms: 60_000,
            max_age_ms: 7 * 24 * 3600 * 1000,
            max_future_ms: 30_000,
            max_seen_per_sender: 50_000,
        }
    }
}

impl Policy {
    /// Checks that the windows make sense together.
    pub fn validate(&self) -> Result<(), ClientError> {
        let bad = |why: &'static str| Err(ClientError::Policy(why));
        if self.live_window_ms == 0 || self.max_seen_per_sender == 0 {
            return bad("windows and limits must be greater than 0");
        }
        if self.max_age_ms < self.live_window_ms {
            return bad("the maximum age must be at least the live window");
        }
        if self.max_age_ms > MAX_POLICY_AGE_MS {
            return bad("the maximum age must be at most 90 days");
        }
        Ok(())
    }

    /// What `open` accepts: up to `max_age_ms` old, `max_future_ms` ahead.
    pub fn acceptance(&self) -> Freshness {
        Freshness {
            max_age_ms: self.max_age_ms,
            max_future_ms: self.max_future_ms,
        }
    }

    /// True for a message written at `ts` that arrives later than the live
    /// window.
    pub fn is_late(&self, ts: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(ts) > self.live_window_ms
    }

    /// Replay-cache entries with a timestamp before this can go: no copy of
    /// their message can be accepted any more.
    pub fn replay_horizon(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.max_age_ms.saturating_add(self.max_future_ms))
    }

    /// Outbox messages written before this are not sent again.
    pub fn outbox_horizon(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.max_age_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_are_the_clients_and_must_fit_together() {
        let p = Policy::default();
        assert!(p.validate().is_ok());
        assert!(!p.is_late(1_000, 61_000));
        assert!(p.is_late(1_000, 61_001));
        assert_eq!(
            p.replay_horizon(10 * 24 * 3600 * 1000),
            3 * 24 * 3600 * 1000 - 30_000
        );
        assert_eq!(
            p.outbox_horizon(10 * 24 * 3600 * 1000),
            3 * 24 * 3600 * 1000
        );
        // The bounds themselves are allowed: 90 days, and a maximum age
        // equal to the live window.
        assert_eq!(MAX_POLICY_AGE_MS, 7_776_000_000);
        for edge in [
            Policy {
                max_age_ms: MAX_POLICY_AGE_MS,
                ..p
            },
            Policy {
                live_window_ms: p.max_age_ms,
                ..p
            },
        ] {
            assert!(edge.validate().is_ok(), "{edge:?}");
        }
        for bad in [
            Policy {
                live_window_ms: 0,
                ..p
            },
            Policy {
                max_age_ms: 1_000,
                ..p
            },
            Policy {
                max_age_ms: MAX_POLICY_AGE_MS + 1,
                ..p
            },
            Policy {
                max_seen_per_sender: 0,
                ..p
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
