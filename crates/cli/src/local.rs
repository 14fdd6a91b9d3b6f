//! The local socket of a running chat, so that a script's `send` for the
//! same user or device goes through the chat that owns the state instead
//! of being refused (one state has one owner: two processes would reuse
//! each other's sending keys or replay memory). As signal-cli's daemon
//! does.
//!
//! * Where: `chat.sock` beside the client's `state.db`, in its 0700
//!   directory, the socket itself 0600: only the user reaches it.
//! * What: one JSON line in, a `send` command exactly as `chat --json`
//!   takes it (`{"cmd":"send","to":"bob","text":"hi"}`; on a device also
//!   `"group"`); JSON lines out, as `chat --json` prints them: `sending`
//!   (the message's `id`: it is in the chat's outbox), then `stored` /
//!   `sent`, or `error` / `undelivered`; then the connection closes. A
//!   message whose outcome has not come within [`OUTCOME_WAIT`] stays in
//!   the chat's outbox and is said to (`warning`).
//! * Bounds: [`MAX_CLIENTS`] connections at once (a permit is taken
//!   before `accept`), a request line of at most [`MAX_LINE`] bytes read
//!   within [`READ_TIMEOUT`], [`REPLY_QUEUE`] lines queued per connection
//!   (the chat never waits for a slow script: past it, lines are dropped
//!   and the script sees the connection end without an outcome).
//!
//! `send` tries the socket first ([`send_through`]) and owns the state
//! itself only when no chat answers there.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use blindrelay_wire::MessageId;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};

/// The socket's file name, beside `state.db`.
pub(crate) const SOCKET_NAME: &str = "chat.sock";
/// Connections served at once.
pub(crate) const MAX_CLIENTS: usize = 8;
/// The longest request line (a 64 KiB text, escaped, with room to spare).
pub(crate) const MAX_LINE: usize = 8 * blindrelay_e2e::content::MAX_TEXT_LEN;
/// A connection must send its request within this time.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for its message's outcome.
pub(crate) const OUTCOME_WAIT: Duration = Duration::from_secs(60);
/// Lines queued for one connection.
pub(crate) const REPLY_QUEUE: usize = 16;
/// Requests waiting for the chat to take them.
pub(crate) const REQUEST_QUEUE: usize = MAX_CLIENTS;

/// The socket of the client whose state is `state` (`None`: in memory,
/// no socket).
pub(crate) fn socket_path(state: Option<&Path>) -> Option<PathBuf> {
    state.map(|s| s.with_file_name(SOCKET_NAME))
}

/// Where one request's lines go; dropped after its last.
#[derive(Clone, Debug)]
pub(crate) struct Reply(mpsc::Sender<Value>);

impl Reply {
    /// Whether the script has gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Queues a line for the script (never waits: see [`REPLY_QUEUE`]).
    pub(crate) fn say(&self, v: Value) {
        let _ = self.0.try_send(v);
    }
}

/// A `send` a script handed to the running chat.
#[derive(Debug)]
pub(crate) struct Request {
    /// The command line, as `chat --json` reads one.
    pub(crate) line: String,
    /// Where its outcome goes.
    pub(crate) reply: Reply,
}

/// Messages handed over through the socket, by id, whose outcome a script
/// waits for (at most one per connection, so at most [`MAX_CLIENTS`]).
#[derive(Debug, Default)]
pub(crate) struct Awaited {
    by_id: HashMap<MessageId, Reply>,
}

impl Awaited {
    /// Passes the events about `id` to `reply` from now on.
    pub(crate) fn watch(&mut self, id: MessageId, reply: Reply) {
        if self.by_id.len() < MAX_CLIENTS {
            self.by_id.insert(id, reply);
        }
    }

    /// An event about message `id`; `last` ends its request.
    pub(crate) fn tell(&mut self, id: &MessageId, v: &Value, last: bool) {
        let Some(reply) = self.by_id.get(id) else {
            return;
        };
        reply.say(v.clone());
        if last {
            self.by_id.remove(id);
        }
    }

    /// Whether a script waits for message `id`.
    pub(crate) fn waits_for(&self, id: &MessageId) -> bool {
        self.by_id.contains_key(id)
    }

    /// A request whose connection is gone needs no outcome.
    pub(crate) fn forget_closed(&mut self) {
        self.by_id.retain(|_, r| !r.is_closed());
    }
}

/// A listening socket; the file goes when this is dropped.
pub(crate) struct Listening {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens at `path`; requests come out of the receiver.
pub(crate) fn listen(path: &Path) -> Result<(Listening, mpsc::Receiver<Request>)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        blindrelay_pki::files::private_dir(dir)?;
    }
    if path.exists() {
        // A socket nobody answers is what a crashed chat left.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another chat of this user or device listens at {}",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listening at {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let task = tokio::spawn(serve(listener, tx));
    Ok((
        Listening {
            path: path.to_path_buf(),
            task,
        },
        rx,
    ))
}

async fn serve(listener: UnixListener, tx: mpsc::Sender<Request>) {
    let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    one(stream, tx).await;
                    drop(permit);
                });
            }
            Err(e) => tracing::warn!(error = %e, "the local socket failed to accept"),
        }
    }
}

