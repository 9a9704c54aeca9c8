//! Connections to the upstream: dialled with hyper's HTTP/1 client
//! connection, kept in a LIFO pool of idle ones, and checked before reuse.
//!
//! The pool is the proxy's own rather than hyper-util's legacy client, so
//! that a connection goes back only after its response was read to its
//! end, is peeked at before it is used again, and a request that failed on
//! a reused connection before any byte of its answer arrived can be told
//! apart from one the upstream may have acted on.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::body::ReqBody;

/// How long an idle connection may wait in the pool.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept at most; one more is closed instead.
pub const MAX_IDLE: usize = 4096;
/// The fixed bound on an upstream response head (each 1xx head too).
pub const MAX_RESPONSE_HEAD: usize = 16384;

/// The socket, shared between hyper's connection task and the pool entry
/// so that the pool can peek at it; `read` counts the bytes received.
struct Socket {
    tcp: TcpStream,
    read: AtomicU64,
}

/// One upstream connection able to carry a request.
pub struct Conn {
    send: SendRequest<ReqBody>,
    socket: Arc<Socket>,
    /// Whether it carried a request before this one.
    pub reused: bool,
}

impl Conn {
    /// Bytes received on the connection so far.
    pub fn received(&self) -> u64 {
        self.socket.read.load(Relaxed)
    }

    pub fn send(
        &mut self,
        req: http::Request<ReqBody>,
    ) -> impl std::future::Future<Output = hyper::Result<http::Response<hyper::body::Incoming>>>
    {
        self.send.send_request(req)
    }

    /// Readable while idle means closed by the upstream or bytes it sent
    /// unasked; either way the connection must not carry a request.
    fn quiet(&self) -> bool {
        if self.send.is_closed() {
            return false;
        }
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        match socket2::SockRef::from(&self.socket.tcp).peek(&mut byte) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

pub struct Pool {
    addr: SocketAddr,
    connect_timeout: Duration,
    http: http1::Builder,
    idle: Mutex<VecDeque<Idle>>,
}

#[derive(Debug)]
pub enum DialError {
    Timeout,
    Failed,
}

impl Pool {
    pub fn new(addr: SocketAddr, connect_timeout: Duration) -> Pool {
        let mut http = http1::Builder::new();
        http.preserve_header_case(true)
            .title_case_headers(true)
            .max_header_size(MAX_RESPONSE_HEAD)
            // The byte limit is the only one: every field line takes at
            // least 4 bytes (`a:` and CRLF).
            .max_headers(MAX_RESPONSE_HEAD / 4);
        Pool {
            addr,
            connect_timeout,
            http,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// The most recently used idle connection that passes the checks, or a
    /// new one.
    pub async fn get(&self) -> Result<Conn, DialError> {
        while let Some(mut conn) = self.pop() {
            if !conn.quiet() {
                continue;
            }
            // Nothing has been written yet, so a connection found closed
            // here may be passed over whatever the request is.
            if std::future::poll_fn(|cx| conn.send.poll_ready(cx))
                .await
                .is_ok()
            {
                conn.reused = true;
                return Ok(conn);
            }
        }
        self.dial().await
    }

    fn pop(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(entry) = idle.pop_back() {
            if entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Takes back a connection whose response was read to its exact end.
    pub fn put(&self, conn: Conn) {
        if conn.send.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= MAX_IDLE {
            return;
        }
        idle.push_back(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Closes the connections that waited longer than the idle timeout;
    /// the oldest are at the front.
    pub fn prune(&self) {
        let mut stale = Vec::new();
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            while idle
                .front()
                .is_some_and(|e| e.since.elapsed() >= IDLE_TIMEOUT)
            {
                stale.extend(idle.pop_front());
            }
        }
        drop(stale);
    }

    pub async fn dial(&self) -> Result<Conn, DialError> {
        let tcp =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr)).await {
                Err(_) => return Err(DialError::Timeout),
                Ok(Err(_)) => return Err(DialError::Failed),
                Ok(Ok(tcp)) => tcp,
            };
        let _ = tcp.set_nodelay(true);
        let socket = Arc::new(Socket {
            tcp,
            read: AtomicU64::new(0),
        });
        let io = UpstreamIo(socket.clone());
        let (send, conn) = self
            .http
            .handshake(io)
            .await
            .map_err(|_| DialError::Failed)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            socket,
            reused: false,
        })
    }
}

/// hyper's view of the socket: reads and writes through the shared
/// stream's readiness, counting what arrives.
struct UpstreamIo(Arc<Socket>);

impl Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let s = &self.0;
        loop {
            ready!(s.tcp.poll_read_ready(cx))?;
            // SAFETY: recv only writes initialised bytes into the slice and
            // reports how many; exactly those are advanced over.
            let dst: &mut [MaybeUninit<u8>] = unsafe { buf.as_mut() };
            let want = dst.len();
            let mut got = 0;
            // A read that fills less than it asked for has emptied the
            // socket's buffer. Reporting that to tokio as WouldBlock clears
            // the readiness, so the next read waits for epoll rather than
            // costing a recv that fails with EAGAIN (tokio's own streams do
            // the same; this one is shared with the pool's peek).
            let res = s.tcp.try_io(Interest::READABLE, || {
                got = socket2::SockRef::from(&s.tcp).recv(dst)?;
                if got > 0 && got < want {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(got)
            });
            match res {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got == 0 => continue,
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Poll::Ready(Err(e)),
                _ => {
                    s.read.fetch_add(got as u64, Relaxed);
                    unsafe { buf.advance(got) };
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let s = &self.0;
        loop {
            ready!(s.tcp.poll_write_ready(cx))?;
            match s.tcp.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let s = &self.0;
        loop {
            ready!(s.tcp.poll_write_ready(cx))?;
            match s.tcp.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = socket2::SockRef::from(&self.0.tcp).shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}
