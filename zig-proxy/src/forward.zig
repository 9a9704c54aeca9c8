//! One exchange with the upstream: the request goes out over a pooled
//! connection, the answer comes back and is relayed as it arrives.
const std = @import("std");
const sys = @import("sys.zig");
const http = @import("http.zig");
const stream = @import("stream.zig");
const server = @import("server.zig");

const Conn = server.Conn;
const Outcome = server.Outcome;

pub const via_entry = "1.1 proxylab-zig";

const Failure = enum { bad, timeout };

fn failureOf(e: anyerror) Failure {
    return if (e == error.Timeout or e == error.SinkTimeout or e == error.SourceTimeout) .timeout else .bad;
}

/// Answers 502 or 504 before any of the upstream's answer reached the
/// client. The client's connection stays usable only if its request was
/// read completely.
fn upstreamFailed(c: *Conn, f: Failure, body_done: bool, keep: bool, req: *const http.Request, head_only: bool) Outcome {
    const stay = body_done and keep;
    const conn: server.ClientConn = if (!stay) .close else if (req.http11) .keep else .keep_http10;
    switch (f) {
        .bad => server.sendError(c, 502, "bad gateway\n", head_only, conn),
        .timeout => server.sendError(c, 504, "gateway timeout\n", head_only, conn),
    }
    return if (stay) .keep else .close;
}

fn appendField(out: *std.ArrayList(u8), gpa: std.mem.Allocator, name: []const u8, value: []const u8) !void {
    try out.appendSlice(gpa, name);
    try out.appendSlice(gpa, ": ");
    try out.appendSlice(gpa, value);
}

/// Writes the upstream request head: method and target byte for byte, the
/// fields in order minus the hop-by-hop ones, then this proxy's entries.
/// Always HTTP/1.1, so the upstream keeps the pooled connection open.
fn buildRequest(c: *Conn, req: *const http.Request) !void {
    const gpa = c.shared.gpa;
    const o = &c.out;
    o.clearRetainingCapacity();
    try o.appendSlice(gpa, req.method);
    try o.append(gpa, ' ');
    if (req.slash_first) try o.append(gpa, '/');
    try o.appendSlice(gpa, req.upstream_target);
    try o.appendSlice(gpa, " HTTP/1.1\r\n");
    for (c.fields.items, 0..) |f, i| {
        if (f.drop) continue;
        // An absolute-form target names the host the client means.
        const value = if (req.host_index == i) req.authority orelse f.value else f.value;
        try appendField(o, gpa, f.name, value);
        if (req.last_xff == i) {
            if (f.value.len > 0) try o.appendSlice(gpa, ", ");
            try o.appendSlice(gpa, c.peerText());
        } else if (req.last_via == i) {
            if (f.value.len > 0) try o.appendSlice(gpa, ", ");
            try o.appendSlice(gpa, via_entry);
        }
        try o.appendSlice(gpa, "\r\n");
    }
    if (req.last_xff == null) {
        try appendField(o, gpa, "X-Forwarded-For", c.peerText());
        try o.appendSlice(gpa, "\r\n");
    }
    if (req.last_via == null) try o.appendSlice(gpa, "Via: " ++ via_entry ++ "\r\n");
    // Only an HTTP/1.0 request comes without Host; the upstream request is
    // 1.1, which needs one.
    if (!req.has_host) {
        try appendField(o, gpa, "Host", req.authority orelse c.shared.cfg.upstream_text);
        try o.appendSlice(gpa, "\r\n");
    }
    if (req.chunked) try o.appendSlice(gpa, "Transfer-Encoding: chunked\r\n");
    try o.appendSlice(gpa, "\r\n");
}

const ClientHop = enum { interim, keep, keep_http10, close };

