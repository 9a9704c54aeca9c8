//! Random-input test for the parsers in http.zig. The build runs it in Debug
//! so that any slice past the input panics instead of reading stray memory:
//! getting through every case shows each input got a result or an error. The
//! checks on accepted input are the properties forwarding relies on.
const std = @import("std");
const http = @import("http.zig");
const testing = std.testing;

/// A panic prints only the test's name, so the seed is repeated there; a
/// failed check prints it with the case number and the input. The run is
/// deterministic, so the same seed meets the same case again.
const seed: u64 = 0x5eed_4854_5450_3131;
const cases = 200_000;
const max_input = 2048;

const request_seeds = [_][]const u8{
    "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "POST /upload?x=1 HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
    "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 10.0.0.1\r\nVia: 1.1 a\r\n\r\n",
    "GET /a HTTP/1.0\nConnection: keep-alive, x-drop\nX-Drop: 1\n\n",
    "OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nTE: trailers\r\nUpgrade: h2c\r\nConnection: upgrade, te\r\n\r\n",
    "DELETE /r HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\nAccept: */*\r\nUser-Agent: t/1\r\n\r\n",
    "PUT /p HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: close, x-forwarded-for\r\n\r\n",
    "GET http://a.test:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
    "OPTIONS HTTPS://[::1]:443 HTTP/1.1\r\nHost: h\r\n\r\n",
};

const response_seeds = [_][]const u8{
    "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nVia: 1.1 up\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    "HTTP/1.0 404 Not Found\nContent-Type: text/plain\n\n",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 204\r\nConnection: x-a\r\nX-A: 1\r\n\r\n",
    "HTTP/1.1 301 Moved Permanently\r\nLocation: /b\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding:  CHUNKED \r\n\r\n",
    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
};

const chunk_seeds = [_][]const u8{
    "0\r\n\r\n",
    "1a;name=\"v\"\r\n",
    "FFFF\r\n",
    "10 ; a=b;c\r\n",
    "fffffffffffffff\r\n",
    "7\t;x\n",
};

/// Values picked to sit on the edges of the length and chunk-size limits,
/// or to look numeric to a lenient parser.
const odd_numbers = [_][]const u8{
    "18446744073709551615",
    "18446744073709551616",
    "9999999999999999999",
    "10000000000000000000",
    "0000000000000000000001",
    "ffffffffffffffff",
    "fffffffffffffff",
    "1000000000000000",
    "0fffffffffffffff",
    "00000000000000000000000000000001",
    "-1",
    "+5",
    "0x10",
    "1e9",
    "5 5",
    "5,5",
    "1_0",
    "",
    " ",
};

/// Field lines that change framing or what gets dropped, spliced into heads
/// so the combinations the parser must refuse come up often.
const framing_lines = [_][]const u8{
    "Content-Length: 0",
    "Content-Length: 18446744073709551616",
    "content-length:7",
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: gzip, chunked",
    "transfer-encoding: identity",
    "Connection: close, content-length, host, transfer-encoding",
    "Connection: keep-alive",
    "Host: y",
    "Via: 1.0 z",
    "X-Forwarded-For: 5.6.7.8",
    "Keep-Alive: 5",
};

const http_alphabet = "GETPOSHTP/1.0 \r\n\r\n:;,\t-abcxyzHostContent-LengthTransfer-EncodingchunkedConnection0123456789\x00";

const Input = struct {
    buf: [max_input]u8 = undefined,
    len: usize = 0,

    fn slice(self: *const Input) []const u8 {
        return self.buf[0..self.len];
    }

    fn set(self: *Input, s: []const u8) void {
        self.len = 0;
        self.insert(0, s);
    }

    /// Growth past the buffer is skipped rather than clipped, so every
    /// input is some sequence of whole mutations.
    fn insert(self: *Input, at: usize, s: []const u8) void {
        if (self.len + s.len > max_input) return;
        std.mem.copyBackwards(u8, self.buf[at + s.len .. self.len + s.len], self.buf[at..self.len]);
        @memcpy(self.buf[at..][0..s.len], s);
        self.len += s.len;
    }

    fn remove(self: *Input, at: usize, n: usize) void {
        std.mem.copyForwards(u8, self.buf[at .. self.len - n], self.buf[at + n .. self.len]);
        self.len -= n;
    }

    fn replace(self: *Input, at: usize, n: usize, s: []const u8) void {
        self.remove(at, n);
        self.insert(at, s);
    }
};

