//! Checks a client's request head before hyper sees it.
//!
//! hyper parses the head again afterwards; what this adds is what hyper lets
//! through or cannot report the way the contract wants: it quietly prefers
//! Transfer-Encoding over Content-Length, has no notion of a head size
//! limit with a proper answer, and answers its own parse errors with an
//! empty body. The parser is the one hyper uses, with hyper's settings, so
//! both always agree on where a head ends.

use std::mem::MaybeUninit;

/// Field slots tried first, on the stack; a head with more fields is
/// parsed again with room for as many as the byte limit allows.
const FIELDS_ON_STACK: usize = 100;

/// hyper refuses longer targets (with 414).
const MAX_TARGET_LEN: usize = (u16::MAX - 1) as usize;

/// Why a request is refused. The discriminants are stable so the value can
/// travel through an atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reject {
    Malformed = 1,
    Folded,
    BadTarget,
    MissingHost,
    DuplicateHost,
    BadHost,
    BadLength,
    DuplicateLength,
    AmbiguousFraming,
    BadTransferCoding,
    TransferCodingIn10,
    BadChunk,
    HeadTooLarge,
    TargetTooLong,
    BodyTooLarge,
    VersionNotSupported,
    Tunnel,
    HeadTimeout,
    BodyTimeout,
}

impl Reject {
    const ALL: [Reject; 19] = [
        Reject::Malformed,
        Reject::Folded,
        Reject::BadTarget,
        Reject::MissingHost,
        Reject::DuplicateHost,
        Reject::BadHost,
        Reject::BadLength,
        Reject::DuplicateLength,
        Reject::AmbiguousFraming,
        Reject::BadTransferCoding,
        Reject::TransferCodingIn10,
        Reject::BadChunk,
        Reject::HeadTooLarge,
        Reject::TargetTooLong,
        Reject::BodyTooLarge,
        Reject::VersionNotSupported,
        Reject::Tunnel,
        Reject::HeadTimeout,
        Reject::BodyTimeout,
    ];

    pub fn from_u8(v: u8) -> Option<Reject> {
        Reject::ALL.iter().copied().find(|r| *r as u8 == v)
    }

