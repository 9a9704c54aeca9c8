//! Strict HTTP/1.x head parsing. Everything here works on bytes already
//! read; nothing allocates except appending to the caller's field list.
const std = @import("std");

pub const Field = struct {
    name: []const u8,
    value: []const u8,
    drop: bool = false,
};

pub const FieldList = std.ArrayList(Field);

pub const RequestError = error{
    BadRequestLine,
    VersionNotSupported,
    BadField,
    ObsFold,
    BareCr,
    BadHost,
    BadContentLength,
    LengthAndCoding,
    UnsupportedCoding,
    BadTarget,
    /// CONNECT: this proxy does not tunnel.
    NotImplemented,
    OutOfMemory,
};

pub const Request = struct {
    method: []const u8,
    /// The request-target as the client wrote it.
    target: []const u8,
    http11: bool,
    /// What the upstream's request line carries: the target in
    /// origin-form (or "*"), without the scheme and authority of an
    /// absolute-form target.
    upstream_target: []const u8 = "",
    /// A "/" goes before upstream_target: an absolute-form target with a
    /// query but an empty path.
    slash_first: bool = false,
    /// The authority of an absolute-form target, which becomes the Host
    /// the upstream sees.
    authority: ?[]const u8 = null,
    /// The index of the client's Host field in the field list.
    host_index: ?usize = null,
    content_length: ?u64 = null,
    chunked: bool = false,
    keep_alive: bool = true,
    has_host: bool = false,
    /// Expect: 100-continue: the client may hold its body back until it
    /// hears 100 Continue.
    expect_continue: bool = false,
    last_xff: ?usize = null,
    last_via: ?usize = null,
};

pub const Response = struct {
    status: u16,
    reason: []const u8,
    http11: bool,
    content_length: ?u64 = null,
    chunked: bool = false,
    close: bool = false,
    last_via: ?usize = null,
};

/// Returns the length of the head at the start of buf (through its empty
/// line), or null while it is incomplete. Bare LF counts as a line end, so
/// such a head is parsed, not left waiting. from lets a caller skip what it
/// already scanned.
pub fn headEnd(buf: []const u8, from: usize) ?usize {
    var i = from;
    while (std.mem.indexOfScalarPos(u8, buf, i, '\n')) |nl| {
        if (nl >= 1 and buf[nl - 1] == '\n') return nl + 1;
        if (nl >= 2 and buf[nl - 1] == '\r' and buf[nl - 2] == '\n') return nl + 1;
        i = nl + 1;
    }
    return null;
}

fn isTchar(c: u8) bool {
    return switch (c) {
        'a'...'z', 'A'...'Z', '0'...'9' => true,
        '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~' => true,
        else => false,
    };
}

fn isToken(s: []const u8) bool {
    if (s.len == 0) return false;
    for (s) |c| if (!isTchar(c)) return false;
    return true;
}

/// Field values may hold tabs, visible ASCII and obs-text, nothing else.
fn validValue(s: []const u8) bool {
    for (s) |c| {
        if (c == '\t') continue;
        if (c < 0x20 or c == 0x7f) return false;
    }
    return true;
}

pub fn trimOws(s: []const u8) []const u8 {
    return std.mem.trim(u8, s, " \t");
}

pub fn eqlLower(name: []const u8, comptime lower: []const u8) bool {
    return std.ascii.eqlIgnoreCase(name, lower);
}

/// Fields that describe one connection only and never travel further
/// (RFC 9110 7.6.1 plus the Proxy-* fields and Keep-Alive).
pub fn isHopByHop(name: []const u8) bool {
    return switch (name.len) {
        2 => eqlLower(name, "te"),
        7 => eqlLower(name, "trailer") or eqlLower(name, "upgrade"),
        10 => eqlLower(name, "connection") or eqlLower(name, "keep-alive"),
        16 => eqlLower(name, "proxy-connection"),
        17 => eqlLower(name, "transfer-encoding"),
        18 => eqlLower(name, "proxy-authenticate"),
        19 => eqlLower(name, "proxy-authorization"),
        else => false,
    };
}

