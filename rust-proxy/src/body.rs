//! Bodies on their way through: the client's request body to the
//! upstream, and the upstream's answer (or the proxy's own text) to the
//! client.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::gate::Shared;
use crate::upstream::{Conn, Pool};

/// The request body as sent upstream. Trailers and chunk extensions are
/// the client's hop's own: only data goes on.
pub enum ReqBody {
    Client {
        inner: Incoming,
        shared: Arc<Shared>,
    },
    Empty,
}

/// When the upstream side last took a piece of the request body, in
/// milliseconds since `base`: the upstream timeout counts gaps from there.
/// While the body waits for the client, the client's own deadline runs
/// instead.
pub struct Progress {
    base: Instant,
    last: AtomicU64,
}

const WAITING_FOR_CLIENT: u64 = u64::MAX;

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl Progress {
    pub fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last.store(ms, Relaxed);
    }

    fn wait_for_client(&self) {
        self.last.store(WAITING_FOR_CLIENT, Relaxed);
    }

    /// When the upstream last made progress; `None` while the request
    /// body waits for the client.
    pub fn last(&self) -> Option<Instant> {
        match self.last.load(Relaxed) {
            WAITING_FOR_CLIENT => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let ReqBody::Client { inner, shared } = self.get_mut() else {
            return Poll::Ready(None);
        };
        loop {
            let progress = &shared.progress;
            progress.touch();
            let Poll::Ready(frame) = Pin::new(&mut *inner).poll_frame(cx) else {
                progress.wait_for_client();
                return Poll::Pending;
            };
            progress.touch();
            match frame {
                Some(Ok(frame)) => {
                    if inner.is_end_stream() {
                        shared.body_done.store(true, Relaxed);
                    }
                    if frame.is_data() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    shared.body_done.store(true, Relaxed);
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Client { inner, .. } => inner.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Client { inner, .. } => inner.size_hint(),
            ReqBody::Empty => SizeHint::with_exact(0),
        }
    }
}

pub enum ProxyBody {
    Text(Option<Bytes>),
    Upstream(Relay),
    /// What was collected of an upstream body, then the rest of it.
    Prefixed(Option<Bytes>, Relay),
}

/// The upstream's body on its way to the client. The upstream may pause
/// between pieces for at most the timeout; past that the client connection
/// is closed rather than left waiting, since the status has already gone
/// out. At the body's end the upstream connection goes back to the pool.
pub struct Relay {
    pub inner: Incoming,
    /// Created the first time the upstream makes the relay wait, so bodies
    /// that are already buffered never touch the timer.
    idle: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    /// Whether a frame came since the timer was last set.
    moved: bool,
    /// The connection, while it may still be reused.
    home: Option<(Conn, &'static Pool)>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub enum RelayError {
    Upstream(hyper::Error),
    Stalled,
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Upstream(e) => write!(f, "upstream body: {e}"),
            RelayError::Stalled => f.write_str("upstream body stalled"),
        }
    }
}

impl StdError for RelayError {}

impl Relay {
    pub fn new(
        inner: Incoming,
        timeout: Duration,
        home: Option<(Conn, &'static Pool)>,
        shared: Arc<Shared>,
    ) -> Relay {
        shared.busy.fetch_add(1, Relaxed);
        let mut relay = Relay {
            inner,
            idle: None,
            timeout,
            moved: false,
            home,
            shared,
        };
        if relay.inner.is_end_stream() {
            relay.finished();
        }
        relay
    }

    /// The response was read to its end: the connection is reused only if
    /// the request went out whole too.
    fn finished(&mut self) {
        if let Some((conn, pool)) = self.home.take() {
            if self.shared.body_done.load(Relaxed) {
                pool.put(conn);
            }
        }
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    self.moved = true;
                    if self.inner.is_end_stream() {
                        self.finished();
                    }
                    // Trailers belong to the hop they came on: the Trailer
                    // field announcing them is dropped as hop-by-hop.
                    if frame.is_data() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.home = None;
                    return Poll::Ready(Some(Err(RelayError::Upstream(e))));
                }
                Poll::Ready(None) => {
                    self.finished();
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        let timer = match &mut self.idle {
            Some(t) => {
                if self.moved {
                    t.as_mut().reset(Instant::now() + self.timeout);
                }
                t
            }
            None => self.idle.insert(Box::pin(tokio::time::sleep(self.timeout))),
        };
        self.moved = false;
        ready!(timer.as_mut().poll(cx));
        self.home = None;
        Poll::Ready(Some(Err(RelayError::Stalled)))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.busy.fetch_sub(1, Relaxed);
    }
}

/// The answer's body as hyper takes it: hyper drops it once it has
/// encoded its end, which the gate needs to know (see `gate`).
pub struct Answer {
    body: ProxyBody,
    shared: Arc<Shared>,
}

impl Answer {
    pub fn new(body: ProxyBody, shared: Arc<Shared>) -> Answer {
        Answer { body, shared }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.shared.answer_done();
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = RelayError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = RelayError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        match self.get_mut() {
            ProxyBody::Text(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(r) => r.poll_frame(cx),
            ProxyBody::Prefixed(head, r) => match head.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => r.poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Text(b) => b.is_none(),
            ProxyBody::Upstream(r) => r.inner.is_end_stream(),
            ProxyBody::Prefixed(head, r) => head.is_none() && r.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Text(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Upstream(r) => r.inner.size_hint(),
            ProxyBody::Prefixed(..) => SizeHint::default(),
        }
    }
}
