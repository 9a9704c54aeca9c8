//! Header rewriting in both directions: hop-by-hop fields out (RFC 9110
//! 7.6.1), this proxy into Via (7.6.3) and the client into X-Forwarded-For.
//!
//! `HeaderMap` keeps the values of one name in arrival order, and hyper's
//! preserved-case map (carried in the message extensions) still spells the
//! remaining names the way they arrived.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    Entry, HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST,
    PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};

pub const VIA_ENTRY: &str = "1.1 proxylab-rust";

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TE
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name == TRAILER
        || name == PROXY_AUTHENTICATE
        || name == PROXY_AUTHORIZATION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// Readies a client's header section for the upstream. `chunked` says the
/// body goes on in chunks: hyper would send a GET or HEAD without one
/// unless the field says so.
pub fn prepare_request(h: &mut HeaderMap, client: &HeaderValue, chunked: bool) {
    // Naming Host or a framing field in Connection cannot make it
    // hop-by-hop; it could only change which request the upstream sees.
    strip_hop_by_hop(h, |n| n == HOST || n == CONTENT_LENGTH);
    append_to_list(h, &X_FORWARDED_FOR, client);
    append_to_list(h, &VIA, &HeaderValue::from_static(VIA_ENTRY));
    if chunked {
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
}

/// Readies an upstream's header section for the client. hyper frames the
/// body itself from here on.
pub fn prepare_response(h: &mut HeaderMap) {
    // A length next to a transfer coding is not the body's length (RFC
    // 9112 6.3); passing it on would frame the relayed body wrongly.
    if h.contains_key(TRANSFER_ENCODING) {
        h.remove(CONTENT_LENGTH);
    }
    // The length of a HEAD answer only exists as this field.
    strip_hop_by_hop(h, |n| n == CONTENT_LENGTH);
    append_to_list(h, &VIA, &HeaderValue::from_static(VIA_ENTRY));
}

fn strip_hop_by_hop(h: &mut HeaderMap, exempt: impl Fn(&HeaderName) -> bool) {
    // The usual message has none of these fields: one look at each name.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    if h.contains_key(CONNECTION) {
        let mut named: Vec<HeaderName> = Vec::new();
        for v in h.get_all(CONNECTION) {
            for token in v.as_bytes().split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.is_empty()
                    || token.eq_ignore_ascii_case(b"close")
                    || token.eq_ignore_ascii_case(b"keep-alive")
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token) {
                    if !exempt(&name) {
                        named.push(name);
                    }
                }
            }
        }
        for name in named {
            h.remove(name);
        }
    }
    for name in [
        &CONNECTION,
        &TE,
        &TRANSFER_ENCODING,
        &UPGRADE,
        &TRAILER,
        &PROXY_AUTHENTICATE,
        &PROXY_AUTHORIZATION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
    ] {
        h.remove(name);
    }
}

/// Adds `value` as the last element of the list field `name`: appended to
/// its last field line when there is one, a new field otherwise.
fn append_to_list(h: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    match h.entry(name) {
        Entry::Vacant(e) => {
            e.insert(value.clone());
        }
        Entry::Occupied(mut e) => {
            let Some(last) = e.iter_mut().last() else {
                return;
            };
            let old = trim_ows(last.as_bytes());
            if old.is_empty() {
                *last = value.clone();
                return;
            }
            let mut b = BytesMut::with_capacity(old.len() + 2 + value.len());
            b.put_slice(old);
            b.put_slice(b", ");
            b.put_slice(value.as_bytes());
            match HeaderValue::from_maybe_shared(Bytes::from(b)) {
                Ok(v) => *last = v,
                // A value hyper let through that cannot be extended still
                // gets the entry after it, as a field of its own.
                Err(_) => e.append(value.clone()),
            }
        }
    }
}