/// Writes the client's response head: the upstream's status and fields
/// minus the hop-by-hop ones, Via, and the framing and connection fields
/// of the client's own hop (none for an interim answer).
fn buildResponse(c: *Conn, resp: *const http.Response, client_chunked: bool, hop: ClientHop) !void {
    const gpa = c.shared.gpa;
    const o = &c.out;
    o.clearRetainingCapacity();
    var status: [3]u8 = undefined;
    _ = std.fmt.bufPrint(&status, "{d:0>3}", .{resp.status}) catch unreachable;
    try o.appendSlice(gpa, "HTTP/1.1 ");
    try o.appendSlice(gpa, &status);
    try o.append(gpa, ' ');
    try o.appendSlice(gpa, resp.reason);
    try o.appendSlice(gpa, "\r\n");
    for (c.resp_fields.items, 0..) |f, i| {
        if (f.drop) continue;
        try appendField(o, gpa, f.name, f.value);
        if (resp.last_via == i) {
            if (f.value.len > 0) try o.appendSlice(gpa, ", ");
            try o.appendSlice(gpa, via_entry);
        }
        try o.appendSlice(gpa, "\r\n");
    }
    if (resp.last_via == null) try o.appendSlice(gpa, "Via: " ++ via_entry ++ "\r\n");
    if (client_chunked) try o.appendSlice(gpa, "Transfer-Encoding: chunked\r\n");
    switch (hop) {
        .interim, .keep => {},
        .keep_http10 => try o.appendSlice(gpa, "Connection: keep-alive\r\n"),
        .close => try o.appendSlice(gpa, "Connection: close\r\n"),
    }
    try o.appendSlice(gpa, "\r\n");
}

const BodyKind = union(enum) { none, length: u64, chunked };

/// The limit on an upstream response head (each interim one too, and a
/// chunked body's extensions and trailers together with its head): fixed,
/// the same in every proxy of the lab.
pub const max_response_head = 16384;

/// The methods a request may be sent twice with (RFC 9110 9.2.2).
fn idempotent(method: []const u8) bool {
    inline for (.{ "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" }) |m| {
        if (std.mem.eql(u8, method, m)) return true;
    }
    return false;
}

/// Only a request that changes nothing when sent twice, with no body that
/// would have to be read again, is sent a second time (RFC 9112 9.3.1).
fn mayRetry(req: *const http.Request) bool {
    return !req.chunked and (req.content_length orelse 0) == 0 and idempotent(req.method);
}

/// How one try on an upstream connection ended.
const Step = union(enum) {
    ok,
    /// The connection failed before any byte of an answer came back: on a
    /// reused connection, the upstream most likely closed it while idle.
    stale,
    failed: Failure,
    /// The client's side ended the exchange, with this outcome.
    done: Outcome,
};

