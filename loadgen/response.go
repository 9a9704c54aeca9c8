package loadgen

import (
	"io"

	"github.com/valyala/fasthttp"
)

// readResponse reads one whole response and returns its status code, its
// body size and whether the connection must be closed after it.
//
// Nearly every answer the lab sees has one plain shape: HTTP/1.1, a 2xx or
// 3xx status, a Content-Length, no transfer coding, and its head already in
// the read buffer. That shape is parsed in place (plainHead), and its body
// skipped without a copy when it is buffered too. Every other response,
// chunked, HTTP/1.0, interim 1xx, bodies that end with the connection, error
// statuses, anything malformed, goes to fasthttp, untouched, so that what is
// accepted, how it is framed and how errors are worded stay fasthttp's.
func (c *conn) readResponse(skipBody bool) (code, bodyBytes int, closeAfter bool, err error) {
	if b, err := c.br.Peek(1); len(b) == 0 {
		// The retry of a request on a connection the peer closed while
		// idle depends on telling this failure from a later one.
		return 0, 0, false, beforeAnswer{err}
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	if h, size, ok := plainHead(buffered, skipBody); ok {
		c.br.Discard(size)
		n, err := c.discard(h.length)
		return h.code, n, h.close, err
	}

	if c.resp == nil {
		c.resp = &fasthttp.Response{StreamBody: true}
	}
	c.resp.SkipBody = skipBody
	if err := c.resp.Read(c.br); err != nil {
		return 0, 0, false, err
	}
	// A body without length or chunks ends with the connection.
	untilClose := c.resp.BodyStream() != nil && c.resp.Header.ContentLength() == -2
	n, err := c.drain()
	return c.resp.StatusCode(), n, c.resp.ConnectionClose() || untilClose, err
}

// discard reads n body bytes through and returns how many it read. A body
// that ends early fails with io.ErrUnexpectedEOF, as with fasthttp.
func (c *conn) discard(n int) (int, error) {
	if n <= c.br.Buffered() {
		c.br.Discard(n)
		return n, nil
	}
	c.body = io.LimitedReader{R: c.br, N: int64(n)}
	read, err := io.Copy(io.Discard, &c.body)
	c.body.R = nil
	if err == nil && read < int64(n) {
		err = io.ErrUnexpectedEOF
	}
	return int(read), err
}

// head is what the client needs of a response head.
type head struct {
	code   int
	length int // body bytes to read
	close  bool
}

// plainHead parses a response head of the plain shape readResponse
// describes from b and returns it with its size in bytes. ok is false for
// any other shape, or when the head does not end within b: then nothing is
// decided here. skipBody is set for HEAD requests, whose answers have none.
//
// What it accepts, fasthttp parses alike (TestPlainHeadAgreesWithFasthttp):
// the grammar is strict (CRLF line ends, token header names, values of
// visible ASCII and spaces, one Content-Length of at most 18 digits), so that no shape fasthttp
// would read differently or reject gets through.
func plainHead(b []byte, skipBody bool) (h head, size int, ok bool) {
	const proto = "HTTP/1.1 "
	if len(b) < len(proto)+4 || string(b[:len(proto)]) != proto {
		return head{}, 0, false
	}
	i := len(proto)
	for _, d := range b[i : i+3] {
		if d < '0' || d > '9' {
			return head{}, 0, false
		}
		h.code = 10*h.code + int(d-'0')
	}
	i += 3
	// Other statuses are rare and need fasthttp: 1xx precede the answer,
	// error statuses are reported with their reason phrase.
	if h.code < 200 || h.code > 399 || b[i] != ' ' {
		return head{}, 0, false
	}
	// The reason phrase, not empty.
	i++
	end, ok := lineEnd(b, i)
	if !ok || end == i {
		return head{}, 0, false
	}
	i = end + 2

	length := -1
	for {
		if i+1 >= len(b) {
			return head{}, 0, false
		}
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				return head{}, 0, false
			}
			size = i + 2
			break
		}
		start := i
		for i < len(b) && tokenByte[b[i]] {
			i++
		}
		if i == start || i >= len(b) || b[i] != ':' {
			return head{}, 0, false
		}
		name := b[start:i]
		end, ok := lineEnd(b, i+1)
		if !ok {
			return head{}, 0, false
		}
		value := trimSpace(b[i+1 : end])
		i = end + 2
		switch {
		case equalFold(name, "content-length"):
			if length >= 0 {
				return head{}, 0, false
			}
			if length, ok = parseLength(value); !ok {
				return head{}, 0, false
			}
		case equalFold(name, "connection"):
			switch {
			case equalFold(value, "close"):
				h.close = true
			case !equalFold(value, "keep-alive"):
				return head{}, 0, false
			}
		case equalFold(name, "transfer-encoding"), equalFold(name, "trailer"):
			return head{}, 0, false
		}
	}
	switch {
	case h.code == 204 || h.code == 304:
		// No body, whatever the head says.
	case length < 0:
		// A body that ends with the connection; an answer to HEAD without
		// a length fasthttp takes as one that ends it too.
		return head{}, 0, false
	case !skipBody:
		h.length = length
	}
	return h, size, true
}

// lineEnd returns where the line from i ends: the index of its CR. ok is
// false when the line has a byte other than visible ASCII or space (tabs
// too are left to fasthttp), or does not end in CRLF within b.
func lineEnd(b []byte, i int) (int, bool) {
	for i < len(b) && lineByte[b[i]] {
		i++
	}
	if i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return 0, false
	}
	return i, true
}

// lineByte and tokenByte are the bytes a head line and a header name may
// hold (RFC 9110 field-vchar and SP, and tchar): one lookup a byte is what
// the per-request parse can afford.
var lineByte, tokenByte = func() (line, token [256]bool) {
	for c := ' '; c <= '~'; c++ {
		line[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		token[c] = true
	}
	return line, token
}()

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold tells whether b is lower, an ASCII lower-case string, in any case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: 1 to 18 digits, so that it
// cannot overflow.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = 10*n + int(d-'0')
	}
	return n, true
}
