//! A per-thread event loop that runs connections as stackful coroutines.
//!
//! Every socket is non-blocking. When a read or write would block, the
//! coroutine doing it registers interest in the descriptor (epoll, edge
//! triggered, once per descriptor) and a deadline (a binary heap of the
//! coroutines that wait with one), then switches back to the loop. The loop
//! switches into the coroutine again when epoll reports the descriptor or
//! the deadline passes. So the exchange code stays a plain sequence of
//! blocking-style steps while one thread serves every connection it owns,
//! and no thread ever sleeps on a single connection's behalf.
const std = @import("std");
const sys = @import("sys.zig");
const linux = std.os.linux;

// The context switch saves the callee-saved registers of the System V
// x86-64 ABI on the old stack, swaps stack pointers and restores them from
// the new one; the caller has saved everything else around the call.
// Copying rbx to rdi on the way out costs nothing (rdi is the caller's to
// lose) and hands a new coroutine its argument when this returns into
// coroMain for the first time.
fn switchStacks() callconv(.naked) void {
    asm volatile (
        \\  pushq %%rbp
        \\  pushq %%rbx
        \\  pushq %%r12
        \\  pushq %%r13
        \\  pushq %%r14
        \\  pushq %%r15
        \\  movq %%rsp, (%%rdi)
        \\  movq %%rsi, %%rsp
        \\  popq %%r15
        \\  popq %%r14
        \\  popq %%r13
        \\  popq %%r12
        \\  popq %%rbx
        \\  popq %%rbp
        \\  movq %%rbx, %%rdi
        \\  retq
    );
}

const zp_switch: *const fn (save_sp: *usize, load_sp: usize) callconv(.c) void = @ptrCast(&switchStacks);

fn coroMain(c: *Coro) callconv(.c) noreturn {
    c.entry(c);
    c.done = true;
    zp_switch(&c.sp, c.loop.sched_sp);
    unreachable;
}

const Wake = enum { none, ready, timeout };
const not_in_heap = std.math.maxInt(u32);

pub const Coro = struct {
    sp: usize = 0,
    loop: *Loop = undefined,
    entry: *const fn (*Coro) void,
    /// Runs on the loop's own stack once entry has returned, so that it may
    /// free the coroutine's stack.
    finish: *const fn (*Coro) void,
    done: bool = false,
    wake: Wake = .none,
    wait_events: u32 = 0,
    deadline: i64 = sys.no_deadline,
    heap_index: u32 = not_in_heap,
};

threadlocal var current_loop: ?*Loop = null;

/// The loop of the calling thread while a coroutine of it runs; null
/// elsewhere (the main thread, the loop's own stack).
pub fn running() ?*Loop {
    const l = current_loop orelse return null;
    return if (l.current != null) l else null;
}

/// The loop of the calling thread, whether or not a coroutine runs.
pub fn ofThread() ?*Loop {
    return current_loop;
}

const Slot = struct { waiter: ?*Coro = null, registered: bool = false };