/// One request's trip through the upstream.
const Exchange = struct {
    c: *Conn,
    req: *const http.Request,
    keep: bool,
    head_only: bool,
    body: BodyKind,
    /// What is left of MAX_HEADER_BYTES after the request head, for the
    /// extensions and trailers of a chunked body.
    head_budget: usize,
    /// The client's request body has been read to its end.
    body_done: bool,
    /// Part of the answer (an interim response) went to the client: from
    /// here a failure can only cut the client's connection.
    answered: bool = false,
    /// UPSTREAM_TIMEOUT_MS.
    timeout_ms: i64,

    fn fail(x: *const Exchange, f: Failure) Outcome {
        if (x.answered) return .close;
        return upstreamFailed(x.c, f, x.body_done, x.keep, x.req, x.head_only);
    }

    /// Writes the request head and streams the client's body after it;
    /// each stall of either side is bounded, not the whole transfer.
    fn send(x: *Exchange, fd: i32) Step {
        const c = x.c;
        const w = stream.Writer{ .fd = fd, .chunked = x.body == .chunked, .idle_ms = x.timeout_ms };
        w.write(c.out.items) catch |e| return if (e == error.SinkClosed) .stale else .{ .failed = .timeout };
        if (x.body_done) return .ok;
        const result = switch (x.body) {
            .length => |n| stream.relayLength(&c.in, &w, n),
            .chunked => stream.relayChunked(&c.in, &w, c.shared.cfg.max_body_bytes, x.head_budget),
            .none => unreachable,
        };
        result catch |e| return switch (e) {
            error.SourceTimeout => .{ .done = server.reject(c, 408, "request timeout\n") },
            error.SourceClosed => .{ .done = .close },
            error.SinkTimeout => .{ .failed = .timeout },
            error.SinkClosed => .{ .failed = .bad },
            error.BadFraming => .{ .done = server.reject(c, 400, "bad request: malformed chunked body\n") },
            error.TooLarge => .{ .done = server.reject(c, 413, "request body too large\n") },
            error.HeadTooLarge => .{ .done = server.reject(c, 431, "request header too large\n") },
        };
        x.body_done = true;
        return .ok;
    }

    /// Reads heads until the final one, left at the start of up's buffer,
    /// relaying interim ones to an HTTP/1.1 client (all but 100, which
    /// this proxy answered itself if the client asked).
    fn readHead(x: *Exchange, up: *stream.Reader, resp: *http.Response, head_len: *usize) Step {
        const c = x.c;
        var interim_seen = false;
        while (true) {
            up.deadline = sys.nowMs() + x.timeout_ms;
            const n = readOneHead(up) catch |e| return switch (e) {
                error.TooLarge => .{ .failed = .bad },
                error.Timeout => .{ .failed = .timeout },
                error.Closed => if (!interim_seen and up.buffered().len == 0) .stale else .{ .failed = .bad },
            };
            resp.* = http.parseResponse(up.buffered()[0..n], c.shared.gpa, &c.resp_fields) catch
                return .{ .failed = .bad };
            // Upgrade is never forwarded, so a switch of protocols comes from
            // a broken upstream and the connection no longer speaks HTTP.
            if (resp.status == 101) return .{ .failed = .bad };
            if (resp.status >= 200) {
                head_len.* = n;
                return .ok;
            }
            interim_seen = true;
            // An HTTP/1.0 client cannot read an interim answer.
            if (resp.status != 100 and x.req.http11 and !x.relayInterim(resp)) return .{ .done = .close };
            up.consume(n);
        }
    }

    fn relayInterim(x: *Exchange, resp: *const http.Response) bool {
        // The request head in c.out is no longer needed: nothing is sent
        // again once the upstream has answered.
        buildResponse(x.c, resp, false, .interim) catch return false;
        x.answered = true;
        const w = stream.Writer{ .fd = x.c.fd, .chunked = false };
        w.write(x.c.out.items) catch return false;
        return true;
    }
};

/// The length of the head at the start of up's buffer, reading until it
/// is complete; error.TooLarge past max_response_head.
fn readOneHead(up: *stream.Reader) error{ TooLarge, Closed, Timeout }!usize {
    var scanned: usize = 0;
    while (true) {
        const avail = up.buffered();
        const window = avail[0..@min(avail.len, max_response_head)];
        if (http.headEnd(window, scanned)) |n| return n;
        if (avail.len >= max_response_head) return error.TooLarge;
        scanned = if (window.len >= 2) window.len - 2 else 0;
        try up.fill();
    }
}

/// Forwards one request and relays its answer. head_budget is what the
/// request head left of MAX_HEADER_BYTES.
pub fn exchange(c: *Conn, req: *const http.Request, keep_requested: bool, head_budget: usize) Outcome {
    const gpa = c.shared.gpa;
    const body: BodyKind = if (req.chunked) .chunked else if (req.content_length) |n| (if (n > 0) .{ .length = n } else .none) else .none;
    var x = Exchange{
        .c = c,
        .req = req,
        .keep = keep_requested,
        .head_only = std.mem.eql(u8, req.method, "HEAD"),
        .body = body,
        .head_budget = head_budget,
        .body_done = body == .none,
        .timeout_ms = c.shared.cfg.upstream_timeout_ms,
    };
    buildRequest(c, req) catch return server.reject(c, 500, "internal error\n");
    // A body already read with the head goes out in the same write.
    if (body == .length and c.in.buffered().len >= body.length) {
        const n: usize = @intCast(body.length);
        c.out.appendSlice(gpa, c.in.buffered()[0..n]) catch return server.reject(c, 500, "internal error\n");
        c.in.consume(n);
        x.body_done = true;
    }
    var attempt: u8 = 0;
    while (true) : (attempt += 1) {
        var fd: i32 = -1;
        var reused = false;
        if (attempt == 0) {
            if (c.worker.pool.get()) |idle| {
                fd = idle;
                reused = true;
            }
        }
        if (fd < 0) {
            fd = c.worker.pool.dial(sys.nowMs() + x.timeout_ms) catch |e|
                return x.fail(if (e == error.Timeout) .timeout else .bad);
        }
        var up = stream.Reader{ .fd = fd, .buf = c.up_buf };
        var resp: http.Response = undefined;
        var head_len: usize = 0;
        var step = x.send(fd);
        if (step == .ok) step = x.readHead(&up, &resp, &head_len);
        switch (step) {
            .ok => return relay(&x, &up, &resp, head_len),
            .stale => {
                sys.close(fd);
                if (reused and mayRetry(req)) continue;
                return x.fail(.bad);
            },
            .failed => |f| {
                sys.close(fd);
                return x.fail(f);
            },
            .done => |o| {
                sys.close(fd);
                return o;
            },
        }
    }
}

