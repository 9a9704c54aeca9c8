//! One request: checked, rewritten, sent upstream over a pooled
//! connection, and the answer streamed back.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{
    HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::body::{ProxyBody, RelayError, ReqBody};
use crate::gate::Shared;
use crate::head::Reject;
use crate::headers;
use crate::upstream::{Conn, DialError, Pool};

pub struct Proxy {
    pub pool: Pool,
    /// Host for a request that came without one (HTTP/1.0).
    pub authority: HeaderValue,
    pub timeout: Duration,
    pub max_body: u64,
    /// Interim answers are relayed only through the gate.
    pub interim: bool,
}

/// Serves one request of a connection. `client` is the connection's
/// X-Forwarded-For entry, built once per connection; `call` is what the
/// gate said about the head at the moment hyper called the service.
pub async fn handle(
    proxy: &'static Proxy,
    conn: Arc<Shared>,
    client: HeaderValue,
    call: (Option<Reject>, bool),
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (refused, star) = call;
    if let Some(why) = refused {
        return Ok(refusal(&conn, why));
    }
    let (mut parts, body) = req.into_parts();
    if let Err(why) = check_request(&parts, &body, proxy.max_body) {
        return Ok(refusal(&conn, why));
    }
    let client_10 = parts.version == Version::HTTP_10;
    let head_only = parts.method == Method::HEAD;
    let has_body = !body.is_end_stream();
    let chunked = has_body && body.size_hint().exact().is_none();
    conn.body_done.store(!has_body, Relaxed);
    headers::prepare_request(&mut parts.headers, &client, chunked);
    if let Err(why) = retarget(&mut parts, star, &proxy.authority) {
        return Ok(refusal(&conn, why));
    }
    // Always 1.1 upstream: a 1.0 request line would make the upstream close
    // the pooled connection after answering.
    parts.version = Version::HTTP_11;
    let retry = idempotent(&parts.method) && !has_body;
    let body = if has_body {
        ReqBody::Client {
            inner: body,
            shared: conn.clone(),
        }
    } else {
        ReqBody::Empty
    };
    let mut req = Request::from_parts(parts, body);
    let interim = proxy.interim && !client_10;
    if interim {
        // A 100 is the proxy's own to send; other 1xx go to the client.
        let shared = conn.clone();
        hyper::ext::on_informational(&mut req, move |res| {
            if res.status() != StatusCode::CONTINUE {
                shared.push_interim(&headers::interim_head(res.status(), res.headers()));
            }
        });
    }

    let (resp, upstream) = match exchange(proxy, &conn, req, retry, interim).await {
        Ok(r) => r,
        Err(failure) => return Ok(failed(&conn, failure)),
    };
    if interim {
        std::future::poll_fn(|cx| conn.poll_interim_sent(cx)).await;
    }
    answer(proxy, conn, resp, upstream, client_10, head_only).await
}

/// Turns the upstream's response head into the client's.
async fn answer(
    proxy: &'static Proxy,
    conn: Arc<Shared>,
    resp: Response<Incoming>,
    upstream: Conn,
    client_10: bool,
    head_only: bool,
) -> Result<Response<ProxyBody>, Infallible> {
    // Upgrade is never forwarded, so a switch of protocols can only come
    // from a broken upstream, and what follows would not be HTTP.
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS || !framing_ok(resp.headers()) {
        return Ok(failed(&conn, Failure::Bad));
    }
    let reusable = !wants_close(resp.headers())
        && (head_only
            || resp.status() == StatusCode::NO_CONTENT
            || resp.status() == StatusCode::NOT_MODIFIED
            || resp.headers().contains_key(TRANSFER_ENCODING)
            || resp.headers().contains_key(CONTENT_LENGTH));
    let (mut parts, body) = resp.into_parts();
    headers::prepare_response(&mut parts.headers);
    let home = reusable.then_some((upstream, &proxy.pool));
    let mut relay = crate::body::Relay::new(body, proxy.timeout, home, conn.clone());
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
            Err(_) => failed(&conn, Failure::Bad),
        });
    }
    Ok(Response::from_parts(parts, ProxyBody::Upstream(relay)))
}

/// Why no response head came from the upstream.
enum Failure {
    Bad,
    Timeout,
}

/// Sends the request on a pooled or new connection; a request that may be
/// repeated is sent once more on a new connection when a reused one
/// failed before any byte of the answer arrived.
async fn exchange(
    proxy: &'static Proxy,
    conn: &Shared,
    req: Request<ReqBody>,
    retry: bool,
    interim: bool,
) -> Result<(Response<Incoming>, Conn), Failure> {
    let mut upstream = proxy.pool.get().await.map_err(dial_failure)?;
    let copy = (retry && upstream.reused).then(|| copy_request(&req));
    let before = upstream.received();
    match wait_head(proxy, conn, &mut upstream, req, interim).await {
        Ok(resp) => Ok((resp, upstream)),
        Err(Some(Failure::Timeout)) => Err(Failure::Timeout),
        Err(_) => {
            let Some(req) = copy.filter(|_| upstream.received() == before) else {
                return Err(Failure::Bad);
            };
            drop(upstream);
            let mut fresh = proxy.pool.dial().await.map_err(dial_failure)?;
            match wait_head(proxy, conn, &mut fresh, req, interim).await {
                Ok(resp) => Ok((resp, fresh)),
                Err(f) => Err(f.unwrap_or(Failure::Bad)),
            }
        }
    }
}

