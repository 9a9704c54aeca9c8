package main

import (
	"bufio"
	"bytes"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
)

var (
	viaName  = []byte("Via")
	viaValue = []byte(viaEntry)
)

// relayHead readies the upstream's response head for the client: it drops
// the hop-by-hop fields and adds this proxy to Via. The usual response has
// neither hop-by-hop fields nor Via, and costs one look at each field name
// and one added field.
func relayHead(h *fasthttp.ResponseHeader) error {
	// The upstream connection's fate is decided by now; the client
	// connection's is not the upstream's business.
	h.ResetConnectionClose()
	for name := range h.All() {
		if isHopByHop(name) || equalFold(name, "via") {
			return rebuildHead(h)
		}
	}
	h.AddBytesKV(viaName, viaValue)
	return nil
}

// rebuildScratch is reused between rebuilds; chunked upstream responses
// take this path on every request.
type rebuildScratch struct {
	buf []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

var rebuildPool = sync.Pool{New: func() any { return new(rebuildScratch) }}

// rebuildHead writes the fields to keep into a fresh head and parses it back
// into h. Deleting fields through fasthttp would reorder the remaining ones,
// and re-adding them through its setters would drop Date, which it manages
// itself; parsing keeps both intact.
func rebuildHead(h *fasthttp.ResponseHeader) error {
	s := rebuildPool.Get().(*rebuildScratch)
	defer rebuildPool.Put(s)

	// The Connection fields and the last Via are needed before the fields
	// they affect are written, so they are found first.
	var conns [][]byte
	lastVia := -1
	i := 0
	for name, value := range h.All() {
		if equalFold(name, "connection") {
			conns = append(conns, value)
		} else if equalFold(name, "via") {
			lastVia = i
		}
		i++
	}
	if listedIn(conns, viaName) {
		lastVia = -1
	}

	b := append(s.buf[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(h.StatusCode()), 10)
	if msg := h.StatusMessage(); len(msg) > 0 {
		b = append(b, ' ')
		b = append(b, msg...)
	}
	b = append(b, "\r\n"...)
	i = 0
	for name, value := range h.All() {
		n := i
		i++
		if isHopByHop(name) || listedIn(conns, name) {
			continue
		}
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		if n == lastVia {
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
	b = append(b, "\r\n"...)
	s.buf = b

	s.rd.Reset(b)
	if s.br == nil || s.br.Size() < len(b)+1 {
		s.br = bufio.NewReaderSize(&s.rd, len(b)+1)
	} else {
		s.br.Reset(&s.rd)
	}
	if err := h.Read(s.br); err != nil {
		return err
	}
	// Parsing a head without a length marks it for closing, as if the body
	// ran to the end of the connection; the body is already read here and
	// goes out with its length.
	h.ResetConnectionClose()
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
