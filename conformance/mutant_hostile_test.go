package conformance_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/proxylab/proxylab/conformance"
)

// hostileMutants break what the targets, interim, pool, upstream-framing,
// limits and timeouts cases check.
var hostileMutants = []mutant{
	// targets
	{
		// The front turns an absolute-form target into origin-form before
		// the proxy sees it; the back puts the original back.
		name: "absolute-form-forwarded-as-is",
		mut: mutation{
			front: fixed(shimSpec{request: func(h *msgHead) {
				if m, t, v, ok := requestParts(h); ok && strings.Contains(t, "://") {
					h.add(smuggled + "Target: " + t)
					h.lines[0] = m + " /smuggled " + v
				}
			}}),
			back: fixed(shimSpec{request: func(h *msgHead) {
				if t := h.values(smuggled + "Target"); len(t) == 1 {
					m, _, v, _ := requestParts(h)
					h.lines[0] = m + " " + t[0] + " " + v
					h.del(smuggled + "Target")
				}
			}}),
		},
		mustFail: []string{"targets/absolute-form"},
	},
	{
		name: "client-host-kept-for-absolute-form",
		mut: mutation{
			front: fixed(shimSpec{request: func(h *msgHead) {
				for _, v := range h.values("Host") {
					h.add(smuggled + "Host: " + v)
				}
			}}),
			back: fixed(shimSpec{request: func(h *msgHead) {
				if v := h.values(smuggled + "Host"); len(v) > 0 {
					h.del("Host")
					h.del(smuggled + "Host")
					h.lines = append(h.lines[:1], append([]string{"Host: " + v[0]}, h.lines[1:]...)...)
				}
			}}),
		},
		mustFail: []string{"targets/absolute-form"},
	},
	{
		name: "asterisk-sent-as-slash",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			if m, t, v, ok := requestParts(h); ok && t == "*" {
				h.lines[0] = m + " / " + v
			}
		}})},
		mustFail: []string{"targets/asterisk-form"},
	},
	{
		// Every target outside origin-form is made into one, and CONNECT
		// into GET, before the proxy can judge it.
		name: "bad-targets-repaired",
		mut: mutation{front: fixed(shimSpec{request: func(h *msgHead) {
			m, t, v, ok := requestParts(h)
			if !ok {
				return
			}
			if m == "CONNECT" {
				m = "GET"
			}
			if !strings.HasPrefix(t, "/") || strings.ContainsAny(t, "#@") {
				t = "/echo/repaired"
			}
			h.lines[0] = m + " " + t + " " + v
			if len(h.values("Host")) == 0 {
				h.add("Host: repaired.test")
			}
		}})},
		mustFail: []string{"targets/refused", "targets/connect-not-implemented"},
	},

	// interim
	{
		name: "interim-answers-dropped",
		mut: mutation{back: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if s, _ := h.status(); s > 101 && s < 200 {
				return drop
			}
			return relay
		}})},
		mustFail: []string{"interim/relayed-in-order"},
	},
	{
		// The proxy takes every HTTP/1.0 client for an HTTP/1.1 one.
		name: "HTTP/1.0-requests-taken-for-HTTP/1.1",
		mut: mutation{front: fixed(shimSpec{request: func(h *msgHead) {
			if m, t, v, ok := requestParts(h); ok && v == "HTTP/1.0" {
				h.lines[0] = m + " " + t + " HTTP/1.1"
				if len(h.values("Host")) == 0 {
					h.add("Host: upgraded.test")
				}
			}
		}})},
		mustFail: []string{"interim/not-to-http10"},
	},
	{
		name: "100-continue-before-every-POST-answer",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if s, _ := h.status(); s >= 200 && requestMethod(req) == "POST" {
				h.prefix = []byte("HTTP/1.1 100 Continue\r\n\r\n")
			}
			return relay
		}})},
		mustFail: []string{"interim/continue-absorbed"},
	},
	{
		name: "101-taken-for-a-final-answer",
		mut: mutation{back: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if s, _ := h.status(); s == 101 {
				setStatus(h, "200 OK")
				h.del("Upgrade")
				h.del("Connection")
			}
			return relay
		}})},
		mustFail: []string{"interim/switching-protocols-refused"},
	},

	// pool
	{
		name:     "unsolicited-bytes-unseen-until-the-next-request",
		mut:      mutation{back: fixed(shimSpec{lockstep: true})},
		mustFail: []string{"pool/unsolicited-bytes-discarded", "pool/body-longer-than-content-length"},
	},
	{
		name:     "stale-connections-fail-with-502",
		mut:      mutation{back: fixed(shimSpec{staleAs502: true})},
		mustFail: []string{"pool/idle-close-not-used", "pool/stale-get-retried"},
	},
	{
		name:     "failed-requests-retried",
		mut:      mutation{back: fixed(shimSpec{handler: retryingHandler})},
		mustFail: []string{"pool/no-retry-with-body-or-unsafe", "pool/no-retry-after-response-bytes"},
	},

	// upstream-framing
	{
		name:     "upstream-framing-guessed",
		mut:      mutation{back: fixed(shimSpec{handler: lenientUpstreamHandler})},
		mustFail: []string{"upstream-framing/transfer-codings", "upstream-framing/length-conflicts", "upstream-framing/chunked-bare-lf"},
	},

	// limits
	{
		name: "at-most-100-request-fields",
		mut: mutation{front: fixed(shimSpec{refuse: func(h *msgHead) string {
			if len(h.lines) > 101 {
				return "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 16\r\nConnection: close\r\n\r\ntoo many fields\n"
			}
			return ""
		}})},
		mustFail: []string{"limits/many-small-fields"},
	},
	{
		name: "head-limit-one-byte-short",
		mut: mutation{config: func(c *conformance.ProxyConfig) {
			if c.MaxHeaderBytes > 0 {
				c.MaxHeaderBytes--
			}
		}},
		mustFail: []string{"errors/head-too-large"},
	},
	{
		// Response heads reach the proxy with at most 50 fields of at most
		// 1000 bytes (framing fields kept).
		name: "response-heads-cut-short",
		mut: mutation{back: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			out, n := h.lines[:1], 0
			for _, l := range h.lines[1:] {
				name, _, _ := strings.Cut(l, ":")
				if framingField(name) {
					out = append(out, l)
				} else if n++; n <= 50 {
					out = append(out, l[:min(len(l), 1000)])
				}
			}
			h.lines = out
			return relay
		}})},
		mustFail: []string{"limits/response-head"},
	},
	{
		// Chunked bodies reach the proxy re-framed: it never sees their
		// extensions, trailers or line ends.
		name:     "request-bodies-re-framed-in-front",
		mut:      mutation{front: fixed(shimSpec{requestBody: func(h *msgHead, body []byte) []byte { return body }})},
		mustFail: []string{"limits/chunk-extensions", "limits/trailers", "limits/bare-lf-in-chunks"},
	},
	{
		name: "extensions-and-trailers-forwarded",
		mut: mutation{back: fixed(shimSpec{requestBody: func(h *msgHead, body []byte) []byte {
			if len(body) == 0 {
				return body
			}
			h.del("Content-Length")
			h.del("Transfer-Encoding")
			h.add("Transfer-Encoding: chunked")
			h.framed = true
			return fmt.Appendf(nil, "%x;ext=forwarded\r\n%s\r\n0\r\nX-Trailer: forwarded\r\n\r\n", len(body), body)
		}})},
		mustFail: []string{"limits/chunk-extensions", "limits/trailers"},
	},

	// timeouts
	{
		name:     "stalled-uploads-padded",
		mut:      mutation{front: fixed(shimSpec{handler: paddingHandler})},
		mustFail: []string{"timeouts/body-progress"},
	},
	{
		name:     "uploads-cut-4s-after-their-head",
		mut:      mutation{front: fixed(shimSpec{handler: wholeBodyDeadlineHandler})},
		mustFail: []string{"timeouts/body-progress"},
	},
	{
		name:     "head-gathered-without-a-deadline",
		mut:      mutation{front: fixed(shimSpec{handler: crlfOnlyHandler})},
		mustFail: []string{"timeouts/head"},
	},
	{
		name: "upstream-bodies-buffered-behind",
		mut: mutation{back: fixed(shimSpec{responseBody: func(req string, h *msgHead, body []byte) []byte {
			return body
		}})},
		mustFail: []string{"timeouts/upstream-progress"},
	},
	{
		name: "gateway-errors-keep-the-connection",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if s, _ := h.status(); s == 408 || s == 502 || s == 504 {
				h.del("Connection")
			}
			return relay
		}})},
		mustFail: []string{"timeouts/error-answers-close", "timeouts/body-progress"},
	},
}