    pub fn status(self) -> u16 {
        match self {
            Reject::HeadTooLarge => 431,
            Reject::HeadTimeout | Reject::BodyTimeout => 408,
            Reject::TargetTooLong => 414,
            Reject::BodyTooLarge => 413,
            Reject::VersionNotSupported => 505,
            Reject::Tunnel => 501,
            _ => 400,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Reject::Malformed => "bad request: malformed request head\n",
            Reject::Folded => "bad request: obsolete line folding\n",
            Reject::BadTarget => "bad request: malformed request target\n",
            Reject::MissingHost => "bad request: missing Host\n",
            Reject::DuplicateHost => "bad request: more than one Host\n",
            Reject::BadHost => "bad request: malformed Host\n",
            Reject::BadLength => "bad request: malformed Content-Length\n",
            Reject::DuplicateLength => "bad request: more than one Content-Length\n",
            Reject::AmbiguousFraming => "bad request: both Content-Length and Transfer-Encoding\n",
            Reject::BadTransferCoding => "bad request: unsupported transfer coding\n",
            Reject::TransferCodingIn10 => "bad request: transfer coding in an HTTP/1.0 request\n",
            Reject::BadChunk => "bad request: malformed chunked body\n",
            Reject::HeadTooLarge => "request header too large\n",
            Reject::HeadTimeout => "request timeout\n",
            Reject::BodyTimeout => "request timeout\n",
            Reject::TargetTooLong => "request target too long\n",
            Reject::BodyTooLarge => "request body too large\n",
            Reject::VersionNotSupported => "HTTP version not supported\n",
            Reject::Tunnel => "CONNECT is not supported: this proxy forwards to one origin\n",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The head has not ended yet; `scanned` remembers how far it was
    /// searched for its end.
    Incomplete,
    Valid {
        len: usize,
        body: Body,
        /// `OPTIONS` with an absolute-form target without path or query,
        /// which goes upstream as `OPTIONS *` (RFC 9112 3.2.4).
        star: bool,
    },
    Reject(Reject),
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: u64,
}

/// Looks at the start of `buf`, which holds one request head or the first
/// part of one. `buf` is mutable because a later HTTP/1 minor version is
/// rewritten to 1.1, which is what the request has to be treated as (RFC
/// 9110 2.5) and the only thing hyper accepts.
pub fn inspect(buf: &mut [u8], scanned: &mut usize, limits: Limits) -> Verdict {
    if !head_may_end(buf, *scanned) {
        *scanned = buf.len();
        return too_long_or_incomplete(buf.len(), limits);
    }
    let mut patched = false;
    let mut many = false;
    loop {
        let res = if many {
            // Every field line takes at least 4 bytes, so this many slots
            // can never be the limit that refuses a head within the bytes.
            let mut fields = vec![MaybeUninit::uninit(); limits.max_head / 4 + 1];
            parse(buf, &mut fields, limits)
        } else {
            let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); FIELDS_ON_STACK];
            parse(buf, &mut fields, limits)
        };
        match res {
            Parsed::Done(verdict, coding_at) => {
                if let Some(at) = coding_at {
                    // The field is dropped, and the proxy frames the body
                    // for the upstream itself; spelled as hyper would see
                    // it here, the proxy's own field is not mistaken for
                    // the client's copied through.
                    buf[at..at + CODING.len()].copy_from_slice(CODING);
                }
                return verdict;
            }
            Parsed::Partial => {
                *scanned = buf.len();
                return too_long_or_incomplete(buf.len(), limits);
            }
            Parsed::Failed(httparse::Error::Version) if !patched => match patch_version(buf) {
                Ok(()) => patched = true,
                Err(r) => return Verdict::Reject(r),
            },
            Parsed::Failed(httparse::Error::TooManyHeaders) if !many => many = true,
            Parsed::Failed(httparse::Error::TooManyHeaders) => {
                return Verdict::Reject(Reject::HeadTooLarge)
            }
            Parsed::Failed(httparse::Error::HeaderName) if has_folded_line(buf) => {
                return Verdict::Reject(Reject::Folded);
            }
            Parsed::Failed(_) => return Verdict::Reject(Reject::Malformed),
        }
    }
}

enum Parsed {
    Done(Verdict, Option<usize>),
    Partial,
    Failed(httparse::Error),
}

fn parse<'b>(
    buf: &'b [u8],
    fields: &mut [MaybeUninit<httparse::Header<'b>>],
    limits: Limits,
) -> Parsed {
    let mut req = httparse::Request::new(&mut []);
    match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, fields)
    {
        Ok(httparse::Status::Complete(len)) => {
            if len > limits.max_head {
                return Parsed::Done(Verdict::Reject(Reject::HeadTooLarge), None);
            }
            let (verdict, coding_at) = check(&req, len, buf.as_ptr() as usize);
            Parsed::Done(verdict, coding_at)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(e) => Parsed::Failed(e),
    }
}

fn too_long_or_incomplete(have: usize, limits: Limits) -> Verdict {
    // Without its end in sight, the head is longer than what has arrived.
    if have > limits.max_head {
        Verdict::Reject(Reject::HeadTooLarge)
    } else {
        Verdict::Incomplete
    }
}

/// A cheap search for the blank line that ends a head, so that a head
/// arriving in many pieces is parsed once rather than once per piece.
fn head_may_end(buf: &[u8], scanned: usize) -> bool {
    let from = scanned.saturating_sub(3);
    let mut i = from;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + off;
        let rest = &buf[at + 1..];
        if rest.first() == Some(&b'\n') || rest.starts_with(b"\r\n") {
            return true;
        }
        i = at + 1;
    }
    false
}

const CODING: &[u8] = b"Transfer-Encoding";

/// Also returns where in the head the Transfer-Encoding field's name is,
/// `base` being the head's address.
fn check(req: &httparse::Request<'_, '_>, len: usize, base: usize) -> (Verdict, Option<usize>) {
    let mut coding_at = None;
    let verdict = check_fields(req, len, base, &mut coding_at);
    (verdict, coding_at)
}

