//! One connection's bookkeeping: which phase it is in (silent since accept, idle between requests, reading a
//! request head, serving), since when, and the watchdog that closes it when a phase outlasts its bound.
//!
//! We keep our own clock instead of hyper's `header_read_timeout`: hyper 1.12 starts that timer whenever it waits
//! for a request head (proto/h1/conn.rs `poll_read_head`), so it would also close a keep-alive connection that is
//! merely idle. Here the head timer starts at accept, or at the first byte of the next request.

use super::ConnectionLimits;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A handler is cut at the request timeout; a connection still serving this much later is stuck on its socket
/// (typically a client that never reads the response) and is dropped.
pub const SERVING_SLACK: Duration = Duration::from_secs(5);

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, no byte received yet.
    New,
    /// Between requests on a keep-alive connection.
    Idle,
    /// Bytes of a request head have arrived, the head is not complete.
    Head,
    /// At least one request is being handled or its response body sent.
    Serving,
}

/// The pure part: phase transitions and the deadline they imply.
#[derive(Debug, Clone)]
pub struct Track {
    phase: Phase,
    /// When the current bound started counting.
    since: Instant,
    in_flight: usize,
    /// HTTP/2: frames (pings, window updates) arrive between requests, so bytes do not start a head.
    h2: bool,
}

impl Track {
    pub fn new(now: Instant) -> Self {
        Self {
            phase: Phase::New,
            since: now,
            in_flight: 0,
            h2: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn since(&self) -> Instant {
        self.since
    }

    /// Bytes arrived. `first` is what this read brought; the HTTP/2 preface marks the connection as h2.
    pub fn bytes_arrived(&mut self, now: Instant, first: &[u8]) {
        match self.phase {
            // The head of a new connection is timed from accept: a client that connects and dribbles must not
            // gain time by the first byte.
            Phase::New => {
                self.h2 = first.starts_with(b"PRI * HTTP/2.0");
                self.phase = Phase::Head;
            }
            Phase::Idle if !self.h2 => {
                self.phase = Phase::Head;
                self.since = now;
            }
            Phase::Idle | Phase::Head | Phase::Serving => {}
        }
    }

    pub fn request_started(&mut self, now: Instant) {
        self.in_flight += 1;
        self.phase = Phase::Serving;
        self.since = now;
    }

    pub fn request_finished(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.phase = Phase::Idle;
            self.since = now;
        }
    }

    /// When this connection is closed unless its phase changes first.
    pub fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        self.since
            + match self.phase {
                Phase::New | Phase::Head => limits.header_timeout,
                Phase::Idle => limits.idle_timeout,
                Phase::Serving => limits.request_timeout + SERVING_SLACK,
            }
    }

    /// May be closed to make room for a new connection: nothing is being served and no request has started
    /// arriving (what nginx reuses first when it runs out of connections).
    pub fn evictable(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::Idle)
    }
}

/// A connection as the accept loop and its own task share it.
pub struct Conn {
    track: Mutex<Track>,
    /// A phase changed: the watchdog recomputes its deadline.
    changed: Notify,
    /// The accept loop wants this connection closed to make room.
    evict: Notify,
}

impl Conn {
    pub fn new(now: Instant) -> Arc<Self> {
        Arc::new(Self {
            track: Mutex::new(Track::new(now)),
            changed: Notify::new(),
            evict: Notify::new(),
        })
    }