fn dial_failure(e: DialError) -> Failure {
    match e {
        DialError::Timeout => Failure::Timeout,
        DialError::Failed => Failure::Bad,
    }
}

/// Waits for the response head. The upstream timeout runs from the last
/// progress of the request body (or from sending when there is none);
/// while the body waits for the client, the client's deadline applies.
/// `Err(None)` is a failure of the exchange itself.
async fn wait_head(
    proxy: &'static Proxy,
    conn: &Shared,
    upstream: &mut Conn,
    req: Request<ReqBody>,
    interim: bool,
) -> Result<Response<Incoming>, Option<Failure>> {
    let sent = Instant::now();
    conn.progress.touch();
    let mut fut = pin!(upstream.send(req));
    let mut timer = pin!(tokio::time::sleep(proxy.timeout));
    std::future::poll_fn(|cx| {
        if interim {
            conn.watch_interim(cx);
        }
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|_| None));
        }
        loop {
            let due = match conn.progress.last() {
                Some(at) => at.max(sent) + proxy.timeout,
                None => Instant::now() + proxy.timeout,
            };
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if conn
                .progress
                .last()
                .is_some_and(|at| at.max(sent) + proxy.timeout <= Instant::now())
            {
                return Poll::Ready(Err(Some(Failure::Timeout)));
            }
        }
    })
    .await
}

/// A request without a body, to send once more.
fn copy_request(req: &Request<ReqBody>) -> Request<ReqBody> {
    let mut copy = Request::new(ReqBody::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    copy
}

/// RFC 9110 9.2.2, less the methods that carry no body by definition.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The upstream's framing, as far as hyper leaves it to the caller: one
/// Transfer-Encoding that is exactly `chunked`, and never together with
/// Content-Length (RFC 9112 6.1, 6.3). Any other coding would reach the
/// client decoded by nobody.
fn framing_ok(h: &HeaderMap) -> bool {
    let mut codings = h.get_all(TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => true,
        (Some(v), None) => {
            headers::trim_ows(v.as_bytes()).eq_ignore_ascii_case(b"chunked")
                && !h.contains_key(CONTENT_LENGTH)
        }
        (Some(_), Some(_)) => false,
    }
}

fn wants_close(h: &HeaderMap) -> bool {
    h.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| headers::trim_ows(t).eq_ignore_ascii_case(b"close"))
    })
}

/// What hyper's parsed request still has to pass: the method and target
/// forms (RFC 9112 3.2), the transfer coding (RFC 9112 6.1, 7), Host (RFC
/// 9112 3.2) and the announced length against the body limit.
fn check_request(parts: &Parts, body: &Incoming, max_body: u64) -> Result<(), Reject> {
    // A tunnel to a client-chosen host is not what a reverse proxy in
    // front of one origin offers, whatever the target.
    if parts.method == Method::CONNECT {
        return Err(Reject::Tunnel);
    }
    check_target(&parts.method, &parts.uri)?;
    // hyper frames a request whose last coding is chunked and passes every
    // field on; chunked applied once is the only coding that frames a
    // request (identity no longer exists, RFC 9112 7).
    let mut codings = parts.headers.get_all(TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => {}
        (Some(v), None) if headers::trim_ows(v.as_bytes()).eq_ignore_ascii_case(b"chunked") => {}
        _ => return Err(Reject::BadTransferCoding),
    }
    let mut hosts = parts.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(Reject::DuplicateHost),
        (None, _) if parts.version != Version::HTTP_10 => return Err(Reject::MissingHost),
        (Some(h), None) if !h.as_bytes().iter().copied().all(is_host_byte) => {
            return Err(Reject::BadHost)
        }
        _ => {}
    }
    if body.size_hint().exact().is_some_and(|n| n > max_body) {
        return Err(Reject::BodyTooLarge);
    }
    Ok(())
}

/// The target forms a proxy in front of one origin forwards: origin-form,
/// `*` with OPTIONS, and absolute-form `http`/`https` with a host, no
/// userinfo and a numeric port. hyper has parsed the target with
/// `http::Uri`, which keeps the path and query byte for byte; the gate
/// has refused a fragment, which `http::Uri` would have cut.
fn check_target(method: &Method, uri: &Uri) -> Result<(), Reject> {
    // `http::Uri` accepts these in a path or query; they are never
    // forwarded unencoded.
    if let Some(pq) = uri.path_and_query() {
        if pq.as_str().bytes().any(|b| matches!(b, b'"' | b'`')) {
            return Err(Reject::BadTarget);
        }
    }
    match (uri.scheme(), uri.authority()) {
        (None, None) if uri.path() == "*" => {
            if *method == Method::OPTIONS {
                Ok(())
            } else {
                Err(Reject::BadTarget)
            }
        }
        (None, None) => Ok(()),
        (Some(scheme), Some(auth)) if is_http(scheme) && authority_ok(auth.as_str()) => Ok(()),
        // authority-form belongs to CONNECT alone.
        _ => Err(Reject::BadTarget),
    }
}

