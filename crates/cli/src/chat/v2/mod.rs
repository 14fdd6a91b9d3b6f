//! `blindrelay chat` for a device (protocol v2): the line client and
//! machine mode (`--json`) over one [`V2Session`].
//!
//! One loop reads commands and, between them and at least every
//! [`POLL`], processes what the relay delivered; each event is printed as
//! a JSON line (`--json`) or a line of text. A lost connection is retried
//! every [`RETRY`] until it is back or the user leaves. On a terminal the
//! full-screen client runs instead (`crate::tui::v2`), over the same
//! session.

pub(crate) mod action;
mod parse;
#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::Result;
use blindrelay_client::ClientConfig;
use blindrelay_client::v2::{Member, RejoinBlocked, V2Event};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::chat::action::Outcome;
use action::{V2Action, V2Session, label, parse_json, parse_line};

/// How often the relay's deliveries are looked at while no command comes.
pub const POLL: Duration = Duration::from_millis(100);
/// How long to wait between reconnection attempts.
pub const RETRY: Duration = Duration::from_secs(2);

/// The device's MLS state file, beside the v1 state in its directory.
pub(crate) fn state_path(cfg: &ClientConfig) -> std::path::PathBuf {
    match &cfg.state {
        Some(s) => s.with_file_name("mls.db"),
        None => cfg.cert.with_file_name("mls.db"),
    }
}

/// What a user is told when a group is behind (see [`V2Event::Behind`]).
pub(crate) const BEHIND_TEXT: &str = "messages arrived from a later epoch than this device has reached: \
the relay has not delivered a change to the group (withheld or out of order). They are held and shown \
once it arrives; until then nothing is sent in this conversation. If it does not come soon, \
this device re-joins the conversation by itself (what it missed cannot be read then)";
/// What a user is told when the device re-joined (see [`V2Event::Rejoined`]).
pub(crate) const REJOINED_TEXT: &str = "the relay never delivered a change to this conversation, \
so this device re-joined it from the state a member published (checked: signed by a member, \
listing this device). Messages sent while it was cut off cannot be read";
/// What a user is told when the device cannot re-join yet (see
/// [`V2Event::RejoinBlocked`]).
pub(crate) fn rejoin_blocked_text(why: RejoinBlocked) -> String {
    format!(
        "cannot re-join yet: {}; trying again in {} minutes",
        why.describe(),
        blindrelay_client::v2::rejoin::REJOIN_RETRY.as_secs() / 60
    )
}
/// What a user is told when a message came from another history.
pub(crate) const FORK_TEXT: &str = "a message came from another history of this conversation: \
the relay is showing members different changes (a fork), or forged it. It was not read. \
Compare safety numbers (/verify NAME) with the other members and tell your administrator";
/// What a user is told when a member's change stuck a group (see
/// [`V2Event::BadCommit`]), after that member's name.
pub(crate) const BAD_COMMIT_TEXT: &str = "made a change to this conversation that no other member \
can apply (checked: it carries their signature), so it is stuck. One of you makes it again without \
them: /group recreate GROUP NAME";
/// What a user is told when a Welcome would have replaced a held group.
pub(crate) const TAKEOVER_TEXT: &str = "refused an invitation that would have replaced a conversation \
this device is in (someone tried to take it over); the conversation is unchanged";

