package main

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// bodyProgressTimeout bounds the gap between two reads that deliver
// request body bytes; an upload that keeps sending is never cut.
const bodyProgressTimeout = 5 * time.Second

// clientError is a failure of the client's side of the exchange, answered
// with a 4xx of the proxy's own.
type clientError struct {
	status int
	msg    string
}

func (e *clientError) Error() string { return e.msg }

var (
	errBodyTooLarge  = &clientError{fasthttp.StatusRequestEntityTooLarge, "request body too large\n"}
	errBodyTimeout   = &clientError{fasthttp.StatusRequestTimeout, "request timeout\n"}
	errBodyMalformed = &clientError{fasthttp.StatusBadRequest, "bad request: malformed body\n"}
	errTrailerLarge  = &clientError{fasthttp.StatusRequestHeaderFieldsTooLarge, "request header too large\n"}
)

const (
	// chunkHeadRoom is what a chunk-size line written in front of a piece
	// of data takes at most.
	chunkHeadRoom = 18
	// minBodyRead is the least room a body read gets; below it the buffer
	// is flushed first, so reads are not shredded into tiny pieces.
	minBodyRead = 1024
)

// sendBody streams the client's body to the upstream through the upstream
// write buffer. A body with a Content-Length comes from fasthttp's body
// stream, each read landing in the buffer's free space, so its bytes are
// copied once on their way; a chunked one from the taken connection.
func (l *leg) sendBody(ctx *fasthttp.RequestCtx, head *requestHead) error {
	if head.bodyLength == lengthChunked {
		return l.sendChunked(ctx, head.client)
	}
	r := ctx.RequestBodyStream()
	if r == nil {
		return errBodyMalformed
	}
	client := ctx.Conn()
	var total int64
	for {
		if l.bw.Available() < minBodyRead {
			if err := l.flush(); err != nil {
				return err
			}
		}
		room := l.bw.AvailableBuffer()[:l.bw.Available()]
		if err := client.SetReadDeadline(time.Now().Add(bodyProgressTimeout)); err != nil {
			return err
		}
		n, rerr := r.Read(room)
		total += int64(n)
		l.bw.Write(room[:n])
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return bodyReadError(rerr)
		}
	}
	if total != head.bodyLength {
		return errBodyMalformed
	}
	return l.flush()
}

// sendChunked decodes the client's chunked body from the raw bytes of the
// taken connection with the same strict decoder as upstream bodies (CRLF
// only; extensions and trailer fields counted against what the request
// head left of MAX_HEADER_BYTES) and sends its data on re-framed, one
// chunk per piece read: extensions and trailers are not forwarded. Data
// is copied once, from the client reader into the upstream write buffer.
func (l *leg) sendChunked(ctx *fasthttp.RequestCtx, t *takenConn) error {
	chunks := chunkParser{budget: l.p.maxHead - requestHeadLength(&ctx.Request.Header)}
	var total int64
	for chunks.state != chunkDone {
		if l.bw.Available() < minBodyRead+chunkHeadRoom+2 {
			if err := l.flush(); err != nil {
				return err
			}
		}
		b, _ := t.br.Peek(t.br.Buffered())
		if room := l.bw.Available() - chunkHeadRoom - 2; chunks.state == chunkData && len(b) > room {
			// Only as much data as the write buffer takes without a flush
			// of its own, which would go out without a fresh deadline.
			b = b[:room]
		}
		n, data, err := chunks.step(b)
		switch {
		case err == errNeedMore:
			if err := t.fill(len(b) + 1); err != nil {
				return err
			}
			continue
		case err != nil:
			return chunkRequestError(err)
		}
		if total += int64(len(data)); total > l.p.maxBody {
			return errBodyTooLarge
		}
		if len(data) > 0 {
			writeChunk(l.bw, data)
		}
		t.br.Discard(n)
	}
	t.bodyRead = true
	l.bw.WriteString("0\r\n\r\n")
	return l.flush()
}

// fill waits until br holds n bytes, each read under a fresh body
// progress deadline.
func (t *takenConn) fill(n int) error {
	if n > t.br.Size() {
		// Not reached: a framing element longer than the reader is over
		// the head limit before it ends.
		return errTrailerLarge
	}
	if err := t.conn.SetReadDeadline(time.Now().Add(bodyProgressTimeout)); err != nil {
		return err
	}
	if _, err := t.br.Peek(n); err != nil {
		return bodyReadError(err)
	}
	return nil
}

func chunkRequestError(err error) error {
	if err == errChunkLimit {
		return errTrailerLarge
	}
	return errBodyMalformed
}

// writeChunk writes one chunk: its size line, the data, its CRLF.
func writeChunk(bw *bufio.Writer, data []byte) {
	var line [chunkHeadRoom]byte
	bw.Write(append(strconv.AppendInt(line[:0], int64(len(data)), 16), '\r', '\n'))
	bw.Write(data)
	bw.WriteString("\r\n")
}

// requestHeadLength is the size of the request head as it arrived: request
// line, fields and the empty line, all with their CRLFs. fasthttp keeps the
// field block as it was, but not the request line, which is counted from
// its parts and the single spaces between them (RFC 9112 3).
func requestHeadLength(h *fasthttp.RequestHeader) int {
	n := len(h.Method()) + 1 + len(h.RequestURI()) + 1 + len(h.Protocol()) + 2
	if raw := h.RawHeaders(); len(raw) > 0 {
		return n + len(raw)
	}
	return n + 2
}

// flush writes what bw holds; each write is a gap the upstream timeout
// bounds.
func (l *leg) flush() error {
	if err := l.pc.conn.SetWriteDeadline(time.Now().Add(l.p.timeout)); err != nil {
		return err
	}
	return l.bw.Flush()
}

// bodyReadError maps a failure reading the client's body to its answer.
func bodyReadError(err error) error {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case isTimeout(err):
		return errBodyTimeout
	case errors.As(err, &small):
		return errTrailerLarge
	}
	return errBodyMalformed
}
