//! The [`ClientHandle`] a user interface talks to, and the commands it
//! sends to the connection task.

use blindrelay_wire::{MessageId, UserName};
use tokio::sync::{mpsc, oneshot};

use crate::core::peers::PeerInfo;
use crate::error::ClientError;
use crate::store::HistoryEntry;

/// The longest label [`ClientHandle::send_tagged`] takes.
pub const MAX_TAG_LEN: usize = 128;

/// Where an answer goes.
pub(crate) type Reply<T> = oneshot::Sender<T>;

/// What a user interface asks of the connection task.
pub(crate) enum Command {
    Send {
        to: Vec<UserName>,
        text: String,
        room: bool,
        tag: Option<String>,
        reply: Reply<Result<MessageId, ClientError>>,
    },
    Online(Reply<Vec<UserName>>),
    Peers(Reply<Vec<PeerInfo>>),
    SafetyNumber(UserName, Reply<Result<String, ClientError>>),
    Accept(UserName, Reply<Result<String, ClientError>>),
    History(usize, Reply<Result<Vec<HistoryEntry>, ClientError>>),
    OutboxWaiting(Reply<Result<u64, ClientError>>),
    Quit(Reply<()>),
}

/// Talks to the connection task.
#[derive(Clone)]
pub struct ClientHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) name: UserName,
}

impl ClientHandle {
    async fn ask<T>(&self, f: impl FnOnce(Reply<T>) -> Command) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(f(tx))
            .await
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Our user name.
    pub fn name(&self) -> &UserName {
        &self.name
    }

    /// Writes `text` for `to` to the outbox and sends it (now, or after the
    /// next reconnect). The relay's progress arrives as
    /// [`crate::Event::Sent`], [`crate::Event::Stored`] and, from each
    /// recipient, [`crate::Event::Delivered`].
    pub async fn send(
        &self,
        to: Vec<UserName>,
        text: String,
        room: bool,
    ) -> Result<MessageId, ClientError> {
        self.send_tagged(to, text, room, None).await
    }

    /// [`ClientHandle::send`], with a label of the caller's that comes back
    /// in the message's [`crate::Event::Queued`] (at most
    /// [`MAX_TAG_LEN`] bytes), which precedes every other event about it.
    pub async fn send_tagged(
        &self,
        to: Vec<UserName>,
        text: String,
        room: bool,
        tag: Option<String>,
    ) -> Result<MessageId, ClientError> {
        if tag.as_ref().is_some_and(|t| t.len() > MAX_TAG_LEN) {
            return Err(ClientError::TagTooLong { max: MAX_TAG_LEN });
        }
        self.ask(|reply| Command::Send {
            to,
            text,
            room,
            tag,
            reply,
        })
        .await?
    }

    /// Verified users online.
    pub async fn online(&self) -> Result<Vec<UserName>, ClientError> {
        self.ask(Command::Online).await
    }

    /// Everyone the relay has listed since this client started (everyone
    /// who has ever logged in to it), online or not.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, ClientError> {
        self.ask(Command::Peers).await
    }

    /// The safety number shared with `name` (of a changed certificate, if
    /// one is pending: displaying it is required before accepting it).
    pub async fn safety_number(&self, name: UserName) -> Result<String, ClientError> {
        self.ask(|r| Command::SafetyNumber(name, r)).await?
    }

    /// Accepts `name`'s changed certificate (after its safety number was shown).
    pub async fn accept_key(&self, name: UserName) -> Result<String, ClientError> {
        self.ask(|r| Command::Accept(name, r)).await?
    }

    /// The last `n` messages of the local history, oldest first.
    pub async fn history(&self, n: usize) -> Result<Vec<HistoryEntry>, ClientError> {
        self.ask(|r| Command::History(n, r)).await?
    }

    /// How many messages wait in the outbox for the relay (at most
    /// [`crate::store::MAX_OUTBOX_WAITING`]: past it, sending is refused
    /// with [`ClientError::OutboxFull`]).
    pub async fn outbox_waiting(&self) -> Result<u64, ClientError> {
        self.ask(Command::OutboxWaiting).await?
    }

    /// Says goodbye, closes the connection, and returns once that is done
    /// (bounded by the write timeout).
    pub async fn quit(&self) {
        let _ = self.ask(Command::Quit).await;
    }
}