fn pick(r: std.Random, comptime T: type, items: []const T) T {
    return items[r.uintLessThan(usize, items.len)];
}

fn numberText(r: std.Random, buf: *[64]u8) []const u8 {
    if (r.boolean()) return pick(r, []const u8, &odd_numbers);
    const digits: []const u8 = if (r.boolean()) "0123456789" else "0123456789abcdefABCDEF";
    const n = 1 + r.uintLessThan(usize, 40);
    for (buf[0..n]) |*b| b.* = pick(r, u8, digits);
    return buf[0..n];
}

fn replaceNumber(r: std.Random, in: *Input) void {
    var buf: [64]u8 = undefined;
    const text = numberText(r, &buf);
    const s = in.slice();
    if (r.boolean()) {
        if (std.ascii.indexOfIgnoreCase(s, "content-length:")) |p| {
            const from = p + "content-length:".len;
            var to = std.mem.indexOfScalarPos(u8, s, from, '\n') orelse s.len;
            if (to > from and s[to - 1] == '\r') to -= 1;
            in.replace(from, to - from, text);
            return;
        }
    }
    // Starting at 0 hits the size of a chunk line.
    const start = if (r.boolean()) 0 else r.uintAtMost(usize, s.len);
    var a = start;
    while (a < s.len and !std.ascii.isHex(s[a])) a += 1;
    var b = a;
    while (b < s.len and std.ascii.isHex(s[b])) b += 1;
    in.replace(a, b - a, text);
}

fn mutate(r: std.Random, in: *Input) void {
    const len = in.len;
    switch (r.uintLessThan(u8, 10)) {
        0 => if (len > 0) {
            in.buf[r.uintLessThan(usize, len)] ^= @as(u8, 1) << r.int(u3);
        },
        1 => if (len > 0) {
            in.buf[r.uintLessThan(usize, len)] = r.int(u8);
        },
        2 => {
            const c = pick(r, u8, "\r\n\x00 :\t,;");
            const times = 1 + r.uintLessThan(usize, 3);
            const at = r.uintAtMost(usize, len);
            for (0..times) |_| in.insert(at, &.{c});
        },
        3 => if (len > 0) {
            const at = r.uintLessThan(usize, len);
            in.remove(at, 1 + r.uintLessThan(usize, @min(8, len - at)));
        },
        4 => in.len = r.uintAtMost(usize, len),
        5 => if (len > 0) {
            var tmp: [32]u8 = undefined;
            const from = r.uintLessThan(usize, len);
            const n = 1 + r.uintLessThan(usize, @min(tmp.len, len - from));
            @memcpy(tmp[0..n], in.buf[from..][0..n]);
            in.insert(r.uintAtMost(usize, len), tmp[0..n]);
        },
        6 => replaceNumber(r, in),
        7 => {
            const from = r.uintAtMost(usize, len);
            const at = if (std.mem.indexOfScalarPos(u8, in.slice(), from, '\n')) |nl| nl + 1 else len;
            const eol: []const u8 = if (r.boolean()) "\r\n" else "\n";
            in.insert(at, eol);
            in.insert(at, pick(r, []const u8, &framing_lines));
        },
        8 => {
            const from = r.uintAtMost(usize, len);
            const nl = std.mem.indexOfScalarPos(u8, in.slice(), from, '\n') orelse return;
            switch (r.uintLessThan(u8, 3)) {
                0 => if (nl > 0 and in.buf[nl - 1] == '\r') in.remove(nl - 1, 1),
                1 => in.insert(nl, "\r"),
                else => in.buf[nl] = '\r',
            }
        },
        else => {
            var tail: [64]u8 = undefined;
            const n = r.uintAtMost(usize, tail.len);
            r.bytes(tail[0..n]);
            in.insert(len, tail[0..n]);
        },
    }
}

