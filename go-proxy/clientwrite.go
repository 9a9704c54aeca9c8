package main

import (
	"errors"
	"net"
	"os"
	"time"
)

// clientWriteProgress bounds each stall writing to a client: once a write
// has moved no byte for this long, it fails and the connection is closed.
// A client that stops reading its response is cut; one that reads slowly
// but keeps reading never is, however long the response. Fixed by the
// contract and not read from the environment; config carries it only so
// that tests can shorten it.
const clientWriteProgress = 30 * time.Second

// writeWindows splits the progress limit into windows: a blocked write
// runs under a deadline one window ahead and is resumed while each window
// moves bytes. A deadline bounds a whole write call, which blocks until
// the kernel has taken all of it (up to 16 KiB here), and a kernel whose
// send buffer is full wakes the writer only once the client has read
// about a third of that buffer; resuming keeps a slow reader from being
// cut while bytes still move. Go reports only that a
// deadline passed, not when the last byte went, so bytes moved in a window
// count as moved at its end: a stall is cut between the limit and one
// window and a quarter more after the last byte the kernel took.
const writeWindows = 6

// progressListener gives every accepted client connection its write
// progress deadline.
type progressListener struct {
	net.Listener
	limit time.Duration
}

func (l progressListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &progressConn{Conn: c, window: l.limit / writeWindows, limit: l.limit}, nil
}

// progressConn is a client connection whose every write runs under the
// write progress deadline: fasthttp's writes of heads, buffered bodies and
// streamed bodies (fasthttp's own WriteTimeout is one deadline for a whole
// response, armed once the handler returns, which would cut a long
// download that keeps flowing) and the proxy's own writes on taken
// connections alike, since they all end in this Write.
//
// On the keep-alive path the cost is one clock read per socket write: the
// deadline is set a quarter window beyond what a write needs and renewed
// only once less than a window is left, so a connection answering many
// small responses renews it at most once a quarter window (1.25 s).
type progressConn struct {
	net.Conn
	window, limit time.Duration
	// deadline is the write deadline this connection set last; zero when
	// someone else has set one since.
	deadline time.Time
}

func (c *progressConn) Write(b []byte) (int, error) {
	began := time.Now()
	if c.deadline.Sub(began) < c.window {
		d := began.Add(c.window + c.window/4)
		if err := c.Conn.SetWriteDeadline(d); err != nil {
			return 0, err
		}
		c.deadline = d
	}
	n, err := c.Conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return c.resume(b, n, began, err)
	}
	return n, err
}

// resume goes on with a write that ran into its deadline after n bytes,
// one window at a time, until it is done or nothing has moved for the
// whole limit; it then fails with the deadline's error.
func (c *progressConn) resume(b []byte, n int, began time.Time, err error) (int, error) {
	moved := began
	if n > 0 {
		moved = time.Now()
	}
	for {
		now := time.Now()
		end := moved.Add(c.limit)
		if !now.Before(end) {
			return n, err
		}
		d := now.Add(c.window)
		if end.Before(d) {
			d = end
		}
		if serr := c.Conn.SetWriteDeadline(d); serr != nil {
			return n, serr
		}
		c.deadline = d
		var k int
		k, err = c.Conn.Write(b[n:])
		n += k
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if k > 0 {
			moved = time.Now()
		}
	}
}

// SetDeadline and SetWriteDeadline replace the progress deadline until the
// next write, which sets its own again: fasthttp clears all deadlines when
// it hands a connection over, and the next write must not trust the one it
// remembers.
func (c *progressConn) SetDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.Conn.SetDeadline(t)
}

func (c *progressConn) SetWriteDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.Conn.SetWriteDeadline(t)
}
