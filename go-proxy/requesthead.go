package main

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"

	"github.com/valyala/fasthttp"
)

type fieldKind uint8

const (
	plainField      fieldKind = iota
	dropField                 // hop-by-hop, or named by a Connection field
	connectionField           // dropped as well, but first read for the fields it names
	framingField              // Content-Length or Transfer-Encoding: replaced by the body's real length
	hostField
	forwardedForField
	viaField
)

type field struct {
	name, value []byte
	kind        fieldKind
}

// requestHead is the client's header section as it arrived, split into
// classified fields, so the upstream request can be written in one pass
// with every forwarded field in its original order and spelling.
//
// fasthttp's parsed header is not used for this: it keeps Host, User-Agent,
// Content-Type and cookies apart from the other fields, and deleting a field
// from it reorders the rest.
type requestHead struct {
	fields []field
	target target
	method []byte
	// bodyLength is the Content-Length, -1 for a chunked body, -2 for none.
	bodyLength int64
	// lastXFF and lastVia index the field the proxy's entry is appended to,
	// or are -1 when a new field has to be added.
	lastXFF, lastVia int
	hasHost          bool
	// client is set once the proxy has taken the client connection over
	// from fasthttp for the rest of the exchange (see takenConn).
	client *takenConn
}

var (
	errFolded          = errors.New("obsolete line folding")
	errMalformedField  = errors.New("malformed header field")
	errAmbiguousFrame  = errors.New("both Content-Length and Transfer-Encoding")
	errUnsupportedCode = errors.New("unsupported transfer coding")
)

