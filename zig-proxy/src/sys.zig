//! Thin wrappers over the Linux socket calls. The std.posix wrappers treat
//! some errno values as unreachable; a proxy must survive whatever the
//! kernel reports for a connection, so every errno here becomes an error.
const std = @import("std");
const loop = @import("loop.zig");
const linux = std.os.linux;

pub const Error = error{ Timeout, Closed };

pub const no_deadline: i64 = std.math.maxInt(i64);

fn errno(rc: usize) linux.E {
    return std.posix.errno(rc);
}

/// Monotonic clock in milliseconds: deadlines must not move with the wall
/// clock.
pub fn nowMs() i64 {
    var ts: linux.timespec = undefined;
    if (errno(linux.clock_gettime(.MONOTONIC, &ts)) != .SUCCESS) return 0;
    return @as(i64, ts.sec) * 1000 + @divTrunc(@as(i64, ts.nsec), 1_000_000);
}

pub fn sleepMs(ms: u32) void {
    var ts: linux.timespec = .{ .sec = @intCast(ms / 1000), .nsec = @intCast(@as(u64, ms % 1000) * 1_000_000) };
    _ = linux.nanosleep(&ts, null);
}

/// Waits until fd is ready for events or the deadline passes. Inside a
/// connection's coroutine this hands the wait to the thread's event loop;
/// elsewhere (start-up) it blocks in poll.
pub fn wait(fd: i32, events: i16, deadline: i64) Error!void {
    if (loop.running()) |l| return l.wait(fd, @as(u16, @bitCast(events)), deadline);
    while (true) {
        const left = if (deadline == no_deadline) 60_000 else deadline - nowMs();
        if (left <= 0) return error.Timeout;
        var pfd = [1]linux.pollfd{.{ .fd = fd, .events = events, .revents = 0 }};
        const rc = linux.poll(&pfd, 1, @intCast(@min(left, 60_000)));
        switch (errno(rc)) {
            .SUCCESS => if (rc > 0) return,
            .INTR, .AGAIN => {},
            else => return error.Closed,
        }
    }
}

/// When a socket call may wait: until a fixed instant, and (idle_ms > 0)
/// for at most idle_ms each time it has to wait, counted from when that
/// wait begins. The second bounds a gap without progress, not a whole
/// transfer, and costs a clock read only when a call would block.
pub const Limit = struct {
    at: i64 = no_deadline,
    idle_ms: i64 = 0,

    pub fn waitDeadline(self: Limit) i64 {
        if (self.idle_ms <= 0) return self.at;
        return @min(self.at, nowMs() + self.idle_ms);
    }
};

/// Reads at least one byte; a peer that has closed is error.Closed.
pub fn recv(fd: i32, buf: []u8, deadline: i64) Error!usize {
    return recvLimit(fd, buf, .{ .at = deadline });
}

pub fn recvLimit(fd: i32, buf: []u8, limit: Limit) Error!usize {
    while (true) {
        const rc = linux.read(fd, buf.ptr, buf.len);
        switch (errno(rc)) {
            .SUCCESS => return if (rc == 0) error.Closed else rc,
            .INTR => {},
            .AGAIN => try wait(fd, linux.POLL.IN, limit.waitDeadline()),
            else => return error.Closed,
        }
    }
}

/// Writes all of data. MSG_NOSIGNAL keeps a vanished peer from raising
/// SIGPIPE.
pub fn sendAll(fd: i32, data: []const u8, deadline: i64) Error!void {
    return sendAllLimit(fd, data, .{ .at = deadline });
}

pub fn sendAllLimit(fd: i32, data: []const u8, limit: Limit) Error!void {
    var rest = data;
    while (rest.len > 0) {
        const rc = linux.sendto(fd, rest.ptr, rest.len, linux.MSG.NOSIGNAL, null, 0);
        switch (errno(rc)) {
            .SUCCESS => rest = rest[rc..],
            .INTR => {},
            .AGAIN => try wait(fd, linux.POLL.OUT, limit.waitDeadline()),
            else => return error.Closed,
        }
    }
}

pub fn close(fd: i32) void {
    if (loop.ofThread()) |l| l.forget(fd);
    _ = linux.close(fd);
}

pub fn shutdownWrite(fd: i32) void {
    _ = linux.shutdown(fd, linux.SHUT.WR);
}

pub fn setNoDelay(fd: i32) void {
    const one: i32 = 1;
    _ = linux.setsockopt(fd, linux.IPPROTO.TCP, linux.TCP.NODELAY, std.mem.asBytes(&one), @sizeOf(i32));
}

