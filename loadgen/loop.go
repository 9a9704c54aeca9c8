package loadgen

import (
	"errors"
	"fmt"
	"iter"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loop drives a share of a step's connection slots from one goroutine, as
// wrk drives its connections from one event loop per thread. Each slot's
// worker runs as a coroutine (iter.Pull) that yields wherever it would
// block, on its socket or on the pacer, and the loop resumes it when its
// epoll instance says the socket is ready or the worker's time has come.
//
// A goroutine per connection, parked in the runtime's poller, cost a read
// that found nothing after every write and a trip through the scheduler per
// answer. On the core the load generator shares with the upstream (the
// lab's placement on a 2-core host), that made every request dearer than
// wrk's, and the upstream had that much less. Here a request costs its
// write, its read, a share of one epoll_wait and two coroutine switches.
//
// The registration is level-triggered, so a worker that has just sent a
// request waits before its first read: whatever the socket holds, an answer
// or the end of a connection the peer closed while it was idle, is
// reported at once, never lost to a readiness already consumed.
//
// Everything that touches a slot's descriptor runs on the loop's goroutine
// (its coroutines included), so the descriptor is never closed under a
// read: the timeout and an interruption are enforced here, not from
// outside.
type loop struct {
	epfd   int
	wakefd int // an eventfd written to wake the loop when the step is interrupted
	start  time.Time
	sched  *schedule

	// every is how often the timeout is checked: a few times per timeout.
	timeout, every time.Duration

	slots    []*conn
	live     int           // workers not yet returned
	sleepers []*conn       // waiting for a hit's time, in the order of their times
	turns    []*conn       // waiting for their turn after a request that never waited
	spare    []*conn       // the other buffer of turns
	sockaddr unix.Sockaddr // the target's, for this loop's dials alone

	// The epoll descriptor as the runtime's poller sees it, what the loop
	// waits on; the end of that wait (since start) and the events.
	file     *os.File
	rc       syscall.RawConn
	deadline time.Duration
	events   []unix.EpollEvent
	n        int

	aborted atomic.Bool
}

// wakeEvent marks the eventfd's events; slot events carry the slot's index.
const wakeEvent = -1

// errAborted is the error of a request cut short by an interruption, and
// of a dial refused after it.
var errAborted = errors.New("loadgen: step interrupted")

func newLoop(start time.Time, sched *schedule, timeout time.Duration) (*loop, error) {
	// The epoll descriptor, non-blocking so that os.NewFile gives it to
	// the runtime's poller.
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("loadgen: epoll descriptor: %w", err)
	}
	l := &loop{
		epfd: epfd, file: os.NewFile(uintptr(epfd), "epoll"), start: start, sched: sched,
		timeout: timeout, every: min(max(timeout/20, 10*time.Millisecond), time.Second),
	}
	if l.rc, err = l.file.SyscallConn(); err != nil {
		l.file.Close()
		return nil, fmt.Errorf("loadgen: epoll descriptor: %w", err)
	}
	// A descriptor the poller did not take has no deadlines, and the loop
	// would spin instead of waiting.
	if err := l.file.SetReadDeadline(time.Time{}); err != nil {
		l.file.Close()
		return nil, fmt.Errorf("loadgen: the runtime's poller cannot wait on an epoll descriptor: %w", err)
	}
	// The eventfd that wakes the loop when the step is interrupted.
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.file.Close()
		return nil, fmt.Errorf("loadgen: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeEvent}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, l.wakefd, &ev); err != nil {
		l.close()
		return nil, fmt.Errorf("loadgen: epoll_ctl for the wake-up eventfd: %w", err)
	}
	return l, nil
}

// add makes c one of the loop's slots, its worker the coroutine work. A
// connection still open from an earlier step is watched from now on.
func (l *loop) add(c *conn, work func()) {
	c.lp, c.index = l, int32(len(l.slots))
	l.slots = append(l.slots, c)
	c.next, c.stop = iter.Pull(func(yield func(struct{}) bool) {
		c.yield = yield
		work()
	})
	if c.fd >= 0 && c.watch(unix.EPOLL_CTL_ADD, readEvents) != nil {
		c.close()
	}
}

// run starts every worker and drives them until all have returned.
func (l *loop) run() {
	l.events = make([]unix.EpollEvent, min(len(l.slots)+1, 256))
	l.live = len(l.slots)
	for _, c := range l.slots {
		l.resume(c)
	}
	check := l.every
	for l.live > 0 {
		now := time.Since(l.start)
		if l.aborted.Load() {
			l.abortAll()
		}
		l.wakeSleepers(now)
		if now >= check {
			l.enforceTimeout(now)
			check = now + l.every
		}
		if l.live == 0 {
			break
		}
		until := check
		if len(l.sleepers) > 0 {
			until = min(until, l.sleepers[0].until)
		}
		if len(l.turns) > 0 {
			until = now
		}
		l.dispatch(l.poll(now, until))
		l.giveTurns()
	}
	for _, c := range l.slots {
		c.stop()
		c.next, c.stop, c.yield, c.lp = nil, nil, nil, nil
	}
}

