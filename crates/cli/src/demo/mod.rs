//! `blindrelay demo`: the whole system in one process, on a fresh machine,
//! with no arguments. It prints what the users read beside what the relay
//! saw, then runs the original report's attacks and a malicious relay's,
//! and exits 0 only if every property held.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use blindrelay_adversary::attacks::{self, Outcome};
use blindrelay_adversary::evil_relay::{EvilRelay, Tamper};
use blindrelay_server::{Config, Observed};
use blindrelay_testkit::user::Shown;
use blindrelay_testkit::{TestPki, TestRelay, User};
use blindrelay_wire::{GoodbyeCode, Target};
use clap::Args;
use tokio::sync::mpsc;

use crate::ui::sanitize;
use crate::user_name;

mod v2;
mod v2_relay;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Characters in the long (multi-fragment) message, at most 65536 (one
    /// message holds 64 KiB).
    #[arg(long, default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    long_chars: u32,
}

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(800);

struct Report {
    passed: usize,
    failed: Vec<String>,
}

impl Report {
    fn check(&mut self, what: &str, detail: &str, ok: bool) {
        let mark = if ok { "PASS" } else { "FAIL" };
        println!("  {what:<46} {mark}  {}", sanitize(detail));
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(what.to_string());
        }
    }
}

fn preview(b: &[u8]) -> String {
    let n = b.len().min(24);
    base64::engine::general_purpose::STANDARD.encode(b.get(..n).unwrap_or_default())
}

fn target(t: &Target) -> String {
    match t {
        Target::Everyone => "everyone".into(),
        Target::Users(u) => u.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
    }
}

fn drain(obs: &mut mpsc::Receiver<Observed>) -> Vec<Observed> {
    let mut v = vec![];
    while let Ok(o) = obs.try_recv() {
        v.push(o);
    }
    v
}

fn side_by_side(left: &str, seen: &[Observed]) {
    let right: Vec<String> = if seen.is_empty() {
        vec!["(nothing)".into()]
    } else if seen.len() <= 2 {
        seen.iter()
            .map(|o| {
                format!(
                    "{} -> {} frag {}/{} {} B \"{}...\"",
                    o.sender,
                    target(&o.target),
                    o.fragment.index() + 1,
                    o.fragment.count(),
                    o.payload.len(),
                    preview(&o.payload)
                )
            })
            .collect()
    } else if let Some(first) = seen.first() {
        vec![
            format!(
                "{} -> {} {} fragments, {} B of ciphertext",
                first.sender,
                target(&first.target),
                seen.len(),
                seen.iter().map(|o| o.payload.len()).sum::<usize>()
            ),
            format!("first: \"{}...\"", preview(&first.payload)),
        ]
    } else {
        vec![]
    };
    let left: Vec<String> = left.lines().map(str::to_string).collect();
    for i in 0..left.len().max(right.len()) {
        println!(
            "  {:<50} | {}",
            left.get(i).map(String::as_str).unwrap_or(""),
            right.get(i).map(String::as_str).unwrap_or("")
        );
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        format!("\"{s}\"")
    } else {
        format!(
            "\"{}...\" ({} chars)",
            s.chars().take(n).collect::<String>(),
            s.chars().count()
        )
    }
}

/// A malicious relay and users connected to it (the first one waits until
/// it sees every other one online).
async fn evil_world(
    pki: &TestPki,
    tamper: Tamper,
    names: &[&str],
) -> Result<(EvilRelay, Vec<User>)> {
    let evil = EvilRelay::start(&pki.pki, tamper).await?;
    let addr = evil.addr.to_string();
    let mut users = Vec::new();
    for n in names {
        users.push(User::connect(pki, n, &addr).await?);
    }
    if let Some((first, rest)) = names.split_first()
        && let Some(u) = users.first_mut()
    {
        for other in rest {
            if other != first {
                u.wait_online(other).await?;
            }
        }
    }
    Ok((evil, users))
}

