//! [`User`]: a real blindrelay client, connected and logged in, with waits
//! on what it shows.

use std::time::Duration;

use blindrelay_client::{ClientConfig, ClientHandle, Event, connect};
use blindrelay_wire::{MessageId, UserName};
use tokio::sync::mpsc;

use crate::{KitError, TestPki, WAIT, name, names};

/// A connected client and its events.
pub struct User {
    /// Who.
    pub name: UserName,
    /// The client.
    pub handle: ClientHandle,
    /// What it shows.
    pub events: mpsc::Receiver<Event>,
}

/// A text message as the user saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The authenticated sender.
    pub from: UserName,
    /// The text.
    pub text: String,
    /// A room message.
    pub room: bool,
}

/// `(from, text, room)`, for assertions.
impl PartialEq<(&str, &str, bool)> for Shown {
    fn eq(&self, (from, text, room): &(&str, &str, bool)) -> bool {
        self.from.as_str() == *from && self.text == *text && self.room == *room
    }
}

impl User {
    /// Connects `user` of `pki` to the relay at `addr`, with its state in
    /// memory, and waits for the directory.
    pub async fn connect(pki: &TestPki, user: &str, addr: &str) -> Result<Self, KitError> {
        Self::connect_with(pki, user, addr, |_| {}).await
    }

    /// Like [`User::connect`], after `adjust` changed the configuration.
    pub async fn connect_with(
        pki: &TestPki,
        user: &str,
        addr: &str,
        adjust: impl FnOnce(&mut ClientConfig),
    ) -> Result<Self, KitError> {
        let n = name(user)?;
        let mut cfg = ClientConfig::from_dir(pki.pki.user_dir(&n).root(), n.clone(), addr);
        // The CA's CRL as it is now (a test may have just revoked someone).
        cfg.crl = Some(pki.pki.crl_path());
        cfg.state = None;
        adjust(&mut cfg);
        let (handle, events) = connect(&cfg).await?;
        let mut u = Self {
            name: n,
            handle,
            events,
        };
        u.wait_for("the directory", |e| matches!(e, Event::Connected { .. }))
            .await?;
        Ok(u)
    }

    /// Waits until `pred` matches an event; returns it. Events before it
    /// are dropped.
    pub async fn wait_for(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Result<Event, KitError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return Ok(e),
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(KitError::Closed {
                        who: self.name.to_string(),
                        what: what.into(),
                    });
                }
                Err(_) => {
                    return Err(KitError::Timeout {
                        who: self.name.to_string(),
                        what: what.into(),
                    });
                }
            }
        }
    }

    /// Waits until `who` is online and verified.
    pub async fn wait_online(&mut self, who: &str) -> Result<(), KitError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if self
                .handle
                .online()
                .await?
                .iter()
                .any(|n| n.as_str() == who)
            {
                return Ok(());
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.events.recv()).await;
        }
        Err(KitError::Timeout {
            who: self.name.to_string(),
            what: format!("{who} to come online"),
        })
    }

    /// The next text message shown.
    pub async fn message(&mut self) -> Result<Shown, KitError> {
        match self
            .wait_for("a message", |e| matches!(e, Event::Message { .. }))
            .await?
        {
            Event::Message {
                from, text, room, ..
            } => Ok(Shown { from, text, room }),
            other => Err(KitError::Unexpected {
                who: self.name.to_string(),
                expected: "a message".into(),
                got: format!("{other:?}"),
            }),
        }
    }

    /// The next warning shown.
    pub async fn warning(&mut self) -> Result<String, KitError> {
        match self
            .wait_for("a warning", |e| matches!(e, Event::Warning(_)))
            .await?
        {
            Event::Warning(w) => Ok(w),
            other => Err(KitError::Unexpected {
                who: self.name.to_string(),
                expected: "a warning".into(),
                got: format!("{other:?}"),
            }),
        }
    }

    /// The texts and warnings shown during `d`.
    pub async fn quiet(&mut self, d: Duration) -> (Vec<String>, Vec<String>) {
        let (mut msgs, mut warns) = (vec![], vec![]);
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match e {
                Event::Message { text, .. } => msgs.push(text),
                Event::Warning(w) => warns.push(w),
                _ => {}
            }
        }
        (msgs, warns)
    }

    /// Sends `text` to `to`; returns its id.
    pub async fn send(&self, to: &[&str], text: &str) -> Result<MessageId, KitError> {
        Ok(self.handle.send(names(to)?, text.into(), false).await?)
    }
}
