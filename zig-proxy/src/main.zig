//! zig-proxy: the lab's HTTP/1.1 reverse proxy written in Zig with the
//! standard library only. It forwards every request to one upstream over
//! pooled keep-alive connections, as the proxy contract in DESIGN.md asks.
const std = @import("std");
const builtin = @import("builtin");
const build_options = @import("build_options");
const sys = @import("sys.zig");
const config = @import("config.zig");
const pool = @import("pool.zig");
const server = @import("server.zig");

const linux = std.os.linux;

/// How long in-flight requests may run after SIGTERM.
const shutdown_grace_ms = 5_000;
/// Bounds the threads a flood of connections can make the proxy create.
const max_connections = 16_384;
const max_idle_upstream = 4096;
const connection_stack_bytes = 256 * 1024;
/// How often an acceptor looks at the stop flag while nobody connects.
const accept_poll_ms = 100;

var stop_requested = std.atomic.Value(bool).init(false);

fn onSignal(_: i32) callconv(.c) void {
    stop_requested.store(true, .release);
}

fn getenv(name: []const u8) ?[]const u8 {
    return std.posix.getenv(name);
}

fn writeStderr(msg: []const u8) void {
    _ = sys.sendAll(2, msg, sys.nowMs() + 1000) catch {
        _ = linux.write(2, msg.ptr, msg.len);
    };
}

fn formatAddr(buf: []u8, addr: std.net.Address) []const u8 {
    var ip: [64]u8 = undefined;
    const host = server.formatIp(&ip, addr);
    const fmt_v6 = addr.any.family == std.posix.AF.INET6 and std.mem.indexOfScalar(u8, host, ':') != null;
    return (if (fmt_v6)
        std.fmt.bufPrint(buf, "[{s}]:{d}", .{ host, addr.getPort() })
    else
        std.fmt.bufPrint(buf, "{s}:{d}", .{ host, addr.getPort() })) catch "?";
}

pub fn main() void {
    std.process.exit(run());
}

fn run() u8 {
    var msg_buf: [512]u8 = undefined;
    var line_buf: [1024]u8 = undefined;
    var msg: []const u8 = "";
    const cfg = config.load(getenv, sys.cpuCount(), &msg_buf, &msg) catch {
        writeStderr(std.fmt.bufPrint(&line_buf, "zig-proxy: {s}\n", .{msg}) catch "zig-proxy: invalid configuration\n");
        return 2;
    };
    const gpa = std.heap.smp_allocator;

    const listen_fd = sys.listen(&cfg.listen) catch |e| {
        writeStderr(std.fmt.bufPrint(&line_buf, "zig-proxy: listen on LISTEN_ADDR: {s}\n", .{@errorName(e)}) catch "zig-proxy: cannot listen\n");
        return 1;
    };
    const shared = gpa.create(server.Shared) catch return 1;
    shared.* = .{
        .cfg = cfg,
        .pool = pool.Pool.init(gpa, cfg.upstream, max_idle_upstream) catch return 1,
        .gpa = gpa,
    };

    var act: linux.Sigaction = .{ .handler = .{ .handler = onSignal }, .mask = linux.sigemptyset(), .flags = 0 };
    _ = linux.sigaction(linux.SIG.TERM, &act, null);
    _ = linux.sigaction(linux.SIG.INT, &act, null);
    var ignore: linux.Sigaction = .{ .handler = .{ .handler = linux.SIG.IGN }, .mask = linux.sigemptyset(), .flags = 0 };
    _ = linux.sigaction(linux.SIG.PIPE, &ignore, null);

    // The bound address is printed, not the configured one, so that a
    // caller asking for port 0 learns which port it got.
    var addr_buf: [80]u8 = undefined;
    const bound = if (sys.localAddress(listen_fd)) |a| formatAddr(&addr_buf, a) else "?";
    writeStderr(std.fmt.bufPrint(&line_buf, "proxylab-zig-proxy {s} zig {s} listen={s} upstream={s} workers={d}\n", .{
        build_options.version, builtin.zig_version_string, bound, cfg.upstream_text, cfg.workers,
    }) catch "proxylab-zig-proxy\n");

    const acceptors = gpa.alloc(std.Thread, cfg.workers) catch return 1;
    var started: usize = 0;
    for (acceptors) |*t| {
        t.* = std.Thread.spawn(.{ .stack_size = connection_stack_bytes }, acceptLoop, .{ shared, listen_fd }) catch break;
        started += 1;
    }
    if (started == 0) {
        writeStderr("zig-proxy: cannot start threads\n");
        return 1;
    }

    while (!stop_requested.load(.acquire)) sys.sleepMs(50);
    shared.stopping.store(true, .release);
    for (acceptors[0..started]) |t| t.join();
    // New connections are refused from here on.
    sys.close(listen_fd);
    const give_up = sys.nowMs() + shutdown_grace_ms;
    while (shared.active.load(.acquire) > 0 and sys.nowMs() < give_up) sys.sleepMs(10);
    return 0;
}

/// Each worker accepts on the shared listening socket and hands every
/// connection to a thread of its own.
fn acceptLoop(sh: *server.Shared, listen_fd: i32) void {
    while (!sh.stopping.load(.acquire)) {
        sys.wait(listen_fd, linux.POLL.IN, sys.nowMs() + accept_poll_ms) catch continue;
        const a = sys.accept(listen_fd) catch |e| switch (e) {
            error.WouldBlock => continue,
            // Out of descriptors or memory: wait for connections to end.
            error.Failed => {
                sys.sleepMs(10);
                continue;
            },
        };
        if (sh.stopping.load(.acquire) or sh.connections.load(.monotonic) >= max_connections) {
            sys.close(a.fd);
            continue;
        }
        sys.setNoDelay(a.fd);
        const c = server.Conn.create(sh, a.fd, a.addr) catch {
            sys.close(a.fd);
            continue;
        };
        _ = sh.connections.fetchAdd(1, .monotonic);
        const t = std.Thread.spawn(.{ .stack_size = connection_stack_bytes }, server.serveConnection, .{c}) catch {
            _ = sh.connections.fetchSub(1, .monotonic);
            c.destroy();
            sys.close(a.fd);
            continue;
        };
        t.detach();
    }
}

test {
    _ = @import("http.zig");
    _ = @import("config.zig");
}
