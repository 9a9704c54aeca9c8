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
    deadline: i64 = sys.no_deadline,

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
        self.end += try sys.recv(self.fd, self.buf[self.end..], self.deadline);
    }
};

pub const RelayError = error{
    SourceTimeout,
    SourceClosed,
    SinkTimeout,
    SinkClosed,
    BadFraming,
    TooLarge,
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
    /// An absolute deadline, or sys.no_deadline to give each write
    /// write_idle_ms from its start.
    deadline: i64,
    write_idle_ms: i64 = 30_000,

    pub fn write(self: *const Writer, data: []const u8) RelayError!void {
        const dl = if (self.deadline == sys.no_deadline) sys.nowMs() + self.write_idle_ms else self.deadline;
        sys.sendAll(self.fd, data, dl) catch |e| return switch (e) {
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

const max_line = 16 * 1024;

/// Reads one line, without its line end. The slice is valid until the
/// next read from src.
fn readLine(src: *Reader) RelayError![]const u8 {
    var scanned: usize = 0;
    while (true) {
        const avail = src.buffered();
        if (std.mem.indexOfScalarPos(u8, avail, scanned, '\n')) |nl| {
            var line = avail[0..nl];
            src.consume(nl + 1);
            if (line.len > 0 and line[line.len - 1] == '\r') line = line[0 .. line.len - 1];
            return line;
        }
        scanned = avail.len;
        if (avail.len >= max_line) return error.BadFraming;
        src.fill() catch |e| return sourceError(e);
    }
}

/// Relays a chunked body, re-framing it for w (chunked again, or raw).
/// limit bounds the decoded size. Trailer fields are read and dropped.
pub fn relayChunked(src: *Reader, w: *const Writer, limit: ?u64) RelayError!void {
    var total: u64 = 0;
    while (true) {
        const size = http.parseChunkSize(try readLine(src)) catch return error.BadFraming;
        if (size == 0) break;
        total += size;
        if (limit) |l| if (total > l) return error.TooLarge;
        try w.chunkBegin(size);
        try copyRaw(src, w, size);
        const end = try readLine(src);
        if (end.len != 0) return error.BadFraming;
        try w.chunkEnd(size);
    }
    var trailer_bytes: usize = 0;
    while (true) {
        const line = try readLine(src);
        if (line.len == 0) break;
        trailer_bytes += line.len;
        if (trailer_bytes > max_line) return error.BadFraming;
    }
    try w.finish();
}
