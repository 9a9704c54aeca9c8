//! The client connection as hyper's server reads and writes it.
//!
//! Every request head is held back until it is complete and has passed
//! [`head::inspect`], a byte scan for what hyper's parse would hide from
//! the service (see the README); bodies are followed to their end so that
//! the next head is found where hyper will look for it. A head the gate
//! refuses never reaches hyper: a fixed stand-in request takes its place,
//! the service recognises it by its position on the connection and answers
//! with the refusal, and nothing after it is read.
//!
//! A head hyper cannot parse is answered by hyper itself, with an empty
//! 400 (or 414, 431). The gate hands hyper the next head only once every
//! earlier answer has gone out, so when hyper writes while the head it was
//! given has not reached the service, what it writes is that answer: the
//! gate writes the proxy's own refusal in its place. Either way the answer
//! to a refused request is the proxy's own (status, text, `Connection:
//! close`) and no byte of it reaches the upstream.
//!
//! The gate also keeps the head, idle, body-progress and client
//! write-progress deadlines, and writes the interim (1xx) heads the service hands it, in order: only
//! once hyper has flushed everything it buffered of earlier answers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::body::Progress;
use crate::chunked::{Chunked, Step};
use crate::head::{self, Body, Limits, Reject, Verdict};

/// What hyper reads in place of a refused head. It has no body, and its
/// `Connection: close` makes hyper end the connection after the answer.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nHost: proxylab\r\nConnection: close\r\n\r\n";

const INITIAL_BUFFER: usize = 16 << 10;

/// After refusing, the rest of what the client is sending is read and
/// dropped for this long, so that closing with unread data does not reset
/// the connection before the client has read the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 64 << 20;

/// The contract's fixed timeouts on the client side.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write to the client may make no progress before the
/// connection is closed: a client that stops reading its answer. Tests
/// shorten it so that a stall can be watched in well under a second.
pub const WRITE_TIMEOUT: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(30)
};

/// What the gate and the service of one connection tell each other. The
/// service runs in the connection's task; only the interim heads come
/// from the upstream connection's task, hence the mutex.
#[derive(Default)]
pub struct Shared {
    /// Heads handed to hyper so far, stand-ins included.
    heads: AtomicU64,
    /// Position of the stand-in head, 0 when there is none.
    refused_head: AtomicU64,
    head_refusal: AtomicU8,
    /// Set when a body in flight was refused.
    body_refusal: AtomicU8,
    /// Requests the service has been called for.
    calls: AtomicU64,
    /// Answers hyper has taken whole from the service (their bodies
    /// dropped, which hyper does once it has encoded their end).
    answered: AtomicU64,
    /// The latest valid head asked for `OPTIONS *` upstream.
    star: AtomicBool,
    /// The service refused a request: drain the input before closing.
    refused: AtomicBool,
    /// Answers the service has started and not finished.
    pub busy: AtomicU32,
    /// The body of the request in flight has been read to its end.
    pub body_done: AtomicBool,
    /// Whether interim bytes wait in `interim`.
    interim_pending: AtomicBool,
    /// hyper flushed its buffer since the current request's service call,
    /// so nothing of an earlier answer is still held back in it.
    flushed: AtomicBool,
    interim: Mutex<Interim>,
    pub progress: Progress,
}

#[derive(Default)]
struct Interim {
    bytes: Vec<u8>,
    sent: usize,
    /// The service waiting for interim heads to arrive or to go out.
    waiter: Option<Waker>,
}

impl Shared {
    /// Called once per request when hyper calls the service: the refusal
    /// to answer with when the request is a stand-in, and whether it goes
    /// upstream as `OPTIONS *`.
    pub fn next_call(&self) -> (Option<Reject>, bool) {
        let n = self.calls.load(Relaxed) + 1;
        self.calls.store(n, Relaxed);
        self.flushed.store(false, Relaxed);
        let star = self.star.swap(false, Relaxed);
        if self.refused_head.load(Relaxed) == n {
            (Reject::from_u8(self.head_refusal.load(Relaxed)), false)
        } else {
            (None, star)
        }
    }

    /// Why the body of the request in flight stopped, if it was refused.
    pub fn body_refusal(&self) -> Option<Reject> {
        Reject::from_u8(self.body_refusal.load(Relaxed))
    }

    /// hyper has encoded the whole of one answer.
    pub fn answer_done(&self) {
        self.answered.fetch_add(1, Relaxed);
    }