/// Reports whether a Connection value lists name.
pub fn listsName(value: []const u8, name: []const u8) bool {
    var it = std.mem.splitScalar(u8, value, ',');
    while (it.next()) |tok| {
        if (std.ascii.eqlIgnoreCase(trimOws(tok), name)) return true;
    }
    return false;
}

/// Splits the head into lines, ending each at LF and dropping one CR before
/// it. A CR anywhere else is an error: two hops could disagree on where a
/// line ends.
const Lines = struct {
    rest: []const u8,

    fn next(self: *Lines) error{BareCr}!?[]const u8 {
        const nl = std.mem.indexOfScalar(u8, self.rest, '\n') orelse return null;
        var line = self.rest[0..nl];
        self.rest = self.rest[nl + 1 ..];
        if (line.len > 0 and line[line.len - 1] == '\r') line = line[0 .. line.len - 1];
        if (std.mem.indexOfScalar(u8, line, '\r') != null) return error.BareCr;
        return line;
    }
};

fn validHost(v: []const u8) bool {
    for (v) |c| switch (c) {
        'a'...'z', 'A'...'Z', '0'...'9' => {},
        '-', '.', '_', '~', '%', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '[', ']', '@' => {},
        else => return false,
    };
    return true;
}

/// Digits only, one value, no overflow.
pub fn parseLength(v: []const u8) ?u64 {
    if (v.len == 0 or v.len > 19) return null;
    var n: u64 = 0;
    for (v) |c| {
        if (c < '0' or c > '9') return null;
        n = n * 10 + (c - '0');
    }
    return n;
}

/// Parses a request head (as delimited by headEnd) into req, appending its
/// fields to fields. Slices point into head.
pub fn parseRequest(head: []const u8, gpa: std.mem.Allocator, fields: *FieldList) RequestError!Request {
    fields.clearRetainingCapacity();
    var lines = Lines{ .rest = head };
    const line = (lines.next() catch return error.BareCr) orelse return error.BadRequestLine;
    var req = try parseRequestLine(line);

    var hosts: usize = 0;
    var conn_close = false;
    var conn_keep = false;
    var names_fields = false;
    var saw_te = false;
    while (lines.next() catch return error.BareCr) |l| {
        if (l.len == 0) break;
        if (l[0] == ' ' or l[0] == '\t') return error.ObsFold;
        const colon = std.mem.indexOfScalar(u8, l, ':') orelse return error.BadField;
        const name = l[0..colon];
        if (!isToken(name)) return error.BadField;
        const value = trimOws(l[colon + 1 ..]);
        if (!validValue(value)) return error.BadField;
        var f = Field{ .name = name, .value = value };
        switch (name.len) {
            4 => if (eqlLower(name, "host")) {
                hosts += 1;
                req.host_index = fields.items.len;
                if (!validHost(value)) return error.BadHost;
            },
            6 => if (eqlLower(name, "expect") and eqlLower(value, "100-continue")) {
                req.expect_continue = true;
            },
            10 => if (eqlLower(name, "connection")) {
                var it = std.mem.splitScalar(u8, value, ',');
                while (it.next()) |raw| {
                    const tok = trimOws(raw);
                    if (tok.len == 0) continue;
                    if (eqlLower(tok, "close")) {
                        conn_close = true;
                    } else if (eqlLower(tok, "keep-alive")) {
                        conn_keep = true;
                    } else {
                        names_fields = true;
                    }
                }
            },
            14 => if (eqlLower(name, "content-length")) {
                // Even a repeat of the same value is refused: a proxy that
                // keeps one copy and one that keeps both frame alike only by
                // luck.
                if (req.content_length != null) return error.BadContentLength;
                req.content_length = parseLength(value) orelse return error.BadContentLength;
            },
            17 => if (eqlLower(name, "transfer-encoding")) {
                if (saw_te) return error.UnsupportedCoding;
                saw_te = true;
                if (!eqlLower(value, "chunked")) return error.UnsupportedCoding;
                req.chunked = true;
            },
            else => {},
        }
        if (isHopByHop(name)) f.drop = true;
        try fields.append(gpa, f);
    }
    if (req.content_length != null and req.chunked) return error.LengthAndCoding;
    if (req.chunked and !req.http11) return error.UnsupportedCoding;
    if (hosts > 1 or (req.http11 and hosts == 0)) return error.BadHost;
    req.has_host = hosts == 1;
    req.keep_alive = if (req.http11) !conn_close else conn_keep and !conn_close;
    const t = try parseTarget(req.method, req.target);
    req.upstream_target = t.path;
    req.slash_first = t.slash_first;
    req.authority = t.authority;

    if (names_fields) dropNamed(fields.items);
    for (fields.items, 0..) |f, i| {
        if (f.drop) continue;
        if (eqlLower(f.name, "x-forwarded-for")) req.last_xff = i;
        if (eqlLower(f.name, "via")) req.last_via = i;
    }
    return req;
}

