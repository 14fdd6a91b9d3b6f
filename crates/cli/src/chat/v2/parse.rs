//! What a user can ask of a protocol v2 chat (a device in MLS groups):
//! the commands, their line syntax (`/group add team carol`) and JSON
//! syntax (`{"cmd":"group_add","name":"team","users":["carol"]}`).

use serde::Deserialize;

/// The help text of a v2 chat.
pub(crate) const HELP: &str = "\
commands (protocol v2: MLS groups of devices):
  TEXT                         send to the current conversation (//TEXT: a text starting with /)
  /msg NAME TEXT               send to NAME (a one-to-one group of all your and NAME's devices)
  /to NAME                     make the conversation with NAME the current one
  /group create GROUP [NAME..] create GROUP with these people (all their devices)
  /group add GROUP NAME..      add people to GROUP
  /group remove GROUP NAME     remove NAME (all devices) from GROUP
  /group leave GROUP           leave GROUP
  /group rename GROUP NEW      rename GROUP
  /group recreate GROUP NAME   make a stuck GROUP again without NAME
  /group GROUP                 make GROUP the current conversation
  /groups                      list your conversations, their members and devices
  /devices                     your devices, and where each is a member
  /verify NAME                 safety numbers with each of NAME's devices
  /update                      refresh this device's keys in every group now
  /outbox                      messages not yet taken by the relay
  /outbox cancel ID            do not send that message (ID: the start of its id)
  /info                        who and where you are
  /help                        this help
  /quit                        leave (or Ctrl-D)";

/// One thing the user asked for.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum V2Action {
    /// Send to a person (`to`), a group (`group`), or the current one.
    Send {
        #[serde(default, deserialize_with = "crate::chat::action::one_or_many")]
        to: Option<Vec<String>>,
        #[serde(default)]
        group: Option<String>,
        text: String,
    },
    /// Send to the group with this id (the full-screen client's open
    /// conversation; not a JSON command).
    #[serde(skip)]
    SendToGroup { id: Vec<u8>, text: String },
    /// The one-to-one conversation with `name` becomes the current one.
    To { name: String },
    /// Create a named group.
    GroupCreate {
        name: String,
        #[serde(default)]
        users: Vec<String>,
    },
    /// Add people to a group.
    GroupAdd { name: String, users: Vec<String> },
    /// Remove a person from a group.
    GroupRemove { name: String, user: String },
    /// Leave a group.
    GroupLeave { name: String },
    /// Rename a group.
    GroupRename { name: String, new_name: String },
    /// Make a stuck group again without a person.
    GroupRecreate { name: String, without: String },
    /// A group becomes the current conversation.
    Group { name: String },
    /// List conversations.
    Groups,
    /// This person's devices.
    Devices,
    /// Per-device safety numbers.
    Verify { name: String },
    /// Self-update in every group.
    Update,
    /// The messages waiting in the outbox.
    Outbox,
    /// Take a waiting message out of the outbox (`id`: its id in hex, or
    /// the start of it).
    Cancel { id: String },
    /// Help.
    Help,
    /// Who and where.
    Info,
    /// Leave.
    Quit,
}

/// Parses one typed line. `None`: nothing to do.
pub(crate) fn parse_line(line: &str) -> Result<Option<V2Action>, String> {
    let t = line.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = t.strip_prefix("//") {
        return Ok(Some(V2Action::Send {
            to: None,
            group: None,
            text: format!("/{rest}"),
        }));
    }
    if !t.starts_with('/') {
        return Ok(Some(V2Action::Send {
            to: None,
            group: None,
            text: t.to_string(),
        }));
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    let s = |w: &&str| w.to_string();
    Ok(Some(match words.as_slice() {
        ["/msg", name, ..] => {
            let text = t
                .split_once(name)
                .map(|(_, r)| r.trim())
                .filter(|r| !r.is_empty())
                .ok_or("usage: /msg NAME TEXT")?;
            V2Action::Send {
                to: Some(vec![name.to_string()]),
                group: None,
                text: text.to_string(),
            }
        }
        ["/to", name] => V2Action::To { name: s(name) },
        ["/group", "create", name, users @ ..] => V2Action::GroupCreate {
            name: s(name),
            users: users.iter().map(s).collect(),
        },
        ["/group", "add", name, users @ ..] if !users.is_empty() => V2Action::GroupAdd {
            name: s(name),
            users: users.iter().map(s).collect(),
        },
        ["/group", "remove", name, user] => V2Action::GroupRemove {
            name: s(name),
            user: s(user),
        },
        ["/group", "leave", name] => V2Action::GroupLeave { name: s(name) },
        ["/group", "rename", name, new] => V2Action::GroupRename {
            name: s(name),
            new_name: s(new),
        },
        ["/group", "recreate", name, user] => V2Action::GroupRecreate {
            name: s(name),
            without: s(user),
        },
        ["/group", name] => V2Action::Group { name: s(name) },
        ["/groups"] => V2Action::Groups,
        ["/devices"] => V2Action::Devices,
        ["/verify", name] => V2Action::Verify { name: s(name) },
        ["/update"] => V2Action::Update,
        ["/outbox"] => V2Action::Outbox,
        ["/outbox", "cancel", id] => V2Action::Cancel { id: s(id) },
        ["/help"] => V2Action::Help,
        ["/info"] => V2Action::Info,
        ["/quit" | "/exit"] => V2Action::Quit,
        [cmd, ..] => {
            return Err(format!(
                "unknown command or wrong arguments: {cmd}; /help lists them"
            ));
        }
        [] => return Ok(None),
    }))
}

/// A JSON command line: its request id and the action.
pub(crate) fn parse_json(line: &str) -> (Option<String>, Result<V2Action, String>) {
    crate::chat::action::parse_json(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_outbox_commands_in_both_syntaxes() {
        let p = |l: &str| parse_line(l).unwrap().unwrap();
        assert_eq!(p("/outbox"), V2Action::Outbox);
        assert_eq!(
            p("/outbox cancel 1a2b"),
            V2Action::Cancel { id: "1a2b".into() }
        );
        assert!(parse_line("/outbox drop").is_err());
        assert_eq!(
            parse_json(r#"{"cmd":"cancel","id":"1a2b","req":"7"}"#),
            (Some("7".into()), Ok(V2Action::Cancel { id: "1a2b".into() }))
        );
    }

    #[test]
    fn parses_the_documented_group_commands() {
        let p = |l: &str| parse_line(l).unwrap().unwrap();
        assert_eq!(
            p("/group create team bob carol"),
            V2Action::GroupCreate {
                name: "team".into(),
                users: vec!["bob".into(), "carol".into()]
            }
        );
        assert_eq!(
            p("/group add team dave"),
            V2Action::GroupAdd {
                name: "team".into(),
                users: vec!["dave".into()]
            }
        );
        assert_eq!(
            p("/group remove team dave"),
            V2Action::GroupRemove {
                name: "team".into(),
                user: "dave".into()
            }
        );
        assert_eq!(
            p("/group leave team"),
            V2Action::GroupLeave {
                name: "team".into()
            }
        );
        assert_eq!(
            p("/group rename team crew"),
            V2Action::GroupRename {
                name: "team".into(),
                new_name: "crew".into()
            }
        );
        assert_eq!(
            p("/group recreate team mallory"),
            V2Action::GroupRecreate {
                name: "team".into(),
                without: "mallory".into()
            }
        );
        assert_eq!(
            p("/group team"),
            V2Action::Group {
                name: "team".into()
            }
        );
        assert_eq!(p("/groups"), V2Action::Groups);
        assert_eq!(p("/devices"), V2Action::Devices);
        assert_eq!(p("/verify bob"), V2Action::Verify { name: "bob".into() });
        assert_eq!(
            p("/msg bob hi there"),
            V2Action::Send {
                to: Some(vec!["bob".into()]),
                group: None,
                text: "hi there".into()
            }
        );
        assert_eq!(
            p("hello"),
            V2Action::Send {
                to: None,
                group: None,
                text: "hello".into()
            }
        );
        assert_eq!(
            p("//etc"),
            V2Action::Send {
                to: None,
                group: None,
                text: "/etc".into()
            }
        );
        assert!(parse_line("/group add team").is_err());
        assert!(parse_line("/msg bob").is_err());
        assert!(parse_line("/nope").is_err());
        assert_eq!(parse_line("  ").unwrap(), None);
    }

    #[test]
    fn parses_json_commands() {
        let (req, a) =
            parse_json(r#"{"cmd":"group_add","name":"team","users":["carol"],"req":"r1"}"#);
        assert_eq!(req.as_deref(), Some("r1"));
        assert_eq!(
            a.unwrap(),
            V2Action::GroupAdd {
                name: "team".into(),
                users: vec!["carol".into()]
            }
        );
        let (_, a) = parse_json(r#"{"cmd":"group_recreate","name":"team","without":"mallory"}"#);
        assert_eq!(
            a.unwrap(),
            V2Action::GroupRecreate {
                name: "team".into(),
                without: "mallory".into()
            }
        );
        let (_, a) = parse_json(r#"{"cmd":"send","group":"team","text":"hi"}"#);
        assert_eq!(
            a.unwrap(),
            V2Action::Send {
                to: None,
                group: Some("team".into()),
                text: "hi".into()
            }
        );
        assert!(
            parse_json(r#"{"cmd":"group_leave","name":"x","evil":1}"#)
                .1
                .is_err()
        );
        // The full-screen client's own variant is not a JSON command.
        assert!(
            parse_json(r#"{"cmd":"send_to_group","id":[1],"text":"x"}"#)
                .1
                .is_err()
        );
    }
}
