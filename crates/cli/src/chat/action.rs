//! What a user can ask of a chat, in every front end: the commands, their
//! line syntax (`/msg bob hi`) and JSON syntax (`{"cmd":"send",...}`), and
//! carrying them out against the client.

use anyhow::Result;
use blindrelay_client::ClientHandle;
use blindrelay_wire::UserName;
use serde::Deserialize;
use serde_json::json;

use crate::user_name;

/// The help text of the line client (the full-screen client adds its keys).
pub(crate) const HELP: &str = "\
commands:
  TEXT               send to the current conversation (//TEXT sends a text starting with /)
  /msg NAME TEXT     send to NAME
  /to NAME           make NAME the current conversation
  /all TEXT          send to everyone online (the room)
  /who               list users online, verified
  /verify NAME       show the safety number shared with NAME
  /accept NAME       trust NAME's changed certificate (after /verify)
  /help              this help
  /quit              leave (or Ctrl-D)";

/// A command's `to`: one name (`"bob"`) or a list (`["bob","carol"]`), the
/// same in both protocols.
pub(crate) fn one_or_many<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum People {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match People::deserialize(d)? {
        People::One(n) => vec![n],
        People::Many(v) => v,
    }))
}

/// One thing the user asked for, from any front end.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Action {
    /// Send `text` to `to`, or to the current conversation.
    Send {
        #[serde(default, deserialize_with = "one_or_many")]
        to: Option<Vec<String>>,
        text: String,
    },
    /// Set the current conversation.
    To { name: String },
    /// Send to everyone online.
    All { text: String },
    /// List users online.
    Who,
    /// Show a safety number.
    Verify { name: String },
    /// Accept a changed key.
    Accept { name: String },
    /// Print help.
    Help,
    /// Where this client is: identity, relay, current conversation.
    Info,
    /// Leave.
    Quit,
}

/// Parses one line typed by a person. `None`: nothing to do.
pub(crate) fn parse_line(line: &str) -> Result<Option<Action>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    // `//text` is the text `/text`.
    if let Some(rest) = trimmed.strip_prefix("//") {
        return Ok(Some(Action::Send {
            to: None,
            text: format!("/{rest}"),
        }));
    }
    if !trimmed.starts_with('/') {
        return Ok(Some(Action::Send {
            to: None,
            text: trimmed.to_string(),
        }));
    }
    let (cmd, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let rest = rest.trim();
    let need = |what: &str| {
        if rest.is_empty() {
            Err(format!("usage: {cmd} {what}"))
        } else {
            Ok(())
        }
    };
    Ok(Some(match cmd {
        "/msg" => {
            let (name, text) = rest.split_once(' ').ok_or("usage: /msg NAME TEXT")?;
            Action::Send {
                to: Some(vec![name.to_string()]),
                text: text.trim().to_string(),
            }
        }
        "/to" => {
            need("NAME")?;
            Action::To { name: rest.into() }
        }
        "/all" => {
            need("TEXT")?;
            Action::All { text: rest.into() }
        }
        "/who" => Action::Who,
        "/verify" => {
            need("NAME")?;
            Action::Verify { name: rest.into() }
        }
        "/accept" => {
            need("NAME")?;
            Action::Accept { name: rest.into() }
        }
        "/help" => Action::Help,
        "/info" => Action::Info,
        "/quit" | "/exit" => Action::Quit,
        other => {
            return Err(format!(
                "unknown command {other}; /help lists them (//TEXT sends a text starting with /)"
            ));
        }
    }))
}

/// A JSON command line: its request id (`"req"`, string or number,
/// echoed in the answer) and the action (version 1's [`Action`], or a
/// device's `V2Action`).
pub(crate) fn parse_json<A: serde::de::DeserializeOwned>(
    line: &str,
) -> (Option<String>, Result<A, String>) {
    let mut v: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return (None, Err(format!("bad command: {e}"))),
    };
    let req = v
        .as_object_mut()
        .and_then(|o| o.remove("req"))
        .map(|r| match r {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
    if req
        .as_ref()
        .is_some_and(|r| r.len() > blindrelay_client::MAX_TAG_LEN)
    {
        return (None, Err("bad command: req is too long".into()));
    }
    (
        req,
        serde_json::from_value(v).map_err(|e| format!("bad command: {e}")),
    )
}

/// What performing an action produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to say (a message was queued: its events say the rest).
    Nothing,
    /// A line of information for a person; JSON `{"event":"info"}`.
    Info(String),
    /// An answer with data.
    Json(serde_json::Value),
    /// The action failed.
    Error(String),
    /// Leave.
    Quit,
}

