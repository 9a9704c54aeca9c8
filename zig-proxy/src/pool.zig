//! Idle keep-alive connections to the upstream, one pool per worker so that
//! taking and returning one needs no lock; reused last-in first-out: the
//! most recently used socket is the least likely to have been closed by the
//! upstream's idle timeout.
const std = @import("std");
const sys = @import("sys.zig");

pub const Pool = struct {
    addr: std.net.Address,
    idle: []i32,
    count: usize = 0,

    pub fn init(gpa: std.mem.Allocator, addr: std.net.Address, max_idle: usize) !Pool {
        return .{ .addr = addr, .idle = try gpa.alloc(i32, max_idle) };
    }

    /// An idle connection that still looks usable, or null.
    pub fn get(self: *Pool) ?i32 {
        while (self.count > 0) {
            self.count -= 1;
            const fd = self.idle[self.count];
            if (!sys.idleBroken(fd)) return fd;
            sys.close(fd);
        }
        return null;
    }

    pub fn dial(self: *Pool, deadline: i64) sys.ConnectError!i32 {
        return sys.connect(&self.addr, deadline);
    }

    /// Keeps fd for the next request; only a connection whose last response
    /// was read completely may come back here.
    pub fn put(self: *Pool, fd: i32) void {
        if (self.count < self.idle.len) {
            self.idle[self.count] = fd;
            self.count += 1;
            return;
        }
        sys.close(fd);
    }
};

test "an idle connection with pending bytes or an end is not taken" {
    const t = std.testing;
    const linux = std.os.linux;
    var p = try Pool.init(t.allocator, undefined, 4);
    defer t.allocator.free(p.idle);
    var pairs: [3][2]i32 = undefined;
    for (&pairs) |*pair| {
        try t.expectEqual(linux.E.SUCCESS, std.posix.errno(linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK, 0, pair)));
    }
    defer for (pairs) |pair| {
        _ = linux.close(pair[1]);
    };
    // LIFO: the last one put is checked first.
    p.put(pairs[0][0]); // healthy
    p.put(pairs[1][0]); // its peer closed
    p.put(pairs[2][0]); // unsolicited bytes pending
    _ = linux.close(pairs[1][1]);
    pairs[1][1] = -1;
    _ = linux.write(pairs[2][1], "x", 1);
    try t.expectEqual(@as(?i32, pairs[0][0]), p.get());
    try t.expectEqual(@as(?i32, null), p.get());
    _ = linux.close(pairs[0][0]);
}