    /// A panic elsewhere while holding the lock leaves a usable `Track`: every update is a few field writes.
    pub fn track(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Track)) {
        f(&mut self.track());
        self.changed.notify_one();
    }

    pub fn evict(&self) {
        self.evict.notify_one();
    }

    /// Marks a request as being served until the guard is dropped (after its response body is sent).
    pub fn serving(self: &Arc<Self>) -> Serving {
        self.update(|t| t.request_started(Instant::now()));
        Serving(self.clone())
    }

    /// Runs `connection` until it ends, a bound trips, the accept loop evicts it, or (after `graceful` fires and
    /// `shut_down` was called) it finishes what it was doing. Returning drops the connection: the socket closes.
    pub async fn watch<F>(
        &self,
        limits: &ConnectionLimits,
        connection: Pin<&mut F>,
        mut graceful: tokio::sync::watch::Receiver<bool>,
        shut_down: impl Fn(Pin<&mut F>),
    ) where
        F: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
    {
        let mut connection = connection;
        let mut told = false;
        loop {
            let deadline = self.track().deadline(limits);
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(error) = ended {
                        // hyper's errors name what failed (a bad head, a reset), never the request's bytes.
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let track = self.track().clone();
                    if Instant::now() >= track.deadline(limits) {
                        tracing::debug!(phase = ?track.phase(), "connection exceeded its time bound; closing it");
                        return;
                    }
                }
                _ = self.changed.notified() => {}
                _ = self.evict.notified() => {
                    tracing::debug!("closing an idle connection to make room for a new one");
                    return;
                }
                _ = graceful.changed(), if !told => {
                    told = true;
                    shut_down(connection.as_mut());
                }
            }
        }
    }
}

/// A request being served; dropping it ends the serving phase.
pub struct Serving(Arc<Conn>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.update(|t| t.request_finished(Instant::now()));
    }
}

/// The socket, noting when bytes arrive so the head timer can start at the first byte of a request.
pub struct WatchedIo<T> {
    inner: T,
    conn: Arc<Conn>,
}

impl<T> WatchedIo<T> {
    pub fn new(inner: T, conn: Arc<Conn>) -> Self {
        Self { inner, conn }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                let mut track = self.conn.track();
                let phase = track.phase();
                if matches!(phase, Phase::New | Phase::Idle) {
                    track.bytes_arrived(Instant::now(), read);
                    drop(track);
                    self.conn.changed.notify_one();
                }
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_new_connection_has_the_header_timeout_from_accept() {
        let t0 = Instant::now();
        let mut track = Track::new(t0);
        assert!(track.evictable());
        assert_eq!(track.deadline(&limits()), t0 + 10 * S);
        // Its first byte does not restart the clock.
        track.bytes_arrived(t0 + 5 * S, b"G");
        assert_eq!(track.phase(), Phase::Head);
        assert!(!track.evictable());
        assert_eq!(track.deadline(&limits()), t0 + 10 * S);
    }

    #[test]
    fn keep_alive_idles_then_times_the_next_head_from_its_first_byte() {
        let t0 = Instant::now();
        let mut track = Track::new(t0);
        track.bytes_arrived(t0, b"GET / HTTP/1.1\r\n");
        track.request_started(t0 + S);
        assert_eq!(track.phase(), Phase::Serving);
        assert_eq!(track.deadline(&limits()), t0 + S + 30 * S + SERVING_SLACK);
        track.request_finished(t0 + 2 * S);
        assert_eq!(track.phase(), Phase::Idle);
        assert!(track.evictable());
        assert_eq!(track.deadline(&limits()), t0 + 62 * S);
        track.bytes_arrived(t0 + 50 * S, b"G");
        assert_eq!(track.phase(), Phase::Head);
        assert_eq!(track.deadline(&limits()), t0 + 60 * S);
        // More bytes of the same head change nothing.
        track.bytes_arrived(t0 + 55 * S, b"E");
        assert_eq!(track.deadline(&limits()), t0 + 60 * S);
    }

    #[test]
    fn serving_lasts_until_the_last_request_in_flight_ends() {
        let t0 = Instant::now();
        let mut track = Track::new(t0);
        track.bytes_arrived(t0, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        track.request_started(t0);
        track.request_started(t0 + S);
        track.request_finished(t0 + 2 * S);
        assert_eq!(track.phase(), Phase::Serving);
        track.request_finished(t0 + 3 * S);
        assert_eq!(track.phase(), Phase::Idle);
        // HTTP/2 frames between requests (pings) leave an idle connection idle.
        track.bytes_arrived(t0 + 4 * S, b"\0\0\x08\x06");
        assert_eq!(track.phase(), Phase::Idle);
        assert_eq!(track.deadline(&limits()), t0 + 63 * S);
    }
}
