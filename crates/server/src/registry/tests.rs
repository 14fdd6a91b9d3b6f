//! The registry's rules, driven directly: logins, the session cap,
//! budgets and cool-downs, revocation at login.

use super::*;

fn welcome(name: &UserName) -> Welcome {
    Welcome {
        identity: name.clone(),
        rate_max: 10,
        rate_window_ms: 5000,
        keepalive_ms: 20_000,
        max_fragments: 64,
        store_ttl_s: 3600,
    }
}

/// Tries to log `name` in at `now`, with a certificate whose DER and
/// serial are `cert`.
fn try_log_in(
    r: &Registry,
    name: &str,
    cert: Vec<u8>,
    wants_crl: bool,
    now: Instant,
) -> (Result<Login, Refused>, watch::Receiver<Option<Kill>>) {
    let (kill, rx) = watch::channel(None);
    let n = UserName::new(name).unwrap();
    let creds = Credentials {
        cert_der: cert.clone(),
        serial: cert,
        wants_crl,
    };
    (r.login(&n, creds, &welcome(&n), Arc::new(kill), now), rx)
}

/// Logs `name` in now; panics if refused.
fn log_in(
    r: &Registry,
    name: &str,
    cert: u8,
    wants_crl: bool,
) -> (Login, watch::Receiver<Option<Kill>>) {
    let (l, rx) = try_log_in(r, name, vec![cert], wants_crl, Instant::now());
    (l.unwrap_or_else(|_| panic!("login refused")), rx)
}

