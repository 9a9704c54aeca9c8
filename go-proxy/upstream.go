package main

import (
	"errors"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// upstreamConn is a dialled upstream connection with what checking it on
// take needs, prepared once at dial time so that the check allocates
// nothing per request.
type upstreamConn struct {
	*net.TCPConn
	rc      syscall.RawConn
	peekFn  func(fd uintptr) bool
	peekN   uintptr
	peekErr syscall.Errno
	peekBuf [1]byte
}

var errNotTCP = errors.New("upstream connection is not TCP")

func dialUpstream(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, errNotTCP
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	u := &upstreamConn{TCPConn: tc, rc: rc}
	u.peekFn = u.peek
	return u, nil
}

// peek looks at the socket without waiting and without consuming.
func (u *upstreamConn) peek(fd uintptr) bool {
	u.peekN, _, u.peekErr = syscall.Syscall6(syscall.SYS_RECVFROM, fd,
		uintptr(unsafe.Pointer(&u.peekBuf[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return true
}

// idleAndOpen reports whether an idle connection can carry a request:
// nothing is readable on it. Readable means the upstream closed it while
// it sat in the pool, or sent bytes nobody asked for; either way it must
// not be used (RFC 9112 9.3.1).
func (u *upstreamConn) idleAndOpen() bool {
	if err := u.rc.Read(u.peekFn); err != nil {
		return false
	}
	return u.peekErr == syscall.EAGAIN
}

// pooledConn is a connection taken from the fasthttp.HostClient pool. The
// pool's own handle type is not exported, so it travels as an interface
// value (a pointer, so storing it allocates nothing) and only the functions
// newConnPool builds know its type.
type pooledConn struct {
	handle any
	conn   net.Conn
	reused bool // it has carried a request before
}

type connPool struct {
	acquire func() (pooledConn, error)
	release func(pooledConn) // back to the pool
	discard func(pooledConn) // closed
}

type hostConn interface {
	Conn() net.Conn
	LastUseTime() time.Time
}

func newConnPool[C hostConn](acquire func(time.Duration, bool) (C, error), release, discard func(C), timeout time.Duration) connPool {
	return connPool{
		acquire: func() (pooledConn, error) {
			cc, err := acquire(timeout, false)
			if err != nil {
				return pooledConn{}, err
			}
			// fasthttp stamps a connection's last use only when it goes
			// back to the pool.
			return pooledConn{handle: cc, conn: cc.Conn(), reused: !cc.LastUseTime().IsZero()}, nil
		},
		release: func(pc pooledConn) { release(pc.handle.(C)) },
		discard: func(pc pooledConn) { discard(pc.handle.(C)) },
	}
}

// take gets a connection from the pool that passes the check on take,
// closing those that do not.
func (cp *connPool) take() (pooledConn, error) {
	for {
		pc, err := cp.acquire()
		if err != nil || !pc.reused {
			return pc, err
		}
		if u, ok := pc.conn.(*upstreamConn); ok && u.idleAndOpen() {
			return pc, nil
		}
		cp.discard(pc)
	}
}