const Framing = enum { none, length, chunked, until_close };

fn relay(x: *Exchange, up: *stream.Reader, resp: *const http.Response, head_len: usize) Outcome {
    const c = x.c;
    const req = x.req;
    const gpa = c.shared.gpa;
    const framing: Framing = if (x.head_only or resp.status == 204 or resp.status == 304)
        .none
    else if (resp.chunked)
        .chunked
    else if (resp.content_length == null)
        .until_close
    else
        .length;
    // An HTTP/1.0 client cannot read chunks: it gets the raw body, ended by
    // closing the connection.
    var client_chunked = false;
    if (framing == .chunked or framing == .until_close) {
        if (req.http11) client_chunked = true else x.keep = false;
    }
    const reusable = !resp.close and resp.http11 and framing != .until_close;
    const hop: ClientHop = if (!x.keep) .close else if (req.http11) .keep else .keep_http10;

    buildResponse(c, resp, client_chunked, hop) catch {
        sys.close(up.fd);
        return if (x.answered) .close else server.reject(c, 500, "internal error\n");
    };
    up.consume(head_len);
    var body_left: u64 = if (framing == .length) resp.content_length.? else 0;
    if (framing == .length and up.buffered().len >= body_left) {
        const n: usize = @intCast(body_left);
        if (c.out.appendSlice(gpa, up.buffered()[0..n])) {
            up.consume(n);
            body_left = 0;
        } else |_| {}
    }
    const w = stream.Writer{ .fd = c.fd, .chunked = client_chunked };
    w.write(c.out.items) catch {
        sys.close(up.fd);
        return .close;
    };
    // From the head on, a stall of the upstream is bounded, not the length
    // of its answer.
    up.deadline = sys.no_deadline;
    up.idle_ms = x.timeout_ms;
    const result = switch (framing) {
        .none => {},
        .length => stream.relayLength(up, &w, body_left),
        .chunked => stream.relayChunked(up, &w, null, max_response_head - head_len),
        .until_close => stream.relayUntilClose(up, &w),
    };
    // Past the head nothing can be taken back: a failure here can only cut
    // the client's connection short, so the answer never looks complete.
    result catch {
        sys.close(up.fd);
        return .close;
    };
    if (reusable and up.buffered().len == 0) c.worker.pool.put(up.fd) else sys.close(up.fd);
    return if (x.keep) .keep else .close;
}

test "only idempotent requests without a body are sent twice" {
    const t = std.testing;
    const Case = struct { method: []const u8, length: ?u64 = null, chunked: bool = false, want: bool };
    const cases = [_]Case{
        .{ .method = "GET", .want = true },
        .{ .method = "HEAD", .want = true },
        .{ .method = "OPTIONS", .want = true },
        .{ .method = "TRACE", .want = true },
        .{ .method = "DELETE", .length = 0, .want = true },
        .{ .method = "PUT", .want = true },
        .{ .method = "PUT", .length = 3, .want = false },
        .{ .method = "PUT", .chunked = true, .want = false },
        .{ .method = "GET", .length = 4, .want = false },
        .{ .method = "POST", .want = false },
        .{ .method = "POST", .length = 0, .want = false },
        .{ .method = "PATCH", .want = false },
        .{ .method = "LOCK", .want = false },
        .{ .method = "get", .want = false },
    };
    for (cases) |c| {
        const req = http.Request{ .method = c.method, .target = "/", .http11 = true, .content_length = c.length, .chunked = c.chunked };
        try t.expectEqual(c.want, mayRetry(&req));
    }
}