pub fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// An interim (1xx) head as the client gets it: hop-by-hop fields removed
/// as from a final answer, names in title case as hyper writes the
/// proxy's own.
pub fn interim_head(status: http::StatusCode, fields: &HeaderMap) -> Vec<u8> {
    let mut h = fields.clone();
    strip_hop_by_hop(&mut h, |_| false);
    let mut out = Vec::with_capacity(64 + h.len() * 32);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &h {
        title_case(name.as_str().as_bytes(), &mut out);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn title_case(name: &[u8], out: &mut Vec<u8>) {
    let mut upper = true;
    for &b in name {
        out.push(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

/// The client's address as X-Forwarded-For carries it.
pub fn client_value(ip: std::net::IpAddr) -> HeaderValue {
    let ip = ip.to_canonical();
    HeaderValue::from_maybe_shared(Bytes::from(ip.to_string()))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(fields: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    // Order between different names carries no meaning (RFC 9110 5.3) and
    // removing a field may change it; the order of one name's values is
    // what has to hold.
    fn pairs(h: &HeaderMap) -> Vec<(String, String)> {
        let mut v: Vec<_> = h
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn own(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn request_plain() {
        let mut h = map(&[("host", "a"), ("x-a", "1"), ("x-a", "2"), ("accept", "*/*")]);
        prepare_request(&mut h, &HeaderValue::from_static("127.0.0.1"), false);
        assert_eq!(
            pairs(&h),
            own(&[
                ("host", "a"),
                ("x-a", "1"),
                ("x-a", "2"),
                ("accept", "*/*"),
                ("x-forwarded-for", "127.0.0.1"),
                ("via", "1.1 proxylab-rust"),
            ])
        );
    }

    #[test]
    fn request_hop_by_hop_and_lists() {
        let mut h = map(&[
            ("host", "a"),
            ("connection", "keep-alive, X-Hop, Host, Content-Length"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("content-length", "3"),
            ("x-forwarded-for", "10.0.0.1"),
            ("via", "1.0 a"),
            ("x-forwarded-for", "10.0.0.2, 10.0.0.3"),
            ("via", "1.1 b"),
            ("x-keep", "k"),
        ]);
        prepare_request(&mut h, &HeaderValue::from_static("127.0.0.1"), false);
        assert_eq!(
            pairs(&h),
            own(&[
                ("host", "a"),
                ("content-length", "3"),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-for", "10.0.0.2, 10.0.0.3, 127.0.0.1"),
                ("via", "1.0 a"),
                ("via", "1.1 b, 1.1 proxylab-rust"),
                ("x-keep", "k"),
            ])
        );
    }

    #[test]
    fn request_fields_named_in_connection_go_even_if_they_are_lists() {
        let mut h = map(&[
            ("host", "a"),
            ("connection", "via"),
            ("connection", "X-Forwarded-For"),
            ("via", "1.0 a"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        prepare_request(&mut h, &HeaderValue::from_static("::1"), true);
        assert_eq!(
            pairs(&h),
            own(&[
                ("host", "a"),
                ("x-forwarded-for", "::1"),
                ("via", "1.1 proxylab-rust"),
                ("transfer-encoding", "chunked"),
            ])
        );
    }

    #[test]
    fn empty_list_field_takes_the_entry_alone() {
        let mut h = map(&[("host", "a"), ("via", "")]);
        prepare_request(&mut h, &HeaderValue::from_static("127.0.0.1"), false);
        assert_eq!(h.get(VIA).unwrap(), "1.1 proxylab-rust");
    }

    #[test]
    fn response_fields() {
        let mut h = map(&[
            ("x-a", "1"),
            ("connection", "X-Hop, keep-alive, content-length"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "h"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("via", "1.0 cache"),
            ("transfer-encoding", "chunked"),
            ("trailer", "X-T"),
            ("proxy-authenticate", "Basic"),
            ("upgrade", "foo"),
            ("content-length", "99"),
        ]);
        prepare_response(&mut h);
        assert_eq!(
            pairs(&h),
            own(&[
                ("x-a", "1"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("via", "1.0 cache, 1.1 proxylab-rust"),
            ])
        );
    }

    #[test]
    fn response_keeps_its_length() {
        let mut h = map(&[("content-length", "4321"), ("connection", "content-length")]);
        prepare_response(&mut h);
        assert_eq!(
            pairs(&h),
            own(&[("content-length", "4321"), ("via", "1.1 proxylab-rust")])
        );
    }

    #[test]
    fn interim_heads() {
        let h = map(&[
            ("link", "</a.css>; rel=preload"),
            ("link", "</b.js>; rel=preload"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=1"),
        ]);
        let out = interim_head(http::StatusCode::from_u16(103).unwrap(), &h);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\n"
        );
    }

    #[test]
    fn client_addresses() {
        assert_eq!(client_value("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(client_value("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(client_value("::1".parse().unwrap()), "::1");
    }
}
