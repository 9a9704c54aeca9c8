package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// leg is one request's use of one upstream connection: it writes the
// request, reads the response head and then serves as the response body
// stream fasthttp copies to the client, so the body moves through the
// upstream read buffer and the client write buffer only. It decides the
// connection's fate when fasthttp closes the stream.
type leg struct {
	p  *proxy
	pc pooledConn
	br *bufio.Reader
	bw *bufio.Writer

	head   responseHead
	length int64 // body bytes left, or lengthChunked / lengthUntilClose
	chunks chunkParser
	client *takenConn // the taken client connection, for relay; nil if not taken

	sent       bool // a byte of the request reached the upstream
	arrived    bool // a byte of the response came back
	bodyUnread bool // the client's request body was not read to its end
	done       bool // the response body was read to its exact end
	failed     bool
}

var legPool = sync.Pool{New: func() any { return new(leg) }}

func (p *proxy) newLeg(pc pooledConn) *leg {
	l := legPool.Get().(*leg)
	*l = leg{p: p, pc: pc, br: p.upstream.AcquireReader(pc.conn)}
	return l
}

// roundTrip sends the request and reads up to the final response head,
// relaying interim ones; interim reports whether one went to the client.
func (l *leg) roundTrip(ctx *fasthttp.RequestCtx, head *requestHead) (interim bool, err error) {
	if err := l.send(ctx, head); err != nil {
		return false, err
	}
	return l.readHead(ctx, head)
}

// retryable: the request failed on a reused connection before any byte of
// an answer, and sending it again cannot do anything twice.
func (l *leg) retryable(head *requestHead, err error) bool {
	return l.pc.reused && !l.arrived && !isTimeout(err) && head.idempotent() && !head.hasBody()
}

func (l *leg) send(ctx *fasthttp.RequestCtx, head *requestHead) error {
	conn := l.pc.conn
	// One deadline covers writing a head and waiting for the answer: a
	// bodyless request is written at once.
	if err := conn.SetDeadline(time.Now().Add(l.p.timeout)); err != nil {
		return err
	}
	l.bw = l.p.upstream.AcquireWriter(conn)
	defer func() {
		l.p.upstream.ReleaseWriter(l.bw)
		l.bw = nil
	}()
	if l.p.skipResplit {
		writeRequestRaw(l.bw, &ctx.Request, head, clientAddr(ctx))
	} else {
		writeRequest(l.bw, head, clientAddr(ctx), l.p.upstreamHost)
	}
	if !head.hasBody() {
		return l.bw.Flush()
	}
	l.bodyUnread = true
	if err := l.sendBody(ctx, head); err != nil {
		return err
	}
	l.bodyUnread = false
	// The wait for the head starts after the last byte went out.
	return conn.SetReadDeadline(time.Now().Add(l.p.timeout))
}

// readHead reads response heads until the final one, which stays in br
// for relay. Interim heads go to an HTTP/1.1 client as they come, except
// 100, which the proxy has answered itself if at all. They are written on
// a taken connection only: the first one to relay stops with errTakeOver,
// the head left in br for readHead to read again once it is taken.
func (l *leg) readHead(ctx *fasthttp.RequestCtx, req *requestHead) (interim bool, err error) {
	for {
		raw, arrived, err := peekHead(l.br)
		l.arrived = l.arrived || arrived
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errHeadTooLarge
			}
			return interim, err
		}
		if l.p.skipResplit {
			return interim, nil
		}
		if err := parseResponseHead(raw, &l.head); err != nil {
			return interim, err
		}
		switch s := l.head.status; {
		case s >= 200:
			return interim, nil
		case s == fasthttp.StatusSwitchingProtocols:
			// Upgrade is never forwarded, so this comes from a broken
			// upstream, and the connection no longer speaks HTTP.
			return interim, errSwitchedProtocols
		case s != fasthttp.StatusContinue && ctx.Request.Header.IsHTTP11():
			if req.client == nil {
				return interim, errTakeOver
			}
			if err := relayInterim(req.client.conn, &l.head); err != nil {
				return interim, err
			}
			interim = true
		}
		l.br.Discard(len(raw))
	}
}