async fn write_line(w: &mut (impl AsyncWriteExt + Unpin), v: &Value) -> bool {
    let mut line = v.to_string();
    line.push('\n');
    w.write_all(line.as_bytes()).await.is_ok()
}

/// Serves one connection: its request, then the lines the chat says.
async fn one(stream: UnixStream, tx: mpsc::Sender<Request>) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd.take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX)));
    let mut line = String::new();
    let read = tokio::time::timeout(READ_TIMEOUT, rd.read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) || !line.ends_with('\n') {
        let text = format!("one command line of at most {MAX_LINE} bytes within {READ_TIMEOUT:?}");
        write_line(&mut wr, &json!({"event": "error", "text": text})).await;
        return;
    }
    let (reply, mut lines) = mpsc::channel(REPLY_QUEUE);
    let request = Request {
        line,
        reply: Reply(reply),
    };
    if tx.send(request).await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(v)) => {
                if !write_line(&mut wr, &v).await {
                    return;
                }
            }
            Ok(None) => return,
            Err(_) => {
                let text = "no outcome yet: the message stays in the running chat's outbox";
                write_line(&mut wr, &json!({"event": "warning", "text": text})).await;
                return;
            }
        }
    }
}

/// The next request, for a `select!` branch: never ready without a
/// socket (`None`, or once it has gone).
pub(crate) async fn next(requests: &mut Option<mpsc::Receiver<Request>>) -> Request {
    loop {
        let Some(rx) = requests.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Some(r) => return r,
            None => *requests = None,
        }
    }
}

/// Hands `command` to the chat listening at `path`: its lines, or `None`
/// if no chat listens there.
pub(crate) async fn send_through(path: &Path, command: &Value) -> Result<Option<Vec<Value>>> {
    let Ok(stream) = UnixStream::connect(path).await else {
        return Ok(None);
    };
    let (rd, mut wr) = stream.into_split();
    if !write_line(&mut wr, command).await {
        bail!("the running chat closed its socket");
    }
    let mut lines = BufReader::new(rd).lines();
    let mut out = Vec::new();
    let read = async {
        while let Some(l) = lines.next_line().await? {
            out.push(serde_json::from_str(&l)?);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(OUTCOME_WAIT + READ_TIMEOUT, read)
        .await
        .context("the running chat did not answer")??;
    Ok(Some(out))
}

/// The command a request carries, if it is one the socket takes (a
/// `send`); else the error line to answer.
pub(crate) fn only_send(line: &str) -> Result<(), Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(v) if v.get("cmd").and_then(Value::as_str) == Some("send") => Ok(()),
        Ok(_) => Err(json!({"event": "error",
            "text": "the local socket takes `send` commands only"})),
        Err(e) => Err(json!({"event": "error", "text": format!("bad command: {e}")})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_reaches_the_chat_and_its_lines_come_back_until_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("me").join(SOCKET_NAME);
        let (listening, mut requests) = listen(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let chat = tokio::spawn(async move {
            let r = requests.recv().await.unwrap();
            assert!(only_send(&r.line).is_ok());
            let mut awaited = Awaited::default();
            let id = MessageId([1; 16]);
            r.reply.say(json!({"event": "sending", "id": id.to_hex()}));
            awaited.watch(id, r.reply);
            awaited.tell(&MessageId([2; 16]), &json!({"event": "sent"}), true);
            awaited.tell(&id, &json!({"event": "stored", "id": id.to_hex()}), true);
            assert!(awaited.by_id.is_empty());
        });
        let lines = send_through(&path, &json!({"cmd": "send", "to": "bob", "text": "hi"}))
            .await
            .unwrap()
            .unwrap();
        chat.await.unwrap();
        let events: Vec<&str> = lines.iter().filter_map(|v| v["event"].as_str()).collect();
        assert_eq!(events, ["sending", "stored"]);
        drop(listening);
        assert!(!path.exists(), "the socket goes with the chat");
        assert!(
            send_through(&path, &json!({"cmd": "send"}))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_socket_left_by_a_crashed_chat_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_NAME);
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let (first, _rx) = listen(&path).unwrap();
        assert!(listen(&path).is_err(), "a running chat keeps its socket");
        drop(first);
    }

    #[test]
    fn only_send_commands_come_through() {
        assert!(only_send(r#"{"cmd":"send","to":"bob","text":"x"}"#).is_ok());
        assert_eq!(
            only_send(r#"{"cmd":"quit"}"#).unwrap_err()["event"],
            "error"
        );
        assert!(only_send("not json").is_err());
    }

    #[tokio::test]
    async fn an_oversized_request_is_cut_off_and_never_reaches_the_chat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_NAME);
        let (_l, mut requests) = listen(&path).unwrap();
        let mut s = UnixStream::connect(&path).await.unwrap();
        let big = vec![b'x'; MAX_LINE + 10];
        let _ = s.write_all(&big).await;
        // The relay's side ends the connection (its error line may be lost
        // with the unread rest).
        let mut answer = Vec::new();
        let ended = tokio::time::timeout(READ_TIMEOUT, s.read_to_end(&mut answer)).await;
        assert!(ended.is_ok(), "the connection was ended");
        assert!(requests.try_recv().is_err(), "nothing reached the chat");
    }
}
