//! What a protocol v2 event says: its JSON object (`--json`), its line of
//! text (the line client, the full-screen client, the narrator), and the
//! warnings' wording, shared by every front end; and the loop timings the
//! front ends share.

use std::time::Duration;

use blindrelay_client::ClientConfig;
use blindrelay_client::v2::{Member, RejoinBlocked, V2Event};
use serde_json::{Value, json};

use super::action::label;

/// How often the periodic work (KeyPackages, re-joins, self-updates) is
/// looked at while neither a command nor the relay says anything.
pub const TICK: Duration = Duration::from_secs(1);
/// How long to wait between reconnection attempts.
pub const RETRY: Duration = Duration::from_secs(2);
/// At the end of its input, `chat` keeps sending what its outbox holds
/// for at most this long before it leaves (what is left goes at this
/// device's next start).
pub const DRAIN_AT_END: Duration = Duration::from_secs(60);

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
pub(crate) fn event_json(ev: &V2Event, m: &mut Member) -> Value {
    let me = m.me().user.as_str().to_string();
    let conv = |m: &mut Member, g: &[u8]| {
        m.group(g)
            .ok()
            .flatten()
            .map(|x| label(&x, &me))
            .unwrap_or_else(|| blindrelay_wire::codec::hex(g))
    };
    let dev = |(u, d): &(String, String)| format!("{u}@{d}");
    let hex = blindrelay_wire::codec::hex;
    match ev {
        V2Event::Message {
            group,
            from,
            id,
            written_ms,
            late,
            text,
        } => json!({"event": "message", "protocol": "v2", "id": id.to_hex(),
            "conversation": conv(m, group), "group": hex(group),
            "from": from.0, "device": from.1, "time_ms": written_ms, "late": late, "text": text}),
        V2Event::Sent { group, id } => json!({"event": "sent", "protocol": "v2",
            "id": id.to_hex(), "conversation": conv(m, group), "group": hex(group)}),
        V2Event::Delivered { group, ids, by } => json!({"event": "delivered",
            "protocol": "v2", "ids": ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            "by": by.0, "device": by.1, "conversation": conv(m, group), "group": hex(group)}),
        V2Event::Undelivered { group, id, why } => json!({"event": "undelivered",
            "protocol": "v2", "id": id.to_hex(), "conversation": conv(m, group),
            "group": hex(group), "reason": why.code(), "text": why.describe()}),
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
        "sent" | "sending" | "delivered" => return None,
        "outbox" => {
            let ms = v["messages"].as_array().cloned().unwrap_or_default();
            if ms.is_empty() {
                "the outbox is empty: the relay has every message".into()
            } else {
                let lines: Vec<String> = ms
                    .iter()
                    .map(|m| {
                        format!(
                            "  {} [{}] {}",
                            m["id"].as_str().unwrap_or("").get(..8).unwrap_or(""),
                            crate::ui::sanitize(m["conversation"].as_str().unwrap_or("")),
                            crate::ui::sanitize(&crate::ui::preview(
                                m["text"].as_str().unwrap_or("")
                            ))
                        )
                    })
                    .collect();
                format!(
                    "{} message(s) not yet taken by the relay (/outbox cancel ID):\n{}",
                    ms.len(),
                    lines.join("\n")
                )
            }
        }
        "cancelled" => format!(
            "* message {} taken out of the outbox: it will not be sent",
            s("id")
        ),
        "outbox_full" => format!(
            "* the outbox is full ({} messages waiting for the relay): input is read again once some are sent",
            v["waiting"]
        ),
        "outbox_ready" => format!("* the outbox has room again ({} waiting)", v["waiting"]),
        "undelivered" => format!(
            "warning: [{}] a message of yours was not delivered: {}",
            s("conversation"),
            s("text")
        ),
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
