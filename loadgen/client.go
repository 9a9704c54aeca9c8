package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// readBufferBytes holds the response heads of the lab's upstream and
// proxies many times over (fasthttp's client uses the same size); a head that
// does not fit fails its request with a clear error. A scenario may ask for
// 100000 connections, so every byte here counts that many times.
const readBufferBytes = 4 << 10

// conn is one connection slot of a Generator, owned by one worker at a time:
// a worker sends a request and reads its whole response before the next, so
// requests in flight never exceed the slots, and a slow target makes the
// worker late for its next slot instead of queueing requests out of sight.
//
// The response head is parsed in place when it has the plain shape nearly
// every answer has, and by fasthttp into buffers reused for every request
// otherwise (response.go); the body is read through and counted, never
// kept, so a keep-alive exchange allocates nothing and large bodies cost no
// memory.
type conn struct {
	nc   *trackedConn // nil until dialled, and after any error or close
	raw  syscall.RawConn
	br   *bufio.Reader
	resp fasthttp.Response

	// The state of the raw socket callbacks (socket.go), kept here and the
	// callbacks bound once, so that sending and reading allocate nothing.
	pending  []byte // the request while its first write is to be made
	wrote    int
	writeErr error
	writeRaw func(fd uintptr) bool
	rbuf     []byte // where the read in progress goes
	rn       int
	readErr  error
	readRaw  func(fd uintptr) bool

	body io.LimitedReader // what discard reads a body through, reused

	// What the watchdog reads to enforce the timeout: the open connection,
	// when the request in flight was sent (ns since the step's start, -1
	// when idle) and, once it cut a request off, that request's send time.
	live     atomic.Pointer[trackedConn]
	since    atomic.Int64
	timedOut atomic.Int64

	// lastStatus caches the error text of the last non-2xx/3xx status, so
	// that a target failing the same way every time costs no allocation.
	lastCode int
	lastMsg  []byte
	lastText string
}

func newConn() *conn {
	c := &conn{}
	c.writeRaw, c.readRaw = c.writeNow, c.readNow
	c.resp.StreamBody = true
	c.since.Store(-1)
	c.timedOut.Store(-1)
	return c
}

// exchange sends the request and reads the whole response. It returns the
// status code and body size, or an error after which the connection is
// closed.
func (c *conn) exchange(g *Generator, sent time.Duration) (code, bodyBytes int, err error) {
	c.since.Store(int64(sent))
	code, bodyBytes, err = c.attempt(g, sent)
	c.since.Store(-1)
	return code, bodyBytes, err
}

// attempt is exchange's work between marking the request in flight for the
// watchdog and clearing the mark: two plain calls, cheaper than a deferred
// one on every request.
func (c *conn) attempt(g *Generator, sent time.Duration) (code, bodyBytes int, err error) {
	for attempt := 0; ; attempt++ {
		reused := c.nc != nil
		if !reused {
			if err := c.dial(g); err != nil {
				return 0, 0, err
			}
		}
		err = c.send(g.req.wire)
		var closeAfter bool
		if err == nil {
			code, bodyBytes, closeAfter, err = c.readResponse(g.req.method == http.MethodHead)
		}
		if err == nil {
			if !g.config.KeepAlive || closeAfter {
				c.close()
			}
			return code, bodyBytes, nil
		}
		c.close()
		// A keep-alive connection the peer closed while it was idle fails
		// before any byte of the answer; net/http sends such a request again
		// on a fresh connection, and so do we, once.
		if reused && attempt == 0 && g.req.replayable && !c.cutOff(sent) && nothingAnswered(err) {
			continue
		}
		return 0, 0, err
	}
}

func (c *conn) dial(g *Generator) error {
	nc, err := g.conns.dial(context.Background(), "tcp", g.addr)
	if err != nil {
		return err
	}
	c.nc = nc
	c.raw = nil
	if sc, ok := nc.Conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.live.Store(nc)
	// The reader reads through c (socket.go), which reads nc's socket.
	if c.br == nil {
		c.br = bufio.NewReaderSize(c, readBufferBytes)
	} else {
		c.br.Reset(c)
	}
	return nil
}

// drain reads the response body to its end and returns its size.
func (c *conn) drain() (int, error) {
	body := c.resp.BodyStream()
	if body == nil {
		return 0, nil
	}
	n, err := io.Copy(io.Discard, body)
	if cerr := c.resp.CloseBodyStream(); err == nil {
		err = cerr
	}
	return int(n), err
}

func (c *conn) close() {
	if c.nc != nil {
		c.live.Store(nil)
		c.nc.Close()
		c.nc, c.raw = nil, nil
	}
}

// cutOff tells whether the watchdog ended the request sent at sent.
func (c *conn) cutOff(sent time.Duration) bool { return c.timedOut.Load() == int64(sent) }

// nothingAnswered tells whether an exchange failed before the peer sent
// anything: fasthttp reports io.EOF when the connection ends before the
// first byte of the head, and a write to a closed connection fails with a
// reset or a broken pipe.
func nothingAnswered(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || (errors.As(err, &op) && op.Op == "write")
}

// statusError is the text vegeta records for a status outside 2xx/3xx: the
// status line as received, "503 Service Unavailable".
func (c *conn) statusError(code int) string {
	msg := c.resp.Header.StatusMessage()
	if code == c.lastCode && string(msg) == string(c.lastMsg) && c.lastText != "" {
		return c.lastText
	}
	c.lastCode, c.lastMsg = code, append(c.lastMsg[:0], msg...)
	text := strconv.Itoa(code)
	if len(msg) > 0 {
		text += " " + string(msg)
	} else if s := http.StatusText(code); s != "" {
		text += " " + s
	}
	c.lastText = text
	return text
}

// watchdog closes the connection of every request older than the timeout.
// One goroutine looking a few times per timeout costs less than a deadline
// set on the socket for every request.
func watchdog(start time.Time, timeout time.Duration, slots []*conn) (stop func()) {
	every := min(max(timeout/20, 10*time.Millisecond), time.Second)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := int64(time.Since(start))
			for _, c := range slots {
				if s := c.since.Load(); s >= 0 && now-s > int64(timeout) && c.timedOut.Load() != s {
					c.timedOut.Store(s)
					// Close is safe while the worker reads: the read fails.
					if nc := c.live.Load(); nc != nil {
						nc.Close()
					}
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