pub const Target = struct {
    path: []const u8,
    slash_first: bool = false,
    authority: ?[]const u8 = null,
};

/// Sorts a request-target into its form (RFC 9112 3.2) and says what the
/// upstream gets instead. CONNECT is refused whatever its target; a
/// fragment, an authority-form target with another method, "*" with a
/// method other than OPTIONS and anything in no form are malformed.
pub fn parseTarget(method: []const u8, target: []const u8) error{ BadTarget, NotImplemented }!Target {
    if (std.mem.eql(u8, method, "CONNECT")) return error.NotImplemented;
    if (target.len == 0 or std.mem.indexOfScalar(u8, target, '#') != null) return error.BadTarget;
    if (target[0] == '/') return .{ .path = target };
    const options = std.mem.eql(u8, method, "OPTIONS");
    if (std.mem.eql(u8, target, "*")) return if (options) .{ .path = "*" } else error.BadTarget;
    const rest = stripScheme(target) orelse return error.BadTarget;
    const end = std.mem.indexOfAny(u8, rest, "/?") orelse rest.len;
    const authority = rest[0..end];
    if (!validAuthority(authority)) return error.BadTarget;
    const tail = rest[end..];
    if (tail.len == 0) return .{ .path = if (options) "*" else "/", .authority = authority };
    return .{ .path = tail, .slash_first = tail[0] == '?', .authority = authority };
}

/// The rest of an http or https URI after "scheme://", or null.
fn stripScheme(target: []const u8) ?[]const u8 {
    inline for (.{ "http://", "https://" }) |scheme| {
        if (std.ascii.startsWithIgnoreCase(target, scheme)) return target[scheme.len..];
    }
    return null;
}

fn isRegNameChar(c: u8) bool {
    return switch (c) {
        'a'...'z', 'A'...'Z', '0'...'9' => true,
        '-', '.', '_', '~', '%', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=' => true,
        else => false,
    };
}

/// host [":" port] with a non-empty host and no userinfo (RFC 3986 3.2).
pub fn validAuthority(a: []const u8) bool {
    var port: []const u8 = "";
    if (a.len > 0 and a[0] == '[') {
        const close = std.mem.indexOfScalar(u8, a, ']') orelse return false;
        if (close < 2) return false;
        for (a[1..close]) |c| if (!(std.ascii.isHex(c) or c == ':' or c == '.' or c == 'v' or c == 'V')) return false;
        const after = a[close + 1 ..];
        if (after.len > 0) {
            if (after[0] != ':') return false;
            port = after[1..];
        }
    } else {
        const colon = std.mem.indexOfScalar(u8, a, ':') orelse a.len;
        if (colon == 0) return false;
        for (a[0..colon]) |c| if (!isRegNameChar(c)) return false;
        if (colon < a.len) port = a[colon + 1 ..];
    }
    for (port) |c| if (!std.ascii.isDigit(c)) return false;
    return true;
}

/// Drops the fields a Connection field names. Host and the framing fields
/// are exempt: naming them can only try to change which request the next
/// hop sees.
fn dropNamed(fields: []Field) void {
    for (fields) |*f| {
        if (f.drop) continue;
        if (eqlLower(f.name, "host") or eqlLower(f.name, "content-length")) continue;
        for (fields) |c| {
            if (eqlLower(c.name, "connection") and listsName(c.value, f.name)) {
                f.drop = true;
                break;
            }
        }
    }
}