fn generate(r: std.Random, in: *Input) []const u8 {
    switch (r.uintLessThan(u8, 10)) {
        0, 1 => {
            in.len = r.uintAtMost(usize, 512);
            r.bytes(in.buf[0..in.len]);
            return "random bytes";
        },
        2 => {
            in.len = r.uintAtMost(usize, 512);
            for (in.buf[0..in.len]) |*b| b.* = pick(r, u8, http_alphabet);
            return "random HTTP-ish bytes";
        },
        else => |k| {
            const kind: []const u8 = switch (k) {
                3, 4, 5 => blk: {
                    in.set(pick(r, []const u8, &request_seeds));
                    break :blk "mutated request head";
                },
                6, 7 => blk: {
                    in.set(pick(r, []const u8, &response_seeds));
                    break :blk "mutated response head";
                },
                else => blk: {
                    in.set(pick(r, []const u8, &chunk_seeds));
                    break :blk "mutated chunk line";
                },
            };
            for (0..r.uintLessThan(u8, 6)) |_| mutate(r, in);
            return kind;
        },
    }
}

const Case = struct {
    index: usize,
    kind: []const u8,
    input: []const u8,

    fn expect(c: Case, ok: bool, comptime what: []const u8) !void {
        if (ok) return;
        std.debug.print("http fuzz: seed 0x{x}, case {d} ({s}): " ++ what ++ "\ninput: \"{f}\"\n", .{
            seed, c.index, c.kind, std.zig.fmtString(c.input),
        });
        return error.FuzzCheckFailed;
    }
};

fn within(inner: []const u8, outer: []const u8) bool {
    const lo = @intFromPtr(outer.ptr);
    const p = @intFromPtr(inner.ptr);
    return p >= lo and p + inner.len <= lo + outer.len;
}

fn sameEnd(a: ?usize, b: ?usize) bool {
    if (a == null or b == null) return a == null and b == null;
    return a.? == b.?;
}

/// The head end found a second way, by searching for the two spellings of
/// the empty line.
fn plainHeadEnd(in: []const u8) ?usize {
    const lf: ?usize = if (std.mem.indexOf(u8, in, "\n\n")) |i| i + 2 else null;
    const crlf: ?usize = if (std.mem.indexOf(u8, in, "\n\r\n")) |i| i + 3 else null;
    if (lf == null) return crlf;
    if (crlf == null) return lf;
    return @min(lf.?, crlf.?);
}

fn checkHeadEnd(c: Case, r: std.Random) !?usize {
    const in = c.input;
    const end = http.headEnd(in, 0);
    try c.expect(sameEnd(end, plainHeadEnd(in)), "headEnd disagrees with a plain search for the empty line");
    // The readers resume two bytes before what they already scanned, as
    // the empty line may straddle two reads.
    const k = r.uintAtMost(usize, in.len);
    if (http.headEnd(in[0..k], 0)) |early| {
        try c.expect(sameEnd(end, early), "more input moved an end already found");
    } else {
        try c.expect(sameEnd(end, http.headEnd(in, k -| 2)), "resuming the scan lost or moved the end");
    }
    try c.expect(http.headEnd(in, in.len + r.uintAtMost(usize, 3)) == null, "a scan from past the input found an end");
    return end;
}

fn isDigits(s: []const u8) bool {
    if (s.len == 0) return false;
    for (s) |b| if (!std.ascii.isDigit(b)) return false;
    return true;
}

fn lengthMatches(value: []const u8, n: u64) bool {
    if (!isDigits(value)) return false;
    const v = std.fmt.parseInt(u64, value, 10) catch return false;
    return v == n;
}

fn validIndex(fields: []const http.Field, index: ?usize, comptime name: []const u8) bool {
    const i = index orelse return true;
    return i < fields.len and !fields[i].drop and http.eqlLower(fields[i].name, name);
}

/// For a head ending at its empty line: every line became a field, so none
/// was skipped, and no byte that could end a line differently on another
/// hop got through.
fn checkWholeHead(c: Case, head: []const u8, field_count: usize) !void {
    try c.expect(std.mem.count(u8, head, "\n") == field_count + 2, "a line of the head became no field");
    for (head, 0..) |b, i| {
        if (b == '\r') try c.expect(i + 1 < head.len and head[i + 1] == '\n', "bare CR accepted");
        if (b == '\t' or b == '\r' or b == '\n') continue;
        try c.expect(b >= 0x20 and b != 0x7f, "control byte accepted");
    }
}

fn checkFieldSlices(c: Case, head: []const u8, fields: []const http.Field) !void {
    for (fields) |f| {
        try c.expect(f.name.len > 0 and within(f.name, head), "field name outside the input");
        try c.expect(within(f.value, head), "field value outside the input");
        try c.expect(std.mem.indexOfAny(u8, f.name, ": \t\r\n") == null, "field name holds a delimiter");
        if (http.isHopByHop(f.name)) try c.expect(f.drop, "hop-by-hop field kept");
    }
}