    /// The service answered with a refusal and the connection will close.
    pub fn mark_refused(&self) {
        self.refused.store(true, Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Interim> {
        self.interim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an interim head for the client (from the upstream task).
    pub fn push_interim(&self, head: &[u8]) {
        let mut q = self.lock();
        q.bytes.extend_from_slice(head);
        self.interim_pending.store(true, Relaxed);
        if let Some(w) = &q.waiter {
            w.wake_by_ref();
        }
    }

    /// Registers the service's task to be woken when an interim head
    /// arrives or has gone out.
    pub fn watch_interim(&self, cx: &mut Context<'_>) {
        let mut q = self.lock();
        match &q.waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waiter = Some(cx.waker().clone()),
        }
    }

    /// Ready once no interim head waits to be written.
    pub fn poll_interim_sent(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.interim_pending.load(Relaxed) {
            return Poll::Ready(());
        }
        self.watch_interim(cx);
        if self.interim_pending.load(Relaxed) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

enum Framing {
    Head,
    Length(u64),
    Chunked(Chunked),
    /// Nothing more is read: after a refusal, an error or the end of input.
    Closed,
}

/// Which deadline the gate is waiting under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    None,
    Idle,
    Head,
    Body,
}

pub struct Gate {
    io: TcpStream,
    buf: Vec<u8>,
    /// `buf[start..end]` has been read from the socket and not yet handed
    /// to hyper; its first `ready` bytes have been checked.
    start: usize,
    end: usize,
    ready: usize,
    /// How much of the pending head was already searched for its end.
    scanned: usize,
    framing: Framing,
    stand_in: &'static [u8],
    limits: Limits,
    shared: Arc<Shared>,
    refused: bool,
    /// Whether everything hyper was given has been answered and flushed,
    /// so that the next head may go to hyper (see the module comment).
    out_clear: bool,
    /// The stand-in has been counted as a head handed to hyper.
    stand_in_counted: bool,
    /// hyper's read, waiting for `out_clear`.
    reader: Option<Waker>,
    /// The proxy's refusal written in place of hyper's own answer, and how
    /// much of it has gone out.
    own: Option<(Vec<u8>, usize)>,
    linger: Option<(Pin<Box<Sleep>>, u64)>,
    /// When the head being received started (accept for the first one).
    head_since: Option<Instant>,
    /// When the current wait for input began.
    waiting_since: Option<Instant>,
    wait: Wait,
    timer: Pin<Box<Sleep>>,
    /// The write-progress deadline: made at the first write that blocks
    /// and reset for every later stall, so writes that complete at once
    /// never touch it.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// A write is blocked and `write_timer` runs for it.
    write_stalled: bool,
}

impl Gate {
    pub fn new(io: TcpStream, limits: Limits, shared: Arc<Shared>) -> Self {
        let now = Instant::now();
        Gate {
            io,
            buf: Vec::new(),
            start: 0,
            end: 0,
            ready: 0,
            scanned: 0,
            framing: Framing::Head,
            stand_in: &[],
            limits,
            shared,
            refused: false,
            out_clear: true,
            stand_in_counted: false,
            reader: None,
            own: None,
            linger: None,
            head_since: Some(now),
            waiting_since: None,
            wait: Wait::None,
            timer: Box::pin(tokio::time::sleep_until(now + HEAD_TIMEOUT)),
            write_timer: None,
            write_stalled: false,
        }
    }

    /// Passes on the outcome of a write to the client, keeping the
    /// write-progress deadline: progress disarms it, a block arms it (or
    /// keeps it from the first block on), and once it has run out the
    /// blocked write fails, which makes hyper close the connection.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.write_stalled = false;
            return r;
        }
        if !self.write_stalled {
            self.write_stalled = true;
            let at = Instant::now() + WRITE_TIMEOUT;
            match self.write_timer.as_mut() {
                Some(t) => t.as_mut().reset(at),
                None => self.write_timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        if let Some(t) = self.write_timer.as_mut() {
            ready!(t.as_mut().poll(cx));
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "writing to the client made no progress within the write timeout",
        )))
    }

    fn refuse_head(&mut self, why: Reject) {
        self.shared.head_refusal.store(why as u8, Relaxed);
        self.stand_in = STAND_IN;
        self.framing = Framing::Closed;
        self.refused = true;
        self.start = 0;
        self.end = 0;
    }

    fn refuse_body(&mut self, why: Reject) {
        self.shared.body_refusal.store(why as u8, Relaxed);
        self.framing = Framing::Closed;
        self.refused = true;
        // The bytes before the refused one still go to hyper.
        self.end = self.start + self.ready;
    }

    /// Checks more of the unchecked bytes; returns false when more input is
    /// needed first.
    fn check(&mut self) -> bool {
        let data_len = self.end - self.start;
        match &mut self.framing {
            // poll_read stops before asking; nothing is left to check.
            Framing::Closed => false,
            Framing::Head => {
                if data_len == 0 {
                    return false;
                }
                let data = &mut self.buf[self.start..self.end];
                match head::inspect(data, &mut self.scanned, self.limits) {
                    Verdict::Incomplete => false,
                    Verdict::Valid { len, body, star } => {
                        self.count_head();
                        self.shared.body_refusal.store(0, Relaxed);
                        self.shared.star.store(star, Relaxed);
                        self.ready = len;
                        self.scanned = 0;
                        self.head_since = None;
                        self.framing = match body {
                            Body::None => Framing::Head,
                            Body::Length(n) => Framing::Length(n),
                            Body::Chunked => Framing::Chunked(Chunked::new(
                                self.limits.max_head.saturating_sub(len),
                            )),
                        };
                        true
                    }
                    Verdict::Reject(why) => {
                        self.refuse_head(why);
                        true
                    }
                }
            }
            Framing::Length(left) => {
                let n = (*left).min(data_len as u64);
                if n == 0 {
                    return false;
                }
                *left -= n;
                self.ready = n as usize;
                if *left == 0 {
                    self.framing = Framing::Head;
                }
                true
            }
            Framing::Chunked(c) => {
                if data_len == 0 {
                    return false;
                }
                let (n, step) = c.advance(&self.buf[self.start..self.end], self.limits.max_body);
                self.ready = n;
                match step {
                    Step::More => {}
                    Step::Done => self.framing = Framing::Head,
                    Step::Refuse(why) => self.refuse_body(why),
                }
                true
            }
        }
    }

    /// Makes room at `buf[end..]` for another read.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.is_empty() {
            self.buf.resize(INITIAL_BUFFER, 0);
        }
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return;
        }
        // Only an unfinished head stays in the buffer; one byte over the
        // limit is enough to tell that it is too large.
        let want = (self.buf.len() * 2).min(self.limits.max_head + 1);
        self.buf.resize(want.max(self.buf.len() + 1), 0);
    }

    /// The deadline the gate waits for input under now.
    fn deadline(&mut self) -> (Wait, Instant) {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        if self.end > self.start && self.head_since.is_none() {
            // Part of the next head came in with the previous message.
            self.head_since = Some(since);
        }
        match self.framing {
            Framing::Head => match self.head_since {
                Some(at) => (Wait::Head, at + HEAD_TIMEOUT),
                None => (Wait::Idle, since + IDLE_TIMEOUT),
            },
            Framing::Length(_) | Framing::Chunked(_) => (Wait::Body, since + BODY_TIMEOUT),
            Framing::Closed => (Wait::None, since),
        }
    }

    /// Polls the deadline of the wait for input; Ready when it ran out.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Wait> {
        let (wait, at) = self.deadline();
        if wait == Wait::None {
            return Poll::Pending;
        }
        if self.wait != wait || self.timer.deadline() != at {
            self.wait = wait;
            self.timer.as_mut().reset(at);
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(wait)
    }

    /// Acts on a deadline that ran out; returns true when reading goes on.
    fn expired(&mut self, wait: Wait) -> bool {
        self.waiting_since = None;
        match wait {
            // An answer still being sent is no idle connection.
            Wait::Idle if self.shared.busy.load(Relaxed) > 0 => true,
            Wait::Idle | Wait::None => {
                self.framing = Framing::Closed;
                false
            }
            Wait::Head => {
                self.refuse_head(Reject::HeadTimeout);
                true
            }
            Wait::Body => {
                self.refuse_body(Reject::BodyTimeout);
                true
            }
        }
    }

    /// Counts a head handed to hyper; the next waits until this one's
    /// answer has gone out.
    fn count_head(&mut self) -> u64 {
        let n = self.shared.heads.load(Relaxed) + 1;
        self.shared.heads.store(n, Relaxed);
        self.out_clear = false;
        n
    }

    /// Ready when the next head may go to hyper; otherwise hyper's read is
    /// woken by the flush that makes it so.
    fn poll_out_clear(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.out_clear {
            return Poll::Ready(());
        }
        match &self.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.reader = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Called when hyper has flushed its buffer: once every head handed
    /// over has been answered whole, nothing of any answer is left in it.
    fn note_flushed(&mut self) {
        let s = &self.shared;
        let calls = s.calls.load(Relaxed);
        if !self.out_clear && s.answered.load(Relaxed) == calls && s.heads.load(Relaxed) == calls {
            self.out_clear = true;
            if let Some(w) = self.reader.take() {
                w.wake();
            }
        }
    }

    /// Whether hyper is writing its own answer to a head it could not
    /// parse: it was handed one that never reached the service, and all
    /// earlier answers have gone out. The proxy's refusal replaces it.
    fn intercept(&mut self, first: &[u8]) {
        if self.own.is_some() {
            return;
        }
        let s = &self.shared;
        if s.heads.load(Relaxed) <= s.calls.load(Relaxed) {
            return;
        }
        // hyper's answer starts `HTTP/1.1 NNN `.
        let why = Reject::from_hyper_status(first.get(9..12).unwrap_or_default());
        self.own = Some((refusal_bytes(why), 0));
        self.refused = true;
        self.framing = Framing::Closed;
    }

    /// Writes what is left of the proxy's own refusal; Ready when it is
    /// out or there is none.
    fn poll_own(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((bytes, sent)) = self.own.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while *sent < bytes.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
            self.write_stalled = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the queued interim heads, once hyper holds nothing of an
    /// earlier answer; Ready when none is left to write.
    fn poll_interim(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shared.interim_pending.load(Relaxed) || !self.shared.flushed.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let shared = self.shared.clone();
        let mut q = shared.lock();
        while q.sent < q.bytes.len() {
            let sent = q.sent;
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &q.bytes[sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            q.sent += n;
            self.write_stalled = false;
        }
        q.bytes.clear();
        q.sent = 0;
        shared.interim_pending.store(false, Relaxed);
        if let Some(w) = q.waiter.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

/// The write path without its deadline, which the `Write` methods keep.
impl Gate {
    fn write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.intercept(buf);
        if self.own.is_some() {
            ready!(self.poll_own(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        ready!(self.poll_interim(cx))?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.intercept(first);
        }
        if self.own.is_some() {
            ready!(self.poll_own(cx))?;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        ready!(self.poll_interim(cx))?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_own(cx))?;
        ready!(self.poll_interim(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl Read for Gate {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut out: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready > 0 {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.buf[this.start..this.start + n]);
                this.start += n;
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if !this.stand_in.is_empty() {
                if !this.stand_in_counted {
                    ready!(this.poll_out_clear(cx));
                    let n = this.count_head();
                    this.shared.refused_head.store(n, Relaxed);
                    this.stand_in_counted = true;
                }
                let n = this.stand_in.len().min(out.remaining());
                out.put_slice(&this.stand_in[..n]);
                this.stand_in = &this.stand_in[n..];
                return Poll::Ready(Ok(()));
            }
            // After a refused body hyper sees the input end where the
            // refused bytes would start: the body is incomplete, so the
            // upstream request is abandoned, and the service answers with
            // the refusal.
            if let Framing::Closed = this.framing {
                return Poll::Ready(Ok(()));
            }
            if matches!(this.framing, Framing::Head) && this.end > this.start {
                ready!(this.poll_out_clear(cx));
            }
            if this.check() {
                continue;
            }
            this.make_room();
            let end = this.end;
            let mut rb = ReadBuf::new(&mut this.buf[end..]);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Ready(r) => r?,
                Poll::Pending => match this.poll_deadline(cx) {
                    Poll::Ready(wait) if this.expired(wait) => continue,
                    Poll::Ready(_) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                },
            }
            let n = rb.filled().len();
            if n == 0 {
                // What was left unchecked is an unfinished head or body;
                // hyper sees the end of input where it stopped.
                this.framing = Framing::Closed;
                this.end = this.start;
                return Poll::Ready(Ok(()));
            }
            this.waiting_since = None;
            if this.start == this.end && this.head_since.is_none() {
                if let Framing::Head = this.framing {
                    this.head_since = Some(Instant::now());
                }
            }
            this.end += n;
        }
    }
}

impl Write for Gate {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.write(cx, buf);
        this.watch_write(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.write_vectored(cx, bufs);
        this.watch_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper flushes its own buffer to the gate before asking for this.
        this.shared.flushed.store(true, Relaxed);
        this.note_flushed();
        let r = this.flush(cx);
        this.watch_write(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = this.poll_own(cx);
        ready!(this.watch_write(cx, r))?;
        if !this.refused && !this.shared.refused.load(Relaxed) {
            return Pin::new(&mut this.io).poll_shutdown(cx);
        }
        if this.linger.is_none() {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.linger = Some((Box::pin(tokio::time::sleep(LINGER)), 0));
            if this.buf.is_empty() {
                this.buf.resize(INITIAL_BUFFER, 0);
            }
        }
        let Some((timer, drained)) = this.linger.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            if timer.as_mut().poll(cx).is_ready() || *drained > LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.buf[..]);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    *drained += rb.filled().len() as u64;
                }
                Poll::Ready(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// The proxy's refusal as hyper would write the service's: a short text,
/// and `Connection: close` since the stream is not trusted after it.
fn refusal_bytes(why: Reject) -> Vec<u8> {
    let text = why.text();
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{text}",
        why.status(),
        why.reason(),
        text.len(),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::net::TcpListener;

    type Call = (Option<Reject>, bool);

    /// Feeds `input` through a gate the way hyper would read it, calling
    /// the service for every head handed over and answering it at once,
    /// and returns everything the gate handed over and the calls.
    async fn through_gate(
        input: &'static [u8],
        limits: Limits,
    ) -> (Vec<u8>, Vec<Call>, Arc<Shared>) {
        let ln = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            // Small pieces, so heads and bodies straddle reads.
            for piece in input.chunks(7) {
                c.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
            c.shutdown(std::net::Shutdown::Write).unwrap();
            c
        });
        let (server, _) = ln.accept().await.unwrap();
        let shared = Arc::new(Shared::default());
        let mut gate = Gate::new(server, limits, shared.clone());
        let mut out = Vec::new();
        let mut calls = Vec::new();
        loop {
            let mut storage = [0u8; 5];
            let mut rb = hyper::rt::ReadBuf::new(&mut storage);
            std::future::poll_fn(|cx| Pin::new(&mut gate).poll_read(cx, rb.unfilled()))
                .await
                .unwrap();
            if rb.filled().is_empty() {
                break;
            }
            out.extend_from_slice(rb.filled());
            // hyper calls the service once it has a head's blank line; the
            // messages here all end in one, so this is when it would.
            if out.ends_with(b"\r\n\r\n") {
                while shared.heads.load(Relaxed) > shared.calls.load(Relaxed) {
                    calls.push(shared.next_call());
                    shared.answer_done();
                }
                std::future::poll_fn(|cx| Pin::new(&mut gate).poll_flush(cx))
                    .await
                    .unwrap();
            }
        }
        drop(writer.join().unwrap());
        (out, calls, shared)
    }

    const LIMITS: Limits = Limits {
        max_head: 1024,
        max_body: 100,
    };

    #[tokio::test]
    async fn passes_valid_messages_and_replaces_a_refused_head() {
        const GOOD: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nGET /\
            PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n\
            GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
        const INPUT: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nGET /\
            PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n\
            GET /c HTTP/1.1\r\nHost: h\r\n\r\n\
            GET /d HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n\
            GET /never HTTP/1.1\r\nHost: h\r\n\r\n";
        let (out, calls, _) = through_gate(INPUT, LIMITS).await;
        assert_eq!(out, [GOOD, STAND_IN].concat());
        let refusals: Vec<_> = calls.iter().map(|c| c.0).collect();
        assert_eq!(refusals, [None, None, None, Some(Reject::AmbiguousFraming)]);
    }

    #[tokio::test]
    async fn stops_a_chunked_body_over_the_limit() {
        const INPUT: &[u8] = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
            32\r\n01234567890123456789012345678901234567890123456789\r\n33\r\nmore";
        let (out, _, shared) = through_gate(INPUT, LIMITS).await;
        let refused_at = INPUT.len() - b"\nmore".len();
        assert_eq!(out, &INPUT[..refused_at]);
        assert_eq!(shared.body_refusal(), Some(Reject::BodyTooLarge));
    }

    #[tokio::test]
    async fn refuses_an_endless_head() {
        const INPUT: &[u8] = &[b'a'; 3000];
        let (out, calls, _) = through_gate(INPUT, LIMITS).await;
        assert_eq!(out, STAND_IN);
        assert_eq!(calls, [(Some(Reject::HeadTooLarge), false)]);
    }

    /// Serves one client connection with hyper behind a gate, the service
    /// answering `ok` to every request, and returns all the client got.
    async fn served(input: &'static [u8]) -> String {
        use crate::body::{Answer, ProxyBody};
        use std::io::Read as _;
        let ln = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(input).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = String::new();
            let _ = c.read_to_string(&mut got);
            got
        });
        let (server, _) = ln.accept().await.unwrap();
        let shared = Arc::new(Shared::default());
        let calls = shared.clone();
        let svc = hyper::service::service_fn(move |_req| {
            let _ = calls.next_call();
            let body = Answer::new(ProxyBody::Text(Some("ok".into())), calls.clone());
            async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
        });
        let gate = Gate::new(server, LIMITS, shared);
        let _ = hyper::server::conn::http1::Builder::new()
            .auto_date_header(false)
            .serve_connection(gate, svc)
            .await;
        client.join().unwrap()
    }

    #[tokio::test]
    async fn hyper_s_own_answer_is_replaced_by_the_proxy_s() {
        const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let refusal = String::from_utf8(refusal_bytes(Reject::Malformed)).unwrap();
        let cases: &[(&[u8], usize)] = &[
            (b"GET / HTTP/1.1\r\nHost: h\r\nX Bad: 1\r\n\r\n", 0),
            (b"GET /a<b HTTP/1.1\r\nHost: h\r\n\r\n", 0),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
                1,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab\
               GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
                2,
            ),
        ];
        for (input, good) in cases {
            let got = served(input).await;
            let want = format!("{}{refusal}", OK.repeat(*good));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    /// Serves one `Connection: close` GET answered with `len` bytes to a
    /// client with small socket buffers that reads in 16 KiB pieces with
    /// `pause` between them, or with `None` reads nothing until the
    /// connection has been served. Returns how long hyper served it,
    /// whether that ended in an error, and how many bytes the client got.
    async fn answer_to_reader(len: usize, pause: Option<Duration>) -> (Duration, bool, usize) {
        use crate::body::{Answer, ProxyBody};
        use std::io::Read as _;
        let ln = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let (served_tx, served_rx) = std::sync::mpsc::channel::<()>();
        let client = std::thread::spawn(move || {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.set_recv_buffer_size(16 << 10).unwrap();
            sock.connect(&addr.into()).unwrap();
            let mut c: std::net::TcpStream = sock.into();
            c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                .unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            if pause.is_none() {
                let _ = served_rx.recv();
            }
            let (mut got, mut buf) = (0, vec![0; 16 << 10]);
            while let Ok(n @ 1..) = c.read(&mut buf) {
                got += n;
                if let Some(p) = pause {
                    std::thread::sleep(p);
                }
            }
            got
        });
        let (server, _) = ln.accept().await.unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(16 << 10)
            .unwrap();
        let shared = Arc::new(Shared::default());
        let calls = shared.clone();
        let body = bytes::Bytes::from(vec![b'x'; len]);
        let svc = hyper::service::service_fn(move |_req| {
            let _ = calls.next_call();
            let body = Answer::new(ProxyBody::Text(Some(body.clone())), calls.clone());
            async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
        });
        let started = Instant::now();
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(Gate::new(server, LIMITS, shared), svc);
        // Bounded, so that a connection never cut off fails the test
        // rather than hanging it.
        let r = tokio::time::timeout(Duration::from_secs(5), conn).await;
        let took = started.elapsed();
        let _ = served_tx.send(());
        (took, !matches!(r, Ok(Ok(()))), client.join().unwrap())
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_closed_and_a_slow_one_is_not() {
        const LEN: usize = 2 << 20;
        // (client's pause between reads, whether it is cut off)
        let cases = [(None, true), (Some(Duration::from_millis(5)), false)];
        for (pause, cut) in cases {
            let (took, failed, got) = answer_to_reader(LEN, pause).await;
            assert_eq!(failed, cut, "{pause:?}: served in {took:?}");
            if cut {
                assert!(got < LEN, "{pause:?}: got {got} bytes");
                assert!(took >= WRITE_TIMEOUT, "{pause:?}: cut after {took:?}");
                assert!(took < WRITE_TIMEOUT * 4, "{pause:?}: cut after {took:?}");
            } else {
                assert!(got > LEN, "{pause:?}: got {got} bytes");
                // The answer took longer than one stall may last.
                assert!(took > WRITE_TIMEOUT, "{pause:?}: served in {took:?}");
            }
        }
    }
}
