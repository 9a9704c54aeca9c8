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
    try o.appendSlice(gpa, req.target);
    try o.appendSlice(gpa, " HTTP/1.1\r\n");
    for (c.fields.items, 0..) |f, i| {
        if (f.drop) continue;
        try appendField(o, gpa, f.name, f.value);
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
        try appendField(o, gpa, "Host", c.shared.cfg.upstream_text);
        try o.appendSlice(gpa, "\r\n");
    }
    if (req.chunked) try o.appendSlice(gpa, "Transfer-Encoding: chunked\r\n");
    try o.appendSlice(gpa, "\r\n");
}

/// Writes the client's response head: the upstream's status and fields
/// minus the hop-by-hop ones, Via, and the framing and connection fields
/// of the client's own hop.
fn buildResponse(c: *Conn, resp: *const http.Response, client_chunked: bool, keep: bool, http11: bool) !void {
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
    const coded = resp.chunked or resp.other_coding;
    for (c.resp_fields.items, 0..) |f, i| {
        if (f.drop) continue;
        // A transfer coding overrides Content-Length (RFC 9112 6.3).
        if (coded and http.eqlLower(f.name, "content-length")) continue;
        try appendField(o, gpa, f.name, f.value);
        if (resp.last_via == i) {
            if (f.value.len > 0) try o.appendSlice(gpa, ", ");
            try o.appendSlice(gpa, via_entry);
        }
        try o.appendSlice(gpa, "\r\n");
    }
    if (resp.last_via == null) try o.appendSlice(gpa, "Via: " ++ via_entry ++ "\r\n");
    if (client_chunked) try o.appendSlice(gpa, "Transfer-Encoding: chunked\r\n");
    if (!keep) {
        try o.appendSlice(gpa, "Connection: close\r\n");
    } else if (!http11) {
        try o.appendSlice(gpa, "Connection: keep-alive\r\n");
    }
    try o.appendSlice(gpa, "\r\n");
}

const BodyKind = union(enum) { none, length: u64, chunked };