/// What goes upstream is in origin-form or "*", never carries a
/// fragment, and comes from the client's target.
fn checkUpstreamTarget(c: Case, req: http.Request) !void {
    const t = req.upstream_target;
    try c.expect(t.len > 0, "empty upstream target");
    try c.expect(std.mem.indexOfScalar(u8, t, '#') == null, "fragment forwarded");
    try c.expect(!std.mem.eql(u8, req.method, "CONNECT"), "CONNECT accepted");
    if (std.mem.eql(u8, t, "*")) {
        try c.expect(std.mem.eql(u8, req.method, "OPTIONS"), "asterisk-form with a method other than OPTIONS");
    } else if (req.slash_first) {
        try c.expect(t[0] == '?' and req.authority != null, "slash put before something not a query");
    } else {
        try c.expect(t[0] == '/', "upstream target not in origin-form");
    }
    if (req.authority) |a| {
        try c.expect(a.len > 0 and std.mem.indexOfScalar(u8, a, '@') == null, "authority empty or with userinfo");
        try c.expect(within(a, req.target), "authority outside the target");
    } else {
        try c.expect(std.mem.eql(u8, t, req.target), "origin-form target changed");
    }
}

fn checkRequest(c: Case, head: []const u8, whole_head: bool, fields: *http.FieldList) !bool {
    const req = http.parseRequest(head, testing.allocator, fields) catch return false;
    const items = fields.items;
    try c.expect(req.method.len > 0 and within(req.method, head), "method outside the input");
    try c.expect(req.target.len > 0 and within(req.target, head), "target outside the input");
    for (req.target) |b| try c.expect(b > 0x20 and b < 0x7f, "target holds a space or control byte");
    try checkUpstreamTarget(c, req);
    try c.expect(req.content_length == null or !req.chunked, "both Content-Length and chunked");
    try c.expect(!req.chunked or req.http11, "chunked in HTTP/1.0");
    try c.expect(!req.http11 or req.has_host, "HTTP/1.1 without Host");
    try checkFieldSlices(c, head, items);

    var lengths: usize = 0;
    var hosts: usize = 0;
    for (items) |f| {
        if (http.eqlLower(f.name, "content-length")) {
            lengths += 1;
            try c.expect(!f.drop, "Content-Length dropped");
            try c.expect(req.content_length != null and lengthMatches(f.value, req.content_length.?), "Content-Length differs from its field");
        } else if (http.eqlLower(f.name, "host")) {
            hosts += 1;
            try c.expect(!f.drop, "Host dropped");
        }
    }
    try c.expect(lengths == @intFromBool(req.content_length != null), "Content-Length set without exactly one field");
    try c.expect(hosts == @intFromBool(req.has_host), "has_host without exactly one Host");
    try c.expect(validIndex(items, req.last_xff, "x-forwarded-for"), "last_xff names no kept X-Forwarded-For");
    try c.expect(validIndex(items, req.last_via, "via"), "last_via names no kept Via");
    if (whole_head) try checkWholeHead(c, head, items.len);
    return true;
}

fn checkResponse(c: Case, head: []const u8, whole_head: bool, fields: *http.FieldList) !bool {
    const resp = http.parseResponse(head, testing.allocator, fields) catch return false;
    const items = fields.items;
    try c.expect(resp.status >= 100 and resp.status <= 999, "status outside 100-999");
    try c.expect(resp.reason.len == 0 or within(resp.reason, head), "reason outside the input");
    try c.expect(!(resp.chunked and resp.content_length != null), "both chunked and Content-Length");
    try checkFieldSlices(c, head, items);

    var lengths: usize = 0;
    var keep_alive = false;
    for (items) |f| {
        if (http.eqlLower(f.name, "content-length")) {
            lengths += 1;
            try c.expect(!f.drop, "Content-Length dropped");
            try c.expect(resp.content_length != null and lengthMatches(f.value, resp.content_length.?), "Content-Length differs from its field");
        } else if (http.eqlLower(f.name, "connection")) {
            if (http.listsName(f.value, "keep-alive")) keep_alive = true;
        }
    }
    try c.expect(resp.content_length == null or lengths > 0, "Content-Length set without a field");
    try c.expect(resp.http11 or resp.close or keep_alive, "HTTP/1.0 answer kept open unasked");
    try c.expect(validIndex(items, resp.last_via, "via"), "last_via names no kept Via");
    if (whole_head) try checkWholeHead(c, head, items.len);
    return true;
}