/// What hyper would refuse with an answer of its own, or accept while
/// hiding it from the service: the framing fields (hyper drops a second
/// equal Content-Length, and the Content-Length next to a
/// Transfer-Encoding) and the target (`http::Uri` cuts a fragment and
/// turns an empty path into `/`). Host and the body limit are checked by
/// the service on hyper's parsed request.
fn check_fields(
    req: &httparse::Request<'_, '_>,
    len: usize,
    base: usize,
    coding_at: &mut Option<usize>,
) -> Verdict {
    let is_11 = req.version == Some(1);
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("").as_bytes();
    let star = match check_target(method, target) {
        Ok(star) => star,
        Err(r) => return Verdict::Reject(r),
    };

    let mut lengths = 0u32;
    let mut codings = 0u32;
    let mut length = 0u64;
    let mut chunked = false;
    for f in req.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            lengths += 1;
            match parse_length(f.value) {
                Some(n) => length = n,
                None => return Verdict::Reject(Reject::BadLength),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings += 1;
            chunked = trim_ows(f.value).eq_ignore_ascii_case(b"chunked");
            *coding_at = (f.name.as_ptr() as usize).checked_sub(base);
        }
    }

    if codings > 0 {
        // RFC 9112 6.1: a 1.0 recipient could not have framed it.
        if !is_11 {
            return Verdict::Reject(Reject::TransferCodingIn10);
        }
        // RFC 9112 6.3: either framing alone could be what the next hop
        // believes, so neither is; refusing is the only safe answer.
        if lengths > 0 {
            return Verdict::Reject(Reject::AmbiguousFraming);
        }
        // chunked applied once is the only coding that frames a request
        // (identity no longer exists, RFC 9112 7).
        if codings > 1 || !chunked {
            return Verdict::Reject(Reject::BadTransferCoding);
        }
        return Verdict::Valid {
            len,
            body: Body::Chunked,
            star,
        };
    }
    // Equal repeated lengths could be folded into one (RFC 9112 6.3), but
    // the lab's proxies refuse them alike.
    if lengths > 1 {
        return Verdict::Reject(Reject::DuplicateLength);
    }
    let body = if length > 0 {
        Body::Length(length)
    } else {
        Body::None
    };
    Verdict::Valid { len, body, star }
}

fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The request-target forms of RFC 9112 3.2 that can be forwarded to a
/// fixed origin, and only bytes that survive `http::Uri` unchanged.
/// Returns whether the target is an absolute-form `OPTIONS` one without
/// path or query.
fn check_target(method: &str, target: &[u8]) -> Result<bool, Reject> {
    // A tunnel to a client-chosen host is not what a reverse proxy in
    // front of one origin offers.
    if method == "CONNECT" {
        return Err(Reject::Tunnel);
    }
    if target.len() > MAX_TARGET_LEN {
        return Err(Reject::TargetTooLong);
    }
    // A fragment is never part of a target; `http::Uri` would silently cut
    // it, and it rejects the other bytes, so refusing here keeps every
    // forwarded target byte for byte what the client sent.
    if target
        .iter()
        .any(|b| matches!(b, b'#' | b'"' | b'<' | b'>' | b'`'))
    {
        return Err(Reject::BadTarget);
    }
    match target.first() {
        Some(b'/') => Ok(false),
        Some(b'*') if target.len() == 1 && method == "OPTIONS" => Ok(false),
        _ => {
            let rest = absolute_rest(target).ok_or(Reject::BadTarget)?;
            Ok(rest.is_empty() && method == "OPTIONS")
        }
    }
}

/// For an absolute-form target, what follows its authority; `None` when
/// the target is not one the proxy forwards: another scheme, an empty
/// host, userinfo, or a port that is not digits.
fn absolute_rest(target: &[u8]) -> Option<&[u8]> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let after = target[colon..].strip_prefix(b"://")?;
    let end = after
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after.len());
    let authority = &after[..end];
    if authority.contains(&b'@') {
        return None;
    }
    // An IP literal holds colons of its own; the port follows the `]`.
    let host_end = match authority.first() {
        Some(b'[') => authority.iter().position(|&b| b == b']')? + 1,
        _ => authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len()),
    };
    let port = &authority[host_end..];
    let port_ok = port.is_empty() || (port[0] == b':' && port[1..].iter().all(u8::is_ascii_digit));
    if host_end == 0 || !port_ok {
        return None;
    }
    Some(&after[end..])
}