/// An event as a JSON value (the machine mode's line).
fn event_json(ev: &V2Event, m: &mut Member) -> Value {
    let me = m.me().user.as_str().to_string();
    let conv = |m: &mut Member, g: &[u8]| {
        m.groups()
            .ok()
            .and_then(|gs| gs.into_iter().find(|x| x.id == g).map(|x| label(&x, &me)))
            .unwrap_or_else(|| blindrelay_wire::codec::hex(g))
    };
    let dev = |(u, d): &(String, String)| format!("{u}@{d}");
    let hex = blindrelay_wire::codec::hex;
    match ev {
        V2Event::Message { group, from, text } => json!({"event": "message", "protocol": "v2",
            "conversation": conv(m, group), "group": hex(group),
            "from": from.0, "device": from.1, "text": text}),
        V2Event::Joined { group } => {
            let members: Vec<String> = m
                .groups()
                .ok()
                .and_then(|gs| gs.into_iter().find(|x| x.id == *group))
                .map(|g| g.members.iter().map(dev).collect())
                .unwrap_or_default();
            json!({"event": "joined", "protocol": "v2", "conversation": conv(m, group),
                "group": hex(group), "members": members})
        }
        V2Event::Changed {
            group,
            by,
            added,
            removed,
            renamed,
        } => json!({"event": "membership",
            "conversation": conv(m, group), "group": hex(group), "by": dev(by),
            "added": added.iter().map(dev).collect::<Vec<_>>(),
            "removed": removed.iter().map(dev).collect::<Vec<_>>(), "renamed": renamed}),
        V2Event::RemovedMe { group } => json!({"event": "removed", "group": hex(group)}),
        V2Event::Refused { group } => json!({"event": "refused", "group": hex(group),
            "text": "a delivery failed MLS's checks (a replay, a forgery or a commit that does not apply) and was dropped"}),
        V2Event::Behind { group, at, seen } => json!({"event": "behind", "protocol": "v2",
            "conversation": conv(m, group), "group": hex(group), "epoch": at, "seen": seen,
            "text": BEHIND_TEXT}),
        V2Event::CaughtUp { group, at } => json!({"event": "caught_up", "protocol": "v2",
            "conversation": conv(m, group), "group": hex(group), "epoch": at}),
        V2Event::Forked { group, epoch } => json!({"event": "fork", "protocol": "v2",
            "conversation": conv(m, group), "group": hex(group), "epoch": epoch, "text": FORK_TEXT}),
        V2Event::BadCommit { group, epoch, by } => json!({"event": "bad_commit", "protocol": "v2",
            "conversation": conv(m, group), "group": hex(group), "epoch": epoch, "by": dev(by),
            "text": format!("{} {BAD_COMMIT_TEXT}", dev(by))}),
        V2Event::TakeoverRefused { group } => json!({"event": "takeover_refused", "protocol": "v2",
            "group": hex(group), "text": TAKEOVER_TEXT}),
        V2Event::Rejoined { group, at, unread } => json!({"event": "rejoined", "protocol": "v2",
            "conversation": conv(m, group), "group": hex(group), "epoch": at, "unread": unread,
            "text": REJOINED_TEXT}),
        V2Event::RejoinBlocked { group, why } => json!({"event": "rejoin_blocked",
            "protocol": "v2", "conversation": conv(m, group), "group": hex(group),
            "reason": match why {
                RejoinBlocked::NotPublished => "not_published",
                RejoinBlocked::NotListed => "not_listed",
                RejoinBlocked::Refused => "refused",
            },
            "text": rejoin_blocked_text(*why)}),
        V2Event::MemberRejoined { group, who } => json!({"event": "member_rejoined",
            "protocol": "v2", "conversation": conv(m, group), "group": hex(group),
            "who": dev(who)}),
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON event or answer as a line for a person (`None`: nothing to say).
pub(crate) fn text(v: &Value) -> Option<String> {
    let s = |k: &str| crate::ui::sanitize(v[k].as_str().unwrap_or(""));
    let group_line = |g: &Value| {
        format!(
            "{} (protocol v2, epoch {}): {}",
            crate::ui::sanitize(g["conversation"].as_str().unwrap_or("")),
            g["epoch"],
            strs(&g["members"]).join(", ")
        )
    };
    Some(match v["event"].as_str()? {
        // The text's own lines go behind the continuation bar, as in v1.
        "message" => format!(
            "[{}] {}@{}: {}",
            s("conversation"),
            s("from"),
            s("device"),
            crate::ui::body(v["text"].as_str().unwrap_or(""))
        ),
        "joined" => format!(
            "* you are in {} (protocol v2): {}",
            s("conversation"),
            strs(&v["members"]).join(", ")
        ),
        "membership" => {
            let mut parts = Vec::new();
            let (a, r) = (strs(&v["added"]), strs(&v["removed"]));
            if !a.is_empty() {
                parts.push(format!("added {}", a.join(", ")));
            }
            if !r.is_empty() {
                parts.push(format!("removed {}", r.join(", ")));
            }
            if let Some(n) = v["renamed"].as_str() {
                parts.push(format!("renamed it {}", crate::ui::sanitize(n)));
            }
            if parts.is_empty() {
                parts.push("refreshed their keys".into());
            }
            format!("* [{}] {} {}", s("conversation"), s("by"), parts.join("; "))
        }
        "removed" => "* you were removed from a group; it is gone from this device".into(),
        "refused" | "takeover_refused" => format!("warning: {}", s("text")),
        "fork" | "bad_commit" => format!("WARNING: [{}] {}", s("conversation"), s("text")),
        "behind" => format!(
            "warning: [{}] {} (this device: epoch {}, messages from epoch {})",
            s("conversation"),
            s("text"),
            v["epoch"],
            v["seen"]
        ),
        "rejoined" => format!(
            "warning: [{}] {} ({} unread; epoch {})",
            s("conversation"),
            s("text"),
            v["unread"],
            v["epoch"]
        ),
        "rejoin_blocked" => format!("warning: [{}] {}", s("conversation"), s("text")),
        "member_rejoined" => format!(
            "* [{}] {} re-joined after missing a change",
            s("conversation"),
            s("who")
        ),
        "caught_up" => format!(
            "* [{}] the missing changes arrived; this conversation is up to date (epoch {})",
            s("conversation"),
            v["epoch"]
        ),
        "sent" => return None,
        "groups" => {
            let gs = v["groups"].as_array().cloned().unwrap_or_default();
            if gs.is_empty() {
                "no conversations yet: /msg NAME TEXT or /group create GROUP NAME..".into()
            } else {
                gs.iter().map(group_line).collect::<Vec<_>>().join("\n")
            }
        }
        "group_created" | "group_changed" | "current" => group_line(&v["group"]),
        "devices" => {
            let ds = v["devices"].as_array().cloned().unwrap_or_default();
            let lines: Vec<String> = ds
                .iter()
                .map(|d| {
                    format!(
                        "{}{}: in {}",
                        crate::ui::sanitize(d["device"].as_str().unwrap_or("")),
                        if d["this"].as_bool() == Some(true) {
                            " (this device)"
                        } else {
                            ""
                        },
                        {
                            let g = strs(&d["groups"]);
                            if g.is_empty() {
                                "no group".into()
                            } else {
                                g.join(", ")
                            }
                        }
                    )
                })
                .collect();
            format!(
                "devices of {} with KeyPackages at the relay:\n{}",
                s("user"),
                lines.join("\n")
            )
        }
        "safety_numbers" => {
            let ds = v["devices"].as_array().cloned().unwrap_or_default();
            let lines: Vec<String> = ds
                .iter()
                .map(|d| {
                    format!(
                        "  {}: {}",
                        crate::ui::sanitize(d["device"].as_str().unwrap_or("")),
                        d["number"].as_str().unwrap_or("")
                    )
                })
                .collect();
            format!(
                "safety numbers with each of {}'s devices (compare each with {} over another channel):\n{}",
                s("name"),
                s("name"),
                lines.join("\n")
            )
        }
        "info" => format!(
            "you are {}@{} on {} (protocol v2); current conversation: {}",
            s("identity"),
            s("device"),
            s("server"),
            v["current"].as_str().unwrap_or("none")
        ),
        _ => return None,
    })
}

fn print(json_mode: bool, v: &Value) {
    if json_mode {
        println!("{v}");
    } else if let Some(t) = text(v) {
        println!("{}", crate::ui::for_terminal(&t));
    }
}

/// A command's answer, as JSON or for a person.
fn show_answer(json_mode: bool, v: &Value) {
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    if json_mode {
        println!("{v}");
    } else if field("event") == "info_text" {
        println!("{}", field("text"));
    } else if field("event") == "error" {
        println!("error: {}", crate::ui::sanitize(field("text")));
    } else {
        print(false, v);
    }
}

fn with_req(mut v: Value, req: &Option<String>) -> Value {
    if let (Some(r), Some(o)) = (req, v.as_object_mut()) {
        o.insert("req".into(), json!(r));
    }
    v
}

fn outcome_json(o: Outcome) -> Option<Value> {
    match o {
        Outcome::Nothing | Outcome::Quit => None,
        Outcome::Json(v) => Some(v),
        Outcome::Info(i) => Some(json!({"event": "info_text", "text": i})),
        Outcome::Error(e) => Some(json!({"event": "error", "text": e})),
    }
}

/// Connects, retrying every [`RETRY`] while the relay is unreachable if
/// `retry`.
async fn connect(cfg: &ClientConfig, retry: bool) -> Result<Member> {
    loop {
        match Member::connect(cfg, &state_path(cfg)).await {
            Ok(m) => return Ok(m),
            Err(e) if retry => {
                eprintln!(
                    "cannot reach the relay ({e}); retrying in {} s",
                    RETRY.as_secs()
                );
                tokio::time::sleep(RETRY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Start-up work: read what waited, add this person's new devices to
/// their groups, refresh keys that are due. A connection that fails while
/// reading is connected again (a relay restart or a network glitch in the
/// first moments is not fatal); the other two are retried by the periodic
/// work if they fail.
async fn start(m: &mut Member, cfg: &ClientConfig, json_mode: bool) -> Vec<V2Event> {
    let mut ev = loop {
        match m.sync(Duration::from_millis(300)).await {
            Ok(ev) => break ev,
            Err(e) => {
                print(
                    json_mode,
                    &json!({"event": "reconnecting", "text": format!("{e}")}),
                );
                reconnect(m, cfg).await;
            }
        }
    };
    match m.adopt_own_devices().await {
        Ok(more) => ev.extend(more),
        Err(e) => tracing::warn!(error = %e, "adding this person's new devices failed"),
    }
    match m.update_due().await {
        Ok(more) => ev.extend(more),
        Err(e) => tracing::warn!(error = %e, "the due key refresh failed"),
    }
    ev
}

/// Connects again, retrying every [`RETRY`] until the relay answers.
async fn reconnect(m: &mut Member, cfg: &ClientConfig) {
    while let Err(e) = m.reconnect(cfg).await {
        eprintln!(
            "cannot reach the relay ({e}); retrying in {} s",
            RETRY.as_secs()
        );
        tokio::time::sleep(RETRY).await;
    }
}

pub(crate) async fn run(cfg: ClientConfig, json_mode: bool, full_screen: bool) -> Result<()> {
    let member = match connect(&cfg, true).await {
        Ok(m) => m,
        Err(e) => {
            if json_mode {
                println!(
                    "{}",
                    json!({"event": "error", "fatal": true, "text": format!("{e:#}")})
                );
            }
            return Err(e);
        }
    };
    let mut s = V2Session {
        member,
        config: cfg.clone(),
        current: None,
        server: cfg.server.clone(),
        events: Vec::new(),
    };
    let me = s.member.me().clone();
    print(
        json_mode,
        &json!({"event": "connected", "identity": me.user.as_str(), "device": me.device.as_str(), "protocol": "v2", "server": cfg.server}),
    );
    if !json_mode && !full_screen {
        println!(
            "connected to {} as {me} (protocol v2: MLS); /help lists the commands",
            cfg.server
        );
    }
    let ev = start(&mut s.member, &cfg, json_mode).await;
    s.events.extend(ev);
    if full_screen {
        return crate::tui::v2::run(s, true).await;
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        for e in std::mem::take(&mut s.events) {
            let v = event_json(&e, &mut s.member);
            print(json_mode, &v);
        }
        let mut quit = false;
        tokio::select! {
            l = lines.next_line() => match l {
                Ok(Some(l)) => {
                    let (req, action) = if json_mode {
                        if l.trim().is_empty() { (None, Ok(None)) } else { let (r, a) = parse_json(&l); (r, a.map(Some)) }
                    } else {
                        (None, parse_line(&l))
                    };
                    match action {
                        Ok(Some(V2Action::Quit)) => quit = true,
                        Ok(Some(a)) => {
                            let o = s.perform(a).await;
                            if let Some(v) = outcome_json(o) {
                                show_answer(json_mode, &with_req(v, &req));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => print(json_mode, &with_req(json!({"event": "error", "text": e}), &req)),
                    }
                }
                Ok(None) | Err(_) => quit = true,
            },
            _ = tokio::time::sleep(POLL) => {}
        }
        if quit {
            break;
        }
        match s.member.sync(Duration::ZERO).await {
            Ok(ev) => s.events.extend(ev),
            Err(e) => {
                print(
                    json_mode,
                    &json!({"event": "reconnecting", "text": format!("{e}")}),
                );
                if !json_mode {
                    println!("connection lost ({e}); reconnecting");
                }
                reconnect(&mut s.member, &cfg).await;
                let ev = start(&mut s.member, &cfg, json_mode).await;
                s.events.extend(ev);
            }
        }
    }
    for e in std::mem::take(&mut s.events) {
        let v = event_json(&e, &mut s.member);
        print(json_mode, &v);
    }
    s.member.close().await;
    Ok(())
}
