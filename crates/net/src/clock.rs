//! The wall clock, in the unit the protocol uses.
//!
//! The sans-I/O crates never read the clock: their callers pass the time in,
//! which is what lets tests replay any moment. This is the one place the
//! relay and the clients read it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
