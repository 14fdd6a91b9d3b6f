//! A session's writer task: drains the session's two bounded queues (live
//! traffic first, the login backlog in the gaps) to the socket, packing
//! statuses that wait together into one frame. A client that does not read
//! within the write timeout is disconnected through the session's kill
//! switch; nobody else ever waits for it.

use std::sync::Arc;

use blindrelay_net::{FrameWriter, NetError, WRITE_BATCH_FRAMES};
use blindrelay_wire::GoodbyeCode;
use tokio::sync::{mpsc, watch};

use crate::outbound::{Outbound, pack};
use crate::registry::Kill;

/// Queue entries the writer takes at once (frames are then written
/// [`WRITE_BATCH_FRAMES`] per system call); statuses among them are packed.
pub const WRITE_BATCH_ENTRIES: usize = 64;

/// Writes until both queues are closed and drained (then sends TLS
/// close_notify), or until a write fails (then kills the session).
pub(crate) async fn write_loop<W>(
    mut writer: FrameWriter<W>,
    mut live: mpsc::Receiver<Outbound>,
    mut backlog: mpsc::Receiver<Outbound>,
    kill: Arc<watch::Sender<Option<Kill>>>,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut now: Vec<Outbound> = Vec::new();
    let mut old: Vec<Outbound> = Vec::new();
    let mut frames = Vec::new();
    let mut backlog_open = true;
    loop {
        // Live entries first; the backlog fills the gaps. Up to
        // WRITE_BATCH_ENTRIES at a time, so that statuses waiting together
        // are packed into one frame.
        let batch = tokio::select! {
            biased;
            n = live.recv_many(&mut now, WRITE_BATCH_ENTRIES) => {
                if n == 0 {
                    break;
                }
                &mut now
            }
            n = backlog.recv_many(&mut old, WRITE_BATCH_FRAMES), if backlog_open => {
                if n == 0 {
                    backlog_open = false;
                    continue;
                }
                &mut old
            }
        };
        pack(batch, &mut frames);
        // An idle session keeps no batch-sized buffers.
        batch.shrink_to(WRITE_BATCH_FRAMES);
        // The write timeout applies per WRITE_BATCH_FRAMES frames, as the
        // limit a client must keep up with does not depend on how many
        // entries were waiting.
        let mut written = Ok(());
        for chunk in frames.chunks(WRITE_BATCH_FRAMES) {
            written = writer.write_batch(chunk).await;
            if written.is_err() {
                break;
            }
        }
        frames.clear();
        frames.shrink_to(WRITE_BATCH_FRAMES);
        if let Err(e) = written {
            let reason = match e {
                NetError::WriteTimeout => "client not reading (write timeout)".to_string(),
                other => other.to_string(),
            };
            kill.send_replace(Some(Kill {
                code: GoodbyeCode::TooSlow,
                reason,
            }));
            return;
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::encode;
    use blindrelay_wire::{FRAME_LEN, Message, MessageId, StatusKind};
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn statuses_waiting_together_leave_in_one_frame_and_frames_keep_their_order() {
        let (tx, rx) = mpsc::channel::<Outbound>(16);
        let (_btx, brx) = mpsc::channel::<Outbound>(1);
        let stored =
            |i: u8| Outbound::Status(MessageId([i; 16]), StatusKind::Stored { recipients: 1 });
        for i in 0..5 {
            tx.send(stored(i)).await.unwrap();
        }
        tx.send(encode(&Message::Ping(9)).unwrap()).await.unwrap();
        tx.send(stored(5)).await.unwrap();
        drop(tx);
        let (ours, mut theirs) = tokio::io::duplex(64 * FRAME_LEN);
        let (kill, _) = watch::channel(None);
        write_loop(
            FrameWriter::new(ours, std::time::Duration::from_secs(5)),
            rx,
            brx,
            Arc::new(kill),
        )
        .await;
        let mut bytes = Vec::new();
        theirs.read_to_end(&mut bytes).await.unwrap();
        let msgs: Vec<Message> = bytes
            .chunks(FRAME_LEN)
            .map(|f| Message::decode(f).unwrap())
            .collect();
        let kind = StatusKind::Stored { recipients: 1 };
        assert_eq!(
            msgs,
            vec![
                Message::Statuses((0..5).map(|i| (MessageId([i; 16]), kind.clone())).collect()),
                Message::Ping(9),
                Message::Status {
                    msg_id: MessageId([5; 16]),
                    kind
                },
            ]
        );
    }
}