/// True when an idle connection has something to say: data nobody asked
/// for, or its end. Either way it cannot carry the next request. One
/// non-blocking peek: nothing is taken from the socket, and a connection
/// with nothing pending answers EAGAIN at once.
pub fn idleBroken(fd: i32) bool {
    var b: [1]u8 = undefined;
    const rc = linux.recvfrom(fd, &b, 1, linux.MSG.PEEK | linux.MSG.DONTWAIT, null, null);
    return switch (errno(rc)) {
        .AGAIN => false,
        else => true, // EOF (0), unsolicited bytes (1) or a pending error
    };
}

pub const ConnectError = error{ Refused, Timeout, Failed };

/// Opens a non-blocking TCP connection to addr within the deadline.
pub fn connect(addr: *const std.net.Address, deadline: i64) ConnectError!i32 {
    const rc = linux.socket(addr.any.family, linux.SOCK.STREAM | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, linux.IPPROTO.TCP);
    if (errno(rc) != .SUCCESS) return error.Failed;
    const fd: i32 = @intCast(rc);
    errdefer close(fd);
    while (true) {
        const c = linux.connect(fd, &addr.any, addr.getOsSockLen());
        switch (errno(c)) {
            .SUCCESS => break,
            .INTR => continue,
            .INPROGRESS, .AGAIN => {
                wait(fd, linux.POLL.OUT, deadline) catch |e| return switch (e) {
                    error.Timeout => error.Timeout,
                    error.Closed => error.Failed,
                };
                var err_code: i32 = 0;
                var len: linux.socklen_t = @sizeOf(i32);
                if (errno(linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.ERROR, std.mem.asBytes(&err_code), &len)) != .SUCCESS)
                    return error.Failed;
                if (err_code == 0) break;
                return error.Refused;
            },
            .TIMEDOUT => return error.Timeout,
            else => return error.Refused,
        }
    }
    setNoDelay(fd);
    return fd;
}

pub const ListenError = error{ Socket, Bind, Listen };

/// A listening socket with SO_REUSEPORT, so that every worker can have one
/// of its own on the same address and the kernel spreads connections
/// across them.
pub fn listen(addr: *const std.net.Address) ListenError!i32 {
    return listenWith(addr, true);
}

/// A listening socket without SO_REUSEPORT: it fails if anything listens
/// on addr already.
pub fn listenExclusive(addr: *const std.net.Address) ListenError!i32 {
    return listenWith(addr, false);
}

fn listenWith(addr: *const std.net.Address, reuse_port: bool) ListenError!i32 {
    const rc = linux.socket(addr.any.family, linux.SOCK.STREAM | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, linux.IPPROTO.TCP);
    if (errno(rc) != .SUCCESS) return error.Socket;
    const fd: i32 = @intCast(rc);
    errdefer close(fd);
    const one: i32 = 1;
    _ = linux.setsockopt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, std.mem.asBytes(&one), @sizeOf(i32));
    if (reuse_port and errno(linux.setsockopt(fd, linux.SOL.SOCKET, linux.SO.REUSEPORT, std.mem.asBytes(&one), @sizeOf(i32))) != .SUCCESS)
        return error.Socket;
    if (errno(linux.bind(fd, &addr.any, addr.getOsSockLen())) != .SUCCESS) return error.Bind;
    if (errno(linux.listen(fd, 4096)) != .SUCCESS) return error.Listen;
    return fd;
}

pub fn localAddress(fd: i32) ?std.net.Address {
    var addr: std.net.Address = undefined;
    var len: linux.socklen_t = @sizeOf(std.net.Address);
    if (errno(linux.getsockname(fd, &addr.any, &len)) != .SUCCESS) return null;
    return addr;
}

pub const Accepted = struct { fd: i32, addr: std.net.Address };

pub const AcceptError = error{ WouldBlock, Failed };

pub fn accept(fd: i32) AcceptError!Accepted {
    var addr: std.net.Address = undefined;
    var len: linux.socklen_t = @sizeOf(std.net.Address);
    while (true) {
        const rc = linux.accept4(fd, &addr.any, &len, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC);
        switch (errno(rc)) {
            .SUCCESS => return .{ .fd = @intCast(rc), .addr = addr },
            .INTR => {},
            .AGAIN => return error.WouldBlock,
            else => return error.Failed,
        }
    }
}

/// The number of CPUs this process may run on.
pub fn cpuCount() u32 {
    var set: linux.cpu_set_t = undefined;
    if (errno(linux.sched_getaffinity(0, @sizeOf(linux.cpu_set_t), &set)) != .SUCCESS) return 1;
    const n = linux.CPU_COUNT(set);
    return if (n == 0) 1 else n;
}
