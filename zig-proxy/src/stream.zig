//! A buffered socket reader and the body relays built on it. Bodies pass
//! through the reader's fixed buffer a piece at a time; none is held whole.
const std = @import("std");
const sys = @import("sys.zig");
const http = @import("http.zig");

pub const Reader = struct {
    fd: i32,
    buf: []u8,
    start: usize = 0,
    end: usize = 0,
    /// Reads fail past this instant...
    deadline: i64 = sys.no_deadline,
    /// ...and, when above 0, after waiting this long for bytes that do
    /// not come (a stall, however long the whole transfer takes).
    idle_ms: i64 = 0,

    pub fn buffered(self: *const Reader) []u8 {
        return self.buf[self.start..self.end];
    }

    pub fn consume(self: *Reader, n: usize) void {
        self.start += n;
        if (self.start == self.end) {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Moves the buffered bytes to the front, making room behind them.
    pub fn compact(self: *Reader) void {
        if (self.start == 0) return;
        const n = self.end - self.start;
        std.mem.copyForwards(u8, self.buf[0..n], self.buf[self.start..self.end]);
        self.start = 0;
        self.end = n;
    }

    /// Reads more bytes; the buffer must have room (compacting if needed).
    pub fn fill(self: *Reader) sys.Error!void {
        if (self.end == self.buf.len) self.compact();
        if (self.end == self.buf.len) return error.Closed;
        self.end += try sys.recvLimit(self.fd, self.buf[self.end..], .{ .at = self.deadline, .idle_ms = self.idle_ms });
    }
};

pub const RelayError = error{
    SourceTimeout,
    SourceClosed,
    SinkTimeout,
    SinkClosed,
    BadFraming,
    TooLarge,
    /// Chunk extensions and trailers went past what is left of the head's
    /// byte limit.
    HeadTooLarge,
};

fn sourceError(e: sys.Error) RelayError {
    return switch (e) {
        error.Timeout => error.SourceTimeout,
        error.Closed => error.SourceClosed,
    };
}

/// Where a body goes, framed with chunks or written as it is.
pub const Writer = struct {
    fd: i32,
    chunked: bool,
    /// Writes fail past this instant, and after waiting idle_ms for the
    /// peer to take more bytes: a slow reader that keeps reading is never
    /// cut, one that stops is.
    deadline: i64 = sys.no_deadline,
    idle_ms: i64 = 30_000,

    pub fn write(self: *const Writer, data: []const u8) RelayError!void {
        sys.sendAllLimit(self.fd, data, .{ .at = self.deadline, .idle_ms = self.idle_ms }) catch |e| return switch (e) {
            error.Timeout => error.SinkTimeout,
            error.Closed => error.SinkClosed,
        };
    }

    fn chunkBegin(self: *const Writer, size: u64) RelayError!void {
        if (!self.chunked or size == 0) return;
        var b: [24]u8 = undefined;
        const s = std.fmt.bufPrint(&b, "{x}\r\n", .{size}) catch unreachable;
        try self.write(s);
    }

    fn chunkEnd(self: *const Writer, size: u64) RelayError!void {
        if (self.chunked and size > 0) try self.write("\r\n");
    }

    pub fn finish(self: *const Writer) RelayError!void {
        if (self.chunked) try self.write("0\r\n\r\n");
    }

    /// Writes one body piece; chunked, it becomes a chunk of its own.
    pub fn piece(self: *const Writer, data: []const u8) RelayError!void {
        try self.chunkBegin(data.len);
        try self.write(data);
        try self.chunkEnd(data.len);
    }
};

/// Copies exactly n raw bytes from src to w, unframed.
fn copyRaw(src: *Reader, w: *const Writer, n: u64) RelayError!void {
    var left = n;
    while (left > 0) {
        if (src.buffered().len == 0) src.fill() catch |e| return sourceError(e);
        const avail = src.buffered();
        const k: usize = @intCast(@min(left, avail.len));
        try w.write(avail[0..k]);
        src.consume(k);
        left -= k;
    }
}

/// Relays a body of n bytes.
pub fn relayLength(src: *Reader, w: *const Writer, n: u64) RelayError!void {
    if (!w.chunked) return copyRaw(src, w, n);
    var left = n;
    while (left > 0) {
        if (src.buffered().len == 0) src.fill() catch |e| return sourceError(e);
        const avail = src.buffered();
        const k: usize = @intCast(@min(left, avail.len));
        try w.piece(avail[0..k]);
        src.consume(k);
        left -= k;
    }
    try w.finish();
}

/// Relays a body that ends when the source closes.
pub fn relayUntilClose(src: *Reader, w: *const Writer) RelayError!void {
    while (true) {
        if (src.buffered().len == 0) src.fill() catch |e| switch (e) {
            error.Closed => return w.finish(),
            error.Timeout => return error.SourceTimeout,
        };
        const avail = src.buffered();
        try w.piece(avail);
        src.consume(avail.len);
    }
}

/// Reads one line ended by CRLF and returns it without its line end; the
/// slice is valid until the next read from src. Chunked framing allows no
/// other line end (RFC 9112 7.1): a bare LF or CR is a framing error, as
/// two hops could disagree on where the line ends. A line longer than max
/// is error.HeadTooLarge.
fn readLine(src: *Reader, max: usize) RelayError![]const u8 {
    var scanned: usize = 0;
    while (true) {
        const avail = src.buffered();
        if (std.mem.indexOfScalarPos(u8, avail, scanned, '\n')) |nl| {
            if (nl == 0 or avail[nl - 1] != '\r') return error.BadFraming;
            const line = avail[0 .. nl - 1];
            if (std.mem.indexOfScalar(u8, line, '\r') != null) return error.BadFraming;
            if (line.len > max) return error.HeadTooLarge;
            src.consume(nl + 1);
            return line;
        }
        // The line so far may end in the CR of its CRLF.
        if (avail.len > max + 1) return error.HeadTooLarge;
        scanned = avail.len;
        src.fill() catch |e| return sourceError(e);
    }
}

/// Consumes the CRLF that ends a chunk's data; anything else there is a
/// framing error.
fn expectCrlf(src: *Reader) RelayError!void {
    while (src.buffered().len < 2) src.fill() catch |e| return sourceError(e);
    if (!std.mem.eql(u8, src.buffered()[0..2], "\r\n")) return error.BadFraming;
    src.consume(2);
}

/// Relays a chunked body, re-framing it for w (chunked again, or raw).
/// limit bounds the decoded size. budget is what is left of the head's
/// byte limit: chunk extensions (all after the size on a size line) and
/// the trailer lines with their CRLFs count against it. Extensions and
/// trailers are dropped; w gets plain chunks and a bare last chunk.
pub fn relayChunked(src: *Reader, w: *const Writer, limit: ?u64, budget: usize) RelayError!void {
    var left = budget;
    var total: u64 = 0;
    while (true) {
        // At most 15 digits make a valid size; more is refused below.
        const line = try readLine(src, left + 16);
        const size = http.parseChunkSize(line) catch return error.BadFraming;
        const ext = line.len - http.chunkSizeDigits(line);
        if (ext > left) return error.HeadTooLarge;
        left -= ext;
        if (size == 0) break;
        total += size;
        if (limit) |l| if (total > l) return error.TooLarge;
        try w.chunkBegin(size);
        try copyRaw(src, w, size);
        try expectCrlf(src);
        try w.chunkEnd(size);
    }
    while (true) {
        const line = try readLine(src, left);
        if (line.len == 0) break;
        if (line.len + 2 > left) return error.HeadTooLarge;
        left -= line.len + 2;
        if (!http.validFieldLine(line)) return error.BadFraming;
    }
    try w.finish();
}

const testing = std.testing;
const linux = std.os.linux;

fn socketPair() ![2]i32 {
    var fds: [2]i32 = undefined;
    const rc = linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK, 0, &fds);
    if (std.posix.errno(rc) != .SUCCESS) return error.SocketPair;
    return fds;
}

/// Runs relayChunked on input (sent whole, then the write side shut), with
/// a plain (unchunked) sink; returns what reached the sink.
fn relayChunkedOf(input: []const u8, limit: ?u64, budget: usize, out: []u8) RelayError![]const u8 {
    const src_pair = socketPair() catch unreachable;
    const dst_pair = socketPair() catch unreachable;
    defer for (src_pair ++ dst_pair) |fd| {
        _ = linux.close(fd);
    };
    sys.sendAll(src_pair[1], input, sys.nowMs() + 1000) catch unreachable;
    sys.shutdownWrite(src_pair[1]);
    var buf: [256]u8 = undefined;
    var src = Reader{ .fd = src_pair[0], .buf = &buf, .deadline = sys.nowMs() + 1000 };
    const w = Writer{ .fd = dst_pair[0], .chunked = false };
    try relayChunked(&src, &w, limit, budget);
    sys.shutdownWrite(dst_pair[0]);
    var n: usize = 0;
    while (n < out.len) n += sys.recv(dst_pair[1], out[n..], sys.nowMs() + 1000) catch break;
    return out[0..n];
}

test "chunked relay: CRLF only, extensions and trailers within the budget" {
    const Case = struct { in: []const u8, budget: usize = 100, limit: ?u64 = null, want: RelayError![]const u8 };
    const cases = [_]Case{
        .{ .in = "5\r\nhello\r\n0\r\n\r\n", .want = "hello" },
        .{ .in = "2;a=b\r\nhi\r\n3 ; c\r\nyou\r\n0\r\nX-T: 1\r\n\r\n", .want = "hiyou" },
        .{ .in = "5\nhello\r\n0\r\n\r\n", .want = error.BadFraming },
        .{ .in = "5\rhello\r\n0\r\n\r\n", .want = error.BadFraming },
        .{ .in = "5\r\nhello\n0\r\n\r\n", .want = error.BadFraming },
        .{ .in = "5\r\nhelloXY0\r\n\r\n", .want = error.BadFraming },
        .{ .in = "5\r\nhello\r\n0\n\r\n", .want = error.BadFraming },
        .{ .in = "5\r\nhello\r\n0\r\nX-T: 1\n\r\n", .want = error.BadFraming },
        .{ .in = "5\r\nhello\r\n0\r\n\n", .want = error.BadFraming },
        .{ .in = "5\r\nhello\r\n0\r\nnot a field\r\n\r\n", .want = error.BadFraming },
        .{ .in = "5\r\nhel", .want = error.SourceClosed },
        // The extension ";abcd" is 5 bytes; the trailer line and CRLF 8.
        .{ .in = "1;abcd\r\nx\r\n0\r\n\r\n", .budget = 5, .want = "x" },
        .{ .in = "1;abcd\r\nx\r\n0\r\n\r\n", .budget = 4, .want = error.HeadTooLarge },
        .{ .in = "1;ab\r\nx\r\n0;c\r\nX-T: 1\r\n\r\n", .budget = 3 + 2 + 8, .want = "x" },
        .{ .in = "1;ab\r\nx\r\n0;c\r\nX-T: 1\r\n\r\n", .budget = 3 + 2 + 7, .want = error.HeadTooLarge },
        .{ .in = "1;" ++ "e" ** 300 ++ "\r\nx\r\n0\r\n\r\n", .budget = 100, .want = error.HeadTooLarge },
        .{ .in = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", .limit = 5, .want = error.TooLarge },
    };
    for (cases, 0..) |c, i| {
        var out: [64]u8 = undefined;
        const got = relayChunkedOf(c.in, c.limit, c.budget, &out);
        if (c.want) |want| {
            const text = got catch |e| {
                std.debug.print("case {d}: {s}\n", .{ i, @errorName(e) });
                return e;
            };
            try testing.expectEqualStrings(want, text);
        } else |want_err| {
            testing.expectError(want_err, got) catch |e| {
                std.debug.print("case {d}\n", .{i});
                return e;
            };
        }
    }
}

test "a reader with a progress limit waits that long for each read, not longer" {
    const pair = try socketPair();
    defer for (pair) |fd| {
        _ = linux.close(fd);
    };
    var buf: [16]u8 = undefined;
    var r = Reader{ .fd = pair[0], .buf = &buf, .idle_ms = 30 };
    const t0 = sys.nowMs();
    try testing.expectError(error.Timeout, r.fill());
    try testing.expect(sys.nowMs() - t0 >= 30);
    try sys.sendAll(pair[1], "ab", sys.nowMs() + 1000);
    try r.fill();
    try testing.expectEqualStrings("ab", r.buffered());
}
