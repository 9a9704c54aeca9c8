//! One thread per client connection: it reads a request, forwards it, and
//! relays the answer before reading the next one, so pipelined requests
//! are answered in order and a slow client holds up nobody but itself.
const std = @import("std");
const sys = @import("sys.zig");
const http = @import("http.zig");
const stream = @import("stream.zig");
const config = @import("config.zig");
const pool = @import("pool.zig");
const forward = @import("forward.zig");

pub const Shared = struct {
    cfg: config.Config,
    pool: pool.Pool,
    gpa: std.mem.Allocator,
    stopping: std.atomic.Value(bool) = .init(false),
    /// Requests between their first byte and the end of their answer:
    /// what a graceful stop waits for.
    active: std.atomic.Value(u32) = .init(0),
    connections: std.atomic.Value(u32) = .init(0),
};

pub const Outcome = enum { keep, close };

/// How long a kept-alive connection may wait for its next request; long,
/// so that the pauses of a benchmark never close one.
const idle_ms = 120_000;
/// A request's head and body must arrive within this from its first byte.
pub const request_read_ms = 5_000;
/// How long a closing connection is drained, so that unread input does not
/// turn the close into a reset that destroys the answer in flight.
const linger_ms = 2_000;
const linger_bytes = 64 << 20;
const upstream_buf_bytes = 64 << 10;

pub const Conn = struct {
    shared: *Shared,
    fd: i32,
    peer: [64]u8 = undefined,
    peer_len: usize = 0,
    in: stream.Reader,
    up_buf: []u8,
    out: std.ArrayList(u8) = .empty,
    fields: http.FieldList = .empty,
    resp_fields: http.FieldList = .empty,

    pub fn create(sh: *Shared, fd: i32, peer: std.net.Address) !*Conn {
        const gpa = sh.gpa;
        const c = try gpa.create(Conn);
        errdefer gpa.destroy(c);
        const in_buf = try gpa.alloc(u8, @max(sh.cfg.max_header_bytes, 64 << 10));
        errdefer gpa.free(in_buf);
        const up_buf = try gpa.alloc(u8, upstream_buf_bytes);
        c.* = .{ .shared = sh, .fd = fd, .in = .{ .fd = fd, .buf = in_buf }, .up_buf = up_buf };
        c.peer_len = formatIp(&c.peer, peer).len;
        return c;
    }

    pub fn destroy(c: *Conn) void {
        const gpa = c.shared.gpa;
        c.out.deinit(gpa);
        c.fields.deinit(gpa);
        c.resp_fields.deinit(gpa);
        gpa.free(c.in.buf);
        gpa.free(c.up_buf);
        gpa.destroy(c);
    }

    pub fn peerText(c: *const Conn) []const u8 {
        return c.peer[0..c.peer_len];
    }
};

/// The address alone, as X-Forwarded-For wants it; IPv4-mapped IPv6
/// addresses are written as the IPv4 address they are.
pub fn formatIp(buf: []u8, addr: std.net.Address) []const u8 {
    switch (addr.any.family) {
        std.posix.AF.INET => {
            const b: *const [4]u8 = @ptrCast(&addr.in.sa.addr);
            return std.fmt.bufPrint(buf, "{d}.{d}.{d}.{d}", .{ b[0], b[1], b[2], b[3] }) catch "unknown";
        },
        std.posix.AF.INET6 => {
            const b = addr.in6.sa.addr;
            if (std.mem.allEqual(u8, b[0..10], 0) and b[10] == 0xff and b[11] == 0xff)
                return std.fmt.bufPrint(buf, "{d}.{d}.{d}.{d}", .{ b[12], b[13], b[14], b[15] }) catch "unknown";
            var n: usize = 0;
            var i: usize = 0;
            while (i < 16) : (i += 2) {
                const s = std.fmt.bufPrint(buf[n..], "{s}{x}", .{ if (i == 0) "" else ":", @as(u16, b[i]) << 8 | b[i + 1] }) catch return "unknown";
                n += s.len;
            }
            return buf[0..n];
        },
        else => return "unknown",
    }
}

