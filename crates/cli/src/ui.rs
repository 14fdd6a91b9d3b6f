//! Turning client events into lines for people and for programs.

use blindrelay_client::{Event, UndeliveredReason};
use serde_json::{Value, json};

/// Replaces control and invisible format characters (terminal escapes,
/// bidirectional overrides) so that text from peers cannot rewrite the
/// screen or disguise itself.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if blindrelay_wire::text::is_display_control(c) && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// `HH:MM:SS` (UTC) of a Unix-ms timestamp.
pub(crate) fn clock(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix-ms timestamp.
pub(crate) fn date_time(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            clock(ms)
        ),
        Err(_) => clock(ms),
    }
}

/// What separates the lines of one message on screen: a line of a message
/// never starts where a message line starts (`[`), so a text cannot pass a
/// line of its own off as a message from someone else.
pub(crate) const CONTINUATION: &str = "\n  \u{2502} ";

/// A message's text as printed: sanitized, continuation lines marked.
pub(crate) fn body(text: &str) -> String {
    sanitize(text).replace('\n', CONTINUATION)
}

/// The time a message line shows: the clock if it arrived on time, the
/// date and a mark if it arrived late.
pub(crate) fn when(timestamp_ms: u64, late: bool) -> String {
    if late {
        format!("{} UTC, delivered late", date_time(timestamp_ms))
    } else {
        format!("{} UTC", clock(timestamp_ms))
    }
}

fn short(fp: &str) -> String {
    fp.chars().take(16).collect()
}

