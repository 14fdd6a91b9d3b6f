//! Who may open a device session and make requests, per device and across
//! all its sessions, so that reconnecting resets nothing:
//!
//! * the request budget (`v2_rate_max_requests` per `rate_window_ms`,
//!   acknowledgements free), announced in HELLO;
//! * logins (`login_rate_max` new sessions per window);
//! * the cool-down (`cooldown_ms`) after a device used up its budget: its
//!   sessions are closed and new ones refused until it is over. A refused
//!   login does not restart it (a client that reconnects at once is not
//!   locked out for longer; its logins are limited anyway).
//!
//! One entry per enrolled device that logged in; past [`SWEEP_AT`] entries
//! the idle ones are dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use blindrelay_ds::DeviceId;
use tokio::time::Instant;

use super::lock;
use crate::rate::SlidingWindow;

/// Past this many devices in a table, idle entries are dropped.
pub(crate) const SWEEP_AT: usize = 10_000;

/// Why a device may not open a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotNow {
    /// More logins in the window than `login_rate_max`.
    TooManyLogins,
    /// It used up its request budget; the cool-down is not over.
    CoolingDown,
}

#[derive(Default)]
struct Tables {
    budgets: HashMap<DeviceId, SlidingWindow>,
    logins: HashMap<DeviceId, SlidingWindow>,
    cooling: HashMap<DeviceId, Instant>,
}

/// The per-device budgets (see the module documentation).
pub(crate) struct Admission {
    budget: (usize, Duration),
    logins: usize,
    cooldown: Duration,
    tables: Mutex<Tables>,
}

impl Admission {
    /// `budget` requests per window, `logins` per the same window, and the
    /// cool-down after a budget is used up.
    pub(crate) fn new(budget: (usize, Duration), logins: usize, cooldown: Duration) -> Self {
        Self {
            budget,
            logins,
            cooldown,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// The request budget: requests per window.
    pub(crate) fn budget(&self) -> (usize, Duration) {
        self.budget
    }

    /// Spends one request of `device`'s budget; false when it is used up:
    /// its cool-down starts (the caller closes the session).
    pub(crate) fn spend(&self, device: &DeviceId, now: Instant) -> bool {
        let mut t = lock(&self.tables);
        if t.budgets.len() > SWEEP_AT {
            t.budgets.retain(|_, w| !w.is_idle(now));
        }
        let (max, window) = self.budget;
        let ok = t
            .budgets
            .entry(device.clone())
            .or_insert_with(|| SlidingWindow::new(max, window))
            .hit(now);
        if !ok {
            if t.cooling.len() > SWEEP_AT {
                t.cooling.retain(|_, until| *until > now);
            }
            t.cooling.insert(device.clone(), now + self.cooldown);
        }
        ok
    }

    /// Whether `device` may open a session now (counted as a login if so).
    pub(crate) fn admit(&self, device: &DeviceId, now: Instant) -> Result<(), NotNow> {
        let mut t = lock(&self.tables);
        if let Some(until) = t.cooling.get(device) {
            if *until > now {
                return Err(NotNow::CoolingDown);
            }
            t.cooling.remove(device);
        }
        if t.logins.len() > SWEEP_AT {
            t.logins.retain(|_, w| !w.is_idle(now));
        }
        let (_, window) = self.budget;
        let max = self.logins;
        if t.logins
            .entry(device.clone())
            .or_insert_with(|| SlidingWindow::new(max, window))
            .hit(now)
        {
            Ok(())
        } else {
            Err(NotNow::TooManyLogins)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindrelay_pki::DeviceName;
    use blindrelay_wire::UserName;

    fn dev(u: &str) -> DeviceId {
        DeviceId {
            user: UserName::new(u).unwrap(),
            device: DeviceName::new("laptop").unwrap(),
        }
    }

    #[test]
    fn a_device_that_used_up_its_budget_cools_down_and_others_do_not() {
        let a = Admission::new((2, Duration::from_secs(5)), 10, Duration::from_secs(30));
        let t0 = Instant::now();
        let (m, b) = (dev("mallory"), dev("bob"));
        assert!(a.spend(&m, t0) && a.spend(&m, t0));
        assert!(!a.spend(&m, t0));
        assert_eq!(
            a.admit(&m, t0 + Duration::from_secs(29)),
            Err(NotNow::CoolingDown)
        );
        assert_eq!(a.admit(&b, t0), Ok(()));
        // A refused login does not restart it.
        assert_eq!(a.admit(&m, t0 + Duration::from_secs(30)), Ok(()));
    }

    #[test]
    fn logins_are_limited_per_device_per_window() {
        let a = Admission::new((100, Duration::from_secs(5)), 3, Duration::from_secs(30));
        let t0 = Instant::now();
        let m = dev("mallory");
        for _ in 0..3 {
            assert_eq!(a.admit(&m, t0), Ok(()));
        }
        assert_eq!(a.admit(&m, t0), Err(NotNow::TooManyLogins));
        assert_eq!(a.admit(&dev("bob"), t0), Ok(()));
        assert_eq!(a.admit(&m, t0 + Duration::from_secs(5)), Ok(()));
    }
}
