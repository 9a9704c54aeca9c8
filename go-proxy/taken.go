package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// takenConn is a client connection the proxy has taken over from fasthttp
// for the rest of one exchange, in the two cases fasthttp's handler API
// cannot serve:
//   - a chunked request body, which fasthttp would decode itself (without
//     counting extensions and trailers against the head limit, and
//     waiting for a trailer line's CRLF where a bare LF must be refused);
//     the proxy reads it raw through br instead;
//   - an interim (1xx) response: fasthttp writes a response only after the
//     handler has returned, and under pipelining the previous response may
//     still sit in its writer, which it flushes before handing a
//     connection over, so a 1xx written on conn can never overtake it.
//
// The proxy then writes the response on conn itself, with fasthttp's
// serialiser, and hands the connection back to fasthttp for the next
// request.
type takenConn struct {
	conn net.Conn
	br   *bufio.Reader // the raw chunked request body; nil without one
	// bodyRead: the chunked body was read to its end, so the next request
	// starts right after it.
	bodyRead bool
	// after, when set, replaces the response: it gets the connection, which
	// is closed once it returns.
	after func(net.Conn)
}

var errTakeOver = errors.New("interim response to relay: the client connection must be taken over")

// clientWriterPool holds the writers responses on taken connections go
// through; fasthttp's default write buffer size.
var clientWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// takeOver makes fasthttp hand the client connection over once the
// handler returns, with nothing written and its writer flushed; rest then
// runs with head.client set, and the response it leaves in ctx is written
// by the proxy.
func (p *proxy) takeOver(ctx *fasthttp.RequestCtx, head *requestHead, chunkedBody bool, rest func()) {
	t := &takenConn{}
	head.client = t
	// Counted from here, while fasthttp still counts the connection as
	// open, so that Shutdown and waitTaken together never miss it. Should
	// fasthttp drop the connection instead of handing it over (the client
	// gone while an earlier response is flushed), the count stays up and a
	// later shutdown waits out its grace period: still a clean exit.
	p.takenCount.Add(1)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer p.takenCount.Add(-1)
		defer releaseHead(head)
		t.conn = c
		if chunkedBody {
			t.br = p.clientReaders.Get().(*bufio.Reader)
			t.br.Reset(c)
			defer p.releaseClientReader(t)
		}
		rest()
		p.respond(ctx, t)
	})
}

func (p *proxy) releaseClientReader(t *takenConn) {
	t.br.Reset(nil)
	p.clientReaders.Put(t.br)
	t.br = nil
}

// takeAfter has f write on the client connection once the handler is
// done, instead of a response from fasthttp, and closes the connection
// after it.
func takeAfter(ctx *fasthttp.RequestCtx, t *takenConn, f func(net.Conn)) {
	if t != nil {
		t.after = f
		return
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		f(c)
		c.Close()
	})
}

// respond writes the response the exchange left in ctx on the taken
// connection, deciding keep-alive as fasthttp's server loop does, and
// hands a connection that stays open back to fasthttp.
func (p *proxy) respond(ctx *fasthttp.RequestCtx, t *takenConn) {
	c := t.conn
	if t.after != nil {
		t.after(c)
		c.Close()
		return
	}
	resp := &ctx.Response
	resp.SkipBody = resp.SkipBody || ctx.IsHead()
	closing := resp.Header.ConnectionClose() || ctx.Request.Header.ConnectionClose() || p.stopping.Load() ||
		(t.br != nil && !t.bodyRead)
	if closing {
		resp.Header.SetConnectionClose()
	} else if !ctx.Request.Header.IsHTTP11() {
		resp.Header.Set(fasthttp.HeaderConnection, "keep-alive")
	}
	bw := clientWriterPool.Get().(*bufio.Writer)
	bw.Reset(c)
	err := resp.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	clientWriterPool.Put(bw)
	if err != nil || closing {
		c.Close()
		return
	}
	p.handBack(ctx, t)
}

// handBack gives the connection back to fasthttp as a new one, with the
// bytes already read past this request (the start of pipelined ones) in
// front of it. They lie in the proxy's body reader and in fasthttp's own
// reader, which c reads through; the latter is emptied by reading c under
// a deadline in the past, which delivers only what is already buffered.
// The connection handed back wraps the socket itself, so nothing stacks
// up over many chunked requests on one connection.
func (p *proxy) handBack(ctx *fasthttp.RequestCtx, t *takenConn) {
	var pending []byte
	if t.br != nil {
		b, _ := t.br.Peek(t.br.Buffered())
		pending = append(pending, b...)
	}
	pending, err := drainBuffered(t.conn, pending)
	if err != nil {
		t.conn.Close()
		return
	}
	raw := ctx.Conn()
	if hb, ok := raw.(*handbackConn); ok {
		// Its pending bytes have just been drained through t.conn.
		raw = hb.Conn
	}
	go p.srv.ServeConn(&handbackConn{Conn: raw, pending: pending, waiting: len(pending) == 0})
}

// drainBuffered appends to dst what reading c yields without waiting.
func drainBuffered(c net.Conn, dst []byte) ([]byte, error) {
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return nil, err
	}
	var buf [4096]byte
	for {
		n, err := c.Read(buf[:])
		dst = append(dst, buf[:n]...)
		switch {
		case err == nil:
		case isTimeout(err):
			return dst, c.SetReadDeadline(time.Time{})
		case err == io.EOF:
			// What was sent before the client's half close is still
			// served; the next read from the socket sees the end again.
			return dst, nil
		default:
			return nil, err
		}
	}
}

// handbackConn is a client connection handed back to fasthttp after an
// exchange on a taken connection. fasthttp serves it as a new connection,
// so it would time its first request as a connection's first: the head
// timeout armed at once, and a 408 when it expires before any byte. For a
// keep-alive connection waiting for its next request that wait is the idle
// timeout, ending silently; the head timeout starts at its first byte.
type handbackConn struct {
	net.Conn
	pending []byte // read past the previous request, served first
	waiting bool   // no byte of the next request has been delivered yet
}

func (c *handbackConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(b)
	if !c.waiting {
		return n, err
	}
	if n > 0 {
		c.waiting = false
		if derr := c.Conn.SetReadDeadline(time.Now().Add(headTimeout)); err == nil {
			err = derr
		}
		return n, err
	}
	if err != nil && isTimeout(err) {
		return 0, io.EOF
	}
	return n, err
}

func (c *handbackConn) SetReadDeadline(t time.Time) error {
	if c.waiting {
		t = time.Now().Add(idleTimeout)
	}
	return c.Conn.SetReadDeadline(t)
}

// waitTaken waits for exchanges on taken connections, which fasthttp's
// Shutdown does not count, until none is left or ctx ends.
func (p *proxy) waitTaken(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for p.takenCount.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
