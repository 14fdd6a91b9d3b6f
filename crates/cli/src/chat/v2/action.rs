//! What a user can ask of a protocol v2 chat (a device in MLS groups):
//! the commands, their line syntax (`/group add team carol`) and JSON
//! syntax (`{"cmd":"group_add","name":"team","users":["carol"]}`), and
//! carrying them out on the [`Member`].

use anyhow::{Context, Result, anyhow, bail};
use blindrelay_client::v2::{GroupInfo, Member, V2Event};
use blindrelay_mls::GroupName;
use serde::Deserialize;
use serde_json::json;

use crate::chat::action::Outcome;
use crate::user_name;

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
  /group GROUP                 make GROUP the current conversation
  /groups                      list your conversations, their members and devices
  /devices                     your devices, and where each is a member
  /verify NAME                 safety numbers with each of NAME's devices
  /update                      refresh this device's keys in every group now
  /info                        who and where you are
  /help                        this help
  /quit                        leave (or Ctrl-D)";

/// One thing the user asked for.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum V2Action {
    /// Send to a person (`to`), a group (`group`), or the current one.
    Send {
        #[serde(default)]
        to: Option<String>,
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
                to: Some(name.to_string()),
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
        ["/group", name] => V2Action::Group { name: s(name) },
        ["/groups"] => V2Action::Groups,
        ["/devices"] => V2Action::Devices,
        ["/verify", name] => V2Action::Verify { name: s(name) },
        ["/update"] => V2Action::Update,
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

/// A conversation's label: the group's name, or the other people of a
/// one-to-one conversation.
pub(crate) fn label(g: &GroupInfo, me: &str) -> String {
    if let Some(n) = &g.name {
        return n.clone();
    }
    let mut others: Vec<&str> = g
        .members
        .iter()
        .map(|(u, _)| u.as_str())
        .filter(|u| *u != me)
        .collect();
    others.dedup();
    if others.is_empty() {
        "(just you)".into()
    } else {
        others.join(", ")
    }
}

fn group_json(g: &GroupInfo, me: &str) -> serde_json::Value {
    json!({
        "conversation": label(g, me),
        "group": blindrelay_wire::codec::hex(&g.id),
        "named": g.name.is_some(),
        "protocol": "v2",
        "epoch": g.epoch,
        "members": g.members.iter().map(|(u, d)| format!("{u}@{d}")).collect::<Vec<_>>(),
    })
}

/// A v2 chat: the member and the current conversation.
pub(crate) struct V2Session {
    pub(crate) member: Member,
    /// Where it connects (to reconnect).
    pub(crate) config: blindrelay_client::ClientConfig,
    pub(crate) current: Option<Vec<u8>>,
    pub(crate) server: String,
    /// Events that carrying out a command produced (other members'
    /// commits processed while rebasing), for the front end to show.
    pub(crate) events: Vec<V2Event>,
}

impl V2Session {
    fn group(&mut self, name: &str) -> Result<GroupInfo> {
        self.member
            .find_group(name)?
            .ok_or_else(|| anyhow!("no group {name:?} here: /groups lists yours"))
    }

    /// The one-to-one conversation with `name`, made on first use.
    async fn one_to_one(&mut self, name: &str) -> Result<Vec<u8>> {
        let n = user_name(name)?;
        if let Some(g) = self.member.one_to_one(&n)? {
            return Ok(g.id);
        }
        let (g, ev) = self
            .member
            .create_group(None, std::slice::from_ref(&n))
            .await
            .with_context(|| format!("starting a conversation with {n}"))?;
        self.events.extend(ev);
        if self
            .member
            .device()
            .members(&g)?
            .iter()
            .all(|m| m.user != n.as_str())
        {
            bail!(
                "{n} has no device with a KeyPackage at this relay (not enrolled for protocol v2, or not connected yet)"
            );
        }
        Ok(g)
    }

    /// Carries out `a`.
    pub(crate) async fn perform(&mut self, a: V2Action) -> Outcome {
        match self.try_perform(a).await {
            Ok(o) => o,
            Err(e) => Outcome::Error(format!("{e:#}")),
        }
    }

    async fn try_perform(&mut self, a: V2Action) -> Result<Outcome> {
        let me = self.member.me().user.as_str().to_string();
        Ok(match a {
            V2Action::Send { to, group, text } => {
                let g = match (to, group) {
                    (Some(_), Some(_)) => bail!("give a person or a group, not both"),
                    (Some(to), None) => self.one_to_one(&to).await?,
                    (None, Some(name)) => self.group(&name)?.id,
                    (None, None) => self.current.clone().ok_or_else(|| {
                        anyhow!("no conversation: /to NAME, /group GROUP or /msg NAME TEXT")
                    })?,
                };
                self.member.send(&g, &text).await?;
                Outcome::Json(json!({"event": "sent", "group": blindrelay_wire::codec::hex(&g)}))
            }
            V2Action::SendToGroup { id, text } => {
                self.member.send(&id, &text).await?;
                Outcome::Json(json!({"event": "sent", "group": blindrelay_wire::codec::hex(&id)}))
            }
            V2Action::To { name } => {
                let g = self.one_to_one(&name).await?;
                self.current = Some(g);
                Outcome::Info(format!(
                    "now talking to {name} (protocol v2, end-to-end encrypted with MLS)"
                ))
            }
            V2Action::GroupCreate { name, users } => {
                let gn = GroupName::new(&name).map_err(|e| anyhow!("group name: {e}"))?;
                if self.member.find_group(&name)?.is_some() {
                    bail!("you already have a group {name:?}");
                }
                let users = users
                    .iter()
                    .map(|u| user_name(u))
                    .collect::<Result<Vec<_>>>()?;
                let (g, ev) = self.member.create_group(Some(&gn), &users).await?;
                self.events.extend(ev);
                self.current = Some(g.clone());
                let info = self.group(&name)?;
                Outcome::Json(json!({"event": "group_created", "group": group_json(&info, &me)}))
            }
            V2Action::GroupAdd { name, users } => {
                let g = self.group(&name)?.id;
                let users = users
                    .iter()
                    .map(|u| user_name(u))
                    .collect::<Result<Vec<_>>>()?;
                let ev = self.member.add(&g, &users).await?;
                self.events.extend(ev);
                Outcome::Json(
                    json!({"event": "group_changed", "group": group_json(&self.group(&name)?, &me)}),
                )
            }
            V2Action::GroupRemove { name, user } => {
                let g = self.group(&name)?.id;
                let ev = self.member.remove(&g, &user_name(&user)?).await?;
                self.events.extend(ev);
                Outcome::Json(
                    json!({"event": "group_changed", "group": group_json(&self.group(&name)?, &me)}),
                )
            }
            V2Action::GroupLeave { name } => {
                let g = self.group(&name)?.id;
                self.member.leave(&g).await?;
                Outcome::Info(format!(
                    "asked to leave {name}: the next commit of another member removes this device"
                ))
            }
            V2Action::GroupRename { name, new_name } => {
                let g = self.group(&name)?.id;
                let gn = GroupName::new(&new_name).map_err(|e| anyhow!("group name: {e}"))?;
                let ev = self.member.rename(&g, &gn).await?;
                self.events.extend(ev);
                Outcome::Info(format!("{name} is now called {new_name}"))
            }
            V2Action::Group { name } => {
                let g = self.group(&name)?;
                self.current = Some(g.id.clone());
                Outcome::Json(json!({"event": "current", "group": group_json(&g, &me)}))
            }
            V2Action::Groups => {
                let groups: Vec<_> = self
                    .member
                    .groups()?
                    .iter()
                    .map(|g| group_json(g, &me))
                    .collect();
                Outcome::Json(json!({"event": "groups", "groups": groups}))
            }
            V2Action::Devices => {
                let me_user = self.member.me().user.clone();
                let listed = self.member.listed_devices(&me_user).await?;
                let mut devices: Vec<serde_json::Value> = Vec::new();
                for d in &listed {
                    let in_groups: Vec<String> = self
                        .member
                        .groups()?
                        .iter()
                        .filter(|g| {
                            g.members
                                .iter()
                                .any(|(u, dev)| *u == d.user.as_str() && *dev == d.device.as_str())
                        })
                        .map(|g| label(g, &me))
                        .collect();
                    devices.push(json!({"device": d.device.as_str(), "this": *d == *self.member.me(), "groups": in_groups}));
                }
                Outcome::Json(json!({"event": "devices", "user": me, "devices": devices}))
            }
            V2Action::Verify { name } => {
                let n = user_name(&name)?;
                let g = match self.member.one_to_one(&n)? {
                    Some(g) => g,
                    None => self
                        .member
                        .groups()?
                        .into_iter()
                        .find(|g| g.members.iter().any(|(u, _)| *u == n.as_str()))
                        .ok_or_else(|| anyhow!("no conversation with {n} yet"))?,
                };
                let numbers = self.member.safety_numbers(&g.id, &n)?;
                let list: Vec<_> = numbers
                    .iter()
                    .map(|(d, sn)| json!({"device": d, "number": sn}))
                    .collect();
                Outcome::Json(
                    json!({"event": "safety_numbers", "name": n.as_str(), "devices": list}),
                )
            }
            V2Action::Update => {
                let mut count = 0;
                for g in self.member.groups()? {
                    let ev = self.member.update(&g.id).await?;
                    self.events.extend(ev);
                    count += 1;
                }
                Outcome::Info(format!(
                    "this device's keys were refreshed in {count} group(s)"
                ))
            }
            V2Action::Help => Outcome::Info(HELP.into()),
            V2Action::Info => {
                let current = match &self.current {
                    Some(c) => self
                        .member
                        .groups()?
                        .into_iter()
                        .find(|g| g.id == *c)
                        .map(|g| label(&g, &me)),
                    None => None,
                };
                Outcome::Json(json!({"event": "info", "identity": me,
                    "device": self.member.me().device.as_str(), "protocol": "v2",
                    "server": self.server, "current": current}))
            }
            V2Action::Quit => Outcome::Quit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                to: Some("bob".into()),
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
