//! Events as JSON for programs (`chat --json`): one object per line, each
//! with an `"event"` field. The schema is in README.

use blindrelay_client::{Event, UndeliveredReason};
use serde_json::{Value, json};

/// The JSON event a program reads (one per line). Schema in README.
pub(crate) fn machine(e: &Event) -> Value {
    match e {
        Event::Connected { identity, online } => json!({
            "event": "connected", "identity": identity.as_str(), "protocol": "v1",
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
            "room": room, "time_ms": timestamp_ms, "late": late, "verified": true, "text": text,
            "protocol": "v1"
        }),
        Event::Queued {
            msg_id,
            to,
            room,
            tag,
            waiting,
            ..
        } => {
            let mut v = json!({
                "event": "sending", "id": msg_id.to_hex(), "room": room,
                "to": to.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
                "waiting_for_key": waiting.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            });
            if let (Some(t), Some(o)) = (tag, v.as_object_mut()) {
                o.insert("req".into(), json!(t));
            }
            v
        }
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
            json!({"event": "closed", "code": code.map(|c| c.as_str()), "reason": reason})
        }
    }
}
