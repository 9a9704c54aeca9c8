package main

import (
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
	// chunkHeadRoom is kept free in front of data read into the upstream
	// write buffer, for the chunk-size line written before it.
	chunkHeadRoom = 18
	// minBodyRead is the least room a body read gets; below it the buffer
	// is flushed first, so reads are not shredded into tiny pieces.
	minBodyRead = 1024
)

// sendBody streams the client's body to the upstream through the upstream
// write buffer: each read lands in the buffer's free space, so the bytes
// are copied once on their way (twice for a chunked body, whose data is
// moved over the room left for its size line). A chunked body goes on
// re-framed: fasthttp has decoded it, extensions and trailers are gone.
func (l *leg) sendBody(ctx *fasthttp.RequestCtx, head *requestHead) error {
	r := ctx.RequestBodyStream()
	if r == nil {
		return errBodyMalformed
	}
	chunked := head.bodyLength < 0
	client := ctx.Conn()
	var total int64
	for {
		if l.bw.Available() < minBodyRead+chunkHeadRoom+2 {
			if err := l.flush(); err != nil {
				return err
			}
		}
		room := l.bw.AvailableBuffer()[:l.bw.Available()]
		if chunked {
			room = room[chunkHeadRoom : len(room)-2]
		}
		if err := client.SetReadDeadline(time.Now().Add(bodyProgressTimeout)); err != nil {
			return err
		}
		n, rerr := r.Read(room)
		total += int64(n)
		if chunked && total > l.p.maxBody {
			return errBodyTooLarge
		}
		if n > 0 {
			writeBodyPiece(l, room[:n], chunked)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return bodyReadError(rerr)
		}
	}
	if !chunked && total != head.bodyLength {
		return errBodyMalformed
	}
	if chunked {
		l.bw.WriteString("0\r\n\r\n")
	}
	return l.flush()
}

// writeBodyPiece commits data already lying in bw's free space. For a
// chunk, the size line goes first and the data moves down over the unused
// room (copy handles the overlap).
func writeBodyPiece(l *leg, data []byte, chunked bool) {
	if !chunked {
		l.bw.Write(data)
		return
	}
	var line [chunkHeadRoom]byte
	l.bw.Write(append(strconv.AppendInt(line[:0], int64(len(data)), 16), '\r', '\n'))
	l.bw.Write(data)
	l.bw.WriteString("\r\n")
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
