//! How the line client words the re-join events (a person reads them).

use serde_json::json;

use super::text;

#[test]
fn a_rejoin_is_told_as_a_warning_with_what_was_lost() {
    let line = text(&json!({"event": "rejoined", "conversation": "team",
        "epoch": 7, "unread": 2, "text": super::show::REJOINED_TEXT}))
    .unwrap();
    assert!(
        line.starts_with("warning: [team] the relay never delivered"),
        "{line}"
    );
    assert!(line.ends_with("(2 unread; epoch 7)"), "{line}");
    let line = text(&json!({"event": "rejoin_blocked", "conversation": "team",
        "text": super::show::rejoin_blocked_text(blindrelay_client::v2::RejoinBlocked::NotListed)}))
    .unwrap();
    assert!(line.contains("no longer lists this device"), "{line}");
    assert!(line.contains("trying again in 5 minutes"), "{line}");
    let line = text(&json!({"event": "member_rejoined", "conversation": "team",
        "who": "bob@laptop"}))
    .unwrap();
    assert_eq!(line, "* [team] bob@laptop re-joined after missing a change");
}
