//! zig-proxy: the lab's HTTP/1.1 reverse proxy written in Zig with the
//! standard library only. It forwards every request to one upstream over
//! pooled keep-alive connections, as the proxy contract in DESIGN.md asks.
const std = @import("std");
const builtin = @import("builtin");
const build_options = @import("build_options");
const sys = @import("sys.zig");
const config = @import("config.zig");
const server = @import("server.zig");

const linux = std.os.linux;

const worker_stack_bytes = 256 * 1024;

var stop_fd: i32 = -1;

fn onSignal(_: i32) callconv(.c) void {
    server.stopping.store(true, .release);
    // write(2) is async-signal-safe; the eventfd wakes every worker's loop.
    const one: u64 = 1;
    _ = linux.write(stop_fd, std.mem.asBytes(&one), 8);
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

    const listen_fds = listenAll(gpa, cfg.listen, cfg.workers, &line_buf) catch return 1;
    const efd = linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK);
    if (std.posix.errno(efd) != .SUCCESS) {
        writeStderr("zig-proxy: cannot create an eventfd\n");
        return 1;
    }
    stop_fd = @intCast(efd);
    const shared = gpa.create(server.Shared) catch return 1;
    shared.* = .{ .cfg = cfg, .gpa = gpa, .stop_fd = stop_fd };

    var act: linux.Sigaction = .{ .handler = .{ .handler = onSignal }, .mask = linux.sigemptyset(), .flags = 0 };
    _ = linux.sigaction(linux.SIG.TERM, &act, null);
    _ = linux.sigaction(linux.SIG.INT, &act, null);
    var ignore: linux.Sigaction = .{ .handler = .{ .handler = linux.SIG.IGN }, .mask = linux.sigemptyset(), .flags = 0 };
    _ = linux.sigaction(linux.SIG.PIPE, &ignore, null);

    // The bound address is printed, not the configured one, so that a
    // caller asking for port 0 learns which port it got.
    var addr_buf: [80]u8 = undefined;
    const bound = if (sys.localAddress(listen_fds[0])) |a| formatAddr(&addr_buf, a) else "?";
    writeStderr(std.fmt.bufPrint(&line_buf, "proxylab-zig-proxy {s} zig {s} listen={s} upstream={s} workers={d}\n", .{
        build_options.version, builtin.zig_version_string, bound, cfg.upstream_text, cfg.workers,
    }) catch "proxylab-zig-proxy\n");

    const workers = gpa.alloc(std.Thread, cfg.workers) catch return 1;
    var started: usize = 0;
    for (workers, listen_fds) |*t, fd| {
        t.* = std.Thread.spawn(.{ .stack_size = worker_stack_bytes }, server.runWorker, .{ shared, fd }) catch {
            sys.close(fd);
            continue;
        };
        started += 1;
    }
    if (started == 0) {
        writeStderr("zig-proxy: cannot start threads\n");
        return 1;
    }
    // Each worker returns once a stop was asked for and its in-flight
    // requests ended or their grace passed.
    for (workers[0..started]) |t| t.join();
    return 0;
}

/// One SO_REUSEPORT listening socket per worker, all on the same address.
/// A plain bind first checks the address is free: SO_REUSEPORT alone would
/// let this proxy share a port with another process of the same user.
fn listenAll(gpa: std.mem.Allocator, want: std.net.Address, n: u32, line_buf: []u8) ![]i32 {
    var addr = want;
    if (addr.getPort() != 0) {
        const probe = sys.listenExclusive(&addr) catch |e| return listenFailed(line_buf, e);
        sys.close(probe);
    }
    const fds = try gpa.alloc(i32, n);
    for (fds, 0..) |*fd, i| {
        fd.* = sys.listen(&addr) catch |e| {
            for (fds[0..i]) |f| sys.close(f);
            return listenFailed(line_buf, e);
        };
        // Port 0 asks for any free port: the others join the first one's.
        if (i == 0 and addr.getPort() == 0) {
            if (sys.localAddress(fd.*)) |a| addr.setPort(a.getPort());
        }
    }
    return fds;
}

fn listenFailed(line_buf: []u8, e: sys.ListenError) error{Listen} {
    writeStderr(std.fmt.bufPrint(line_buf, "zig-proxy: listen on LISTEN_ADDR: {s}\n", .{@errorName(e)}) catch "zig-proxy: cannot listen\n");
    return error.Listen;
}

test {
    _ = @import("http.zig");
    _ = @import("loop.zig");
    _ = @import("config.zig");
    _ = @import("stream.zig");
    _ = @import("pool.zig");
    _ = @import("forward.zig");
}