// parse reads the raw header block fasthttp has already validated field by
// field; what it checks on top is what fasthttp lets through but a proxy
// must not pass on.
func (h *requestHead) parse(raw []byte) error {
	h.fields = h.fields[:0]
	h.lastXFF, h.lastVia = -1, -1
	h.hasHost = false
	h.bodyLength = -2
	var sawLength, sawChunked, connectionNames bool
	for len(raw) > 0 {
		line := raw
		raw = nil
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, raw = line[:i], line[i+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		// RFC 9112 5.2 lets a server reject obs-fold rather than unfold it.
		if line[0] == ' ' || line[0] == '\t' {
			return errFolded
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.IndexAny(line[:colon], " \t") >= 0 {
			return errMalformedField
		}
		f := field{name: line[:colon], value: trimOWS(line[colon+1:])}
		f.kind = classifyRequestField(f.name)
		switch f.kind {
		case framingField:
			if len(f.name) == len("content-length") {
				sawLength = true
				// fasthttp has checked the digits and that the field is
				// alone; the value is read here because the server may
				// have replaced it (see limitBody).
				h.bodyLength, _ = parseLength(f.value)
			} else {
				// fasthttp has refused every other coding but identity, which
				// is no longer a transfer coding at all (RFC 9112 7).
				if !equalFold(f.value, "chunked") {
					return errUnsupportedCode
				}
				sawChunked = true
				h.bodyLength = -1
			}
		case connectionField:
			connectionNames = connectionNames || namesFields(f.value)
		case hostField:
			h.hasHost = true
		case forwardedForField:
			h.lastXFF = len(h.fields)
		case viaField:
			h.lastVia = len(h.fields)
		}
		h.fields = append(h.fields, f)
	}
	// fasthttp reads such a body as chunked and only marks the connection
	// for closing; a proxy must refuse it, or it and the next hop may frame
	// the message differently (RFC 9112 6.3).
	if sawLength && sawChunked {
		return errAmbiguousFrame
	}
	if connectionNames {
		h.dropNamed()
	}
	return nil
}

func classifyRequestField(name []byte) fieldKind {
	switch len(name) {
	case 3:
		if equalFold(name, "via") {
			return viaField
		}
	case 4:
		if equalFold(name, "host") {
			return hostField
		}
	case 10:
		if equalFold(name, "connection") {
			return connectionField
		}
	case 14:
		if equalFold(name, "content-length") {
			return framingField
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return forwardedForField
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return framingField
		}
	}
	if isHopByHop(name) {
		return dropField
	}
	return plainField
}

// dropNamed drops the fields a Connection field names. Host and the framing
// fields are exempt: naming them can only be an attempt to change which
// request the upstream sees, not a hop-by-hop option.
func (h *requestHead) dropNamed() {
	h.lastXFF, h.lastVia = -1, -1
	for i := range h.fields {
		f := &h.fields[i]
		switch f.kind {
		case plainField, forwardedForField, viaField:
		default:
			continue
		}
		for j := range h.fields {
			if h.fields[j].kind == connectionField && listsName(h.fields[j].value, f.name) {
				f.kind = dropField
				break
			}
		}
		switch f.kind {
		case forwardedForField:
			h.lastXFF = i
		case viaField:
			h.lastVia = i
		}
	}
}

func (h *requestHead) hasBody() bool {
	return h.bodyLength > 0 || h.bodyLength == -1
}

// idempotent: sending the request twice has the effect of sending it once
// (RFC 9110 9.2.2).
func (h *requestHead) idempotent() bool {
	switch string(h.method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

const (
	viaEntry       = "1.1 proxylab-go"
	requestLineEnd = " HTTP/1.1\r\n"
)

// writeRequest writes the upstream request head: the client's method, the
// target in origin-form (or "*"), its fields minus the hop-by-hop ones, a
// Host from an absolute-form target, the proxy's X-Forwarded-For and Via
// entries, and the framing field the body goes with. Errors stick in bw
// and surface at Flush.
func writeRequest(bw *bufio.Writer, h *requestHead, client netip.Addr, upstreamHost string) {
	bw.Write(h.method)
	bw.WriteByte(' ')
	bw.Write(h.target.uri)
	// Always 1.1: an HTTP/1.0 request line would make the upstream close
	// the pooled connection after answering.
	bw.WriteString(requestLineEnd)
	for i := range h.fields {
		f := &h.fields[i]
		value := f.value
		switch f.kind {
		case dropField, connectionField:
			continue
		case hostField:
			if h.target.authority != nil {
				value = h.target.authority
			}
		case framingField:
			// The body is re-framed chunk by chunk: the field is the
			// proxy's own, not the client's hop-by-hop one passed on.
			if len(f.name) != len("content-length") {
				bw.WriteString("Transfer-Encoding: chunked\r\n")
				continue
			}
		}
		bw.Write(f.name)
		bw.WriteString(": ")
		bw.Write(value)
		if i == h.lastXFF {
			appendListSep(bw, f.value)
			writeAddr(bw, client)
		} else if i == h.lastVia {
			appendListSep(bw, f.value)
			bw.WriteString(viaEntry)
		}
		bw.WriteString("\r\n")
	}
	if h.lastXFF < 0 {
		bw.WriteString("X-Forwarded-For: ")
		writeAddr(bw, client)
		bw.WriteString("\r\n")
	}
	if h.lastVia < 0 {
		bw.WriteString("Via: " + viaEntry + "\r\n")
	}
	// Only an HTTP/1.0 request can arrive without Host; the upstream
	// request is 1.1, which requires one.
	if !h.hasHost {
		bw.WriteString("Host: ")
		if h.target.authority != nil {
			bw.Write(h.target.authority)
		} else {
			bw.WriteString(upstreamHost)
		}
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// writeRequestRaw is writeRequest under the measurement-only switch: the
// client's header block goes on as fasthttp kept it, hop-by-hop fields and
// all, with only the proxy's own entries added.
func writeRequestRaw(bw *bufio.Writer, req *fasthttp.Request, h *requestHead, client netip.Addr) {
	bw.Write(req.Header.Method())
	bw.WriteByte(' ')
	bw.Write(h.target.uri)
	bw.WriteString(requestLineEnd)
	raw := req.Header.RawHeaders()
	raw = bytes.TrimSuffix(raw, crlf)
	raw = bytes.TrimSuffix(raw, crlf)
	bw.Write(raw)
	bw.WriteString("\r\nX-Forwarded-For: ")
	writeAddr(bw, client)
	bw.WriteString("\r\nVia: " + viaEntry + "\r\n\r\n")
}

var crlf = []byte("\r\n")

func appendListSep(bw *bufio.Writer, value []byte) {
	if len(value) > 0 {
		bw.WriteString(", ")
	}
}

func writeAddr(bw *bufio.Writer, a netip.Addr) {
	if !a.IsValid() {
		bw.WriteString("unknown")
		return
	}
	bw.Write(a.AppendTo(bw.AvailableBuffer()))
}