fn parseRequestLine(line: []const u8) RequestError!Request {
    const sp1 = std.mem.indexOfScalar(u8, line, ' ') orelse return error.BadRequestLine;
    const method = line[0..sp1];
    if (!isToken(method)) return error.BadRequestLine;
    const rest = line[sp1 + 1 ..];
    const sp2 = std.mem.indexOfScalar(u8, rest, ' ') orelse return error.BadRequestLine;
    const target = rest[0..sp2];
    if (target.len == 0) return error.BadRequestLine;
    for (target) |c| if (c <= 0x20 or c >= 0x7f) return error.BadRequestLine;
    const version = rest[sp2 + 1 ..];
    if (version.len != 8 or !std.mem.startsWith(u8, version, "HTTP/") or version[6] != '.' or
        !std.ascii.isDigit(version[5]) or !std.ascii.isDigit(version[7]))
        return error.BadRequestLine;
    if (version[5] != '1') return error.VersionNotSupported;
    return .{ .method = method, .target = target, .http11 = version[7] != '0' };
}

pub const ResponseError = error{ BadResponse, OutOfMemory };

/// Parses an upstream response head. Anything a careful origin would not
/// send is refused: the answer would be relayed on a guess.
pub fn parseResponse(head: []const u8, gpa: std.mem.Allocator, fields: *FieldList) ResponseError!Response {
    fields.clearRetainingCapacity();
    var lines = Lines{ .rest = head };
    const line = (lines.next() catch return error.BadResponse) orelse return error.BadResponse;
    if (line.len < 12 or !std.mem.startsWith(u8, line, "HTTP/1.") or !std.ascii.isDigit(line[7]) or line[8] != ' ')
        return error.BadResponse;
    for (line[9..12]) |c| if (!std.ascii.isDigit(c)) return error.BadResponse;
    var resp = Response{
        .status = std.fmt.parseInt(u16, line[9..12], 10) catch return error.BadResponse,
        .reason = "",
        .http11 = line[7] != '0',
    };
    if (resp.status < 100) return error.BadResponse;
    if (line.len > 12) {
        if (line[12] != ' ') return error.BadResponse;
        resp.reason = line[13..];
        if (!validValue(resp.reason)) return error.BadResponse;
    }
    var keep = false;
    var names_fields = false;
    while (lines.next() catch return error.BadResponse) |l| {
        if (l.len == 0) break;
        const colon = std.mem.indexOfScalar(u8, l, ':') orelse return error.BadResponse;
        const name = l[0..colon];
        if (!isToken(name)) return error.BadResponse;
        const value = trimOws(l[colon + 1 ..]);
        if (!validValue(value)) return error.BadResponse;
        var f = Field{ .name = name, .value = value };
        if (eqlLower(name, "content-length")) {
            const n = parseLength(value) orelse return error.BadResponse;
            if (resp.content_length) |old| if (old != n) return error.BadResponse;
            resp.content_length = n;
        } else if (eqlLower(name, "transfer-encoding")) {
            // Only chunked alone can be decoded here; stripping any other
            // coding would hand the client content it cannot read.
            if (resp.chunked or !eqlLower(value, "chunked")) return error.BadResponse;
            resp.chunked = true;
        } else if (eqlLower(name, "connection")) {
            var it = std.mem.splitScalar(u8, value, ',');
            while (it.next()) |raw| {
                const tok = trimOws(raw);
                if (tok.len == 0) continue;
                if (eqlLower(tok, "close")) {
                    resp.close = true;
                } else if (eqlLower(tok, "keep-alive")) {
                    keep = true;
                } else {
                    names_fields = true;
                }
            }
        }
        if (isHopByHop(name)) f.drop = true;
        try fields.append(gpa, f);
    }
    if (resp.chunked and resp.content_length != null) return error.BadResponse;
    if (!resp.http11 and !keep) resp.close = true;
    if (names_fields) {
        for (fields.items) |*f| {
            if (f.drop or eqlLower(f.name, "content-length")) continue;
            for (fields.items) |c| {
                if (eqlLower(c.name, "connection") and listsName(c.value, f.name)) {
                    f.drop = true;
                    break;
                }
            }
        }
    }
    for (fields.items, 0..) |f, i| {
        if (!f.drop and eqlLower(f.name, "via")) resp.last_via = i;
    }
    return resp;
}