/// The line a person sees, or `None` for events not worth a line.
pub(crate) fn human(e: &Event) -> Option<String> {
    Some(match e {
        Event::Connected { identity, online } => {
            let who = if online.is_empty() {
                "nobody else".to_string()
            } else {
                online
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("[connected as {identity}] online: {who}")
        }
        Event::Joined {
            name,
            fingerprint,
            first_contact,
        } => {
            let pin = if *first_contact {
                " (first contact: key pinned; compare /verify)"
            } else {
                ""
            };
            format!("* {name} is online, key {}{pin}", short(fingerprint))
        }
        Event::Left { name } => format!("* {name} left"),
        Event::Message {
            from,
            text,
            timestamp_ms,
            late,
            room,
            ..
        } => {
            let room = if *room { " to the room" } else { "" };
            format!(
                "[{}] {from}{room} [verified]: {}",
                when(*timestamp_ms, *late),
                body(text)
            )
        }
        Event::Sent { .. } => return None,
        Event::Stored { recipients, .. } => {
            format!("  (stored on the relay for {recipients} recipient(s))")
        }
        Event::Delivered { msg_ids, by } => format!(
            "  (delivered to {by}: {} message(s), confirmed end to end)",
            msg_ids.len()
        ),
        Event::Reconnecting { reason, in_ms } => format!(
            "[connection lost: {}; reconnecting in {:.1} s]",
            sanitize(reason),
            *in_ms as f64 / 1000.0
        ),
        Event::Undelivered { name, reason, .. } => match reason {
            UndeliveredReason::Offline => format!("! {name} is offline: not delivered"),
            UndeliveredReason::Unknown => {
                format!("! {name} is unknown to the relay: not delivered")
            }
            UndeliveredReason::QuotaExceeded => {
                format!("! {name}'s mailbox on the relay is full: not stored")
            }
        },
        Event::KeyChanged {
            name,
            pinned,
            offered,
        } => format!(
            "!!! WARNING: the certificate of {name} CHANGED (pinned {}, now {}).\n!!! Messages from and to {name} are BLOCKED. Compare safety numbers (/verify {name}) over another channel, then /accept {name}.",
            short(pinned),
            short(offered)
        ),
        Event::Warning(w) => format!("! {}", sanitize(w)),
        Event::Closed { code, reason } => match code {
            Some(c) => format!("[disconnected by the relay: {c:?}: {}]", sanitize(reason)),
            None => format!("[disconnected: {}]", sanitize(reason)),
        },
    })
}

/// The JSON event a program reads (one per line). Schema in README.
pub(crate) fn machine(e: &Event) -> Value {
    match e {
        Event::Connected { identity, online } => json!({
            "event": "connected", "identity": identity.as_str(),
            "online": online.iter().map(|n| n.as_str()).collect::<Vec<_>>()
        }),
        Event::Joined {
            name,
            fingerprint,
            first_contact,
        } => {
            json!({"event": "join", "name": name.as_str(), "fingerprint": fingerprint, "first_contact": first_contact})
        }
        Event::Left { name } => json!({"event": "leave", "name": name.as_str()}),
        Event::Message {
            msg_id,
            from,
            recipients,
            room,
            timestamp_ms,
            late,
            text,
        } => json!({
            "event": "message", "id": msg_id.to_hex(), "from": from.as_str(),
            "to": recipients.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            "room": room, "time_ms": timestamp_ms, "late": late, "verified": true, "text": text
        }),
        Event::Sent { msg_id, delivered } => {
            json!({"event": "sent", "id": msg_id.to_hex(), "delivered": delivered})
        }
        Event::Stored { msg_id, recipients } => {
            json!({"event": "stored", "id": msg_id.to_hex(), "recipients": recipients})
        }
        Event::Delivered { msg_ids, by } => json!({
            "event": "delivered", "by": by.as_str(),
            "ids": msg_ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>()
        }),
        Event::Reconnecting { reason, in_ms } => {
            json!({"event": "reconnecting", "reason": reason, "in_ms": in_ms})
        }
        Event::Undelivered {
            msg_id,
            name,
            reason,
        } => json!({
            "event": "undelivered", "id": msg_id.to_hex(), "name": name.as_str(),
            "reason": match reason {
                UndeliveredReason::Offline => "offline",
                UndeliveredReason::Unknown => "unknown",
                UndeliveredReason::QuotaExceeded => "quota_exceeded",
            }
        }),
        Event::KeyChanged {
            name,
            pinned,
            offered,
        } => {
            json!({"event": "key_changed", "name": name.as_str(), "pinned": pinned, "offered": offered})
        }
        Event::Warning(w) => json!({"event": "warning", "text": w}),
        Event::Closed { code, reason } => {
            json!({"event": "closed", "code": code.map(|c| format!("{c:?}")), "reason": reason})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_cannot_fake_a_line_from_someone_else() {
        let e = Event::Message {
            msg_id: blindrelay_wire::MessageId([1; 16]),
            from: blindrelay_wire::UserName::new("alice").unwrap(),
            recipients: vec![],
            room: false,
            timestamp_ms: 3_723_000,
            late: false,
            text: "see you\n[05:41:07 UTC] carol [verified]: wire the money".into(),
        };
        let shown = human(&e).unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "[01:02:03 UTC] alice [verified]: see you");
        // The second line is visibly part of alice's message.
        assert_eq!(
            lines[1],
            "  \u{2502} [05:41:07 UTC] carol [verified]: wire the money"
        );
        assert!(lines.iter().skip(1).all(|l| !l.starts_with('[')));
    }

    #[test]
    fn a_late_message_shows_its_date() {
        // 2027-01-15 08:00:00 UTC, written a day before it arrived.
        assert_eq!(
            when(1_800_000_000_000, true),
            "2027-01-15 08:00:00 UTC, delivered late"
        );
        assert_eq!(when(1_800_000_000_000, false), "08:00:00 UTC");
    }

    #[test]
    fn escapes_cannot_reach_the_terminal() {
        assert_eq!(sanitize("hi\x1b[2J\x07there"), "hi\u{fffd}[2J\u{fffd}there");
        assert_eq!(sanitize("a\u{202E}b"), "a\u{fffd}b");
        assert_eq!(clock(3_723_000), "01:02:03");
    }
}
