package loadgen

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A slot's connection is a non-blocking socket of its own, outside the
// runtime's poller: the loop driving the slot (loop.go) watches it, and
// the slot's worker, a coroutine of that loop, reads and writes it with
// raw system calls and yields to the loop where it would block. Errors are
// worded as net.Conn words them, "read tcp 127.0.0.1:40312->127.0.0.1:8081:
// read: connection reset by peer", so that results read as before.

// waitFor is what a waiting worker waits for.
type waitFor uint8

const (
	notWaiting waitFor = iota
	forRead
	forWrite
	forTime
	forTurn
)

// turnReads is how many reads that found data a worker makes before it
// lets its loop have a turn (loop.turn).
const turnReads = 64

// readEvents is a connection's watch while it is not being written: level
// triggered, so that readiness is reported for as long as it lasts.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// wait yields to the loop until it resumes the worker for w, and returns
// why it did when the connection was closed meanwhile (a timeout, an
// interruption).
func (c *conn) wait(w waitFor) error {
	c.waits++
	c.waiting = w
	c.yield(struct{}{})
	err := c.wakeErr
	c.waiting, c.wakeErr = notWaiting, nil
	return err
}

// watch registers the socket with the loop's epoll instance for events,
// tagged with the slot and the connection's generation, so that an event
// about an earlier descriptor of the slot is told apart.
func (c *conn) watch(op int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: c.index, Pad: c.gen}
	return unix.EpollCtl(c.lp.epfd, op, c.fd, &ev)
}

// dial opens the slot's connection: a non-blocking connect, waited for in
// the loop. It is refused once the step is interrupted.
func (c *conn) dial(g *Generator) error {
	if c.lp.aborted.Load() {
		return errAborted
	}
	d := g.dialer
	if err := d.guard(context.Background(), "tcp", d.addr, nil); err != nil {
		return err
	}
	fd, err := unix.Socket(d.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return d.opError(os.NewSyscallError("socket", err))
	}
	c.fd, c.gen = fd, c.gen+1
	// As net.Dialer does: a request goes out in one write, never held back.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := c.connect(d); err != nil {
		c.close()
		return err
	}
	// Counted as net.Dialer's dials were: the peer has seen the connection.
	d.dialled.Add(1)
	if c.br == nil {
		c.br = newReader(c)
	} else {
		c.br.Reset(c)
	}
	return nil
}

// connect connects the new socket and leaves it watched for reading.
func (c *conn) connect(d *dialer) error {
	if c.lp.sockaddr == nil {
		c.lp.sockaddr = d.sockaddr()
	}
	err := unix.Connect(c.fd, c.lp.sockaddr)
	if err == nil {
		return d.watchError(c.watch(unix.EPOLL_CTL_ADD, readEvents))
	}
	// An interrupted connect goes on in the background, as net's does.
	if err != unix.EINPROGRESS && err != unix.EINTR {
		return d.opError(os.NewSyscallError("connect", err))
	}
	if err := c.watch(unix.EPOLL_CTL_ADD, unix.EPOLLOUT); err != nil {
		return d.watchError(err)
	}
	if err := c.wait(forWrite); err != nil {
		return d.opError(err)
	}
	if soErr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		if err == nil {
			err = syscall.Errno(soErr)
		}
		return d.opError(os.NewSyscallError("connect", err))
	}
	return d.watchError(c.watch(unix.EPOLL_CTL_MOD, readEvents))
}

// send writes the request whole, waiting in the loop while the send buffer
// is full (a request body larger than it).
func (c *conn) send(req []byte) error {
	for off := 0; off < len(req); {
		if c.fd < 0 {
			return c.opError("write", net.ErrClosed)
		}
		n, err := rawIO(syscall.SYS_WRITE, c.fd, req[off:])
		switch {
		case err == nil:
			off += n
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := c.waitWritable(); err != nil {
				return c.opError("write", err)
			}
		default:
			return c.opError("write", os.NewSyscallError("write", err))
		}
	}
	// Nothing can have answered a request that has only just gone out:
	// the first read waits for the socket instead of finding it empty.
	c.sent = true
	return nil
}

// waitWritable waits until the socket takes more, watching it for writing
// meanwhile and for reading again after.
func (c *conn) waitWritable() error {
	if err := c.watch(unix.EPOLL_CTL_MOD, unix.EPOLLOUT); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	if err := c.wait(forWrite); err != nil {
		return err
	}
	if err := c.watch(unix.EPOLL_CTL_MOD, readEvents); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Read is what the response reader reads from: the socket, waiting in the
// loop while nothing is there.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.fd < 0 {
			return 0, c.opError("read", net.ErrClosed)
		}
		if c.sent {
			c.sent = false
		} else {
			n, err := rawIO(syscall.SYS_READ, c.fd, p)
			switch {
			case err == nil && n == 0:
				return 0, io.EOF
			case err == nil:
				c.reads++
				if c.reads%turnReads == 0 {
					// A body that never runs dry would keep the worker
					// from ever waiting, and its loop from enforcing
					// any timeout.
					c.lp.turn(c)
				}
				return n, nil
			case err == unix.EINTR:
				continue
			case err != unix.EAGAIN:
				return 0, c.opError("read", os.NewSyscallError("read", err))
			}
		}
		if err := c.wait(forRead); err != nil {
			return 0, c.opError("read", err)
		}
	}
}

func (c *conn) close() {
	if c.fd >= 0 {
		// Out of the loop's set first: a child forked meanwhile holds the
		// descriptor until its exec, and the registration would outlive
		// the close, reported on every wait.
		if c.lp != nil {
			unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		}
		unix.Close(c.fd)
		c.fd = -1
		c.sent = false
	}
}

// opError words a failure of the open connection as net.Conn does.
func (c *conn) opError(op string, err error) error {
	e := &net.OpError{Op: op, Net: "tcp", Addr: c.remote, Err: err}
	if c.fd >= 0 {
		if sa, serr := unix.Getsockname(c.fd); serr == nil {
			e.Source = tcpAddr(sa)
		}
	}
	return e
}

// rawIO reads or writes b, which must not be empty, on a non-blocking
// descriptor without the runtime's blocking-syscall bookkeeping: such a call
// returns at once, whatever the peer does.
func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
