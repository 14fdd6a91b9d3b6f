//! What the relay sees of a relayed fragment, made visible: the
//! `[SERVER SEES]` preview logged with `--verbose`, and the [`Observed`]
//! records the demo and monitoring read. Both show routing metadata and
//! opaque bytes, which is everything the relay ever learns about a message.

use std::sync::OnceLock;

use base64::Engine;
use blindrelay_wire::{FragmentPos, MessageId, RoutedBody, Target, UserName};
use tokio::sync::mpsc;
use tracing::info;

/// Frames queued for an observer before further observations are dropped.
pub const OBSERVER_QUEUE: usize = 1024;
/// Payload bytes shown in the `[SERVER SEES]` preview.
const PREVIEW_BYTES: usize = 30;

/// What the relay saw of one relayed fragment: routing metadata and opaque
/// bytes. This is everything the server ever learns about a message.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The authenticated sender.
    pub sender: UserName,
    /// The routing target.
    pub target: Target,
    /// Message id.
    pub msg_id: MessageId,
    /// Fragment position.
    pub fragment: FragmentPos,
    /// The opaque payload.
    pub payload: Vec<u8>,
}

/// Who watches what the relay sees: the log (when verbose) and at most one
/// subscriber.
pub(crate) struct Observer {
    verbose: bool,
    subscriber: OnceLock<mpsc::Sender<Observed>>,
}

impl Observer {
    pub(crate) fn new(verbose: bool) -> Self {
        Self {
            verbose,
            subscriber: OnceLock::new(),
        }
    }

    /// The subscriber's channel ([`OBSERVER_QUEUE`] deep). Only the first
    /// call has an effect.
    pub(crate) fn subscribe(&self) -> mpsc::Receiver<Observed> {
        let (tx, rx) = mpsc::channel(OBSERVER_QUEUE);
        let _ = self.subscriber.set(tx);
        rx
    }

    /// Logs the preview (when verbose) and reports the fragment to the
    /// subscriber (when there is one; dropped, never waited for, when it
    /// falls behind).
    pub(crate) fn relayed(&self, body: &RoutedBody) {
        let h = body.header();
        if self.verbose {
            let n = body.payload().len().min(PREVIEW_BYTES);
            let preview = base64::engine::general_purpose::STANDARD
                .encode(body.payload().get(..n).unwrap_or_default());
            info!(identity = %h.sender, msg = %h.msg_id.to_hex(), fragment = h.fragment.index(),
                "[SERVER SEES] {preview}...");
        }
        if let Some(obs) = self.subscriber.get() {
            let _ = obs.try_send(Observed {
                sender: h.sender.clone(),
                target: h.target.clone(),
                msg_id: h.msg_id,
                fragment: h.fragment,
                payload: body.payload().to_vec(),
            });
        }
    }
}
