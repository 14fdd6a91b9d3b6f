//! Whole frames over a byte stream.
//!
//! [`FrameReader`] reads exactly [`FRAME_LEN`] bytes per frame. Waiting for
//! a frame to *start* is bounded by the idle timeout; once its first byte has
//! arrived, the rest must follow within the frame timeout, so a truncated
//! frame cannot hold a connection open.
//!
//! [`FrameWriter`] writes frames in batches of at most
//! [`WRITE_BATCH_FRAMES`] and flushes after each batch. With rustls' default
//! 64 KiB send buffer this guarantees that every frame is accepted whole by
//! one `write`, so with `max_fragment_size` set to one frame every frame
//! becomes exactly one TLS record.

use std::time::Duration;

use blindrelay_wire::{FRAME_LEN, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::NetError;

/// Frames written between two flushes (8 x 4118-byte records = 33 KB, below
/// rustls' 64 KiB send-buffer limit).
pub const WRITE_BATCH_FRAMES: usize = 8;

/// Reads whole frames.
pub struct FrameReader<R> {
    inner: R,
    buf: Box<[u8; FRAME_LEN]>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Box::new([0u8; FRAME_LEN]),
        }
    }

    /// Reads the next frame's raw bytes. `Ok(None)` on a clean end of stream
    /// between frames.
    pub async fn read_raw(
        &mut self,
        idle: Duration,
        frame_timeout: Duration,
    ) -> Result<Option<&[u8; FRAME_LEN]>, NetError> {
        let first = match timeout(idle, self.inner.read(&mut self.buf[..])).await {
            Err(_) => return Err(NetError::Idle),
            Ok(r) => r?,
        };
        if first == 0 {
            return Ok(None);
        }
        let rest = self.buf.get_mut(first..).unwrap_or_default();
        match timeout(frame_timeout, self.inner.read_exact(rest)).await {
            Err(_) => Err(NetError::Truncated),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(NetError::Truncated),
            Ok(r) => {
                r?;
                Ok(Some(&self.buf))
            }
        }
    }

    /// Reads and decodes the next frame. `Ok(None)` on a clean end of stream.
    pub async fn read_frame(
        &mut self,
        idle: Duration,
        frame_timeout: Duration,
    ) -> Result<Option<Frame>, NetError> {
        match self.read_raw(idle, frame_timeout).await? {
            None => Ok(None),
            Some(raw) => Ok(Some(Frame::decode(&raw[..])?)),
        }
    }

    /// The wrapped reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// Writes whole frames.
pub struct FrameWriter<W> {
    inner: W,
    write_timeout: Duration,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Wraps a writer; every batch must be written within `write_timeout`.
    pub fn new(inner: W, write_timeout: Duration) -> Self {
        Self {
            inner,
            write_timeout,
        }
    }

    /// Writes up to [`WRITE_BATCH_FRAMES`] frames and flushes. Callers with
    /// more frames call it repeatedly.
    pub async fn write_batch<F: std::ops::Deref<Target = [u8; FRAME_LEN]>>(
        &mut self,
        frames: &[F],
    ) -> Result<(), NetError> {
        let inner = &mut self.inner;
        let work = async move {
            for chunk in frames.chunks(WRITE_BATCH_FRAMES) {
                for f in chunk {
                    inner.write_all(&f[..]).await?;
                }
                inner.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        match timeout(self.write_timeout, work).await {
            Err(_) => Err(NetError::WriteTimeout),
            Ok(r) => Ok(r?),
        }
    }

    /// Writes one frame and flushes.
    pub async fn write_one(&mut self, frame: &[u8; FRAME_LEN]) -> Result<(), NetError> {
        self.write_batch(&[frame]).await
    }

    /// Sends TLS close_notify / shuts down the write side.
    pub async fn shutdown(&mut self) -> Result<(), NetError> {
        match timeout(self.write_timeout, self.inner.shutdown()).await {
            Err(_) => Err(NetError::WriteTimeout),
            Ok(r) => Ok(r?),
        }
    }

    /// The wrapped writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}