pub fn serveConnection(c: *Conn) void {
    const sh = c.shared;
    defer {
        lingeringClose(c);
        c.destroy();
        _ = sh.connections.fetchSub(1, .monotonic);
    }
    while (!sh.stopping.load(.acquire)) {
        c.in.deadline = sys.nowMs() + idle_ms;
        // Stray line ends between requests are allowed (RFC 9112 2.2).
        while (true) {
            const avail = c.in.buffered();
            var skip: usize = 0;
            while (skip < avail.len and (avail[skip] == '\r' or avail[skip] == '\n')) skip += 1;
            c.in.consume(skip);
            if (c.in.buffered().len > 0) break;
            c.in.fill() catch return;
        }
        _ = sh.active.fetchAdd(1, .acq_rel);
        const outcome = handleRequest(c);
        _ = sh.active.fetchSub(1, .acq_rel);
        if (outcome == .close) return;
    }
}

fn handleRequest(c: *Conn) Outcome {
    const sh = c.shared;
    c.in.deadline = sys.nowMs() + request_read_ms;
    const max = sh.cfg.max_header_bytes;
    var scanned: usize = 0;
    const head_len = while (true) {
        const avail = c.in.buffered();
        const window = avail[0..@min(avail.len, max)];
        if (http.headEnd(window, scanned)) |n| break n;
        if (avail.len >= max) return reject(c, 431, "request header too large\n");
        scanned = if (window.len >= 2) window.len - 2 else 0;
        c.in.fill() catch |e| switch (e) {
            error.Timeout => return reject(c, 408, "request timeout\n"),
            error.Closed => return .close,
        };
    };
    const head = c.in.buffered()[0..head_len];
    const req = http.parseRequest(head, sh.gpa, &c.fields) catch |e| return rejectParse(c, e);
    c.in.consume(head_len);
    if (req.content_length) |n| {
        if (n > sh.cfg.max_body_bytes) return reject(c, 413, "request body too large\n");
    }
    const keep = req.keep_alive and !sh.stopping.load(.acquire);
    return forward.exchange(c, &req, keep);
}

fn rejectParse(c: *Conn, e: http.RequestError) Outcome {
    return switch (e) {
        error.BadRequestLine => reject(c, 400, "bad request: malformed request line\n"),
        error.VersionNotSupported => reject(c, 505, "HTTP version not supported\n"),
        error.BadField => reject(c, 400, "bad request: malformed header field\n"),
        error.ObsFold => reject(c, 400, "bad request: obsolete line folding\n"),
        error.BareCr => reject(c, 400, "bad request: CR outside a line end\n"),
        error.BadHost => reject(c, 400, "bad request: missing, repeated or malformed Host\n"),
        error.BadContentLength => reject(c, 400, "bad request: invalid Content-Length\n"),
        error.LengthAndCoding => reject(c, 400, "bad request: both Content-Length and Transfer-Encoding\n"),
        error.UnsupportedCoding => reject(c, 400, "bad request: unsupported transfer coding\n"),
        error.OutOfMemory => reject(c, 500, "internal error\n"),
    };
}

/// Answers a request the proxy will not forward. What follows on the
/// connection cannot be trusted to start where this request ended, so the
/// connection ends.
pub fn reject(c: *Conn, status: u16, text: []const u8) Outcome {
    sendError(c, status, text, false, .close);
    return .close;
}

pub const ClientConn = enum { close, keep, keep_http10 };

pub fn sendError(c: *Conn, status: u16, text: []const u8, head_only: bool, conn: ClientConn) void {
    var buf: [512]u8 = undefined;
    const conn_field = switch (conn) {
        .close => "Connection: close\r\n",
        .keep => "",
        .keep_http10 => "Connection: keep-alive\r\n",
    };
    const msg = std.fmt.bufPrint(&buf, "HTTP/1.1 {d} {s}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {d}\r\n{s}\r\n{s}", .{
        status, reasonPhrase(status), text.len, conn_field, if (head_only) "" else text,
    }) catch return;
    const w = stream.Writer{ .fd = c.fd, .chunked = false, .deadline = sys.no_deadline };
    w.write(msg) catch {};
}

fn reasonPhrase(status: u16) []const u8 {
    return switch (status) {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        else => "Error",
    };
}

fn lingeringClose(c: *Conn) void {
    sys.shutdownWrite(c.fd);
    const deadline = sys.nowMs() + linger_ms;
    var drained: usize = 0;
    while (drained < linger_bytes) {
        drained += sys.recv(c.fd, c.in.buf, deadline) catch break;
    }
    sys.close(c.fd);
}
