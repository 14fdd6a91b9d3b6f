//! The demo's protocol v2 over the relay: devices connect to a real relay
//! with their device certificates, and the relay, as MLS Delivery Service,
//! orders what they send and refuses what it must.

use std::time::Duration;

use anyhow::{Context, Result};
use blindrelay_client::v2::{Link, Member, V2Event};
use blindrelay_ds::{Down, Refusal, RefusalCode, Request, Submission};
use blindrelay_testkit::{TestPki, TestRelay};

use super::Report;
use crate::user_name;

async fn device(pki: &TestPki, user: &str, dev: &str, addr: &str) -> Result<Member> {
    let dir = pki.path().join("v2-relay").join(format!("{user}-{dev}"));
    let cfg = pki.device(user, dev, &dir, addr)?;
    Ok(Member::connect(&cfg, &dir.join("mls.db")).await?)
}

/// The texts `m` reads within two seconds.
async fn read(m: &mut Member) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < end {
        for e in m.sync(Duration::from_millis(100)).await? {
            if let V2Event::Message { text, .. } = e {
                out.push(text);
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    Ok(out)
}

pub(super) async fn run(pki: &TestPki, report: &mut Report) -> Result<()> {
    let config = blindrelay_server::Config {
        rate_max_messages: 100,
        ..blindrelay_testkit::relay::config()
    };
    let relay = TestRelay::with_config(pki, config).await?;
    let addr = relay.address();
    let mut al = device(pki, "alice", "laptop", &addr).await?;
    let mut bl = device(pki, "bob", "laptop", &addr).await?;
    let mut bp = device(pki, "bob", "phone", &addr).await?;
    println!(
        "  relay on {addr}; devices alice@laptop, bob@laptop, bob@phone connected with their device certificates"
    );

    let (g, _) = al.create_group(None, &[user_name("bob")?]).await?;
    al.send(&g, "Hello over MLS").await?;
    let (l, p) = (read(&mut bl).await?, read(&mut bp).await?);
    report.check(
        "v2 through the relay: one-to-one message",
        "both of bob's devices read it",
        l == ["Hello over MLS"] && p == ["Hello over MLS"],
    );

    // Three devices commit at once: the relay takes one per epoch, the
    // others rebase and retry; all end with one history.
    let (ra, rb, rc) = tokio::join!(al.update(&g), bl.update(&g), bp.update(&g));
    let raced = ra.is_ok() && rb.is_ok() && rc.is_ok();
    for d in [&mut al, &mut bl, &mut bp] {
        d.sync(Duration::from_millis(300)).await?;
    }
    let auth = al.device().epoch_authenticator(&g)?;
    let same = bl.device().epoch_authenticator(&g)? == auth
        && bp.device().epoch_authenticator(&g)? == auth;
    report.check(
        "v2: three commits at once",
        "the relay orders them; every device ends at the same epoch",
        raced && same,
    );

    // A device that is not in the group posts to it (a well-formed MLS
    // message; the relay cannot read it either way).
    let epoch = al.device().epoch(&g)?;
    let dir = pki.path().join("v2-relay").join("mallory-x");
    let cfg = pki.device("mallory", "x", &dir, &addr)?;
    let mut m = Link::connect(&cfg, &cfg.load_key()?).await?;
    let post = Submission::Message {
        group_id: g.clone(),
        epoch,
        message: blindrelay_adversary::forge::private_message(&g, epoch, 64),
    };
    let answer = m.request(Request::Submit(post)).await?;
    report.check(
        "v2: a stranger posts to the group",
        "the relay refuses it (not a member)",
        matches!(
            answer,
            Down::Refused {
                why: Refusal::Rules(RefusalCode::NotAMember),
                ..
            }
        ),
    );

    // A member submits a commit that no member could apply (issue 28's
    // "bricked group"): the relay checks it against the group's public
    // state and refuses it, and the group talks on.
    let dir = pki.path().join("v2-relay").join("bob-phone");
    let cfg = blindrelay_client::ClientConfig::from_dir(&dir, user_name("bob")?, &addr);
    let mut raw = Link::connect(&cfg, &cfg.load_key()?).await?;
    let members = [al.me().clone(), bl.me().clone(), bp.me().clone()].into();
    let junk = Submission::Commit {
        group_id: g.clone(),
        epoch,
        members,
        commit: vec![0x42; 300],
        welcome: None,
        group_info: None,
    };
    let answer = raw.request(Request::Submit(junk)).await?;
    al.send(&g, "still one group").await?;
    let l = read(&mut bl).await?;
    report.check(
        "v2: a member's commit nobody can apply",
        "the relay checks it against the group's public state, refuses it; the group talks on",
        matches!(
            answer,
            Down::Refused {
                why: Refusal::Rules(RefusalCode::Unverified),
                ..
            }
        ) && l == ["still one group"],
    );
    relay.stop().await.context("stopping the relay")?;
    Ok(())
}