pub fn exchange(c: *Conn, req: *const http.Request, keep_requested: bool) Outcome {
    const sh = c.shared;
    const gpa = sh.gpa;
    const head_only = std.mem.eql(u8, req.method, "HEAD");
    const deadline = sys.nowMs() + @as(i64, sh.cfg.upstream_timeout_ms);
    var keep = keep_requested;

    const body: BodyKind = if (req.chunked) .chunked else if (req.content_length) |n| (if (n > 0) .{ .length = n } else .none) else .none;
    buildRequest(c, req) catch return server.reject(c, 500, "internal error\n");
    var body_done = body == .none;
    // A body already read with the head goes out in the same write.
    if (body == .length and c.in.buffered().len >= body.length) {
        const n: usize = @intCast(body.length);
        c.out.appendSlice(gpa, c.in.buffered()[0..n]) catch return server.reject(c, 500, "internal error\n");
        c.in.consume(n);
        body_done = true;
    }

    var up = stream.Reader{ .fd = -1, .buf = c.up_buf, .deadline = deadline };
    var resp: http.Response = undefined;
    var head_len: usize = 0;
    var attempt: u8 = 0;
    attempts: while (true) : (attempt += 1) {
        var reused = false;
        var fd: i32 = -1;
        if (attempt == 0) {
            if (c.worker.pool.get()) |idle| {
                fd = idle;
                reused = true;
            }
        }
        if (fd < 0) {
            fd = c.worker.pool.dial(deadline) catch |e|
                return upstreamFailed(c, if (e == error.Timeout) .timeout else .bad, body_done, keep, req, head_only);
        }
        // A pooled connection the upstream closed meanwhile fails before
        // any answer; the request can be sent again if it is all in hand.
        const can_retry = reused and body_done;
        up = .{ .fd = fd, .buf = c.up_buf, .deadline = deadline };

        sys.sendAll(fd, c.out.items, deadline) catch |e| {
            sys.close(fd);
            if (can_retry and e == error.Closed) continue :attempts;
            return upstreamFailed(c, failureOf(e), body_done, keep, req, head_only);
        };
        if (!body_done) {
            const w = stream.Writer{ .fd = fd, .chunked = body == .chunked, .deadline = deadline };
            const result = switch (body) {
                .length => |n| stream.relayLength(&c.in, &w, n),
                .chunked => stream.relayChunked(&c.in, &w, sh.cfg.max_body_bytes),
                .none => {},
            };
            result catch |e| {
                sys.close(fd);
                return switch (e) {
                    error.SourceTimeout => server.reject(c, 408, "request timeout\n"),
                    error.SourceClosed => .close,
                    error.SinkTimeout => upstreamFailed(c, .timeout, false, keep, req, head_only),
                    error.SinkClosed => upstreamFailed(c, .bad, false, keep, req, head_only),
                    error.BadFraming => server.reject(c, 400, "bad request: malformed chunked body\n"),
                    error.TooLarge => server.reject(c, 413, "request body too large\n"),
                };
            };
            body_done = true;
        }

        // Interim 1xx answers are skipped: the final one follows them.
        var interim_seen = false;
        while (true) {
            var scanned: usize = 0;
            head_len = while (true) {
                if (http.headEnd(up.buffered(), scanned)) |n| break n;
                const got = up.buffered().len;
                if (got >= up.buf.len) {
                    sys.close(fd);
                    return upstreamFailed(c, .bad, true, keep, req, head_only);
                }
                scanned = if (got >= 2) got - 2 else 0;
                up.fill() catch |e| {
                    sys.close(fd);
                    if (can_retry and e == error.Closed and got == 0 and !interim_seen) continue :attempts;
                    return upstreamFailed(c, failureOf(e), true, keep, req, head_only);
                };
            };
            resp = http.parseResponse(up.buffered()[0..head_len], gpa, &c.resp_fields) catch {
                sys.close(fd);
                return upstreamFailed(c, .bad, true, keep, req, head_only);
            };
            // Upgrade is never forwarded, so a switch of protocols comes from
            // a broken upstream and the connection no longer speaks HTTP.
            if (resp.status == 101) {
                sys.close(fd);
                return upstreamFailed(c, .bad, true, keep, req, head_only);
            }
            if (resp.status >= 200) break;
            up.consume(head_len);
            interim_seen = true;
        }
        break;
    }
    return relay(c, req, &up, &resp, head_len, head_only, &keep);
}

const Framing = enum { none, length, chunked, until_close };

fn relay(c: *Conn, req: *const http.Request, up: *stream.Reader, resp: *const http.Response, head_len: usize, head_only: bool, keep: *bool) Outcome {
    const gpa = c.shared.gpa;
    const framing: Framing = if (head_only or resp.status == 204 or resp.status == 304)
        .none
    else if (resp.chunked)
        .chunked
    else if (resp.other_coding or resp.content_length == null)
        .until_close
    else
        .length;
    // An HTTP/1.0 client cannot read chunks: it gets the raw body, ended by
    // closing the connection.
    var client_chunked = false;
    if (framing == .chunked or framing == .until_close) {
        if (req.http11) client_chunked = true else keep.* = false;
    }
    const reusable = !resp.close and resp.http11 and framing != .until_close;

    buildResponse(c, resp, client_chunked, keep.*, req.http11) catch {
        sys.close(up.fd);
        return server.reject(c, 500, "internal error\n");
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
    const w = stream.Writer{ .fd = c.fd, .chunked = client_chunked, .deadline = sys.no_deadline };
    w.write(c.out.items) catch {
        sys.close(up.fd);
        return .close;
    };
    const result = switch (framing) {
        .none => {},
        .length => stream.relayLength(up, &w, body_left),
        .chunked => stream.relayChunked(up, &w, null),
        .until_close => stream.relayUntilClose(up, &w),
    };
    // Past the head nothing can be taken back: a failure here can only cut
    // the client's connection short, so the answer never looks complete.
    result catch {
        sys.close(up.fd);
        return .close;
    };
    if (reusable and up.buffered().len == 0) c.worker.pool.put(up.fd) else sys.close(up.fd);
    return if (keep.*) .keep else .close;
}
