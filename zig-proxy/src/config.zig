//! The proxy contract's environment variables.
const std = @import("std");

pub const Config = struct {
    listen: std.net.Address,
    upstream: std.net.Address,
    upstream_text: []const u8,
    workers: u32,
    upstream_timeout_ms: u32,
    max_header_bytes: usize,
    max_body_bytes: u64,
};

pub const Getenv = *const fn ([]const u8) ?[]const u8;

// Upper bounds keep a typo from turning into an absurd allocation or a
// timeout that never fires in practice.
const max_workers = 4096;
const max_timeout_ms = 24 * 60 * 60 * 1000;
const max_header_cap = 1 << 24;
const max_body_cap = (1 << 31) - 1;

/// Reads the configuration. On a bad value it returns error.Invalid and
/// leaves a message naming the variable in msg.
pub fn load(getenv: Getenv, default_workers: u32, msg_buf: []u8, msg: *[]const u8) error{Invalid}!Config {
    var cfg: Config = .{
        .listen = std.net.Address.initIp4(.{ 127, 0, 0, 1 }, 8080),
        .upstream = std.net.Address.initIp4(.{ 127, 0, 0, 1 }, 9000),
        .upstream_text = "127.0.0.1:9000",
        .workers = default_workers,
        .upstream_timeout_ms = 5000,
        .max_header_bytes = 16384,
        .max_body_bytes = 16777216,
    };
    if (nonEmpty(getenv("LISTEN_ADDR"))) |v| {
        cfg.listen = parseListen(v) orelse return bad(msg_buf, msg, "LISTEN_ADDR", v, "want host:port such as 127.0.0.1:8080");
    }
    if (nonEmpty(getenv("UPSTREAM_ADDR"))) |v| {
        const a = std.net.Address.parseIpAndPort(v) catch
            return bad(msg_buf, msg, "UPSTREAM_ADDR", v, "want an IP:port such as 127.0.0.1:9000");
        if (a.getPort() == 0) return bad(msg_buf, msg, "UPSTREAM_ADDR", v, "want an IP:port such as 127.0.0.1:9000");
        cfg.upstream = a;
        cfg.upstream_text = v;
    }
    cfg.workers = @intCast(try int(getenv, "WORKERS", 1, max_workers, cfg.workers, msg_buf, msg));
    cfg.upstream_timeout_ms = @intCast(try int(getenv, "UPSTREAM_TIMEOUT_MS", 1, max_timeout_ms, cfg.upstream_timeout_ms, msg_buf, msg));
    cfg.max_header_bytes = @intCast(try int(getenv, "MAX_HEADER_BYTES", 1, max_header_cap, cfg.max_header_bytes, msg_buf, msg));
    cfg.max_body_bytes = try int(getenv, "MAX_BODY_BYTES", 1, max_body_cap, cfg.max_body_bytes, msg_buf, msg);
    return cfg;
}

fn nonEmpty(v: ?[]const u8) ?[]const u8 {
    const s = v orelse return null;
    return if (s.len == 0) null else s;
}

fn bad(msg_buf: []u8, msg: *[]const u8, name: []const u8, value: []const u8, want: []const u8) error{Invalid} {
    msg.* = std.fmt.bufPrint(msg_buf, "invalid {s}=\"{s}\": {s}", .{ name, value, want }) catch "invalid configuration";
    return error.Invalid;
}

fn int(getenv: Getenv, name: []const u8, min: u64, max: u64, default: u64, msg_buf: []u8, msg: *[]const u8) error{Invalid}!u64 {
    const v = nonEmpty(getenv(name)) orelse return default;
    const n = parseDecimal(v) orelse {
        msg.* = std.fmt.bufPrint(msg_buf, "invalid {s}=\"{s}\": want an integer from {d} to {d}", .{ name, v, min, max }) catch "invalid configuration";
        return error.Invalid;
    };
    if (n < min or n > max) {
        msg.* = std.fmt.bufPrint(msg_buf, "invalid {s}=\"{s}\": want an integer from {d} to {d}", .{ name, v, min, max }) catch "invalid configuration";
        return error.Invalid;
    }
    return n;
}

/// Digits only: no sign, no spaces, no unit.
pub fn parseDecimal(s: []const u8) ?u64 {
    if (s.len == 0 or s.len > 19) return null;
    var n: u64 = 0;
    for (s) |c| {
        if (c < '0' or c > '9') return null;
        n = n * 10 + (c - '0');
    }
    return n;
}

/// host:port, where host is an IP address, empty (all interfaces) or
/// localhost; names beyond that would need a resolver.
fn parseListen(s: []const u8) ?std.net.Address {
    const colon = std.mem.lastIndexOfScalar(u8, s, ':') orelse return null;
    const host = s[0..colon];
    const port_text = s[colon + 1 ..];
    if (port_text.len == 0 or port_text.len > 5) return null;
    const port_n = parseDecimal(port_text) orelse return null;
    if (port_n > 65535) return null;
    const port: u16 = @intCast(port_n);
    if (host.len == 0) return std.net.Address.initIp4(.{ 0, 0, 0, 0 }, port);
    if (std.mem.eql(u8, host, "localhost")) return std.net.Address.initIp4(.{ 127, 0, 0, 1 }, port);
    if (host[0] == '[') {
        if (host.len < 2 or host[host.len - 1] != ']') return null;
        return std.net.Address.parseIp6(host[1 .. host.len - 1], port) catch null;
    }
    return std.net.Address.parseIp4(host, port) catch null;
}

fn testEnv(comptime pairs: anytype) Getenv {
    return struct {
        fn get(name: []const u8) ?[]const u8 {
            inline for (pairs) |p| {
                if (std.mem.eql(u8, name, p[0])) return p[1];
            }
            return null;
        }
    }.get;
}

test "defaults" {
    var buf: [256]u8 = undefined;
    var msg: []const u8 = "";
    const cfg = try load(testEnv(.{}), 3, &buf, &msg);
    try std.testing.expectEqual(@as(u32, 3), cfg.workers);
    try std.testing.expectEqual(@as(u32, 5000), cfg.upstream_timeout_ms);
    try std.testing.expectEqual(@as(u16, 8080), cfg.listen.getPort());
}

test "invalid values name the variable" {
    var buf: [256]u8 = undefined;
    var msg: []const u8 = "";
    try std.testing.expectError(error.Invalid, load(testEnv(.{.{ "WORKERS", "0" }}), 1, &buf, &msg));
    try std.testing.expect(std.mem.indexOf(u8, msg, "WORKERS") != null);
    try std.testing.expectError(error.Invalid, load(testEnv(.{.{ "UPSTREAM_ADDR", "localhost:9000" }}), 1, &buf, &msg));
    try std.testing.expect(std.mem.indexOf(u8, msg, "UPSTREAM_ADDR") != null);
    try std.testing.expectError(error.Invalid, load(testEnv(.{.{ "MAX_BODY_BYTES", "16M" }}), 1, &buf, &msg));
    try std.testing.expectError(error.Invalid, load(testEnv(.{.{ "UPSTREAM_TIMEOUT_MS", "5s" }}), 1, &buf, &msg));
    try std.testing.expectError(error.Invalid, load(testEnv(.{.{ "LISTEN_ADDR", "localhost" }}), 1, &buf, &msg));
}