// relayInterim writes a 1xx head straight to the taken client connection,
// on which nothing of an earlier response is left unsent.
func relayInterim(c net.Conn, h *responseHead) error {
	s := headScratchPool.Get().(*headScratch)
	defer headScratchPool.Put(s)
	s.buf = appendClientHead(s.buf[:0], h, true)
	_, err := c.Write(s.buf)
	return err
}

// relay hands the final response to fasthttp: the head, and the leg itself
// as the body stream unless there is no body.
func (l *leg) relay(ctx *fasthttp.RequestCtx) error {
	if l.p.skipResplit {
		return l.relayDirect(ctx)
	}
	h := &l.head
	bodyless := ctx.IsHead() || h.status == fasthttp.StatusNoContent || h.status == fasthttp.StatusNotModified
	var err error
	if !h.rewrite && !h.http10 {
		err = setClientHeadDirect(&ctx.Response.Header, l.br)
	} else {
		err = setClientHead(&ctx.Response.Header, h, bodyless)
		l.br.Discard(len(h.raw))
	}
	if err != nil {
		return err
	}
	l.length = h.length
	if bodyless {
		l.length = 0
	}
	return l.setBody(ctx)
}

// relayDirect is relay under the measurement-only switch: fasthttp's parse
// of the upstream head is all there is.
func (l *leg) relayDirect(ctx *fasthttp.RequestCtx) error {
	rh := &ctx.Response.Header
	if err := setClientHeadDirect(rh, l.br); err != nil {
		return err
	}
	l.head.status = rh.StatusCode()
	l.length = int64(rh.ContentLength())
	if ctx.IsHead() || l.head.status == fasthttp.StatusNoContent || l.head.status == fasthttp.StatusNotModified {
		l.length = 0
	}
	return l.setBody(ctx)
}

func (l *leg) setBody(ctx *fasthttp.RequestCtx) error {
	switch {
	case l.length == 0:
		l.done = true
		l.finish()
		return nil
	case l.length > 0:
		ctx.Response.SetBodyStream(l, int(l.length))
		return nil
	case l.length == lengthChunked:
		l.chunks = chunkParser{budget: upstreamHeadLimit - len(l.head.raw)}
		if n, ok, err := l.bufferedChunkedLength(!ctx.Request.Header.IsHTTP11()); err != nil {
			return err
		} else if ok {
			// The whole body is here already: it goes out with its length,
			// in one write, as a buffered body would.
			ctx.Response.SetBodyStream(l, int(n))
			return nil
		}
	}
	if !ctx.Request.Header.IsHTTP11() {
		// An HTTP/1.0 client cannot read chunked framing, and fasthttp
		// frames every stream of unknown length so: the body goes out
		// raw, delimited by closing the connection.
		l.relayUntilClose(ctx)
		return nil
	}
	ctx.Response.SetBodyStream(l, -1)
	return nil
}

// bufferedChunkedLength finds the decoded length of a chunked body that is
// already whole in br. It waits at least for the first chunk-size line, so
// that a bad one is still answered 502. For an HTTP/1.0 client it waits
// for more of the body while br has room: a length keeps that client's
// connection open, where the alternative is a body delimited by closing it.
func (l *leg) bufferedChunkedLength(untilWhole bool) (int64, bool, error) {
	for {
		b, _ := l.br.Peek(l.br.Buffered())
		n, ok, err := l.chunks.completeLength(b)
		if ok || err != nil || len(b) >= l.br.Size() {
			return n, ok, err
		}
		if first := l.chunks; !untilWhole {
			if _, _, err := first.step(b); err != errNeedMore {
				return 0, false, nil
			}
		}
		if err := l.fill(len(b) + 1); err != nil {
			return 0, false, truncated(err)
		}
	}
}