/// Every message queued for a session so far.
fn queued(l: &mut Login) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(o) = l.rx.try_recv() {
        if let Outbound::Frame(f) = o {
            out.push(Message::decode(&f[..]).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn the_login_sequence_lists_everyone_else_with_the_crl_for_those_who_asked() {
    let r = Registry::new(&Config::default());
    r.set_crl(&[0x30, 0x03, 1, 2, 3]);
    let (_bob, _) = log_in(&r, "bob", 1, true);
    let (carol, _) = log_in(&r, "carol", 2, true);
    r.logout(&UserName::new("carol").unwrap(), carol.id);
    let (mut alice, _) = log_in(&r, "alice", 3, true);
    let seq = queued(&mut alice);
    assert!(matches!(&seq[0], Message::Welcome(w) if w.identity.as_str() == "alice"));
    assert!(
        matches!(&seq[1], Message::Crl { index: 0, count: 1, chunk } if chunk == &[0x30, 0x03, 1, 2, 3])
    );
    let listed: Vec<(PeerEvent, String)> = seq[2..seq.len() - 1]
        .iter()
        .map(|m| match m {
            Message::Peer { event, name, .. } => (*event, name.to_string()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (PeerEvent::Listed, "bob".to_string()),
            (PeerEvent::Offline, "carol".to_string())
        ]
    );
    assert_eq!(seq.last(), Some(&Message::DirectoryEnd { count: 2 }));
    // Without the ALPN protocol: no CRL frame, now or later.
    let (mut dave, _) = log_in(&r, "dave", 4, false);
    assert!(
        !queued(&mut dave)
            .iter()
            .any(|m| matches!(m, Message::Crl { .. }))
    );
    let _joined = queued(&mut alice);
    r.set_crl(&[0x30, 0x03, 4, 5, 6]);
    assert!(queued(&mut dave).is_empty());
    assert!(matches!(&queued(&mut alice)[..], [Message::Crl { .. }]));
}

#[tokio::test]
async fn a_session_past_the_cap_closes_the_oldest_and_the_last_to_leave_is_announced() {
    let cfg = Config::default();
    let r = Registry::new(&cfg);
    let (mut bob, _) = log_in(&r, "bob", 9, true);
    let mut sessions = Vec::new();
    for _ in 0..cfg.max_sessions_per_identity {
        sessions.push(log_in(&r, "alice", 1, true));
    }
    assert!(sessions.iter().all(|(_, k)| k.borrow().is_none()));
    // Bob heard alice join once: the same certificate is no news.
    let joined = queued(&mut bob)
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                Message::Peer {
                    event: PeerEvent::Joined,
                    ..
                }
            )
        })
        .count();
    assert_eq!(joined, 1);
    let extra = log_in(&r, "alice", 1, true);
    let kill = sessions[0].1.borrow().clone().map(|k| k.code);
    assert_eq!(kill, Some(GoodbyeCode::SessionLimit));
    assert!(sessions[1..].iter().all(|(_, k)| k.borrow().is_none()));
    // A new certificate on a new session is announced again.
    let newer = log_in(&r, "alice", 2, true);
    assert!(queued(&mut bob).iter().any(|m| matches!(
        m,
        Message::Peer {
            event: PeerEvent::Joined,
            ..
        }
    )));
    // Alice leaves only when her last session does.
    let alice = UserName::new("alice").unwrap();
    for (l, _) in sessions.iter().skip(1) {
        r.logout(&alice, l.id);
    }
    r.logout(&alice, extra.0.id);
    assert!(
        !queued(&mut bob)
            .iter()
            .any(|m| matches!(m, Message::PeerLeft { .. }))
    );
    r.logout(&alice, newer.0.id);
    r.logout(&alice, sessions[0].0.id);
    assert_eq!(queued(&mut bob), vec![Message::PeerLeft { name: alice }]);
    assert_eq!(r.online_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn pruning_keeps_every_budget_and_cool_down_that_still_counts() {
    let cfg = Config::default();
    let r = Registry::new(&cfg);
    let alice = UserName::new("alice").unwrap();
    let t0 = Instant::now();
    for _ in 0..cfg.rate_max_messages {
        assert_eq!(r.charge(&alice, Budget::Message, 1, t0), Charge::Allowed);
    }
    // Housekeeping runs every second: it must not forget a full window.
    r.prune(t0 + Duration::from_secs(1));
    assert_eq!(
        r.charge(&alice, Budget::Message, 1, t0 + Duration::from_secs(1)),
        Charge::OverBudget
    );
    let window = Duration::from_millis(cfg.rate_window_ms);
    assert_eq!(
        r.charge(&alice, Budget::Message, 1, t0 + window),
        Charge::Allowed
    );
    // Nor a cool-down.
    r.throttle(&alice, 0, t0, "flood");
    let cooldown = Duration::from_millis(cfg.cooldown_ms);
    r.prune(t0 + cooldown - Duration::from_millis(1));
    assert_eq!(
        r.charge(
            &alice,
            Budget::Ack,
            1,
            t0 + cooldown - Duration::from_millis(1)
        ),
        Charge::CoolingDown
    );
    // Idle windows and spent cool-downs go.
    r.prune(t0 + cooldown + window);
    let g = r.lock();
    assert!(g.windows.is_empty() && g.cooldowns.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cool_down_is_told_and_not_extended_but_a_login_loop_restarts_it() {
    let cfg = Config::default();
    let r = Registry::new(&cfg);
    let t0 = Instant::now();
    for who in ["alice", "bob"] {
        r.throttle(&UserName::new(who).unwrap(), 0, t0, "flood");
    }
    let cooldown = Duration::from_millis(cfg.cooldown_ms);
    let login_at = |who: &str, t: Instant| try_log_in(&r, who, vec![1], true, t).0;
    let left = |who: &str, t: Instant| match login_at(who, t) {
        Err(Refused::CoolDown(left)) => Some(left),
        _ => None,
    };
    // alice tries a second before the end: told so, and in at the end.
    let second = Duration::from_secs(1);
    assert_eq!(left("alice", t0 + cooldown - second), Some(second));
    assert!(login_at("alice", t0 + cooldown).is_ok());
    // bob tries in a loop: past the login budget it starts again.
    let late = t0 + cooldown - Duration::from_millis(100);
    for _ in 0..cfg.login_rate_max {
        assert!(left("bob", late).is_some());
    }
    assert_eq!(left("bob", late), Some(cooldown));
    assert!(left("bob", t0 + cooldown + second).is_some());
    assert!(login_at("bob", late + cooldown + cooldown).is_ok());
}

#[tokio::test]
async fn a_certificate_revoked_during_its_handshake_is_refused_at_login() {
    let r = Registry::new(&Config::default());
    // The CRL changed after the handshake verified the certificate
    // against the previous one.
    r.kill_revoked(&[vec![7u8, 7]].into_iter().collect());
    let login = |serial: Vec<u8>| try_log_in(&r, "alice", serial, true, Instant::now()).0;
    assert!(matches!(login(vec![7, 7]), Err(Refused::Revoked)));
    assert_eq!(r.online_count(), 0);
    // Another certificate of the same user is fine.
    assert!(login(vec![8, 8]).is_ok());
    assert_eq!(r.online_count(), 1);
}

#[tokio::test]
async fn a_flood_cools_the_identity_down_and_closes_its_other_sessions() {
    let r = Registry::new(&Config::default());
    let alice = UserName::new("alice").unwrap();
    let mut kills = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (kill, rx) = watch::channel(None);
        let l = r
            .login(
                &alice,
                Credentials {
                    cert_der: vec![1],
                    serial: vec![1],
                    wants_crl: true,
                },
                &welcome(&alice),
                Arc::new(kill),
                Instant::now(),
            )
            .unwrap_or_else(|_| panic!("login refused"));
        ids.push(l.id);
        kills.push(rx);
    }
    let now = Instant::now();
    assert_eq!(r.charge(&alice, Budget::Message, 10, now), Charge::Allowed);
    assert_eq!(
        r.charge(&alice, Budget::Message, 1, now),
        Charge::OverBudget
    );
    assert_eq!(r.throttle(&alice, ids[0], now, "rate limit exceeded"), 1);
    assert!(kills[0].borrow().is_none(), "the flooder ends itself");
    assert_eq!(
        kills[1]
            .borrow()
            .as_ref()
            .map(|k| (k.code, k.reason.as_str())),
        Some((GoodbyeCode::RateLimited, "rate limit exceeded"))
    );
    // Any budget is closed during the cool-down.
    assert_eq!(r.charge(&alice, Budget::Ack, 1, now), Charge::CoolingDown);
}