// dispatch resumes the workers whose sockets are ready. A socket that
// becomes readable while no request is out on it was closed by the peer or
// holds bytes nobody asked for: it is closed, as net/http closes such an
// idle connection, and its worker's next request opens a new one.
func (l *loop) dispatch(events []unix.EpollEvent) {
	for i := range events {
		ev := &events[i]
		if ev.Fd == wakeEvent {
			var b [8]byte
			unix.Read(l.wakefd, b[:])
			continue
		}
		c := l.slots[ev.Fd]
		if c.gen != ev.Pad || c.fd < 0 {
			continue // about a descriptor closed since
		}
		switch {
		case c.waiting == forRead, c.waiting == forWrite && ev.Events&writeReady != 0:
			l.resume(c)
		case c.since < 0 && c.waiting != forWrite:
			c.close()
		}
	}
}

const writeReady = unix.EPOLLOUT | unix.EPOLLERR | unix.EPOLLHUP

// resume runs c's worker until it waits again or returns.
func (l *loop) resume(c *conn) {
	if _, ok := c.next(); !ok {
		l.live--
	}
}

// sleep is a worker's wait for due (since start); it reports false when
// the step was halted first.
func (l *loop) sleep(c *conn, due time.Duration) bool {
	c.until = due
	// Workers claim hits in order, so a new sleeper nearly always goes
	// last; the walk back keeps the order whatever the clock did.
	i := len(l.sleepers)
	l.sleepers = append(l.sleepers, c)
	for ; i > 0 && l.sleepers[i-1].until > due; i-- {
		l.sleepers[i] = l.sleepers[i-1]
	}
	l.sleepers[i] = c
	c.wait(forTime)
	return !l.sched.stopped.Load()
}

// turn is a worker's pause after a request that never waited, one whose
// dial was refused at once, say, and now and then in a long run of reads
// that all found data: it goes on once the loop has looked at its sockets
// and its clock, so that a worker that never waits does not hold up every
// other connection of the loop, and their timeouts.
func (l *loop) turn(c *conn) {
	l.turns = append(l.turns, c)
	c.wait(forTurn)
}

// giveTurns resumes the workers that were waiting for their turn when it
// began; those that pause again wait for the next one. The process's other
// goroutines get theirs first: a loop with turns to give does not park.
func (l *loop) giveTurns() {
	if len(l.turns) == 0 {
		return
	}
	runtime.Gosched()
	q := l.turns
	l.turns = l.spare[:0]
	for _, c := range q {
		l.resume(c)
	}
	l.spare = q[:0]
}

// wakeSleepers resumes the workers whose time has come, every one of them
// once the step is halted.
func (l *loop) wakeSleepers(now time.Duration) {
	halted := l.sched.stopped.Load()
	for len(l.sleepers) > 0 && (halted || l.sleepers[0].until <= now) {
		c := l.sleepers[0]
		l.sleepers = l.sleepers[1:]
		l.resume(c)
	}
}

// enforceTimeout closes the connection of every request older than the
// timeout and wakes its worker, which reports the request as timed out.
// Looking a few times per timeout costs less than a timer per request.
func (l *loop) enforceTimeout(now time.Duration) {
	for _, c := range l.slots {
		if s := c.since; s >= 0 && now-s > l.timeout && c.timedOut != s {
			c.timedOut = s
			l.cut(c, net.ErrClosed)
		}
	}
}

// abortAll closes every connection and wakes every worker waiting on one;
// the halted schedule then ends them all.
func (l *loop) abortAll() {
	for _, c := range l.slots {
		l.cut(c, errAborted)
	}
}

// cut closes c's connection and wakes its worker if it was waiting on it.
func (l *loop) cut(c *conn, err error) {
	c.close()
	if c.waiting == forRead || c.waiting == forWrite {
		c.wakeErr = err
		l.resume(c)
	}
}

// abort interrupts the step: safe from any goroutine.
func (l *loop) abort() {
	l.aborted.Store(true)
	l.wake()
}

// wake interrupts the loop's wait for events: safe from any goroutine.
func (l *loop) wake() {
	one := [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

// poll returns the events that are there, or waits for some until until
// (since start). The loop waits in the runtime's poller, on its epoll
// descriptor, as any goroutine waits for a socket: a wait in epoll_wait
// itself would hold the thread in a system call, and the runtime would hand
// the CPU to another thread for every such wait that lasts (a futex wake
// and a sleep each time, on the CPU the upstream may be sharing).
func (l *loop) poll(now, until time.Duration) []unix.EpollEvent {
	if until <= now {
		return l.events[:l.ready()]
	}
	// The wait's end moves only when a sleeper or the timeout check
	// comes due: most waits keep the deadline already set.
	if until != l.deadline {
		l.deadline = until
		l.file.SetReadDeadline(l.start.Add(until))
	}
	// Read takes what is there first, and waits only when nothing is.
	// An error is the deadline's: the loop looks at its clock and goes on.
	l.n = 0
	l.rc.Read(l.readyNow)
	return l.events[:l.n]
}

// readyNow is poll's callback: it takes the events that are there and
// waits when there are none.
func (l *loop) readyNow(uintptr) bool {
	l.n = l.ready()
	return l.n > 0
}

// ready takes the events that are there without waiting.
func (l *loop) ready() int {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])),
			uintptr(len(l.events)), 0, 0, 0)
		switch errno {
		case 0:
			return int(n)
		case unix.EINTR:
			continue
		default:
			// The descriptors are the loop's own: nothing else can fail it.
			panic(fmt.Sprintf("loadgen: epoll_wait: %v", errno))
		}
	}
}

func (l *loop) close() {
	unix.Close(l.wakefd)
	l.file.Close()
}
