//! The workers and the per-connection loop. Each worker thread runs an
//! event loop (loop.zig) over its own listening socket; every client
//! connection it accepts becomes a coroutine on that loop that reads a
//! request, forwards it and relays the answer before reading the next one,
//! so pipelined requests are answered in order and a slow client holds up
//! nobody but itself.
const std = @import("std");
const sys = @import("sys.zig");
const http = @import("http.zig");
const stream = @import("stream.zig");
const config = @import("config.zig");
const pool = @import("pool.zig");
const forward = @import("forward.zig");
const loop = @import("loop.zig");

const linux = std.os.linux;

/// Set by the signal handler; every worker looks at it when its loop wakes.
pub var stopping = std.atomic.Value(bool).init(false);

pub const Shared = struct {
    cfg: config.Config,
    gpa: std.mem.Allocator,
    /// An eventfd the signal handler writes, waking every worker's loop.
    stop_fd: i32,
    connections: std.atomic.Value(u32) = .init(0),
};

pub const Outcome = enum { keep, close };

/// How long a kept-alive connection may wait for its next request; long,
/// so that the pauses of a benchmark never close one.
const idle_ms = 120_000;
/// A request's head must arrive within this from its first byte (for a
/// connection's first request, from the accept).
pub const head_ms = 5_000;
/// The longest a request body may stall between two reads.
pub const body_progress_ms = 5_000;
/// How long a closing connection is drained, so that unread input does not
/// turn the close into a reset that destroys the answer in flight.
const linger_ms = 2_000;
const linger_bytes = 64 << 20;
const upstream_buf_bytes = 64 << 10;
/// How long in-flight requests may run after SIGTERM.
const shutdown_grace_ms = 5_000;
/// Bounds the memory a flood of connections can make the proxy take.
pub const max_connections = 16_384;
/// Idle upstream connections kept per worker.
const max_idle_upstream = 4096;

const page = std.heap.page_size_min;
/// Each connection's coroutine stack. The deepest path (a chunked relay
/// inside an exchange) uses a few KiB; the rest is margin, and pages never
/// touched take no memory.
pub const stack_bytes = 64 << 10;
/// Freed connection regions a worker keeps for the next ones, which saves
/// two system calls per connection when clients do not keep connections
/// alive.
const region_cache = 64;

pub const Worker = struct {
    shared: *Shared,
    loop: loop.Loop,
    pool: pool.Pool,
    listen_fd: i32,
    /// Requests between their first byte and the end of their answer:
    /// what a graceful stop waits for.
    active: u32 = 0,
    /// When accepting failed for want of descriptors or memory: accepting
    /// resumes from then, instead of spinning on a listening socket that
    /// stays readable.
    accept_paused_until: ?i64 = null,
    free_regions: [region_cache][*]align(page) u8 = undefined,
    free_count: usize = 0,
    region_len: usize,
    in_len: usize,
};

/// One mapping per connection, lowest address first: a guard page that
/// stops a stack overflow, the stack, the Conn, the client buffer and the
/// upstream buffer.
fn regionLayout(cfg: *const config.Config) struct { total: usize, in_len: usize } {
    const in_len = @max(cfg.max_header_bytes, 64 << 10);
    const fixed = page + stack_bytes + std.mem.alignForward(usize, @sizeOf(Conn), 64);
    return .{ .total = std.mem.alignForward(usize, fixed + in_len + upstream_buf_bytes, page), .in_len = in_len };
}

pub const Conn = struct {
    shared: *Shared,
    worker: *Worker,
    coro: loop.Coro,
    region: [*]align(page) u8,
    fd: i32,
    peer: [64]u8 = undefined,
    peer_len: usize = 0,
    in: stream.Reader,
    up_buf: []u8,
    out: std.ArrayList(u8) = .empty,
    fields: http.FieldList = .empty,
    resp_fields: http.FieldList = .empty,

    pub fn peerText(c: *const Conn) []const u8 {
        return c.peer[0..c.peer_len];
    }
};