/// A chat session: the client and the current conversation.
pub(crate) struct Session {
    pub(crate) client: ClientHandle,
    pub(crate) current: Option<UserName>,
    pub(crate) server: String,
}

impl Session {
    pub(crate) fn new(client: ClientHandle, server: String) -> Self {
        Self {
            client,
            current: None,
            server,
        }
    }

    /// Carries out `a`; `tag` labels the message events of a send.
    pub(crate) async fn perform(&mut self, a: Action, tag: Option<String>) -> Outcome {
        match self.try_perform(a, tag).await {
            Ok(o) => o,
            Err(e) => Outcome::Error(format!("{e:#}")),
        }
    }

    async fn try_perform(&mut self, a: Action, tag: Option<String>) -> Result<Outcome> {
        Ok(match a {
            Action::Send { to, text } => {
                let to = match to {
                    Some(list) => list
                        .iter()
                        .map(|n| user_name(n))
                        .collect::<Result<Vec<_>>>()?,
                    None => vec![self.current.clone().ok_or_else(|| {
                        anyhow::anyhow!("no conversation: use /to NAME or /msg NAME TEXT")
                    })?],
                };
                self.client.send_tagged(to, text, false, tag).await?;
                Outcome::Nothing
            }
            Action::To { name } => {
                let n = user_name(&name)?;
                self.current = Some(n.clone());
                let peers = self.client.peers().await?;
                Outcome::Info(match peers.iter().find(|p| p.name == n) {
                    Some(p) if p.key_changed => format!(
                        "now talking to {n} (protocol v1); their certificate CHANGED: /verify {n}, then /accept {n}"
                    ),
                    Some(p) if p.online => format!("now talking to {n} (protocol v1, online)"),
                    Some(_) => format!(
                        "now talking to {n} (protocol v1, offline: the relay keeps your messages until {n} logs in)"
                    ),
                    None => format!(
                        "now talking to {n} (protocol v1), who has not logged in to this relay yet (check the spelling): messages wait here until {n}'s certificate arrives"
                    ),
                })
            }
            Action::All { text } => {
                let online = self.client.online().await?;
                if online.is_empty() {
                    anyhow::bail!("nobody else is online");
                }
                self.client.send_tagged(online, text, true, tag).await?;
                Outcome::Nothing
            }
            Action::Who => {
                let online = self.client.online().await?;
                Outcome::Json(json!({"event": "who",
                    "online": online.iter().map(|n| n.as_str()).collect::<Vec<_>>()}))
            }
            Action::Verify { name } => {
                let n = user_name(&name)?;
                let sn = self.client.safety_number(n.clone()).await?;
                Outcome::Json(json!({"event": "safety_number", "name": n.as_str(), "number": sn}))
            }
            Action::Accept { name } => {
                let n = user_name(&name)?;
                let fp = self.client.accept_key(n.clone()).await?;
                Outcome::Json(
                    json!({"event": "key_accepted", "name": n.as_str(), "fingerprint": fp}),
                )
            }
            Action::Help => Outcome::Info(HELP.into()),
            Action::Info => Outcome::Json(json!({"event": "info",
                "identity": self.client.name().as_str(),
                "server": self.server,
                "current": self.current.as_ref().map(|n| n.as_str())})),
            Action::Quit => Outcome::Quit,
        })
    }
}