fn checkChunkSize(c: Case, line: []const u8) !bool {
    const n = http.parseChunkSize(line) catch return false;
    var digits: usize = 0;
    while (digits < line.len and std.ascii.isHex(line[digits])) digits += 1;
    try c.expect(digits >= 1 and digits <= 15, "chunk size of more than 15 hex digits");
    const v = std.fmt.parseInt(u64, line[0..digits], 16) catch 0;
    try c.expect(v == n, "chunk size differs from its digits");
    const rest = std.mem.trimStart(u8, line[digits..], " \t");
    try c.expect(rest.len == 0 or rest[0] == ';', "chunk size followed by something not an extension");
    for (rest) |b| try c.expect(b == '\t' or (b >= 0x20 and b != 0x7f), "control byte in a chunk extension");
    return true;
}

/// A failed allocation must come back as OutOfMemory and leave nothing
/// behind; testing.allocator reports leaks when the test ends.
fn checkOutOfMemory(c: Case, head: []const u8, fail_index: usize, comptime parse: anytype) !void {
    var failing = std.testing.FailingAllocator.init(testing.allocator, .{ .fail_index = fail_index });
    const gpa = failing.allocator();
    var fields: http.FieldList = .empty;
    defer fields.deinit(gpa);
    if (parse(head, gpa, &fields)) |_| {
        try c.expect(failing.has_induced_failure == false, "parse succeeded past a failed allocation");
    } else |e| {
        try c.expect(e == error.OutOfMemory, "failed allocation turned into another error");
    }
}

const Tally = struct {
    requests: usize = 0,
    responses: usize = 0,
    chunk_sizes: usize = 0,
};

fn checkCase(c: Case, r: std.Random, fields: *http.FieldList, tally: *Tally) !void {
    const in = c.input;
    const end = try checkHeadEnd(c, r);
    // Callers only pass delimited heads, but the parsers must stay in
    // bounds on any slice.
    _ = try checkRequest(c, in, false, fields);
    _ = try checkResponse(c, in, false, fields);
    if (end) |n| {
        const head = in[0..n];
        // The failure path is short and the debug allocator slow, so a
        // sample of the accepted heads is enough for it.
        if (try checkRequest(c, head, true, fields)) {
            tally.requests += 1;
            if (tally.requests % 8 == 0) try checkOutOfMemory(c, head, r.uintAtMost(usize, 4), http.parseRequest);
        }
        if (try checkResponse(c, head, true, fields)) {
            tally.responses += 1;
            if (tally.responses % 8 == 0) try checkOutOfMemory(c, head, r.uintAtMost(usize, 4), http.parseResponse);
        }
    }
    var lines = std.mem.splitScalar(u8, in, '\n');
    while (lines.next()) |raw| {
        const line = if (raw.len > 0 and raw[raw.len - 1] == '\r') raw[0 .. raw.len - 1] else raw;
        if (try checkChunkSize(c, line)) tally.chunk_sizes += 1;
    }
    _ = try checkChunkSize(c, in);
}

test "http parsers on seeded random input (seed 0x5eed485454503131)" {
    var fields: http.FieldList = .empty;
    defer fields.deinit(testing.allocator);

    // Mutations start from accepted input, so the seeds must stay valid.
    for (request_seeds) |s| _ = try http.parseRequest(s, testing.allocator, &fields);
    for (response_seeds) |s| _ = try http.parseResponse(s, testing.allocator, &fields);
    for (chunk_seeds) |s| _ = try http.parseChunkSize(s[0..std.mem.indexOfAny(u8, s, "\r\n").?]);

    var prng = std.Random.DefaultPrng.init(seed);
    const r = prng.random();
    var in: Input = .{};
    var tally: Tally = .{};
    for (0..cases) |i| {
        const kind = generate(r, &in);
        try checkCase(.{ .index = i, .kind = kind, .input = in.slice() }, r, &fields, &tally);
    }
    // A generator that stopped reaching accepted input would leave the
    // checks above with nothing to check.
    try testing.expect(tally.requests > cases / 100);
    try testing.expect(tally.responses > cases / 100);
    try testing.expect(tally.chunk_sizes > cases / 100);
}