fn takeRegion(w: *Worker) ?[*]align(page) u8 {
    if (w.free_count > 0) {
        w.free_count -= 1;
        return w.free_regions[w.free_count];
    }
    const rc = linux.mmap(null, w.region_len, linux.PROT.READ | linux.PROT.WRITE, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
    if (std.posix.errno(rc) != .SUCCESS) return null;
    const base: [*]align(page) u8 = @ptrFromInt(rc);
    if (std.posix.errno(linux.mprotect(base, page, linux.PROT.NONE)) != .SUCCESS) {
        _ = linux.munmap(base, w.region_len);
        return null;
    }
    return base;
}

fn giveRegion(w: *Worker, base: [*]align(page) u8) void {
    if (w.free_count < region_cache) {
        w.free_regions[w.free_count] = base;
        w.free_count += 1;
        return;
    }
    _ = linux.munmap(base, w.region_len);
}

fn startConnection(w: *Worker, fd: i32, peer: std.net.Address) bool {
    const base = takeRegion(w) orelse return false;
    const conn_at = page + stack_bytes;
    const in_at = conn_at + std.mem.alignForward(usize, @sizeOf(Conn), 64);
    const up_at = in_at + w.in_len;
    const c: *Conn = @ptrCast(@alignCast(base + conn_at));
    c.* = .{
        .shared = w.shared,
        .worker = w,
        .coro = .{ .entry = connectionMain, .finish = connectionDone },
        .region = base,
        .fd = fd,
        .in = .{ .fd = fd, .buf = base[in_at..up_at] },
        .up_buf = base[up_at .. up_at + upstream_buf_bytes],
    };
    c.peer_len = formatIp(&c.peer, peer).len;
    _ = w.shared.connections.fetchAdd(1, .monotonic);
    w.loop.spawn(&c.coro, @intFromPtr(base) + conn_at);
    return true;
}

fn connectionMain(co: *loop.Coro) void {
    serveConnection(@fieldParentPtr("coro", co));
}

fn connectionDone(co: *loop.Coro) void {
    const c: *Conn = @fieldParentPtr("coro", co);
    const gpa = c.shared.gpa;
    c.out.deinit(gpa);
    c.fields.deinit(gpa);
    c.resp_fields.deinit(gpa);
    _ = c.shared.connections.fetchSub(1, .monotonic);
    giveRegion(c.worker, c.region);
}

/// A worker thread: its loop runs until a stop was asked for and its
/// in-flight requests are done or their grace has passed.
pub fn runWorker(sh: *Shared, listen_fd: i32) void {
    const layout = regionLayout(&sh.cfg);
    var w: Worker = .{
        .shared = sh,
        .loop = loop.Loop.init(sh.gpa) catch return,
        .pool = pool.Pool.init(sh.gpa, sh.cfg.upstream, max_idle_upstream) catch return,
        .listen_fd = listen_fd,
        .region_len = layout.total,
        .in_len = layout.in_len,
    };
    w.loop.bind();
    if (!w.loop.watch(listen_fd, linux.EPOLL.IN)) return;
    // Edge-triggered: each loop sees the one write of the stop signal once.
    _ = w.loop.watch(sh.stop_fd, linux.EPOLL.IN | linux.EPOLL.ET);

    var events: [256]linux.epoll_event = undefined;
    var stop_deadline: ?i64 = null;
    while (true) {
        var now = sys.nowMs();
        if (stop_deadline == null and stopping.load(.acquire)) {
            // New connections are refused from here on.
            sys.close(w.listen_fd);
            w.listen_fd = -1;
            w.accept_paused_until = null;
            stop_deadline = now + shutdown_grace_ms;
        }
        if (stop_deadline) |d| if (w.active == 0 or now >= d) break;
        if (w.accept_paused_until) |t| if (now >= t) {
            w.accept_paused_until = null;
            _ = w.loop.watch(w.listen_fd, linux.EPOLL.IN);
        };
        var timeout = w.loop.timeoutMs(now);
        for ([_]?i64{ stop_deadline, w.accept_paused_until }) |dl| {
            const d = dl orelse continue;
            const left: i32 = @intCast(std.math.clamp(d - now, 0, 60_000));
            if (timeout < 0 or left < timeout) timeout = left;
        }
        const rc = linux.epoll_wait(w.loop.ep, &events, events.len, timeout);
        const n: usize = if (std.posix.errno(rc) == .SUCCESS) rc else 0;
        for (events[0..n]) |*ev| {
            if (ev.data.fd == w.listen_fd and w.listen_fd >= 0) {
                acceptBatch(&w);
            } else if (ev.data.fd != sh.stop_fd) {
                w.loop.dispatch(ev);
            }
        }
        now = sys.nowMs();
        w.loop.fireTimers(now);
    }
}

fn acceptBatch(w: *Worker) void {
    const sh = w.shared;
    // Bounded, so that a burst of connections cannot starve the ones
    // already being served.
    for (0..64) |_| {
        const a = sys.accept(w.listen_fd) catch |e| switch (e) {
            error.WouldBlock => return,
            error.Failed => {
                w.loop.unwatch(w.listen_fd);
                w.accept_paused_until = sys.nowMs() + 10;
                return;
            },
        };
        if (sh.connections.load(.monotonic) >= max_connections) {
            sys.close(a.fd);
            continue;
        }
        sys.setNoDelay(a.fd);
        if (!startConnection(w, a.fd, a.addr)) sys.close(a.fd);
    }
}

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

fn serveConnection(c: *Conn) void {
    defer lingeringClose(c);
    // The first request's head is due head_ms after the accept; a kept-alive
    // connection may then wait idle_ms for the first byte of the next one.
    var started = sys.nowMs();
    var first = true;
    while (!stopping.load(.acquire)) {
        c.in.deadline = if (first) started + head_ms else sys.nowMs() + idle_ms;
        // Stray line ends between requests are allowed (RFC 9112 2.2).
        while (true) {
            const avail = c.in.buffered();
            var skip: usize = 0;
            while (skip < avail.len and (avail[skip] == '\r' or avail[skip] == '\n')) skip += 1;
            c.in.consume(skip);
            if (c.in.buffered().len > 0) break;
            c.in.fill() catch |e| {
                if (first and e == error.Timeout) _ = reject(c, 408, "request timeout\n");
                return;
            };
        }
        if (!first) started = sys.nowMs();
        first = false;
        c.worker.active += 1;
        const outcome = handleRequest(c, started);
        c.worker.active -= 1;
        c.in.idle_ms = 0;
        if (outcome == .close) return;
    }
}

fn handleRequest(c: *Conn, started: i64) Outcome {
    const sh = c.shared;
    c.in.deadline = started + head_ms;
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
    // From here the client's reads are bounded by its stalls: an upload
    // that keeps sending is never cut.
    c.in.deadline = sys.no_deadline;
    c.in.idle_ms = body_progress_ms;
    if (req.content_length) |n| {
        if (n > sh.cfg.max_body_bytes) return reject(c, 413, "request body too large\n");
    }
    // A client that asked may hold its body back until told to send it.
    // An HTTP/1.0 client cannot read an interim answer, and one without a
    // body has nothing to hold back.
    const has_body = req.chunked or (req.content_length orelse 0) > 0;
    if (req.expect_continue and req.http11 and has_body) {
        const w = stream.Writer{ .fd = c.fd, .chunked = false };
        w.write("HTTP/1.1 100 Continue\r\n\r\n") catch return .close;
    }
    const keep = req.keep_alive and !stopping.load(.acquire);
    return forward.exchange(c, &req, keep, max - head_len);
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
        error.BadTarget => reject(c, 400, "bad request: malformed request target\n"),
        error.NotImplemented => reject(c, 501, "CONNECT is not supported\n"),
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
    const w = stream.Writer{ .fd = c.fd, .chunked = false };
    w.write(msg) catch {};
}

fn reasonPhrase(status: u16) []const u8 {
    return switch (status) {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
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
