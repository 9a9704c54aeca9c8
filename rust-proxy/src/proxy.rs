//! One request: checked, rewritten, sent upstream over a pooled
//! connection, and the answer streamed back.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio::time::Sleep;

use crate::gate::Shared;
use crate::head::Reject;
use crate::headers;

pub struct Proxy {
    pub client: Client<HttpConnector, Incoming>,
    pub authority: Authority,
    pub timeout: Duration,
}

/// Serves one request of a connection. `client` is the connection's
/// X-Forwarded-For entry, built once per connection.
pub async fn handle(
    proxy: &'static Proxy,
    conn: Arc<Shared>,
    client: HeaderValue,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if let Some(why) = conn.next_call() {
        return Ok(refusal(why));
    }
    let (mut parts, body) = req.into_parts();
    let client_10 = parts.version == Version::HTTP_10;
    let head_only = parts.method == Method::HEAD;
    let chunked = !body.is_end_stream() && body.size_hint().exact().is_none();
    headers::prepare_request(&mut parts.headers, &client, chunked);

    // The target the client sent, untouched: hyper keeps the request line's
    // path and query as received, and only scheme and authority are added
    // to address the pool.
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(proxy.authority.clone());
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = match Uri::from_parts(uri) {
        Ok(u) => u,
        Err(_) => return Ok(refusal(Reject::BadTarget)),
    };
    // Always 1.1 upstream: a 1.0 request line would make the upstream close
    // the pooled connection after answering.
    parts.version = Version::HTTP_11;

    let exchange = proxy.client.request(Request::from_parts(parts, body));
    let resp = match tokio::time::timeout(proxy.timeout, exchange).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(_)) => {
            // The request body failing is the client's doing, not the
            // upstream's.
            return Ok(match conn.body_refusal() {
                Some(why) => refusal(why),
                None => text(StatusCode::BAD_GATEWAY, "bad gateway\n", false),
            });
        }
        Err(_) => {
            return Ok(text(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway timeout\n",
                false,
            ))
        }
    };
    // Upgrade is never forwarded, so a switch of protocols can only come
    // from a broken upstream, and what follows would not be HTTP.
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(text(StatusCode::BAD_GATEWAY, "bad gateway\n", false));
    }
    let (mut parts, body) = resp.into_parts();
    headers::prepare_response(&mut parts.headers);
    let mut relay = Relay {
        inner: body,
        idle: None,
        timeout: proxy.timeout,
        moved: false,
    };
    if client_10 && !head_only && relay.inner.size_hint().exact().is_none() {
        // An HTTP/1.0 client cannot read chunks, and a body ended by
        // closing would end its keep-alive too: a body of unknown length
        // is collected to be sent with its length, up to a bound.
        return Ok(match collect(&mut relay).await {
            Ok(Collected::Whole(b)) => Response::from_parts(parts, ProxyBody::Text(Some(b))),
            Ok(Collected::Part(b)) => {
                parts
                    .headers
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                Response::from_parts(parts, ProxyBody::Prefixed(Some(b), relay))
            }
            Err(_) => text(StatusCode::BAD_GATEWAY, "bad gateway\n", false),
        });
    }
    Ok(Response::from_parts(parts, ProxyBody::Upstream(relay)))
}

/// Bound on what is collected of a body for an HTTP/1.0 client.
const COLLECT_LIMIT: usize = 1 << 20;

enum Collected {
    Whole(Bytes),
    /// The bound was reached; the rest is still to come.
    Part(Bytes),
}

async fn collect(relay: &mut Relay) -> Result<Collected, RelayError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| relay.poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
        }
        if buf.len() >= COLLECT_LIMIT {
            return Ok(Collected::Part(buf.freeze()));
        }
    }
    Ok(Collected::Whole(buf.freeze()))
}

/// The answer to a request the proxy refuses itself. The stream is not
/// trusted after any of them, so the connection closes.
fn refusal(why: Reject) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(why.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, why.text(), true)
}

fn text(status: StatusCode, body: &'static str, close: bool) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::Text(Some(Bytes::from_static(body.as_bytes()))));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if close {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
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
/// out.
pub struct Relay {
    inner: Incoming,
    /// Created the first time the upstream makes the relay wait, so bodies
    /// that are already buffered never touch the timer.
    idle: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    /// Whether a frame came since the timer was last set.
    moved: bool,
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

impl Relay {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    self.moved = true;
                    // Trailers belong to the hop they came on: the Trailer
                    // field announcing them is dropped as hop-by-hop.
                    if frame.is_data() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(RelayError::Upstream(e))))
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        let timer = match &mut self.idle {
            Some(t) => {
                if self.moved {
                    t.as_mut().reset(tokio::time::Instant::now() + self.timeout);
                }
                t
            }
            None => self.idle.insert(Box::pin(tokio::time::sleep(self.timeout))),
        };
        self.moved = false;
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(RelayError::Stalled)))
    }
}
