package loadgen

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// The hot path's socket I/O, below net.Conn. Its reads and writes go
// through the runtime's blocking-syscall bookkeeping, which lets another
// thread take over the CPU slot while the call blocks; on a non-blocking
// socket the call never blocks, and the bookkeeping, and the thread
// hand-offs it triggers when a loopback write is slow, are pure overhead on
// every request. These are raw system calls on the same descriptor.
//
// The descriptor is reached through syscall.RawConn, so that closing the
// connection (the watchdog, an abort) still wakes a waiting worker, and
// every error is reported as net.Conn words it.
//
// The first read after a request still comes straight after the write,
// and on a shared CPU it usually finds nothing yet: waiting for
// readability first would save that read, but would miss a close or a
// half-close by the peer that came before the request went out (the
// poller's readiness is cleared when a raw wait starts), and the request
// would then wait for its timeout instead of being retried at once.

// send writes the request; whatever does not fit the raw path (a partial
// write, a full send buffer) falls back to net.Conn, whose errors are then
// the ones reported.
func (c *conn) send(req []byte) error {
	if c.raw == nil {
		_, err := c.nc.Write(req)
		return err
	}
	c.pending, c.wrote, c.writeErr = req, 0, nil
	// An error here is the connection's (closed before the write): the
	// read that follows reports it as net.Conn words it.
	c.raw.Write(c.writeRaw)
	c.pending = nil
	if err := c.writeErr; err != nil {
		c.writeErr = nil
		return &net.OpError{Op: "write", Net: "tcp", Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(),
			Err: os.NewSyscallError("write", err)}
	}
	if c.wrote < len(req) {
		_, err := c.nc.Write(req[c.wrote:])
		return err
	}
	return nil
}

// writeNow is send's raw write callback: it writes and never waits.
func (c *conn) writeNow(fd uintptr) bool {
	c.write(fd)
	return true
}

// write writes the pending request and tells whether all of it went out.
// It never waits: what is left over, net.Conn writes.
func (c *conn) write(fd uintptr) bool {
	req := c.pending
	c.pending = nil
	for c.wrote < len(req) {
		n, err := rawIO(syscall.SYS_WRITE, fd, req[c.wrote:])
		if n > 0 {
			c.wrote += n
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // the send buffer is full
		case err != nil:
			c.writeErr = err
			return false
		case n <= 0:
			return false // no progress and no error: net.Conn sorts it out
		}
	}
	return true
}

// Read is what the response reader reads from: the socket of the open
// connection, waiting in the poller while nothing is there.
func (c *conn) Read(p []byte) (int, error) {
	if c.raw == nil || len(p) == 0 {
		return c.nc.Read(p)
	}
	c.rbuf, c.rn, c.readErr = p, 0, nil
	err := c.raw.Read(c.readRaw)
	c.rbuf = nil
	switch {
	case err != nil:
		// Closed or failed while waiting: net.Conn words the error.
		return c.nc.Read(p)
	case c.readErr != nil:
		err, c.readErr = c.readErr, nil
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(),
			Err: os.NewSyscallError("read", err)}
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// readNow is Read's raw read callback: it reads what is there, or returns
// false to wait until something is.
func (c *conn) readNow(fd uintptr) bool {
	for {
		n, err := rawIO(syscall.SYS_READ, fd, c.rbuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			c.readErr = err
		default:
			c.rn = n
		}
		return true
	}
}

// rawIO reads or writes b, which must not be empty, on a non-blocking
// descriptor without the runtime's blocking-syscall bookkeeping: such a call
// returns at once, whatever the peer does.
func rawIO(trap, fd uintptr, b []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
