package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// dialer is what a slot needs to open its connection: the target's address,
// as text and as a socket address, and the guard every dial passes.
type dialer struct {
	addr   string // host:port
	raddr  *net.TCPAddr
	family int
	ap     netip.AddrPort
	guard  func(context.Context, string, string, syscall.RawConn) error

	// dialled counts connections established, for checking what the
	// other end says it accepted.
	dialled atomic.Uint64
}

// newDialer prepares dials to addr, an IP literal and port that the target's
// validation has checked.
func newDialer(addr string, allow netip.Addr) (*dialer, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: target address %q: %w", addr, err)
	}
	d := &dialer{addr: addr, ap: ap, raddr: net.TCPAddrFromAddrPort(ap), guard: dialGuard(allow), family: unix.AF_INET6}
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		d.family = unix.AF_INET
	}
	return d, nil
}

// sockaddr is the target's address for connect(2). Each loop takes one of
// its own: connect writes into it.
func (d *dialer) sockaddr() unix.Sockaddr {
	if d.family == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(d.ap.Port()), Addr: d.ap.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(d.ap.Port()), Addr: d.ap.Addr().As16()}
}

// opError words a failed dial as net.Dialer does: "dial tcp
// 127.0.0.1:8081: connect: connection refused".
func (d *dialer) opError(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: d.raddr, Err: err}
}

// watchError words a failure to watch a new connection, nil for nil.
func (d *dialer) watchError(err error) error {
	if err == nil {
		return nil
	}
	return d.opError(fmt.Errorf("epoll_ctl: %w", err))
}

// tcpAddr is a socket address as net words it.
func tcpAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	}
	return nil
}