pub const ChunkError = error{BadChunk};

/// Parses a chunk-size line (without its line end): hex digits, then
/// optionally whitespace and extensions, which are ignored.
pub fn parseChunkSize(line: []const u8) ChunkError!u64 {
    var i: usize = 0;
    var n: u64 = 0;
    while (i < line.len) : (i += 1) {
        const d: u64 = switch (line[i]) {
            '0'...'9' => line[i] - '0',
            'a'...'f' => line[i] - 'a' + 10,
            'A'...'F' => line[i] - 'A' + 10,
            else => break,
        };
        if (i >= 15) return error.BadChunk;
        n = n * 16 + d;
    }
    if (i == 0) return error.BadChunk;
    var rest = line[i..];
    while (rest.len > 0 and (rest[0] == ' ' or rest[0] == '\t')) rest = rest[1..];
    if (rest.len > 0 and rest[0] != ';') return error.BadChunk;
    if (!validValue(rest)) return error.BadChunk;
    return n;
}

/// A trailer field line (without its CRLF): a token, a colon and a value,
/// as in a head.
pub fn validFieldLine(line: []const u8) bool {
    const colon = std.mem.indexOfScalar(u8, line, ':') orelse return false;
    return isToken(line[0..colon]) and validValue(line[colon + 1 ..]);
}

/// The length of the chunk size at the start of a chunk-size line; what
/// follows it is the extension.
pub fn chunkSizeDigits(line: []const u8) usize {
    var i: usize = 0;
    while (i < line.len and std.ascii.isHex(line[i])) i += 1;
    return i;
}

const testing = std.testing;

fn parseOk(raw: []const u8) !Request {
    var fields: FieldList = .empty;
    defer fields.deinit(testing.allocator);
    return parseRequest(raw, testing.allocator, &fields);
}

fn parseErr(raw: []const u8) RequestError {
    var fields: FieldList = .empty;
    defer fields.deinit(testing.allocator);
    if (parseRequest(raw, testing.allocator, &fields)) |_| {
        return error.OutOfMemory; // reported as a mismatch by the caller
    } else |e| return e;
}

test "head end with CRLF and bare LF" {
    try testing.expectEqual(@as(?usize, 22), headEnd("GET / HTTP/1.1\r\nA:\r\n\r\nrest", 0));
    try testing.expectEqual(@as(?usize, 19), headEnd("GET / HTTP/1.1\nA:\n\nrest", 0));
    try testing.expectEqual(@as(?usize, null), headEnd("GET / HTTP/1.1\r\nA: b\r\n", 0));
}