pub const Loop = struct {
    ep: i32,
    gpa: std.mem.Allocator,
    sched_sp: usize = 0,
    current: ?*Coro = null,
    /// Coroutines waiting with a deadline, earliest first.
    timers: std.ArrayList(*Coro) = .empty,
    /// Per descriptor: who waits on it, and whether epoll knows it.
    fds: std.ArrayList(Slot) = .empty,

    pub fn init(gpa: std.mem.Allocator) error{Failed}!Loop {
        const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        if (std.posix.errno(rc) != .SUCCESS) return error.Failed;
        return .{ .ep = @intCast(rc), .gpa = gpa };
    }

    /// Makes this loop the calling thread's.
    pub fn bind(self: *Loop) void {
        current_loop = self;
    }

    /// Adds a descriptor the loop itself handles (not a coroutine's),
    /// reported with its number.
    pub fn watch(self: *Loop, fd: i32, events: u32) bool {
        var ev = linux.epoll_event{ .events = events, .data = .{ .fd = fd } };
        return std.posix.errno(linux.epoll_ctl(self.ep, linux.EPOLL.CTL_ADD, fd, &ev)) == .SUCCESS;
    }

    pub fn unwatch(self: *Loop, fd: i32) void {
        _ = linux.epoll_ctl(self.ep, linux.EPOLL.CTL_DEL, fd, null);
    }

    /// Starts entry on a stack whose highest usable address is stack_top
    /// and runs it until it first waits.
    pub fn spawn(self: *Loop, c: *Coro, stack_top: usize) void {
        const top = stack_top & ~@as(usize, 15);
        // zp_switch pops six registers and returns into coroMain, which
        // must find the stack as a call leaves it: 8 bytes past 16-byte
        // alignment, a (never used) return address on top.
        const sp = top - 64;
        const words: [*]usize = @ptrFromInt(sp);
        words[0] = 0; // r15
        words[1] = 0; // r14
        words[2] = 0; // r13
        words[3] = 0; // r12
        words[4] = @intFromPtr(c); // rbx, then rdi: coroMain's argument
        words[5] = 0; // rbp
        words[6] = @intFromPtr(&coroMain);
        words[7] = 0;
        c.sp = sp;
        c.loop = self;
        c.done = false;
        c.heap_index = not_in_heap;
        self.resumeCoro(c);
    }

    fn resumeCoro(self: *Loop, c: *Coro) void {
        self.current = c;
        zp_switch(&self.sched_sp, c.sp);
        self.current = null;
        if (c.done) c.finish(c);
    }

    fn slot(self: *Loop, fd: i32) ?*Slot {
        const i: usize = @intCast(fd);
        if (i >= self.fds.items.len) {
            const want = @max(i + 1, self.fds.items.len * 2, 1024);
            self.fds.appendNTimes(self.gpa, .{}, want - self.fds.items.len) catch return null;
        }
        return &self.fds.items[i];
    }

    /// Suspends the running coroutine until fd is ready for events (or has
    /// failed) or the deadline passes. A wake-up may be spurious; callers
    /// retry their call and wait again, as they would after EAGAIN.
    pub fn wait(self: *Loop, fd: i32, events: u32, deadline: i64) sys.Error!void {
        const c = self.current.?;
        if (deadline != sys.no_deadline and deadline <= sys.nowMs()) return error.Timeout;
        const s = self.slot(fd) orelse return error.Closed;
        if (!s.registered) {
            var ev = linux.epoll_event{
                .events = linux.EPOLL.IN | linux.EPOLL.OUT | linux.EPOLL.RDHUP | linux.EPOLL.ET,
                .data = .{ .fd = fd },
            };
            if (std.posix.errno(linux.epoll_ctl(self.ep, linux.EPOLL.CTL_ADD, fd, &ev)) != .SUCCESS) return error.Closed;
            s.registered = true;
        }
        s.waiter = c;
        c.wait_events = events | linux.EPOLL.ERR | linux.EPOLL.HUP;
        c.wake = .none;
        if (deadline != sys.no_deadline) {
            c.deadline = deadline;
            self.timerPush(c) catch {
                s.waiter = null;
                return error.Closed;
            };
        }
        zp_switch(&c.sp, self.sched_sp);
        // The slot table may have grown meanwhile: look it up again.
        if (self.slot(fd)) |s2| {
            if (s2.waiter == c) s2.waiter = null;
        }
        if (c.heap_index != not_in_heap) self.timerRemove(c);
        if (c.wake == .timeout) return error.Timeout;
    }

    /// Forgets a descriptor about to be closed; closing removes it from
    /// epoll, and its number may come back for another socket.
    pub fn forget(self: *Loop, fd: i32) void {
        if (fd < 0) return;
        const i: usize = @intCast(fd);
        if (i < self.fds.items.len) self.fds.items[i] = .{};
    }

    /// Wakes the coroutine waiting on the descriptor of ev, if it waits for
    /// what happened.
    pub fn dispatch(self: *Loop, ev: *const linux.epoll_event) void {
        const i: usize = @intCast(ev.data.fd);
        if (i >= self.fds.items.len) return;
        const c = self.fds.items[i].waiter orelse return;
        if (ev.events & c.wait_events == 0) return;
        self.fds.items[i].waiter = null;
        c.wake = .ready;
        self.resumeCoro(c);
    }

    /// Milliseconds until the earliest deadline, or -1 without one.
    pub fn timeoutMs(self: *const Loop, now: i64) i32 {
        if (self.timers.items.len == 0) return -1;
        const left = self.timers.items[0].deadline - now;
        return @intCast(std.math.clamp(left, 0, 60_000));
    }

    /// Wakes every coroutine whose deadline has passed.
    pub fn fireTimers(self: *Loop, now: i64) void {
        while (self.timers.items.len > 0 and self.timers.items[0].deadline <= now) {
            const c = self.timers.items[0];
            self.timerRemove(c);
            c.wake = .timeout;
            self.resumeCoro(c);
        }
    }

    fn timerPush(self: *Loop, c: *Coro) !void {
        try self.timers.append(self.gpa, c);
        const i = self.timers.items.len - 1;
        c.heap_index = @intCast(i);
        self.siftUp(i);
    }

    fn timerRemove(self: *Loop, c: *Coro) void {
        const i: usize = c.heap_index;
        c.heap_index = not_in_heap;
        const last = self.timers.pop().?;
        if (last == c) return;
        self.timers.items[i] = last;
        last.heap_index = @intCast(i);
        self.siftDown(i);
        self.siftUp(last.heap_index);
    }

    fn siftUp(self: *Loop, start: usize) void {
        const h = self.timers.items;
        var i = start;
        while (i > 0) {
            const p = (i - 1) / 2;
            if (h[p].deadline <= h[i].deadline) break;
            self.swap(i, p);
            i = p;
        }
    }

    fn siftDown(self: *Loop, start: usize) void {
        const h = self.timers.items;
        var i = start;
        while (true) {
            var m = i;
            const l = 2 * i + 1;
            if (l < h.len and h[l].deadline < h[m].deadline) m = l;
            if (l + 1 < h.len and h[l + 1].deadline < h[m].deadline) m = l + 1;
            if (m == i) return;
            self.swap(i, m);
            i = m;
        }
    }

    fn swap(self: *Loop, a: usize, b: usize) void {
        const h = self.timers.items;
        std.mem.swap(*Coro, &h[a], &h[b]);
        h[a].heap_index = @intCast(a);
        h[b].heap_index = @intCast(b);
    }
};

