package loadgen

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
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
	// What every request touches, first, so that it shares few cache
	// lines: the socket, the loop's view of it, the worker's coroutine.
	fd      int   // -1 until dialled, and after any error or close
	gen     int32 // counts the slot's connections, to tell events about an earlier one apart
	index   int32 // the slot's place in its loop
	waiting waitFor
	waits   uint32 // counts the worker's waits, to tell a request that never waited
	reads   uint32 // counts the reads that found data
	// sent is set when a request has just gone out, so that the first
	// read waits for an answer instead of finding the socket empty.
	sent    bool
	lp      *loop
	next    func() (struct{}, bool)
	yield   func(struct{}) bool
	br      *bufio.Reader
	until   time.Duration // the time a sleeping worker waits for, since the step's start
	wakeErr error         // why a waiting worker was woken with its connection closed

	// What the loop reads to enforce the timeout: when the request in
	// flight was sent (since the step's start, -1 when idle) and, once it
	// cut a request off, that request's send time.
	since    time.Duration
	timedOut time.Duration

	stop   func()
	remote net.Addr
	body   io.LimitedReader // what discard reads a body through, reused
	// resp is fasthttp's reader of every response that is not plain,
	// made on the first one (response.go).
	resp *fasthttp.Response

	// lastStatus caches the error text of the last non-2xx/3xx status, so
	// that a target failing the same way every time costs no allocation.
	lastCode int
	lastMsg  []byte
	lastText string
}

func newConn(remote net.Addr) *conn {
	return &conn{fd: -1, remote: remote, since: -1, timedOut: -1}
}

func newReader(c *conn) *bufio.Reader { return bufio.NewReaderSize(c, readBufferBytes) }

// exchange sends the request and reads the whole response. It returns the
// status code and body size, or an error after which the connection is
// closed.
func (c *conn) exchange(g *Generator, sent time.Duration) (code, bodyBytes int, err error) {
	c.since = sent
	code, bodyBytes, err = c.attempt(g, sent)
	c.since = -1
	return code, bodyBytes, err
}

// attempt is exchange's work between marking the request in flight for the
// loop's timeout and clearing the mark: two plain calls, cheaper than a deferred
// one on every request.
func (c *conn) attempt(g *Generator, sent time.Duration) (code, bodyBytes int, err error) {
	for attempt := 0; ; attempt++ {
		reused := c.fd >= 0
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
			// Bytes after the answer are an answer nobody asked for: as
			// net/http does, the connection is not used again.
			if !g.config.KeepAlive || closeAfter || c.br.Buffered() > 0 {
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

// cutOff tells whether the loop's timeout ended the request sent at sent.
func (c *conn) cutOff(sent time.Duration) bool { return c.timedOut == sent }

// beforeAnswer is a failure to read the first byte of an answer: the end of
// the connection (io.EOF) or a read error, worded as it is.
type beforeAnswer struct{ error }

func (e beforeAnswer) Unwrap() error { return e.error }

// nothingAnswered tells whether an exchange failed before the peer sent
// anything: the connection ended or failed before the first byte of the
// head, or a write to a closed connection failed with a reset or a broken
// pipe. Once a byte of the answer came, a request is never sent again.
func nothingAnswered(err error) bool {
	var before beforeAnswer
	var op *net.OpError
	return errors.As(err, &before) || (errors.As(err, &op) && op.Op == "write")
}

// statusError is the text vegeta records for a status outside 2xx/3xx: the
// status line as received, "503 Service Unavailable".
func (c *conn) statusError(code int) string {
	var msg []byte
	if c.resp != nil {
		msg = c.resp.Header.StatusMessage()
	}
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
