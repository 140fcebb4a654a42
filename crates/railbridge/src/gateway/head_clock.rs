//! `[server] header_timeout`: how long a client may take to send a request's head once it has started, apart from
//! how long a keep-alive connection may sit idle between requests (`idle_timeout`). hyper's own header timer cannot
//! tell the two apart — it starts when the connection becomes idle — so the connection's reads are watched here: the
//! first bytes after a response (or on a new connection) start the clock, the request reaching the service stops
//! it. A slowloris client trickling headers is cut off after `header_timeout`; an idle client is not.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// HTTP/2's connection preface: such connections are left alone (their heads arrive in frames, and their pings keep
/// an idle connection alive).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Whether the connection is between requests: set when a response has been produced, cleared when a request
/// reaches the service.
#[derive(Debug)]
pub(crate) struct HeadState {
    between: AtomicBool,
    /// Requests that reached the service: a clock started for an earlier head stops when this moves.
    requests: AtomicU64,
}

impl HeadState {
    pub(crate) fn new() -> Arc<HeadState> {
        Arc::new(HeadState { between: AtomicBool::new(true), requests: AtomicU64::new(0) })
    }

    /// A request's head has been read.
    pub(crate) fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.between.store(false, Ordering::Relaxed);
    }

    /// The response has been produced: the next bytes are the next request.
    pub(crate) fn request_done(&self) {
        self.between.store(true, Ordering::Relaxed);
    }

    fn between_requests(&self) -> bool {
        self.between.load(Ordering::Relaxed)
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// A connection's I/O with the header clock on its reads.
pub(crate) struct HeadClock<I> {
    inner: I,
    state: Arc<HeadState>,
    timeout: Duration,
    /// The running clock, and the request count when it started.
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, u64)>,
    /// Decided on the first bytes: HTTP/1 (clocked) or HTTP/2 (not).
    clocked: Option<bool>,
}

impl<I> HeadClock<I> {
    pub(crate) fn new(inner: I, state: Arc<HeadState>, timeout: Duration) -> Self {
        HeadClock { inner, state, timeout, deadline: None, clocked: None }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for HeadClock<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.clocked == Some(false) {
            return read;
        }
        // The head the clock was started for has reached the service (or we are inside a request): stop it.
        let requests = this.state.requests();
        if !this.state.between_requests()
            || this.deadline.as_ref().is_some_and(|(_, n)| *n != requests)
        {
            this.deadline = None;
        }
        match read {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if this.clocked.is_none() && !fresh.is_empty() {
                    let h2 = fresh.starts_with(&H2_PREFACE[..fresh.len().min(H2_PREFACE.len())]);
                    this.clocked = Some(!h2);
                    if h2 {
                        return Poll::Ready(Ok(()));
                    }
                }
                if !fresh.is_empty() && this.state.between_requests() && this.deadline.is_none() {
                    this.deadline = Some((Box::pin(tokio::time::sleep(this.timeout)), requests));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired =
                    this.deadline.as_mut().is_some_and(|(d, _)| d.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request head took longer than header_timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for HeadClock<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