test "a coroutine runs until it waits and resumes where it stopped" {
    const t = std.testing;
    var l = try Loop.init(t.allocator);
    defer {
        l.timers.deinit(t.allocator);
        l.fds.deinit(t.allocator);
        _ = linux.close(l.ep);
    }
    l.bind();
    defer current_loop = null;
    var fds: [2]i32 = undefined;
    try t.expectEqual(linux.E.SUCCESS, std.posix.errno(linux.pipe2(&fds, .{ .NONBLOCK = true })));
    defer for (fds) |fd| {
        _ = linux.close(fd);
    };

    const Ctx = struct {
        coro: Coro,
        fd: i32,
        steps: std.ArrayList(u8) = .empty,
        finished: bool = false,

        fn entry(co: *Coro) void {
            const self: *@This() = @fieldParentPtr("coro", co);
            self.steps.appendAssumeCapacity('a');
            // No deadline: only the pipe can wake it.
            co.loop.wait(self.fd, linux.EPOLL.IN, sys.no_deadline) catch unreachable;
            self.steps.appendAssumeCapacity('b');
            const r = co.loop.wait(self.fd, linux.EPOLL.OUT, sys.nowMs() + 1);
            self.steps.appendAssumeCapacity(if (r == error.Timeout) 't' else 'x');
        }
        fn finish(co: *Coro) void {
            const self: *@This() = @fieldParentPtr("coro", co);
            self.finished = true;
        }
    };
    var buf: [8]u8 = undefined;
    var ctx: Ctx = .{ .coro = .{ .entry = Ctx.entry, .finish = Ctx.finish }, .fd = fds[0], .steps = .initBuffer(&buf) };
    const stack = try t.allocator.alignedAlloc(u8, .@"16", 64 << 10);
    defer t.allocator.free(stack);

    l.spawn(&ctx.coro, @intFromPtr(stack.ptr) + stack.len);
    try t.expectEqualStrings("a", ctx.steps.items);
    try t.expectEqual(@as(i32, -1), l.timeoutMs(sys.nowMs()));

    _ = linux.write(fds[1], "x", 1);
    var evs: [4]linux.epoll_event = undefined;
    const n = linux.epoll_wait(l.ep, &evs, evs.len, 1000);
    for (evs[0..n]) |*ev| l.dispatch(ev);
    try t.expectEqualStrings("b", ctx.steps.items[1..]);
    try t.expect(!ctx.finished);

    // The read end is never writable: the second wait ends by its deadline.
    while (!ctx.finished) {
        sys.sleepMs(2);
        l.fireTimers(sys.nowMs());
    }
    try t.expectEqualStrings("abt", ctx.steps.items);
}

test "the timer heap yields deadlines in order and forgets removed ones" {
    const t = std.testing;
    var l = Loop{ .ep = -1, .gpa = t.allocator };
    defer l.timers.deinit(t.allocator);
    const nop = struct {
        fn f(_: *Coro) void {}
    }.f;
    var cs: [16]Coro = undefined;
    var prng = std.Random.DefaultPrng.init(7);
    for (&cs) |*c| {
        c.* = .{ .entry = nop, .finish = nop, .deadline = prng.random().intRangeAtMost(i64, 0, 1000) };
        try l.timerPush(c);
    }
    l.timerRemove(&cs[3]);
    l.timerRemove(&cs[11]);
    var last: i64 = -1;
    var popped: usize = 0;
    while (l.timers.items.len > 0) : (popped += 1) {
        const c = l.timers.items[0];
        try t.expect(c != &cs[3] and c != &cs[11]);
        try t.expect(c.deadline >= last);
        last = c.deadline;
        l.timerRemove(c);
    }
    try t.expectEqual(@as(usize, 14), popped);
}