// requestParts splits a request line into method, target and version.
func requestParts(h *msgHead) (method, target, version string, ok bool) {
	f := strings.Split(h.lines[0], " ")
	if len(f) != 3 {
		return "", "", "", false
	}
	return f[0], f[1], f[2], true
}

func framingField(name string) bool {
	return strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding")
}

// retryingHandler is an upstream side that reads each request whole and,
// when its exchange fails in any way (no answer, an answer cut short),
// sends it again on a new connection: what a proxy must not do for a
// request that is not idempotent or whose response had begun.
func retryingHandler(s *shim, proxy net.Conn) {
	br := bufio.NewReader(proxy)
	var up net.Conn
	var ubr *bufio.Reader
	defer func() {
		if up != nil {
			s.release(up)
		}
	}()
	for {
		var raw bytes.Buffer
		h, err := readHead(br, &raw)
		if err != nil {
			return
		}
		f, n, err := requestFraming(h, true)
		if err != nil {
			return
		}
		body, err := readBody(br, f, n)
		if err != nil {
			return
		}
		if f != noBody {
			h.reframe(len(body))
		}
		req := append(h.bytes(), body...)
		var answer []byte
		for try := 0; try < 2 && answer == nil; try++ {
			if up == nil {
				if up, err = s.dialFar(); err != nil {
					return
				}
				ubr = bufio.NewReader(up)
			}
			if answer, err = exchangeWhole(up, ubr, req, requestMethod(h.lines[0])); err != nil {
				s.release(up)
				up, answer = nil, nil
			}
		}
		if answer == nil {
			return
		}
		if _, err := proxy.Write(answer); err != nil {
			return
		}
	}
}

