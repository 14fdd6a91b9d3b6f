//! Whole frames over a byte stream.
//!
//! [`FrameReader`] reads exactly [`FRAME_LEN`] bytes per frame. Silence is
//! bounded by the idle timeout; once a frame's first byte has arrived, the
//! rest must follow within the frame timeout, so a truncated frame cannot
//! hold a connection open. It is cancellation-safe.
//!
//! [`FrameWriter`] writes frames in batches of at most
//! [`WRITE_BATCH_FRAMES`], each batch as one contiguous `write` followed by
//! a flush. The flush empties rustls' send buffer, and a batch (32 KiB) is
//! below rustls' default 64 KiB send-buffer limit, so every batch is
//! accepted whole; with `max_fragment_size` set to one frame, rustls cuts it
//! into exactly one TLS record per frame, and the records of a batch leave
//! in one vectored system call instead of one call per frame.

use std::time::Duration;

use blindrelay_wire::{FRAME_LEN, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};

use crate::NetError;

/// Frames written between two flushes (8 x 4118-byte records = 33 KB, below
/// rustls' 64 KiB send-buffer limit).
pub const WRITE_BATCH_FRAMES: usize = 8;

/// Reads whole frames.
///
/// Cancellation-safe: the bytes of a partly received frame and the timers
/// live in the reader, so a `read_frame` future dropped by `select!` loses
/// nothing and the next call resumes where it stopped. The idle deadline
/// counts from the last byte received (or from creation), not from the call.
pub struct FrameReader<R> {
    inner: R,
    buf: Box<[u8; FRAME_LEN]>,
    filled: usize,
    last_activity: Instant,
    frame_started: Instant,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        let now = Instant::now();
        Self {
            inner,
            buf: Box::new([0u8; FRAME_LEN]),
            filled: 0,
            last_activity: now,
            frame_started: now,
        }
    }

    /// Reads the next frame's raw bytes. `Ok(None)` on a clean end of stream
    /// between frames. Fails with [`NetError::Idle`] when nothing arrived for
    /// `idle`, and [`NetError::Truncated`] when a started frame did not
    /// complete within `frame_timeout` or the stream ended inside a frame.
    pub async fn read_raw(
        &mut self,
        idle: Duration,
        frame_timeout: Duration,
    ) -> Result<Option<&[u8; FRAME_LEN]>, NetError> {
        loop {
            if self.filled == FRAME_LEN {
                self.filled = 0;
                return Ok(Some(&self.buf));
            }
            let (deadline, err) = if self.filled == 0 {
                (self.last_activity + idle, NetError::Idle)
            } else {
                (self.frame_started + frame_timeout, NetError::Truncated)
            };
            let dst = self.buf.get_mut(self.filled..).unwrap_or_default();
            let n = match timeout_at(deadline, self.inner.read(dst)).await {
                Err(_) => return Err(err),
                Ok(r) => r?,
            };
            if n == 0 {
                return if self.filled == 0 {
                    Ok(None)
                } else {
                    Err(NetError::Truncated)
                };
            }
            let now = Instant::now();
            if self.filled == 0 {
                self.frame_started = now;
            }
            self.last_activity = now;
            self.filled += n;
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
                // Allocated per batch and freed after it: an idle session
                // holds no batch buffer (10 000 idle connections would
                // otherwise keep 32 KiB each).
                let mut batch = Vec::with_capacity(chunk.len() * FRAME_LEN);
                for f in chunk {
                    batch.extend_from_slice(&f[..]);
                }
                inner.write_all(&batch).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use blindrelay_wire::{FrameType, Message};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_cancelled_read_loses_no_bytes() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut reader = FrameReader::new(server);
        let mut w = client;
        let frame = Message::Ping(7).encode().unwrap();
        // Half a frame, then a read that is cancelled, then the rest.
        w.write_all(&frame[..1000]).await.unwrap();
        let r = tokio::time::timeout(
            Duration::from_millis(50),
            reader.read_frame(Duration::from_secs(5), Duration::from_secs(5)),
        )
        .await;
        assert!(r.is_err(), "read should still be waiting");
        w.write_all(&frame[1000..]).await.unwrap();
        let f = reader
            .read_frame(Duration::from_secs(5), Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.kind(), FrameType::Ping);
        assert_eq!(Message::from_frame(&f).unwrap(), Message::Ping(7));
    }

    /// A sink that records the size of every write call it receives.
    #[derive(Default)]
    struct CountingSink {
        writes: Vec<usize>,
        bytes: Vec<u8>,
    }

    impl AsyncWrite for CountingSink {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.writes.push(buf.len());
            self.bytes.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_batch_is_one_write_of_whole_frames_in_order() {
        let frames: Vec<Box<[u8; FRAME_LEN]>> = (0..20u64)
            .map(|i| Message::Ping(i).encode().unwrap())
            .collect();
        let mut w = FrameWriter::new(CountingSink::default(), Duration::from_secs(1));
        w.write_batch(&frames).await.unwrap();
        let sink = w.get_mut();
        assert_eq!(
            sink.writes,
            vec![8 * FRAME_LEN, 8 * FRAME_LEN, 4 * FRAME_LEN],
            "one write per batch of {WRITE_BATCH_FRAMES} frames"
        );
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(sink.bytes, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_byte_not_from_the_call() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server);
        for _ in 0..3 {
            // Each call is cancelled after 400 ms; the idle budget is 1 s overall.
            let _ = tokio::time::timeout(
                Duration::from_millis(400),
                reader.read_frame(Duration::from_secs(1), Duration::from_secs(1)),
            )
            .await;
        }
        let r = reader
            .read_frame(Duration::from_secs(1), Duration::from_secs(1))
            .await;
        assert!(matches!(r, Err(NetError::Idle)));
    }

    #[tokio::test(start_paused = true)]
    async fn truncated_frame_times_out_and_eof_inside_a_frame_is_truncation() {
        let (mut client, server) = tokio::io::duplex(8192);
        let mut reader = FrameReader::new(server);
        client.write_all(&[1u8; 100]).await.unwrap();
        let r = reader
            .read_frame(Duration::from_secs(60), Duration::from_secs(2))
            .await;
        assert!(matches!(r, Err(NetError::Truncated)));
        let (mut client, server) = tokio::io::duplex(8192);
        let mut reader = FrameReader::new(server);
        client.write_all(&[1u8; 100]).await.unwrap();
        drop(client);
        let r = reader
            .read_frame(Duration::from_secs(60), Duration::from_secs(2))
            .await;
        assert!(matches!(r, Err(NetError::Truncated)));
    }
}
