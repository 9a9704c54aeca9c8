package loadgen

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

var errAborted = errors.New("loadgen: step interrupted")

// connSet dials the target and remembers every open connection, so that an
// interrupted step can cut its in-flight requests short: closing a
// connection is the one way to end a blocked read at once.
type connSet struct {
	dialer net.Dialer

	// dialled counts connections established, for checking what the
	// other end says it accepted.
	dialled atomic.Uint64

	mu      sync.Mutex
	open    map[*trackedConn]struct{}
	refused bool // set while aborting: dials racing the abort must not survive it
}

func newConnSet(timeout time.Duration, allow netip.Addr) *connSet {
	return &connSet{
		dialer: net.Dialer{ControlContext: dialGuard(allow), Timeout: timeout},
		open:   map[*trackedConn]struct{}{},
	}
}

func (s *connSet) dial(ctx context.Context, network, addr string) (*trackedConn, error) {
	c, err := s.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// Counted even when refused below: the peer has seen the connection.
	s.dialled.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused {
		c.Close()
		return nil, errAborted
	}
	tc := &trackedConn{Conn: c, set: s}
	s.open[tc] = struct{}{}
	return tc, nil
}

// abort closes every connection and refuses new ones until resume.
func (s *connSet) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = true
	for c := range s.open {
		c.Conn.Close()
		delete(s.open, c)
	}
}

func (s *connSet) resume() {
	s.mu.Lock()
	s.refused = false
	s.mu.Unlock()
}

func (s *connSet) forget(c *trackedConn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
}

type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.forget(c)
	return c.Conn.Close()
}
