//! What the gate looks at in a client's request head before hyper parses
//! it: only what hyper cannot refuse once it has parsed the head, because
//! its parse drops or rewrites the bytes that show it, plus where the head
//! ends and how its body is framed, so that the next head is found where
//! hyper will look for it.
//!
//! Everything else is left to hyper: a head it cannot parse is answered
//! with the proxy's own refusal by the gate (which recognises hyper's own
//! error answer), and what hyper parses is checked by the service (Host,
//! target forms, transfer codings, body limit).
//!
//! The scan is a byte scan, not a parse: it splits the head into lines,
//! looks at the request line's version and target, and at the first bytes
//! of each field line for folding and for the two framing fields.

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
    const ALL: [Reject; 18] = [
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

    /// The refusal standing for hyper's own answer with `status` to a head
    /// it could not parse.
    pub fn from_hyper_status(status: &[u8]) -> Reject {
        match status {
            b"431" => Reject::HeadTooLarge,
            b"414" => Reject::TargetTooLong,
            b"505" => Reject::VersionNotSupported,
            _ => Reject::Malformed,
        }
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

    pub fn reason(self) -> &'static str {
        match self.status() {
            431 => "Request Header Fields Too Large",
            408 => "Request Timeout",
            414 => "URI Too Long",
            413 => "Payload Too Large",
            505 => "HTTP Version Not Supported",
            501 => "Not Implemented",
            _ => "Bad Request",
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
/// 9110 2.5) and the only thing hyper accepts, and because the
/// Transfer-Encoding field's name is respelled (see `CODING`).
pub fn inspect(buf: &mut [u8], scanned: &mut usize, limits: Limits) -> Verdict {
    if !head_may_end(buf, *scanned) {
        *scanned = buf.len();
        return too_long_or_incomplete(buf.len(), limits);
    }
    let Some((first, len)) = head_bounds(buf) else {
        *scanned = buf.len();
        return too_long_or_incomplete(buf.len(), limits);
    };
    if len > limits.max_head {
        return Verdict::Reject(Reject::HeadTooLarge);
    }
    match scan(&mut buf[first..len]) {
        Ok((body, star)) => Verdict::Valid { len, body, star },
        Err(why) => Verdict::Reject(why),
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
/// arriving in many pieces is split into lines once rather than once per
/// piece.
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

/// Where the request line starts and where the head ends (after its blank
/// line), with httparse's line rules: empty lines before the request line
/// are skipped, a line ends in LF with or without a CR before it.
fn head_bounds(buf: &[u8]) -> Option<(usize, usize)> {
    let mut first = 0;
    while let Some(rest) = buf.get(first..) {
        match rest {
            [b'\n', ..] => first += 1,
            [b'\r', b'\n', ..] => first += 2,
            [] | [b'\r'] => return None,
            _ => break,
        }
    }
    let mut at = first;
    let mut request_line = true;
    while let Some(off) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + off];
        at += off + 1;
        if !request_line && (line.is_empty() || line == b"\r") {
            return Some((first, at));
        }
        request_line = false;
    }
    None
}

const CODING: &[u8] = b"Transfer-Encoding";
const LENGTH: &[u8] = b"Content-Length";

/// The checks on the head's lines (from the request line to the blank
/// line) that hyper's parse would hide from the service. Returns how the
/// body is framed and whether the target goes upstream as `*`.
fn scan(head: &mut [u8]) -> Result<(Body, bool), Reject> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let star = request_line(&mut head[..line_end])?;
    let mut lengths = 0u32;
    let mut codings = 0u32;
    let mut length = 0u64;
    let mut at = line_end + 1;
    while at < head.len() {
        let end = head[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| at + i);
        let line = &mut head[at..end];
        at = end + 1;
        match line.first() {
            // RFC 9112 5.2: hyper's parser refuses it too, but with an
            // empty answer and the reason lost.
            Some(b' ' | b'\t') => return Err(Reject::Folded),
            Some(b'c' | b'C') if is_field(line, LENGTH) => {
                lengths += 1;
                length = parse_length(field_value(line, LENGTH)).ok_or(Reject::BadLength)?;
            }
            Some(b't' | b'T') if is_field(line, CODING) => {
                codings += 1;
                // The field is dropped, and the proxy frames the body for
                // the upstream itself; spelled as hyper would see it here,
                // the proxy's own field is not mistaken for the client's
                // copied through (hyper keeps the client's spelling).
                line[..CODING.len()].copy_from_slice(CODING);
            }
            _ => {}
        }
    }
    // hyper keeps one of several equal lengths and drops a length next to
    // a transfer coding, both silently: neither reaches the service.
    // Equal repeated lengths could be folded into one (RFC 9112 6.3), but
    // the lab's proxies refuse them alike; with both fields either framing
    // could be what the next hop believes, so neither is.
    if lengths > 1 {
        return Err(Reject::DuplicateLength);
    }
    if codings > 0 && lengths > 0 {
        return Err(Reject::AmbiguousFraming);
    }
    // Which codings are acceptable is the service's to check (hyper passes
    // every Transfer-Encoding field on); hyper frames any request it
    // accepts with one as chunked.
    let body = match (codings, length) {
        (1.., _) => Body::Chunked,
        (0, 0) => Body::None,
        (0, n) => Body::Length(n),
    };
    Ok((body, star))
}

/// The request line (without its LF): a fragment in the target, which
/// `http::Uri` would cut silently; the version, which httparse only takes
/// as 1.0 or 1.1; and an `OPTIONS` target of an authority alone, which
/// `http::Uri` cannot tell from one with the path `/`.
fn request_line(line: &mut [u8]) -> Result<bool, Reject> {
    let line = match line {
        [rest @ .., b'\r'] => rest,
        l => l,
    };
    if line.contains(&b'#') {
        return Err(Reject::BadTarget);
    }
    if let [.., b' ', b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = line {
        if major.is_ascii_digit() && minor.is_ascii_digit() {
            if *major != b'1' {
                return Err(Reject::VersionNotSupported);
            }
            if *minor >= b'2' {
                *minor = b'1';
            }
        }
    }
    let Some(rest) = line.strip_prefix(b"OPTIONS ") else {
        return Ok(false);
    };
    let target = rest.split(|&b| b == b' ').next().unwrap_or_default();
    Ok(authority_alone(target))
}

/// Whether an absolute-form target has nothing after its authority.
fn authority_alone(target: &[u8]) -> bool {
    let Some(i) = target.windows(3).position(|w| w == b"://") else {
        return false;
    };
    let after = &target[i + 3..];
    !after.is_empty() && !after.iter().any(|&b| b == b'/' || b == b'?')
}

/// Whether a field line has the name `name` (any case), which httparse
/// requires to be followed by the colon at once.
fn is_field(line: &[u8], name: &[u8]) -> bool {
    line.len() > name.len()
        && line[name.len()] == b':'
        && line[..name.len()].eq_ignore_ascii_case(name)
}

fn field_value<'l>(line: &'l [u8], name: &[u8]) -> &'l [u8] {
    let v = &line[name.len() + 1..];
    trim_ows(v.strip_suffix(b"\r").unwrap_or(v))
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
            ("POST / HTTP/1.1\nHost: a\nCONTENT-LENGTH: 3\nContent-Length: 3\n\n", DuplicateLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3a\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", BadLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", BadLength),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n", Folded),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n\tb\r\n\r\n", Folded),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", VersionNotSupported),
            ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", VersionNotSupported),
            ("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            ("GET http://h/# HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
        ];
        for (raw, want) in cases {
            assert_eq!(run(raw), Verdict::Reject(want), "{raw:?}");
        }
    }

    /// What hyper refuses itself or the service checks passes the scan.
    #[test]
    fn left_to_hyper_and_the_service() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: a\r\nX Bad: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX-Bad\r\n\r\n",
            "HELLO\r\n\r\n",
            "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
            "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a<b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX: 1\r\n\r\n",
        ] {
            assert!(matches!(run(raw), Verdict::Valid { .. }), "{raw:?}");
        }
        // The coding is the service's to check; the framing is chunked.
        for raw in [
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(run(raw), Verdict::Valid { body: Body::Chunked, .. }),
                "{raw:?}"
            );
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
    fn options_to_an_authority_alone() {
        let cases = [
            ("OPTIONS http://h:1 HTTP/1.1\r\nHost: h\r\n\r\n", true),
            ("OPTIONS HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n", true),
            ("OPTIONS http://h:1/ HTTP/1.1\r\nHost: h\r\n\r\n", false),
            ("OPTIONS http://h:1?q HTTP/1.1\r\nHost: h\r\n\r\n", false),
            ("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false),
            ("OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n", false),
            ("GET http://h:1 HTTP/1.1\r\nHost: h\r\n\r\n", false),
        ];
        for (raw, star) in cases {
            assert!(
                matches!(run(raw), Verdict::Valid { star: s, .. } if s == star),
                "{raw:?}"
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