test "request line" {
    const r = try parseOk("GET /a?b=%2F HTTP/1.1\r\nHost: x\r\n\r\n");
    try testing.expectEqualStrings("GET", r.method);
    try testing.expectEqualStrings("/a?b=%2F", r.target);
    try testing.expect(r.http11 and r.keep_alive);
    try testing.expect(!(try parseOk("GET / HTTP/1.0\r\n\r\n")).keep_alive);
    try testing.expect((try parseOk("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).keep_alive);
    try testing.expect((try parseOk("GET / HTTP/1.2\r\nHost: x\r\n\r\n")).http11);
    try testing.expectEqual(error.BadRequestLine, parseErr("HELLO\r\n\r\n"));
    try testing.expectEqual(error.BadRequestLine, parseErr("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"));
    try testing.expectEqual(error.BadRequestLine, parseErr("GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n"));
    try testing.expectEqual(error.BadRequestLine, parseErr("GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"));
    try testing.expectEqual(error.VersionNotSupported, parseErr("GET / HTTP/2.0\r\nHost: x\r\n\r\n"));
    try testing.expectEqual(error.BareCr, parseErr("GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n"));
}

test "fields" {
    try testing.expectEqual(error.BadField, parseErr("GET / HTTP/1.1\r\nHost: x\r\nX-Bad : 1\r\n\r\n"));
    try testing.expectEqual(error.BadField, parseErr("GET / HTTP/1.1\r\nHost: x\r\nX-Bad\r\n\r\n"));
    try testing.expectEqual(error.BadField, parseErr("GET / HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n"));
    try testing.expectEqual(error.BadField, parseErr("GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n"));
    try testing.expectEqual(error.ObsFold, parseErr("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"));
    try testing.expectEqual(error.BadHost, parseErr("GET / HTTP/1.1\r\nX: 1\r\n\r\n"));
    try testing.expectEqual(error.BadHost, parseErr("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"));
    try testing.expectEqual(error.BadHost, parseErr("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"));
}

test "framing" {
    try testing.expectEqual(@as(?u64, 11), (try parseOk("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")).content_length);
    try testing.expectEqual(error.BadContentLength, parseErr("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"));
    try testing.expectEqual(error.BadContentLength, parseErr("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"));
    try testing.expectEqual(error.BadContentLength, parseErr("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"));
    try testing.expectEqual(error.LengthAndCoding, parseErr("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"));
    try testing.expectEqual(error.UnsupportedCoding, parseErr("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
    try testing.expectEqual(error.UnsupportedCoding, parseErr("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
    try testing.expect((try parseOk("POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n")).chunked);
}

test "expect 100-continue" {
    try testing.expect((try parseOk("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")).expect_continue);
    try testing.expect(!(try parseOk("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continuex\r\n\r\n")).expect_continue);
    try testing.expect(!(try parseOk("POST / HTTP/1.1\r\nHost: x\r\nX-Expect: 100-continue\r\n\r\n")).expect_continue);
}

test "hop-by-hop and named fields" {
    var fields: FieldList = .empty;
    defer fields.deinit(testing.allocator);
    const r = try parseRequest("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: close, x-a\r\nVia: 1.0 a\r\nTE: trailers\r\n\r\n", testing.allocator, &fields);
    try testing.expect(!r.keep_alive);
    try testing.expect(!fields.items[0].drop);
    try testing.expect(fields.items[1].drop);
    try testing.expect(fields.items[2].drop);
    try testing.expectEqual(@as(?usize, 3), r.last_via);
    try testing.expect(fields.items[4].drop);
}

test "chunk sizes" {
    try testing.expectEqual(@as(u64, 0x1A), try parseChunkSize("1A;name=\"v\""));
    try testing.expectEqual(@as(u64, 5), try parseChunkSize("5"));
    try testing.expectError(error.BadChunk, parseChunkSize("zz"));
    try testing.expectError(error.BadChunk, parseChunkSize(""));
    try testing.expectError(error.BadChunk, parseChunkSize("fffffffffffffffffffff"));
    try testing.expectError(error.BadChunk, parseChunkSize("5\x00"));
}

test "response" {
    var fields: FieldList = .empty;
    defer fields.deinit(testing.allocator);
    const r = try parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", testing.allocator, &fields);
    try testing.expect(r.chunked and r.close);
    try testing.expectError(error.BadResponse, parseResponse("SSH-2.0-OpenSSH\r\n\r\n", testing.allocator, &fields));
    const n = try parseResponse("HTTP/1.1 204\r\n\r\n", testing.allocator, &fields);
    try testing.expectEqual(@as(u16, 204), n.status);
}

test "request targets" {
    const Want = struct { method: []const u8, target: []const u8, path: []const u8, slash: bool = false, authority: ?[]const u8 = null };
    const accepted = [_]Want{
        .{ .method = "GET", .target = "/p?q=%2F", .path = "/p?q=%2F" },
        .{ .method = "GET", .target = "http://a.test:8080/p?q", .path = "/p?q", .authority = "a.test:8080" },
        .{ .method = "GET", .target = "HTTPS://A.test", .path = "/", .authority = "A.test" },
        .{ .method = "GET", .target = "http://a.test?q=1", .path = "?q=1", .slash = true, .authority = "a.test" },
        .{ .method = "GET", .target = "http://[::1]:80/v6", .path = "/v6", .authority = "[::1]:80" },
        .{ .method = "OPTIONS", .target = "*", .path = "*" },
        .{ .method = "OPTIONS", .target = "http://a.test:9", .path = "*", .authority = "a.test:9" },
        .{ .method = "OPTIONS", .target = "http://a.test:9/", .path = "/", .authority = "a.test:9" },
        .{ .method = "OPTIONS", .target = "http://a.test?x", .path = "?x", .slash = true, .authority = "a.test" },
    };
    for (accepted) |w| {
        const t = try parseTarget(w.method, w.target);
        try testing.expectEqualStrings(w.path, t.path);
        try testing.expectEqual(w.slash, t.slash_first);
        if (w.authority) |a| try testing.expectEqualStrings(a, t.authority.?) else try testing.expect(t.authority == null);
    }
    const refused = [_][2][]const u8{
        .{ "GET", "*" },                .{ "POST", "*" },                .{ "GET", "a.test:443" },
        .{ "GET", "/p#f" },             .{ "GET", "/p?q#" },             .{ "GET", "http://a.test/#f" },
        .{ "GET", "http://u@a.test/" }, .{ "GET", "http://u:p@a:1/" },   .{ "GET", "ftp://a.test/" },
        .{ "GET", "ws://a.test/" },     .{ "GET", "a.test/p" },          .{ "GET", "http:/a.test/" },
        .{ "GET", "http:a.test/" },     .{ "GET", "http:///p" },         .{ "GET", "http://:80/p" },
        .{ "GET", "?q=1" },             .{ "GET", "http://a.test:8x/" }, .{ "GET", "http://[::1/" },
        .{ "OPTIONS", "a.test:443" },   .{ "GET", "" },
    };
    for (refused) |r| try testing.expectError(error.BadTarget, parseTarget(r[0], r[1]));
    for ([_][]const u8{ "a.test:443", "/p", "http://a.test/", "*", "#" }) |t|
        try testing.expectError(error.NotImplemented, parseTarget("CONNECT", t));
}

test "absolute-form request: Host comes from the target" {
    var fields: FieldList = .empty;
    defer fields.deinit(testing.allocator);
    const r = try parseRequest("GET http://a.test:1/p HTTP/1.1\r\nX: 1\r\nHost: other\r\n\r\n", testing.allocator, &fields);
    try testing.expectEqualStrings("a.test:1", r.authority.?);
    try testing.expectEqual(@as(?usize, 1), r.host_index);
    try testing.expectEqual(error.BadHost, parseErr("GET http://a.test/p HTTP/1.1\r\n\r\n"));
    try testing.expect((try parseOk("GET http://a.test/p HTTP/1.0\r\n\r\n")).authority != null);
    try testing.expectEqual(error.NotImplemented, parseErr("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"));
}

test "response framing: chunked alone, never with Content-Length" {
    var fields: FieldList = .empty;
    defer fields.deinit(testing.allocator);
    const refused = [_][]const u8{
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: deflate\r\n",
        "Transfer-Encoding: \r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: -1\r\n",
    };
    var buf: [256]u8 = undefined;
    for (refused) |f| {
        const head = try std.fmt.bufPrint(&buf, "HTTP/1.1 200 OK\r\n{s}\r\n", .{f});
        try testing.expectError(error.BadResponse, parseResponse(head, testing.allocator, &fields));
    }
    const r = try parseResponse("HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked \r\n\r\n", testing.allocator, &fields);
    try testing.expect(r.chunked);
    const same = try parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", testing.allocator, &fields);
    try testing.expectEqual(@as(?u64, 5), same.content_length);
}

test "trailer field lines" {
    try testing.expect(validFieldLine("X-T: 1"));
    try testing.expect(validFieldLine("X-T:"));
    try testing.expect(!validFieldLine("no colon"));
    try testing.expect(!validFieldLine("X T: 1"));
    try testing.expect(!validFieldLine("X: a\x00"));
}