// exchangeWhole writes req and reads its whole answer, interim ones
// included, re-framed with Content-Length.
func exchangeWhole(up net.Conn, ubr *bufio.Reader, req []byte, method string) ([]byte, error) {
	if _, err := up.Write(req); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		var raw bytes.Buffer
		h, err := readHead(ubr, &raw)
		if err != nil {
			return nil, err
		}
		status, err := h.status()
		if err != nil {
			return nil, err
		}
		f, n, err := responseFraming(method, status, h)
		if err != nil {
			return nil, err
		}
		body, err := readBody(ubr, f, n)
		if err != nil {
			return nil, err
		}
		if f != noBody {
			h.reframe(len(body))
		}
		out.Write(append(h.bytes(), body...))
		if status >= 200 {
			return out.Bytes(), nil
		}
	}
}

// lenientUpstreamHandler is an upstream side that makes sense of any
// response framing: it decodes the last coding if that is chunked and
// drops the others, takes the first Content-Length, and reads chunk lines
// ending in a bare LF. The proxy behind it only ever sees clean framing.
func lenientUpstreamHandler(s *shim, proxy net.Conn) {
	server, err := s.dialFar()
	if err != nil {
		return
	}
	defer s.release(server)
	go func() {
		io.Copy(server, proxy)
		closeWrite(server)
	}()
	br := bufio.NewReader(server)
	for {
		lines, err := looseHead(br)
		if err != nil {
			return
		}
		if !relayLenient(proxy, br, lines) {
			return
		}
	}
}

