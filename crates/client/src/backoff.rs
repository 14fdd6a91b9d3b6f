//! When to try the relay again: exponential backoff with jitter after a
//! lost connection, and the cool-down the relay announced when it refused
//! a login (waited out rather than retried into).

use std::time::Duration;

use blindrelay_wire::GoodbyeCode;

use crate::ClientError;

/// First reconnection delay; doubles up to [`BACKOFF_MAX`], with ±50 % jitter.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest reconnection delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest wait for a cool-down the relay announced when refusing a login.
pub const COOL_DOWN_MAX_WAIT: Duration = Duration::from_secs(300);

/// The next reconnection delay.
pub(crate) struct Backoff {
    pub(crate) next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: BACKOFF_START,
        }
    }
}

impl Backoff {
    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    pub(crate) fn delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let mut b = [0u8; 1];
        let _ = blindrelay_e2e::seal::fill_random(&mut b);
        // Jitter in [0.5, 1.5) so that clients dropped together do not
        // come back together.
        base.mul_f64(0.5 + f64::from(b[0]) / 256.0)
    }
}

/// The time left of a cool-down the relay refused the login for (its
/// reason says `retry in N s`), at most [`COOL_DOWN_MAX_WAIT`]. Waiting
/// that long instead of retrying sooner gets the client in when the
/// cool-down ends (informative: a relay could refuse anyway).
pub(crate) fn cool_down_left(e: &ClientError) -> Option<Duration> {
    let ClientError::Refused {
        code: GoodbyeCode::CoolDown,
        reason,
    } = e
    else {
        return None;
    };
    let secs: u64 = reason
        .split("retry in ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(COOL_DOWN_MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: GoodbyeCode, reason: &str) -> ClientError {
        ClientError::Refused {
            code,
            reason: reason.into(),
        }
    }

    #[test]
    fn a_cool_down_refusal_is_waited_out_for_the_time_it_names() {
        let e = refused(GoodbyeCode::CoolDown, "rate limit cool-down, retry in 7 s");
        assert_eq!(cool_down_left(&e), Some(Duration::from_secs(7)));
        let far = refused(
            GoodbyeCode::CoolDown,
            "rate limit cool-down, retry in 99999 s",
        );
        assert_eq!(cool_down_left(&far), Some(COOL_DOWN_MAX_WAIT));
        for other in [
            refused(GoodbyeCode::CoolDown, "rate limit cool-down"),
            refused(GoodbyeCode::RateLimited, "retry in 7 s"),
            ClientError::ClosedByRelay,
        ] {
            assert_eq!(cool_down_left(&other), None, "{other}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_bound_with_jitter() {
        let mut b = Backoff::default();
        let first = b.delay();
        assert!(first >= BACKOFF_START / 2 && first < BACKOFF_START * 3 / 2);
        for _ in 0..20 {
            assert!(b.delay() < BACKOFF_MAX * 3 / 2);
        }
        assert_eq!(b.next, BACKOFF_MAX);
        b.reset();
        assert_eq!(b.next, BACKOFF_START);
    }
}