/// An outcome as text for a person (`None`: nothing to print).
pub(crate) fn outcome_text(o: &Outcome) -> Option<String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    match o {
        Outcome::Nothing | Outcome::Quit => None,
        Outcome::Info(s) => Some(s.clone()),
        Outcome::Error(e) => Some(format!("error: {}", crate::ui::sanitize(e))),
        Outcome::Json(v) => match v["event"].as_str() {
            Some("who") => {
                let names: Vec<String> = v["online"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect())
                    .unwrap_or_default();
                Some(if names.is_empty() {
                    "nobody else is online".into()
                } else {
                    format!("online, verified: {}", names.join(", "))
                })
            }
            Some("safety_number") => Some(format!(
                "safety number with {}: {}\n(compare it with {} over another channel; equal numbers mean no one is in between)",
                s(&v["name"]),
                s(&v["number"]),
                s(&v["name"])
            )),
            Some("key_accepted") => {
                Some(format!("new key of {} accepted and pinned", s(&v["name"])))
            }
            Some("info") => Some(format!(
                "you are {} on {}; current conversation: {}",
                s(&v["identity"]),
                s(&v["server"]),
                v["current"].as_str().unwrap_or("none")
            )),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_commands() {
        assert_eq!(
            parse_line("/msg bob hi there").unwrap(),
            Some(Action::Send {
                to: Some(vec!["bob".into()]),
                text: "hi there".into()
            })
        );
        assert_eq!(
            parse_line("/to bob").unwrap(),
            Some(Action::To { name: "bob".into() })
        );
        assert_eq!(
            parse_line("/all hello").unwrap(),
            Some(Action::All {
                text: "hello".into()
            })
        );
        assert_eq!(parse_line("/who").unwrap(), Some(Action::Who));
        assert_eq!(parse_line("/info").unwrap(), Some(Action::Info));
        assert_eq!(
            parse_line("/verify bob").unwrap(),
            Some(Action::Verify { name: "bob".into() })
        );
        assert_eq!(parse_line("/quit").unwrap(), Some(Action::Quit));
        assert_eq!(parse_line("   ").unwrap(), None);
        assert!(parse_line("/msg bob").is_err());
        assert!(parse_line("/nope").is_err());
        assert_eq!(
            parse_line("hello").unwrap(),
            Some(Action::Send {
                to: None,
                text: "hello".into()
            })
        );
    }

    #[test]
    fn a_double_slash_sends_text_that_starts_with_a_slash() {
        assert_eq!(
            parse_line("//etc/hosts is the file").unwrap(),
            Some(Action::Send {
                to: None,
                text: "/etc/hosts is the file".into()
            })
        );
    }

    #[test]
    fn parses_json_commands_with_their_request_ids() {
        let (req, a) =
            parse_json::<Action>(r#"{"cmd":"send","to":["bob"],"text":"hi","req":"r1"}"#);
        assert_eq!(req.as_deref(), Some("r1"));
        assert_eq!(
            a.unwrap(),
            Action::Send {
                to: Some(vec!["bob".into()]),
                text: "hi".into()
            }
        );
        let (req, a) = parse_json::<Action>(r#"{"cmd":"to","name":"bob","req":7}"#);
        assert_eq!(req.as_deref(), Some("7"));
        assert_eq!(a.unwrap(), Action::To { name: "bob".into() });
        let (req, a) = parse_json::<Action>(r#"{"cmd":"quit"}"#);
        assert_eq!((req, a.unwrap()), (None, Action::Quit));
        let (req, a) = parse_json::<Action>(r#"{"cmd":"send","text":"x","evil":1,"req":"r2"}"#);
        assert_eq!(req.as_deref(), Some("r2"));
        assert!(a.is_err());
        assert!(parse_json::<Action>("not json").1.is_err());
    }

    #[test]
    fn to_takes_a_name_or_a_list_in_both_protocols() {
        use crate::chat::v2::action::V2Action;
        for (line, want) in [
            (r#""bob""#, vec!["bob"]),
            (r#"["bob"]"#, vec!["bob"]),
            (r#"["bob","carol"]"#, vec!["bob", "carol"]),
        ] {
            let want: Vec<String> = want.into_iter().map(String::from).collect();
            let cmd = format!(r#"{{"cmd":"send","to":{line},"text":"hi"}}"#);
            let Action::Send { to, .. } = parse_json::<Action>(&cmd).1.unwrap() else {
                panic!("{cmd}")
            };
            assert_eq!(to.as_ref(), Some(&want), "v1: {cmd}");
            let V2Action::Send { to, .. } = parse_json::<V2Action>(&cmd).1.unwrap() else {
                panic!("{cmd}")
            };
            assert_eq!(to.as_ref(), Some(&want), "v2: {cmd}");
        }
        for bad in [r#"7"#, r#"[1]"#, r#"{"a":1}"#] {
            let cmd = format!(r#"{{"cmd":"send","to":{bad},"text":"hi"}}"#);
            assert!(parse_json::<Action>(&cmd).1.is_err(), "{cmd}");
            assert!(parse_json::<V2Action>(&cmd).1.is_err(), "{cmd}");
        }
        let (_, a) = parse_json::<Action>(r#"{"cmd":"send","text":"hi"}"#);
        assert!(matches!(a.unwrap(), Action::Send { to: None, .. }));
    }
}