// relayLenient relays one response whose head is lines; false when the
// connection ends with it.
func relayLenient(w io.Writer, br *bufio.Reader, lines []string) bool {
	var codings []string
	length := ""
	head := lines[0] + "\r\n"
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(strings.TrimSpace(name), "Transfer-Encoding"):
			codings = append(codings, strings.Split(value, ",")...)
		case strings.EqualFold(strings.TrimSpace(name), "Content-Length"):
			if length == "" {
				length = value
			}
		default:
			head += l + "\r\n"
		}
	}
	status := 0
	if f := strings.Fields(lines[0]); len(f) > 1 {
		status, _ = strconv.Atoi(f[1])
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		io.WriteString(w, head+"\r\n")
		return true
	case len(codings) > 0 && strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked"):
		io.WriteString(w, head+"Transfer-Encoding: chunked\r\n\r\n")
		return looseChunks(w, br)
	case len(codings) == 0 && length != "":
		digits := length[:len(length)-len(strings.TrimLeft(length, "0123456789+-"))]
		n, _ := strconv.ParseInt(strings.Trim(digits, "+-"), 10, 64)
		fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n", head, n)
		_, err := io.CopyN(w, br, n)
		return err == nil
	}
	// No framing it can use: the body runs until the close.
	io.WriteString(w, head+"\r\n")
	io.Copy(w, br)
	return false
}

// uploadHandler is a front that relays requests, each body copied by
// body; false from body ends the connection.
func uploadHandler(body func(server, client net.Conn, br *bufio.Reader, sr *stallReader, f framing, n int64) bool) func(*shim, net.Conn) {
	return func(s *shim, client net.Conn) {
		server, err := s.dialFar()
		if err != nil {
			return
		}
		defer s.release(server)
		go func() {
			io.Copy(client, server)
			client.Close()
		}()
		sr := &stallReader{conn: client}
		br := bufio.NewReader(sr)
		for {
			var raw bytes.Buffer
			h, err := readHead(br, &raw)
			var f framing
			var n int64
			if err == nil {
				f, n, err = requestFraming(h, false)
			}
			if err != nil {
				server.Write(raw.Bytes())
				io.Copy(server, br)
				closeWrite(server)
				return
			}
			server.Write(h.bytes())
			if !body(server, client, br, sr, f, n) {
				closeWrite(server)
				return
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// paddingHandler is a front that, when a client stalls for 2 s in the
// middle of a request body, completes the body itself (zero bytes for a
// Content-Length, the last chunk for chunked) and sends it on, as a proxy
// without a body timeout would hand a half-sent request on as whole.
var paddingHandler = uploadHandler(func(server, client net.Conn, br *bufio.Reader, sr *stallReader, f framing, n int64) bool {
	sr.stall = 2 * time.Second
	err := copyBody(server, br, f, n)
	sr.stall = 0
	switch {
	case err == nil:
	case isTimeout(err) && f == lengthBody:
		server.Write(make([]byte, n-copied(err)))
	case isTimeout(err) && f == chunkedBody:
		io.WriteString(server, "0\r\n\r\n")
	default:
		return false
	}
	return true
})

// wholeBodyDeadlineHandler is a front that gives each request body 4 s in
// all, however steadily it arrives, and answers 408 past them.
var wholeBodyDeadlineHandler = uploadHandler(func(server, client net.Conn, br *bufio.Reader, sr *stallReader, f framing, n int64) bool {
	sr.until = time.Now().Add(4 * time.Second)
	err := copyBody(server, br, f, n)
	sr.until = time.Time{}
	if isTimeout(err) {
		io.WriteString(client, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 16\r\nConnection: close\r\n\r\nrequest timeout\n")
	}
	return err == nil
})

// stallReader reads from conn, failing a read that waits longer than
// stall or past until (when set).
type stallReader struct {
	conn  net.Conn
	stall time.Duration
	until time.Time
}

func (r *stallReader) Read(p []byte) (int, error) {
	dl := r.until
	if r.stall > 0 && (dl.IsZero() || time.Now().Add(r.stall).Before(dl)) {
		dl = time.Now().Add(r.stall)
	}
	r.conn.SetReadDeadline(dl)
	return r.conn.Read(p)
}