/// Rewrites `HTTP/1.x` with x above 1 to `HTTP/1.1` in place; any other
/// version is refused: 505 for another major version, 400 for garbage.
fn patch_version(buf: &mut [u8]) -> Result<(), Reject> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(Reject::Malformed)?;
    let end = buf[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i)
        .ok_or(Reject::Malformed)?;
    let line_end = if end > start && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    let line = &buf[start..line_end];
    let sp = line
        .iter()
        .rposition(|&b| b == b' ')
        .ok_or(Reject::Malformed)?;
    let v = &line[sp + 1..];
    let well_formed =
        v.len() == 8 && v.starts_with(b"HTTP/") && v[5].is_ascii_digit() && v[6] == b'.';
    if !well_formed || !v[7].is_ascii_digit() {
        return Err(Reject::Malformed);
    }
    if v[5] != b'1' {
        return Err(Reject::VersionNotSupported);
    }
    if v[7] < b'2' {
        return Err(Reject::Malformed);
    }
    let minor = start + sp + 1 + 7;
    buf[minor] = b'1';
    Ok(())
}

fn has_folded_line(buf: &[u8]) -> bool {
    buf.windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 4096,
        max_body: 1000,
    };

    fn run(raw: &str) -> Verdict {
        let mut b = raw.as_bytes().to_vec();
        let mut scanned = 0;
        inspect(&mut b, &mut scanned, LIMITS)
    }

    fn pad_to(n: usize) -> String {
        let (start, end) = ("GET / HTTP/1.1\r\nHost: origin\r\nX-Pad: ", "\r\n\r\n");
        format!("{start}{}{end}", "p".repeat(n - start.len() - end.len()))
    }

    #[test]
    fn valid_heads() {
        let cases = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Body::None),
            ("GET /x HTTP/1.0\r\n\r\n", Body::None),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                Body::Length(5),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                Body::None,
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
                Body::Chunked,
            ),
            ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Body::None),
            ("GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n", Body::None),
            ("\r\nGET / HTTP/1.1\nHost: a\n\n", Body::None),
        ];
        for (raw, body) in cases {
            assert_eq!(
                run(raw),
                Verdict::Valid {
                    len: raw.len(),
                    body,
                    star: false
                },
                "{raw:?}"
            );
        }
    }

    #[test]
    fn head_ends_before_the_body() {
        let raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        assert_eq!(
            run(raw),
            Verdict::Valid {
                len: raw.len() - 6,
                body: Body::Length(3),
                star: false
            }
        );
    }

    #[test]
    fn incomplete_heads() {
        for raw in [
            "",
            "GET / HTTP/1.1\r\nHost: a\r\n",
            "GET / HT",
            "GET / HTTP/1.1\r\n\r",
        ] {
            assert_eq!(run(raw), Verdict::Incomplete, "{raw:?}");
        }
    }

    #[test]
    fn head_size_limit_is_inclusive() {
        assert!(matches!(
            run(&pad_to(4096)),
            Verdict::Valid { len: 4096, .. }
        ));
        assert_eq!(run(&pad_to(4097)), Verdict::Reject(Reject::HeadTooLarge));
        assert_eq!(run(&pad_to(20000)), Verdict::Reject(Reject::HeadTooLarge));
        // Unfinished and already too long: refused without waiting for more.
        let partial = &pad_to(5000)[..4097];
        assert_eq!(run(partial), Verdict::Reject(Reject::HeadTooLarge));
        assert_eq!(run(&pad_to(5000)[..4096]), Verdict::Incomplete);
    }

    #[test]
    fn refused_heads() {
        use Reject::*;
        let cases = [
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", AmbiguousFraming),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", AmbiguousFraming),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", DuplicateLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n", DuplicateLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3a\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", BadTransferCoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", BadTransferCoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", BadTransferCoding),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TransferCodingIn10),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n", Folded),
            ("GET / HTTP/1.1\r\nHost: a\r\nX Bad: 1\r\n\r\n", Malformed),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-Bad : 1\r\n\r\n", Malformed),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-Bad\r\n\r\n", Malformed),
            ("HELLO\r\n\r\n", Malformed),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", VersionNotSupported),
            ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", VersionNotSupported),
            ("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", Malformed),
            ("GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", Malformed),
            ("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            ("GET /a<b HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", Tunnel),
        ];
        for (raw, want) in cases {
            assert_eq!(run(raw), Verdict::Reject(want), "{raw:?}");
        }
    }

    #[test]
    fn many_fields_within_the_byte_limit_pass() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..1000 {
            raw.push_str(&format!("X-{i:04}: v\r\n"));
        }
        raw.push_str("\r\n");
        let len = raw.len();
        let limits = Limits {
            max_head: 16384,
            max_body: 0,
        };
        assert!(matches!(
            inspect(&mut raw.clone().into_bytes(), &mut 0, limits),
            Verdict::Valid { len: l, .. } if l == len
        ));
        let small = Limits {
            max_head: len - 1,
            max_body: 0,
        };
        assert_eq!(
            inspect(&mut raw.into_bytes(), &mut 0, small),
            Verdict::Reject(Reject::HeadTooLarge)
        );
    }

    #[test]
    fn target_forms() {
        let cases: &[(&str, &str, Result<bool, Reject>)] = &[
            ("GET", "/a?b", Ok(false)),
            ("GET", "http://h/a?b", Ok(false)),
            ("GET", "HTTPS://h:8080", Ok(false)),
            ("GET", "http://[::1]:80/x", Ok(false)),
            ("OPTIONS", "*", Ok(false)),
            ("OPTIONS", "http://h:1", Ok(true)),
            ("OPTIONS", "http://h:1/", Ok(false)),
            ("OPTIONS", "http://h:1?q", Ok(false)),
            ("GET", "*", Err(Reject::BadTarget)),
            ("GET", "h:443", Err(Reject::BadTarget)),
            ("CONNECT", "h:443", Err(Reject::Tunnel)),
            ("CONNECT", "/", Err(Reject::Tunnel)),
            ("GET", "ftp://h/", Err(Reject::BadTarget)),
            ("GET", "http://u@h/", Err(Reject::BadTarget)),
            ("GET", "http:///a", Err(Reject::BadTarget)),
            ("GET", "http://:80/a", Err(Reject::BadTarget)),
            ("GET", "http://h:x/a", Err(Reject::BadTarget)),
            ("GET", "/a#b", Err(Reject::BadTarget)),
            ("GET", "http://h/#", Err(Reject::BadTarget)),
            ("GET", "", Err(Reject::BadTarget)),
            ("GET", "a/b", Err(Reject::BadTarget)),
        ];
        for (method, target, want) in cases {
            assert_eq!(
                check_target(method, target.as_bytes()),
                *want,
                "{method} {target}"
            );
        }
    }

    #[test]
    fn later_minor_version_is_read_as_1_1() {
        let mut b = b"GET / HTTP/1.2\r\nHost: a\r\n\r\n".to_vec();
        let n = b.len();
        assert_eq!(
            inspect(&mut b, &mut 0, LIMITS),
            Verdict::Valid {
                len: n,
                body: Body::None,
                star: false
            }
        );
        assert_eq!(&b[..16], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn transfer_coding_name_is_respelled() {
        let mut b =
            b"POST / HTTP/1.1\r\nHost: a\r\ntRANSFER-eNCODING: chunked\r\n\r\n0\r\n\r\n".to_vec();
        let v = inspect(&mut b, &mut 0, LIMITS);
        assert!(matches!(
            v,
            Verdict::Valid {
                body: Body::Chunked,
                ..
            }
        ));
        assert!(b.starts_with(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"));
    }

    #[test]
    fn scanning_resumes() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut b = raw[..raw.len() - 1].to_vec();
        let mut scanned = 0;
        assert_eq!(inspect(&mut b, &mut scanned, LIMITS), Verdict::Incomplete);
        assert_eq!(scanned, raw.len() - 1);
        b.push(b'\n');
        assert!(matches!(
            inspect(&mut b, &mut scanned, LIMITS),
            Verdict::Valid { .. }
        ));
    }

    #[test]
    fn reject_round_trips() {
        for r in Reject::ALL {
            assert_eq!(Reject::from_u8(r as u8), Some(r));
            assert!(r.text().ends_with('\n') && r.text().len() < 100);
        }
        assert_eq!(Reject::from_u8(0), None);
    }
}