// relayUntilClose writes the response itself on the client connection
// once the handler is done, then closes it.
func (l *leg) relayUntilClose(ctx *fasthttp.RequestCtx) {
	rh := &ctx.Response.Header
	rh.SetContentLength(-2)
	rh.SetConnectionClose()
	// A copy: fasthttp reuses the header's buffer once the handler is done.
	head := append([]byte(nil), rh.Header()...)
	takeAfter(ctx, l.client, func(c net.Conn) {
		if _, err := c.Write(head); err == nil {
			l.WriteTo(c)
		}
		l.finish()
	})
}

// finish releases the buffers and decides the connection's fate: back to
// the pool only after a response read to its exact end with nothing
// behind it (RFC 9112 9.3).
func (l *leg) finish() {
	if l.p == nil {
		return
	}
	reusable := l.done && !l.failed && !l.head.closes && l.length != lengthUntilClose &&
		l.br.Buffered() == 0 && l.pc.handle != nil
	l.p.upstream.ReleaseReader(l.br)
	switch {
	case reusable:
		l.p.pool.release(l.pc)
	case l.pc.handle != nil:
		l.p.pool.discard(l.pc)
	default:
		l.pc.conn.Close()
	}
	*l = leg{}
	legPool.Put(l)
}

// Close is called by fasthttp once it has written the body, or given up.
func (l *leg) Close() error {
	l.finish()
	return nil
}

// SupportsBodyWriteTo tells fasthttp to call WriteTo, which writes from
// the upstream read buffer without a copy buffer of its own.
func (l *leg) SupportsBodyWriteTo() bool { return true }

// WriteTo copies the body to w as it arrives. A client that does not read
// blocks w, and so the next read from the upstream: backpressure.
func (l *leg) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		b, err := l.segment()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			l.failed = true
			return total, err
		}
		n, err := w.Write(b)
		l.consume(n)
		total += int64(n)
		if err != nil {
			l.failed = true
			return total, err
		}
	}
}

func (l *leg) Read(p []byte) (int, error) {
	b, err := l.segment()
	if err != nil {
		if err != io.EOF {
			l.failed = true
		}
		return 0, err
	}
	n := copy(p, b)
	l.consume(n)
	return n, nil
}

// segment returns the next piece of body data, still in br; the caller
// consumes what it used of it.
func (l *leg) segment() ([]byte, error) {
	for {
		if l.done {
			return nil, io.EOF
		}
		switch l.length {
		case 0:
			l.done = true
			return nil, io.EOF
		case lengthUntilClose:
			if err := l.fill(1); err != nil {
				if err == io.EOF {
					l.done = true
				}
				return nil, err
			}
			return l.buffered(int64(l.br.Buffered())), nil
		case lengthChunked:
			b := l.buffered(int64(l.br.Buffered()))
			n, data, err := l.chunks.step(b)
			switch {
			case err == errNeedMore:
				if len(b) >= l.br.Size() {
					return nil, errChunkLimit
				}
				if err := l.fill(len(b) + 1); err != nil {
					return nil, truncated(err)
				}
			case err != nil:
				return nil, err
			case data != nil:
				return data, nil
			default:
				l.br.Discard(n)
				l.done = l.chunks.state == chunkDone
			}
		default:
			if err := l.fill(1); err != nil {
				return nil, truncated(err)
			}
			return l.buffered(l.length), nil
		}
	}
}

func (l *leg) buffered(max int64) []byte {
	n := int64(l.br.Buffered())
	if n > max {
		n = max
	}
	b, _ := l.br.Peek(int(n))
	return b
}

func (l *leg) consume(n int) {
	l.br.Discard(n)
	if l.length > 0 {
		l.length -= int64(n)
	}
}

// fill waits until br holds n bytes; each wait is a gap the upstream
// timeout bounds.
func (l *leg) fill(n int) error {
	if l.br.Buffered() >= n {
		return nil
	}
	if err := l.pc.conn.SetReadDeadline(time.Now().Add(l.p.timeout)); err != nil {
		return err
	}
	_, err := l.br.Peek(n)
	return err
}

func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
