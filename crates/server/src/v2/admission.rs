//! Who may open a device session and make requests, per device and across
//! all its sessions, so that reconnecting resets nothing:
//!
//! * the request budget (`v2_rate_max_requests` per `rate_window_ms`,
//!   acknowledgements free), announced in HELLO;
//! * the person's budget (`v2_person_rate_max_requests` per window): all
//!   devices of one person together, so that enrolling more devices does
//!   not multiply what one person may ask of the relay;
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
use blindrelay_wire::UserName;
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

/// Whose budget a request went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// The device's own.
    Device,
    /// The device's person's (all its devices together).
    Person,
}

#[derive(Default)]
struct Tables {
    budgets: HashMap<DeviceId, SlidingWindow>,
    persons: HashMap<UserName, SlidingWindow>,
    logins: HashMap<DeviceId, SlidingWindow>,
    cooling: HashMap<DeviceId, Instant>,
}

/// The per-device budgets (see the module documentation).
pub(crate) struct Admission {
    budget: (usize, Duration),
    person: usize,
    logins: usize,
    cooldown: Duration,
    tables: Mutex<Tables>,
}

impl Admission {
    /// `budget` requests per window for a device and `person` for all of a
    /// person's devices together, `logins` per the same window, and the
    /// cool-down after a budget is used up.
    pub(crate) fn new(
        budget: (usize, Duration),
        person: usize,
        logins: usize,
        cooldown: Duration,
    ) -> Self {
        Self {
            budget,
            person,
            logins,
            cooldown,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// The request budget: requests per window.
    pub(crate) fn budget(&self) -> (usize, Duration) {
        self.budget
    }

    /// Spends one request of `device`'s budget and of its person's; when
    /// either is used up the device's cool-down starts (the caller closes
    /// the session) and the answer says whose it was.
    pub(crate) fn spend(&self, device: &DeviceId, now: Instant) -> Result<(), Over> {
        let mut t = lock(&self.tables);
        if t.budgets.len() > SWEEP_AT {
            t.budgets.retain(|_, w| !w.is_idle(now));
        }
        if t.persons.len() > SWEEP_AT {
            t.persons.retain(|_, w| !w.is_idle(now));
        }
        let (max, window) = self.budget;
        let person = self.person;
        let verdict = if !t
            .budgets
            .entry(device.clone())
            .or_insert_with(|| SlidingWindow::new(max, window))
            .hit(now)
        {
            Err(Over::Device)
        } else if !t
            .persons
            .entry(device.user.clone())
            .or_insert_with(|| SlidingWindow::new(person, window))
            .hit(now)
        {
            Err(Over::Person)
        } else {
            Ok(())
        };
        if verdict.is_err() {
            if t.cooling.len() > SWEEP_AT {
                t.cooling.retain(|_, until| *until > now);
            }
            t.cooling.insert(device.clone(), now + self.cooldown);
        }
        verdict
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
        let a = Admission::new(
            (2, Duration::from_secs(5)),
            100,
            10,
            Duration::from_secs(30),
        );
        let t0 = Instant::now();
        let (m, b) = (dev("mallory"), dev("bob"));
        assert_eq!(a.budget(), (2, Duration::from_secs(5)));
        // Within the budget: no cool-down.
        assert!(a.spend_ok(&m, t0));
        assert_eq!(a.admit(&m, t0), Ok(()));
        assert!(a.spend_ok(&m, t0));
        assert!(!a.spend_ok(&m, t0));
        assert_eq!(
            a.admit(&m, t0 + Duration::from_secs(29)),
            Err(NotNow::CoolingDown)
        );
        assert_eq!(a.admit(&b, t0), Ok(()));
        // A refused login does not restart it.
        assert_eq!(a.admit(&m, t0 + Duration::from_secs(30)), Ok(()));
    }

    #[test]
    fn the_tables_drop_only_idle_entries_once_past_their_bound() {
        let a = Admission::new(
            (1, Duration::from_secs(5)),
            100_000,
            1,
            Duration::from_secs(30),
        );
        let t0 = Instant::now();
        let many: Vec<DeviceId> = (0..=SWEEP_AT)
            .map(|i| DeviceId {
                user: UserName::new(&format!("u{i}")).unwrap(),
                device: DeviceName::new("d").unwrap(),
            })
            .collect();
        for d in &many {
            assert!(a.spend_ok(d, t0));
            assert!(!a.spend_ok(d, t0)); // each cools down
            assert_eq!(a.admit(d, t0), Err(NotNow::CoolingDown));
        }
        let busy = dev("busy");
        assert!(a.spend_ok(&busy, t0));
        let sizes = |a: &Admission| {
            let t = lock(&a.tables);
            (t.budgets.len(), t.cooling.len(), t.logins.len())
        };
        let persons = |a: &Admission| lock(&a.tables).persons.len();
        assert_eq!(sizes(&a), (SWEEP_AT + 2, SWEEP_AT + 1, 0));
        assert_eq!(persons(&a), SWEEP_AT + 2);
        // Later, every earlier entry is idle or over: the next use sweeps
        // them, and what still counts stays.
        let later = t0 + Duration::from_secs(31);
        assert!(a.spend_ok(&busy, later));
        assert!(!a.spend_ok(&busy, later), "busy's window still counts");
        let (budgets, cooling, _) = sizes(&a);
        assert_eq!(budgets, 1);
        assert_eq!(persons(&a), 1, "idle persons' windows swept");
        assert_eq!(cooling, 1, "only busy cools down now");
        for d in &many[..=SWEEP_AT] {
            assert_eq!(a.admit(d, later), Ok(()));
        }
        assert_eq!(sizes(&a).2, SWEEP_AT + 1);
        let much_later = later + Duration::from_secs(31);
        assert_eq!(a.admit(&busy, much_later), Ok(()));
        assert_eq!(sizes(&a).2, 1, "idle login windows swept");
    }

    impl Admission {
        fn spend_ok(&self, d: &DeviceId, now: Instant) -> bool {
            self.spend(d, now).is_ok()
        }
    }

    #[test]
    fn a_persons_devices_share_the_persons_budget_and_only_the_device_over_it_cools_down() {
        let a = Admission::new((3, Duration::from_secs(5)), 4, 10, Duration::from_secs(30));
        let t0 = Instant::now();
        let laptop = dev("mallory");
        let phone = DeviceId {
            user: laptop.user.clone(),
            device: DeviceName::new("phone").unwrap(),
        };
        for _ in 0..3 {
            assert_eq!(a.spend(&laptop, t0), Ok(()));
        }
        assert_eq!(a.spend(&phone, t0), Ok(()));
        assert_eq!(
            a.spend(&phone, t0),
            Err(Over::Person),
            "within its own budget, over its person's"
        );
        assert_eq!(a.admit(&phone, t0), Err(NotNow::CoolingDown));
        // Someone else is not touched; the person's window moves on.
        assert_eq!(a.spend(&dev("bob"), t0), Ok(()));
        assert_eq!(a.spend(&laptop, t0), Err(Over::Device));
        assert_eq!(a.spend(&dev("bob"), t0 + Duration::from_secs(5)), Ok(()));
    }

    #[test]
    fn logins_are_limited_per_device_per_window() {
        let a = Admission::new(
            (100, Duration::from_secs(5)),
            100,
            3,
            Duration::from_secs(30),
        );
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
