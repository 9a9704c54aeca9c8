package main

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
)

// upstreamHeadLimit bounds an upstream response head (status line, fields,
// their line ends and the empty line), each 1xx head alike. It is the
// upstream read buffer's size: a head must fit in it whole.
const upstreamHeadLimit = 16384

// Body lengths besides a Content-Length.
const (
	lengthChunked    = -1
	lengthUntilClose = -2
)

var (
	errHeadTooLarge      = errors.New("upstream response head over 16384 bytes")
	errStatusLine        = errors.New("malformed upstream status line")
	errResponseField     = errors.New("malformed upstream response field")
	errTransferCoding    = errors.New("upstream transfer coding other than chunked")
	errLengthAndChunked  = errors.New("upstream sent both Transfer-Encoding and Content-Length")
	errContentLength     = errors.New("invalid upstream Content-Length")
	errSwitchedProtocols = errors.New("upstream switched protocols")
)

// responseHead is an upstream response head as it lies in the upstream
// read buffer, checked and classified; raw is valid until the buffer
// moves on.
type responseHead struct {
	raw    []byte
	status int
	length int64 // a Content-Length, lengthChunked or lengthUntilClose
	// closes: the upstream ends the connection after this response.
	closes bool
	// rewrite: some field must be dropped or extended on the way to the
	// client, so the fields have to be written out one by one.
	rewrite bool
	reason  []byte
	http10  bool
}

// peekHead waits until a whole head is in br and returns it without
// consuming it. arrived reports whether any byte of it came at all: a
// connection that fails before that may be retried.
func peekHead(br *bufio.Reader) (head []byte, arrived bool, err error) {
	b, err := br.Peek(1)
	if len(b) == 0 {
		return nil, false, err
	}
	for {
		b, _ = br.Peek(br.Buffered())
		if n := headEnd(b); n > 0 {
			return b[:n], true, nil
		}
		if len(b) >= upstreamHeadLimit {
			return nil, true, errHeadTooLarge
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, true, err
		}
	}
}

// headEnd returns the length of the head at the start of b up to and
// including its empty line, or 0 when b does not hold it yet. Lines may
// end in LF alone, which RFC 9112 2.2 lets a recipient accept in a head.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		empty := j == 0 || (j == 1 && b[i] == '\r')
		i += j + 1
		if empty {
			return i
		}
	}
}

// parseResponseHead checks the head and classifies what the relay needs.
func parseResponseHead(raw []byte, h *responseHead) error {
	*h = responseHead{raw: raw, length: lengthUntilClose}
	line, rest := cutLine(raw)
	if err := parseStatusLine(line, h); err != nil {
		return err
	}
	var lengths, codings int
	keepAlive := false
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errResponseField
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.IndexAny(line[:colon], " \t") >= 0 {
			return errResponseField
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || (lengths > 0 && n != h.length) {
				return errContentLength
			}
			h.length = n
			lengths++
			// fasthttp refuses a repeated Content-Length even when the
			// values agree; the relay writes one.
			h.rewrite = h.rewrite || lengths > 1
		case equalFold(name, "transfer-encoding"):
			codings++
			if codings > 1 || !equalFold(value, "chunked") {
				return errTransferCoding
			}
			h.rewrite = true
		case equalFold(name, "connection"):
			h.rewrite = true
			h.closes = h.closes || listsName(value, closeToken)
			keepAlive = keepAlive || listsName(value, keepAliveToken)
		case isHopByHop(name) || equalFold(name, "via"):
			h.rewrite = true
		}
	}
	if codings > 0 {
		if lengths > 0 {
			return errLengthAndChunked
		}
		h.length = lengthChunked
	}
	if h.http10 && !keepAlive {
		h.closes = true
	}
	return nil
}

var (
	closeToken     = []byte("close")
	keepAliveToken = []byte("keep-alive")
)