fn is_http(scheme: &http::uri::Scheme) -> bool {
    *scheme == http::uri::Scheme::HTTP || *scheme == http::uri::Scheme::HTTPS
}

/// A non-empty host without userinfo, and a port of digits if any.
fn authority_ok(authority: &str) -> bool {
    let a = authority.as_bytes();
    if a.contains(&b'@') {
        return false;
    }
    // An IP literal holds colons of its own; the port follows the `]`.
    let host_end = match a.first() {
        Some(b'[') => match a.iter().position(|&b| b == b']') {
            Some(i) => i + 1,
            None => return false,
        },
        _ => a.iter().position(|&b| b == b':').unwrap_or(a.len()),
    };
    let port = &a[host_end..];
    let port_ok = port.is_empty() || (port[0] == b':' && port[1..].iter().all(u8::is_ascii_digit));
    host_end > 0 && port_ok
}

/// The bytes of `uri-host [ ":" port ]` (RFC 3986 3.2.2): reg-name,
/// percent-encoding, IP literals.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b)
}

/// Puts the target in origin-form for the upstream (RFC 9112 3.2): an
/// absolute-form target's authority becomes the Host, its path and query
/// go on as they came (`/` for an empty path), and `OPTIONS` to an
/// authority alone becomes `OPTIONS *`. A request without Host (HTTP/1.0)
/// gets the upstream's.
fn retarget(parts: &mut Parts, star: bool, fallback: &HeaderValue) -> Result<(), Reject> {
    let uri = std::mem::take(&mut parts.uri);
    if let Some(auth) = uri.authority() {
        let host = HeaderValue::from_str(auth.as_str()).map_err(|_| Reject::BadTarget)?;
        parts.headers.insert(HOST, host);
    } else if !parts.headers.contains_key(HOST) {
        parts.headers.insert(HOST, fallback.clone());
    }
    let pq = match uri.path_and_query() {
        _ if star => PathAndQuery::from_static("*"),
        Some(pq) if uri.authority().is_none() || pq.as_str().starts_with('/') => pq.clone(),
        Some(pq) => {
            PathAndQuery::try_from(format!("/{}", pq.as_str())).map_err(|_| Reject::BadTarget)?
        }
        None => PathAndQuery::from_static("/"),
    };
    parts.uri = Uri::from(pq);
    Ok(())
}

/// Bound on what is collected of a body for an HTTP/1.0 client.
const COLLECT_LIMIT: usize = 1 << 20;

enum Collected {
    Whole(Bytes),
    /// The bound was reached; the rest is still to come.
    Part(Bytes),
}

async fn collect(relay: &mut crate::body::Relay) -> Result<Collected, RelayError> {
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
fn refusal(conn: &Shared, why: Reject) -> Response<ProxyBody> {
    conn.mark_refused();
    let status = StatusCode::from_u16(why.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, why.text(), true)
}

/// The answer when no usable response head came. A request body the
/// client was still sending is the client's doing (refused by the gate)
/// or leaves the stream untrusted.
fn failed(conn: &Shared, f: Failure) -> Response<ProxyBody> {
    if let Some(why) = conn.body_refusal() {
        return refusal(conn, why);
    }
    let close = !conn.body_done.load(Relaxed);
    if close {
        conn.mark_refused();
    }
    match f {
        Failure::Bad => text(StatusCode::BAD_GATEWAY, "bad gateway\n", close),
        Failure::Timeout => text(StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n", close),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_forms() {
        let cases: &[(Method, &str, bool)] = &[
            (Method::GET, "/a?b", true),
            (Method::GET, "http://h/a?b", true),
            (Method::GET, "HTTPS://h:8080", true),
            (Method::GET, "http://[::1]:80/x", true),
            (Method::OPTIONS, "*", true),
            (Method::OPTIONS, "http://h:1", true),
            (Method::GET, "*", false),
            (Method::GET, "h:443", false),
            (Method::GET, "ftp://h/", false),
            (Method::GET, "http://u@h/", false),
            (Method::GET, "http://:80/a", false),
            (Method::GET, "http://h:x/a", false),
            (Method::GET, "/a\"b", false),
            (Method::GET, "/a?b`c", false),
        ];
        for (method, target, ok) in cases {
            let uri: Uri = target.parse().unwrap();
            assert_eq!(check_target(method, &uri).is_ok(), *ok, "{method} {target}");
        }
    }
}
