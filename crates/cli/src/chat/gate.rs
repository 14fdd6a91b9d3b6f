//! Backpressure in `chat --json`, for both protocols: once the outbox
//! holds [`MAX_OUTBOX_WAITING`] messages the relay has not taken, the chat
//! reads no further command until it is down to [`RESUME_AT`]. A script
//! sees `outbox_full` and later `outbox_ready` (each with `waiting`), and
//! meanwhile its writes block once the pipe is full: it is slowed down,
//! nothing it handed over is dropped, and the outbox does not grow without
//! limit.

use std::time::Duration;

use blindrelay_client::store::MAX_OUTBOX_WAITING;
use serde_json::{Value, json};

/// Reading resumes once the outbox is down to this many (a tenth below
/// the bound, so that a script writing steadily is not told at every
/// message).
pub(crate) const RESUME_AT: u64 = MAX_OUTBOX_WAITING - MAX_OUTBOX_WAITING / 10;
/// How often a paused chat looks at the outbox again.
pub(crate) const RECHECK: Duration = Duration::from_millis(200);

/// Whether the chat reads commands now.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    full: bool,
}

impl Gate {
    /// With `waiting` messages in the outbox: whether to read commands,
    /// and the event to print if that changed.
    pub(crate) fn check(&mut self, waiting: u64) -> (bool, Option<Value>) {
        let full = if self.full {
            waiting > RESUME_AT
        } else {
            waiting >= MAX_OUTBOX_WAITING
        };
        let event = match (self.full, full) {
            (false, true) => Some(json!({"event": "outbox_full", "waiting": waiting})),
            (true, false) => Some(json!({"event": "outbox_ready", "waiting": waiting})),
            _ => None,
        };
        self.full = full;
        (!full, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_stops_at_the_bound_and_resumes_a_tenth_below_it_saying_so_once_each() {
        let mut g = Gate::default();
        assert_eq!(g.check(0), (true, None));
        assert_eq!(g.check(MAX_OUTBOX_WAITING - 1), (true, None));
        let (read, ev) = g.check(MAX_OUTBOX_WAITING);
        assert!(!read);
        assert_eq!(ev.unwrap()["event"], "outbox_full");
        assert_eq!(g.check(MAX_OUTBOX_WAITING - 1), (false, None));
        assert_eq!(g.check(RESUME_AT + 1), (false, None));
        let (read, ev) = g.check(RESUME_AT);
        assert!(read);
        assert_eq!(ev.unwrap()["waiting"], RESUME_AT);
        assert_eq!(g.check(RESUME_AT + 1), (true, None));
    }
}