// cutLine splits off the first line, without its CRLF or LF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseStatusLine reads "HTTP/1.x SP 3DIGIT SP reason" (RFC 9112 4).
func parseStatusLine(line []byte, h *responseHead) error {
	if len(line) < 12 || !bytes.HasPrefix(line, http1Prefix) || line[8] != ' ' ||
		(line[7] != '0' && line[7] != '1') {
		return errStatusLine
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errStatusLine
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || (len(line) > 12 && line[12] != ' ') {
		return errStatusLine
	}
	h.status = code
	if len(line) > 13 {
		h.reason = line[13:]
	}
	h.http10 = line[7] == '0'
	return nil
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// appendClientHead writes the head the client gets: the status line, the
// upstream's fields minus the hop-by-hop ones and those a Connection field
// names, Via extended or added. The framing fields go too unless keepLength
// (a response without a body keeps its Content-Length: it describes the
// representation, not this message).
func appendClientHead(b []byte, h *responseHead, keepLength bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(h.status), 10)
	b = append(b, ' ')
	b = append(b, h.reason...)
	b = append(b, "\r\n"...)
	_, fields := cutLine(h.raw)
	conns, lastVia := connectionsAndVia(fields)
	lengthDone := !keepLength
	for i := 0; ; i++ {
		var line []byte
		line, fields = cutLine(fields)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		name, value := line[:colon], trimOWS(line[colon+1:])
		if equalFold(name, "content-length") {
			if lengthDone {
				continue
			}
			lengthDone = true
		}
		if isHopByHop(name) || (conns != nil && listedIn(conns, name)) {
			continue
		}
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		if i == lastVia {
			if len(value) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, viaEntry...)
		}
		b = append(b, "\r\n"...)
	}
	if lastVia < 0 {
		b = append(b, "Via: "+viaEntry+"\r\n"...)
	}
	return append(b, "\r\n"...)
}

// connectionsAndVia finds the Connection field values and the index of the
// last Via field that is not itself named by a Connection field (-1: none).
func connectionsAndVia(fields []byte) (conns [][]byte, lastVia int) {
	lastVia = -1
	for i := 0; ; i++ {
		var line []byte
		line, fields = cutLine(fields)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		name := line[:colon]
		if equalFold(name, "connection") {
			conns = append(conns, trimOWS(line[colon+1:]))
		} else if equalFold(name, "via") {
			lastVia = i
		}
	}
	if listedIn(conns, viaName) {
		lastVia = -1
	}
	return conns, lastVia
}

var (
	viaName  = []byte("Via")
	viaValue = []byte(viaEntry)
)

// headScratch is reused between responses: the client head is written into
// buf and parsed back by fasthttp through br.
type headScratch struct {
	buf []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

var headScratchPool = sync.Pool{New: func() any { return new(headScratch) }}

// setClientHead gives fasthttp the head the client gets. fasthttp's own
// setters cannot do it: deleting fields reorders the rest, and it manages
// Date itself, so it is handed a serialised head and parses it.
func setClientHead(dst *fasthttp.ResponseHeader, h *responseHead, keepLength bool) error {
	s := headScratchPool.Get().(*headScratch)
	defer headScratchPool.Put(s)
	s.buf = appendClientHead(s.buf[:0], h, keepLength)
	s.rd.Reset(s.buf)
	if s.br == nil || s.br.Size() < len(s.buf)+1 {
		s.br = bufio.NewReaderSize(&s.rd, max(len(s.buf)+1, 4096))
	} else {
		s.br.Reset(&s.rd)
	}
	if err := dst.Read(s.br); err != nil {
		return err
	}
	// A head without a length parses as if its body ran to the end of the
	// connection; the body goes out framed by fasthttp instead.
	dst.ResetConnectionClose()
	return nil
}

// setClientHeadDirect lets fasthttp parse the upstream head straight from
// br and adds Via. That is the whole job when no field has to be dropped or
// extended, the usual case; the measurement-only switch uses it for every
// head, whatever it holds.
func setClientHeadDirect(dst *fasthttp.ResponseHeader, br *bufio.Reader) error {
	if err := dst.Read(br); err != nil {
		return err
	}
	dst.ResetConnectionClose()
	dst.AddBytesKV(viaName, viaValue)
	return nil
}

func listedIn(conns [][]byte, name []byte) bool {
	for _, v := range conns {
		if listsName(v, name) {
			return true
		}
	}
	return false
}