pub(crate) async fn run(args: DemoArgs) -> Result<()> {
    println!(
        "=== blindrelay demo: end-to-end encryption through a relay that can read nothing ===\n"
    );
    let pki = TestPki::named("blindrelay demo CA", &["alice", "bob", "carol", "mallory"])?;
    println!(
        "[1] private PKI in {}: root CA (P-384), relay certificate, users alice, bob, carol, mallory",
        pki.path().display()
    );

    let mut relay = TestRelay::builder(&pki)
        .config(Config::default())
        .observed()
        .start()
        .await?;
    let addr = relay.address();
    let mut observed = relay.take_observed().context("the relay's observer")?;
    println!(
        "[2] relay listening on {addr}: mutual TLS 1.3 only, 4096-byte frames, 10 messages / 5 s"
    );

    let mut alice = User::connect(&pki, "alice", &addr).await?;
    let mut bob = User::connect(&pki, "bob", &addr).await?;
    let mut carol = User::connect(&pki, "carol", &addr).await?;
    for u in [&mut alice, &mut bob, &mut carol] {
        for other in ["alice", "bob", "carol"] {
            if other != u.name.as_str() {
                u.wait_online(other).await?;
            }
        }
    }
    println!(
        "[3] alice, bob and carol connected; each verified the others' certificates against the CA and pinned them\n"
    );

    let mut report = Report {
        passed: 0,
        failed: vec![],
    };
    println!(
        "[4] messages: what the users read{:<18}| what the relay saw (routing header + ciphertext)",
        ""
    );
    println!("  {:-<50}-+-{:-<60}", "", "");
    let mut all_plain: Vec<String> = vec![];
    let mut all_seen: Vec<Observed> = vec![];

    // alice -> bob, short
    let text = "Hello Bob!";
    alice
        .handle
        .send(vec![bob.name.clone()], text.into(), false)
        .await?;
    let Shown {
        from, text: got, ..
    } = bob.message().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = drain(&mut observed);
    side_by_side(&format!("bob reads from {from}: {}", clip(&got, 30)), &seen);
    all_seen.extend(seen);
    let ok_short = got == text && from.as_str() == "alice";
    all_plain.push(text.into());

    // bob -> alice, short
    let text = "Hello Alice!";
    bob.handle
        .send(vec![alice.name.clone()], text.into(), false)
        .await?;
    let Shown {
        from, text: got, ..
    } = alice.message().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = drain(&mut observed);
    side_by_side(
        &format!("alice reads from {from}: {}", clip(&got, 30)),
        &seen,
    );
    all_seen.extend(seen);
    let ok_back = got == text && from.as_str() == "bob";
    all_plain.push(text.into());

    // alice -> bob, long, multi-fragment
    let long: String = "Very long sentence to demonstrate that an attacker cannot analyze traffic based on the size of the messages sent. "
        .chars()
        .cycle()
        .take(usize::try_from(args.long_chars).unwrap_or(usize::MAX))
        .collect();
    alice
        .handle
        .send(vec![bob.name.clone()], long.clone(), false)
        .await?;
    let Shown { text: got, .. } = bob.message().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen_long = drain(&mut observed);
    side_by_side(
        &format!(
            "bob reads {} chars, identical: {}",
            got.chars().count(),
            got == long
        ),
        &seen_long,
    );
    let ok_long = got == long && seen_long.len() > 1;
    let long_fragments = seen_long.len();
    all_seen.extend(seen_long);
    all_plain.push("Very long sentence".into());

    // alice -> room
    let text = "Hi everyone, this is the shared room.";
    let online = alice.handle.online().await?;
    alice.handle.send(online, text.into(), true).await?;
    let Shown {
        text: b,
        room: broom,
        ..
    } = bob.message().await?;
    let Shown {
        text: c,
        room: croom,
        ..
    } = carol.message().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = drain(&mut observed);
    side_by_side(
        &format!("bob and carol read in the room:\n{}", clip(&b, 40)),
        &seen,
    );
    all_seen.extend(seen);
    let ok_room = b == text && c == text && broom && croom;
    all_plain.push("shared room".into());
    println!();
    report.check(
        "short message alice -> bob",
        "delivered and verified",
        ok_short,
    );
    report.check(
        "short message bob -> alice",
        "delivered and verified",
        ok_back,
    );
    report.check(
        "long message in several 4096-byte frames",
        &format!("{long_fragments} fragments, reassembled exactly"),
        ok_long,
    );
    report.check(
        "room message to everyone online",
        "bob and carol read it",
        ok_room,
    );
    // The relay never saw any plaintext, in any payload it relayed.
    let mut leaked = false;
    for o in &all_seen {
        for p in &all_plain {
            if o.payload.windows(p.len()).any(|w| w == p.as_bytes()) {
                leaked = true;
            }
        }
    }
    report.check(
        "the relay saw only ciphertext",
        "no plaintext in any relayed payload",
        !leaked,
    );

    println!("\n[5] the report's attacks against the relay");
    let o = attacks::no_certificate(&addr, &pki.pki).await?;
    report.check(
        "client without a certificate",
        &o.to_string(),
        matches!(o, Outcome::Refused(_)),
    );
    let mallory = user_name("mallory")?;
    let o = attacks::oversized_payload(&addr, &pki.pki, &mallory).await?;
    report.check(
        "oversized 5000-byte payload",
        &o.to_string(),
        matches!(
            o,
            Outcome::Disconnected(Some(GoodbyeCode::ProtocolViolation))
        ),
    );
    let o = attacks::forged_sender(&addr, &pki.pki, &mallory, &alice.name, &bob.name).await?;
    let (msgs, _) = bob.quiet(QUIET).await;
    report.check(
        "forged sender (mallory claims to be alice)",
        &format!("{o}; bob received {} message(s)", msgs.len()),
        o == Outcome::Silence && msgs.is_empty(),
    );
    let (sent, o) = attacks::flood(&addr, &pki.pki, &mallory, &bob.name, 11).await?;
    report.check(
        "flood: 11 messages in 5 s",
        &format!("{sent} sent, {o}"),
        matches!(o, Outcome::Disconnected(Some(GoodbyeCode::RateLimited))),
    );
    let o = attacks::reconnect(&addr, &pki.pki, &mallory).await?;
    report.check(
        "flooder reconnects at once",
        &o.to_string(),
        matches!(o, Outcome::Disconnected(Some(GoodbyeCode::CoolDown))),
    );
    let (msgs, _) = bob.quiet(QUIET).await;
    report.check(
        "bob saw none of mallory's junk as a message",
        &format!("{} message(s) shown", msgs.len()),
        msgs.is_empty(),
    );

    println!("\n[6] a malicious relay (it holds the real server key) attacks the users");
    // Replay.
    let (evil, mut u) = evil_world(&pki, Tamper::Replay, &["alice", "bob"]).await?;
    let [a, b] = &mut u[..] else { bail!("users") };
    a.handle
        .send(vec![b.name.clone()], "pay carol 100 EUR".into(), false)
        .await?;
    let Shown { text: got, .. } = b.message().await?;
    let w = b.warning().await?;
    evil.replay_all();
    let (msgs, more) = b.quiet(QUIET).await;
    report.check(
        "replayed envelope",
        &format!("shown once ({got:?}); copies rejected: {w}"),
        msgs.is_empty() && w.contains("replayed") && more.iter().all(|m| m.contains("replayed")),
    );
    drop((u, evil));

    // Tampering.
    let (evil, mut u) = evil_world(&pki, Tamper::FlipBit, &["alice", "bob"]).await?;
    let [a, b] = &mut u[..] else { bail!("users") };
    a.handle
        .send(vec![b.name.clone()], "pay carol 100 EUR".into(), false)
        .await?;
    let w = b.warning().await?;
    let (msgs, _) = b.quiet(QUIET).await;
    report.check(
        "tampered envelope (one bit flipped)",
        &w,
        msgs.is_empty() && w.contains("could not be authenticated or decrypted"),
    );
    drop((u, evil));

    // Forged sender by the relay.
    let tamper = Tamper::ForgeSender(user_name("carol")?);
    let (evil, mut u) = evil_world(&pki, tamper, &["bob", "carol", "alice"]).await?;
    let [b, c, a] = &mut u[..] else {
        bail!("users")
    };
    a.wait_online("bob").await?;
    a.handle
        .send(vec![b.name.clone()], "from alice".into(), false)
        .await?;
    let w = b.warning().await?;
    let (msgs, _) = b.quiet(QUIET).await;
    report.check(
        "relay claims another sender",
        &w,
        msgs.is_empty() && w.contains("sender does not match"),
    );
    let _ = c.quiet(QUIET).await;
    drop((u, evil));

    // Re-targeting.
    let tamper = Tamper::Retarget(user_name("carol")?);
    let (evil, mut u) = evil_world(&pki, tamper, &["alice", "bob", "carol"]).await?;
    let [a, b, c] = &mut u[..] else {
        bail!("users")
    };
    a.handle
        .send(vec![b.name.clone()], "for bob only".into(), false)
        .await?;
    let Shown { text: got, .. } = b.message().await?;
    let w = c.warning().await?;
    let (msgs, _) = c.quiet(QUIET).await;
    report.check(
        "relay re-targets bob's message to carol",
        &format!("bob reads {got:?}; carol: {w}"),
        msgs.is_empty() && w.contains("not addressed to me"),
    );
    drop((u, evil));

    // Key swap: the relay hands out mallory's certificate as bob's.
    let mallory_cert = blindrelay_pki::store::read_cert_der(&pki.pki.user_cert_path(&mallory))?;
    let tamper = Tamper::SwapCert {
        victim: user_name("bob")?,
        cert_der: mallory_cert,
    };
    // Only alice connects first: she must see bob (with the swapped key) join.
    let (evil, mut u) = evil_world(&pki, tamper, &["alice"]).await?;
    let _b = User::connect(&pki, "bob", &evil.addr.to_string()).await?;
    let [a] = &mut u[..] else { bail!("users") };
    let w = a.warning().await?;
    let send = a
        .handle
        .send(vec![user_name("bob")?], "secret".into(), false)
        .await;
    report.check(
        "relay swaps bob's public key for mallory's",
        &format!(
            "{w} / sending: {}",
            match &send {
                Ok(_) => "SENT (bad)".to_string(),
                Err(e) => format!("refused ({e})"),
            }
        ),
        w.contains("REFUSED") && send.is_err(),
    );
    drop((u, evil));

    relay.stop().await?;

    println!(
        "\n[7] protocol v2 (MLS, RFC 9420) groups of devices; the relay's ordering played in process"
    );
    v2::run(&pki, &mut report)?;
    println!("\n[8] protocol v2 through a relay: the relay as MLS Delivery Service");
    v2_relay::run(&pki, &mut report).await?;
    println!();
    if report.failed.is_empty() {
        println!("All {} properties held.", report.passed);
        Ok(())
    } else {
        bail!(
            "{} propert(y/ies) FAILED: {}",
            report.failed.len(),
            report.failed.join("; ")
        )
    }
}
