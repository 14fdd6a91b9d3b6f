//! Carrying out what a user asked of a protocol v2 chat (a device in MLS
//! groups) on the [`Member`]; the commands and their syntax are in
//! `parse`.

use anyhow::{Context, Result, anyhow, bail};
use blindrelay_client::v2::{GroupInfo, Member, V2Event};
use blindrelay_mls::GroupName;
use serde_json::json;

pub(crate) use super::parse::{HELP, V2Action, parse_json, parse_line};
use crate::chat::action::Outcome;
use crate::user_name;

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
    /// The group and id of the message the last command wrote to the
    /// outbox (for the full screen to show it as sending).
    pub(crate) queued: Option<(Vec<u8>, blindrelay_wire::MessageId)>,
    /// Messages a script handed over through the local socket, waiting
    /// for their outcome (`chat::handed`).
    pub(crate) awaited: crate::local::Awaited,
    /// Requests from the local socket (`None`: no socket).
    pub(crate) requests: Option<tokio::sync::mpsc::Receiver<crate::local::Request>>,
}

impl V2Session {
    fn group(&mut self, name: &str) -> Result<GroupInfo> {
        self.member
            .find_group(name)?
            .ok_or_else(|| anyhow!("no group {name:?} here: /groups lists yours"))
    }

    /// The conversation of this person and exactly `names` (unnamed: a
    /// one-to-one conversation for one name), made on first use.
    async fn conversation(&mut self, names: &[String]) -> Result<Vec<u8>> {
        let people = names
            .iter()
            .map(|n| user_name(n))
            .collect::<Result<Vec<_>>>()?;
        if people.is_empty() {
            bail!("no recipient");
        }
        if let Some(g) = self.member.conversation_with(&people)? {
            return Ok(g.id);
        }
        let who = names.join(", ");
        let (g, ev) = self
            .member
            .create_group(None, &people)
            .await
            .with_context(|| format!("starting a conversation with {who}"))?;
        self.events.extend(ev);
        let members = self.member.device().members(&g)?;
        for n in &people {
            if members.iter().all(|m| m.user != n.as_str()) {
                bail!(
                    "{n} has no device with a KeyPackage at this relay (not enrolled for protocol v2, or not connected yet)"
                );
            }
        }
        Ok(g)
    }

    /// Writes a message to the outbox: the answer is `sending` with its
    /// id; `sent` (or `undelivered`) follows once the outbox is flushed.
    fn queued(&mut self, group: &[u8], text: &str) -> Result<Outcome> {
        let id = self.member.queue(group, text)?;
        self.queued = Some((group.to_vec(), id));
        let hex = blindrelay_wire::codec::hex;
        let me = self.member.me().user.as_str().to_string();
        let conversation = self.member.group(group)?.map(|g| label(&g, &me));
        Ok(Outcome::Json(json!({"event": "sending", "protocol": "v2",
            "id": id.to_hex(), "group": hex(group), "conversation": conversation})))
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
                    (Some(to), None) => self.conversation(&to).await?,
                    (None, Some(name)) => self.group(&name)?.id,
                    (None, None) => self.current.clone().ok_or_else(|| {
                        anyhow!("no conversation: /to NAME, /group GROUP or /msg NAME TEXT")
                    })?,
                };
                self.queued(&g, &text)?
            }
            V2Action::SendToGroup { id, text } => self.queued(&id, &text)?,
            V2Action::To { name } => {
                let g = self.conversation(std::slice::from_ref(&name)).await?;
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
            V2Action::GroupRecreate { name, without } => {
                let old = self.group(&name)?.id;
                let (g, ev) = self.member.recreate(&old, &user_name(&without)?).await?;
                self.events.extend(ev);
                self.current = Some(g.clone());
                let info = self.member.groups()?.into_iter().find(|i| i.id == g);
                Outcome::Json(json!({"event": "group_created",
                    "group": info.map(|i| group_json(&i, &me))}))
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
            V2Action::Outbox => {
                let hex = blindrelay_wire::codec::hex;
                let mut messages = Vec::new();
                for m in self.member.outbox()? {
                    let group = m.group.unwrap_or_default();
                    let conversation = self.member.group(&group)?.map(|g| label(&g, &me));
                    messages.push(json!({"id": m.msg_id.to_hex(), "group": hex(&group),
                        "conversation": conversation, "time_ms": m.created_ms, "text": m.text}));
                }
                Outcome::Json(json!({"event": "outbox", "messages": messages}))
            }
            V2Action::Cancel { id } => {
                let id = id.to_ascii_lowercase();
                let found: Vec<_> = self
                    .member
                    .outbox()?
                    .into_iter()
                    .filter(|m| !id.is_empty() && m.msg_id.to_hex().starts_with(&id))
                    .collect();
                match found.as_slice() {
                    [m] if self.member.cancel(&m.msg_id)? => {
                        Outcome::Json(json!({"event": "cancelled", "id": m.msg_id.to_hex()}))
                    }
                    [] | [_] => bail!("no message {id} waits in the outbox (/outbox lists them)"),
                    _ => bail!(
                        "{} waiting messages start with {id}: give more of the id",
                        found.len()
                    ),
                }
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
