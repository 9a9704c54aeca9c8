package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scripted is an upstream that speaks raw TCP and does on each connection
// what its script says: what no well-behaved origin does (bytes after a
// response, a close while idle, interim answers, broken framing) is what
// the hostile cases need from it. It reads requests strictly, so what the
// proxy forwards is checked byte for byte too.
type Scripted struct {
	ln     net.Listener
	script func(c *ScriptConn)
	conns  atomic.Int64
	wg     sync.WaitGroup
	// done is closed when the upstream closes, for scripts that wait.
	done chan struct{}

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	got    []*ScriptRequest
}

// ScriptConn is one connection the proxy opened to a Scripted upstream.
type ScriptConn struct {
	net.Conn
	R *bufio.Reader
	// N numbers the connections in the order they were accepted, from 1.
	N int
	s *Scripted
}

// ScriptRequest is one request as the upstream received it.
type ScriptRequest struct {
	Method, Target, Proto string
	Fields                [][2]string
	// Body is the decoded body; Wire is the body as framed on the wire.
	Body, Wire []byte
	// Complete is set once the whole body arrived.
	Complete bool
	Conn     int
}

// Values returns the values of every field named name (any case), in order.
func (r *ScriptRequest) Values(name string) []string {
	var v []string
	for _, f := range r.Fields {
		if strings.EqualFold(f[0], name) {
			v = append(v, f[1])
		}
	}
	return v
}

// StartScripted starts a scripted upstream on a free loopback port; it is
// closed when the case ends. script runs once per accepted connection, and
// the connection is closed when it returns.
func (e *Env) StartScripted(script func(c *ScriptConn)) (*Scripted, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("scripted upstream: %w", err)
	}
	s := &Scripted{ln: ln, script: script, open: map[net.Conn]struct{}{}, done: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	e.addStop(s.Close)
	return s, nil
}

// ScriptedProxy starts a scripted upstream and a private proxy in front of
// it, configured with the contract's defaults.
func (e *Env) ScriptedProxy(script func(c *ScriptConn)) (*Scripted, Instance, error) {
	s, err := e.StartScripted(script)
	if err != nil {
		return nil, nil, err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = s.Addr() })
	if err != nil {
		return nil, nil, err
	}
	return s, p, nil
}

func (s *Scripted) Addr() string { return s.ln.Addr().String() }

// Connections is how many connections the upstream accepted.
func (s *Scripted) Connections() int { return int(s.conns.Load()) }

// Received is every request whose head arrived, in order of arrival.
func (s *Scripted) Received() []*ScriptRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ScriptRequest, len(s.got))
	for i, r := range s.got {
		c := *r
		out[i] = &c
	}
	return out
}

// Count is how many requests whose target is target arrived (head read).
func (s *Scripted) Count(target string) int {
	n := 0
	for _, r := range s.Received() {
		if r.Target == target {
			n++
		}
	}
	return n
}

// Complete is how many requests arrived whole.
func (s *Scripted) Complete() int {
	n := 0
	for _, r := range s.Received() {
		if r.Complete {
			n++
		}
	}
	return n
}

func (s *Scripted) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.mu.Unlock()
		sc := &ScriptConn{Conn: c, R: bufio.NewReaderSize(c, 64<<10), N: int(s.conns.Add(1)), s: s}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.script(sc)
		}()
	}
}

// Close stops the upstream and ends every connection it has open.
func (s *Scripted) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Scripted) record(r *ScriptRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, r)
}

func (s *Scripted) completed(r *ScriptRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Complete = true
}

// errScriptedHead is a request head the scripted upstream refuses to read.
var errScriptedHead = errors.New("malformed request head")

// ReadRequest reads one request, head and body, strictly: CRLF line ends,
// one framing. An error means the connection cannot go on.
func (c *ScriptConn) ReadRequest() (*ScriptRequest, error) {
	r, err := c.ReadHead()
	if err != nil {
		return nil, err
	}
	return r, c.ReadBody(r)
}

// ReadHead reads a request head only; the request counts as received.
func (c *ScriptConn) ReadHead() (*ScriptRequest, error) {
	lines, err := scriptLines(c.R)
	if err != nil {
		return nil, err
	}
	f := strings.Split(lines[0], " ")
	if len(f) != 3 {
		return nil, fmt.Errorf("%w: request line %q", errScriptedHead, lines[0])
	}
	r := &ScriptRequest{Method: f[0], Target: f[1], Proto: f[2], Conn: c.N}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: field line %q", errScriptedHead, l)
		}
		r.Fields = append(r.Fields, [2]string{name, strings.Trim(value, " \t")})
	}
	c.s.record(r)
	return r, nil
}

// ReadBody reads the body r's head announces.
func (c *ScriptConn) ReadBody(r *ScriptRequest) error {
	te, cl := r.Values("Transfer-Encoding"), r.Values("Content-Length")
	var err error
	switch {
	case len(te) > 0 && len(cl) > 0:
		return fmt.Errorf("%w: both Transfer-Encoding and Content-Length", errScriptedHead)
	case len(te) == 1 && strings.EqualFold(te[0], "chunked"):
		var wire bytes.Buffer
		r.Body, err = scriptChunks(io.TeeReader(c.R, &wire))
		r.Wire = wire.Bytes()
	case len(te) > 0:
		return fmt.Errorf("%w: Transfer-Encoding %q", errScriptedHead, te)
	case len(cl) == 1:
		n, perr := strconv.ParseUint(cl[0], 10, 31)
		if perr != nil {
			return fmt.Errorf("%w: Content-Length %q", errScriptedHead, cl[0])
		}
		r.Body = make([]byte, n)
		_, err = io.ReadFull(c.R, r.Body)
		r.Wire = r.Body
	case len(cl) > 1:
		return fmt.Errorf("%w: Content-Length %q", errScriptedHead, cl)
	}
	if err != nil {
		return err
	}
	c.s.completed(r)
	return nil
}

// scriptLines reads a head's lines up to the empty one, each ending in CRLF.
func scriptLines(br *bufio.Reader) ([]string, error) {
	var lines []string
	size := 0
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if len(lines) == 0 && l == "" {
				return nil, err
			}
			return nil, fmt.Errorf("head broke off: %w", err)
		}
		size += len(l)
		if size > 1<<20 || !strings.HasSuffix(l, "\r\n") || strings.ContainsAny(l[:len(l)-2], "\r\n\x00") {
			return nil, fmt.Errorf("%w: line %q", errScriptedHead, clip([]byte(l)))
		}
		l = l[:len(l)-2]
		if l == "" {
			if len(lines) == 0 {
				return nil, fmt.Errorf("%w: empty request line", errScriptedHead)
			}
			return lines, nil
		}
		lines = append(lines, l)
	}
}

// scriptChunks decodes a chunked body strictly (CRLF everywhere, no
// extensions, no trailer fields: a proxy re-frames what it forwards).
func scriptChunks(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(&oneByteReader{r})
	var body []byte
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(l, "\r\n") {
			return nil, fmt.Errorf("chunk-size line %q does not end in CRLF", l)
		}
		n, err := strconv.ParseUint(l[:len(l)-2], 16, 31)
		if err != nil {
			return nil, fmt.Errorf("chunk-size line %q is not a bare size", l)
		}
		if n == 0 {
			end, err := br.ReadString('\n')
			if err != nil {
				return nil, err
			}
			if end != "\r\n" {
				return nil, fmt.Errorf("last chunk followed by %q, want CRLF and no trailer fields", end)
			}
			return body, nil
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, err
		}
		if !bytes.HasSuffix(chunk, []byte("\r\n")) {
			return nil, fmt.Errorf("chunk data not followed by CRLF")
		}
		body = append(body, chunk[:n]...)
	}
}

// oneByteReader keeps a bufio.Reader over a shared stream from reading
// past the end of the chunked body.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// Send writes raw bytes to the proxy.
func (c *ScriptConn) Send(raw string) error {
	_, err := io.WriteString(c.Conn, raw)
	return err
}

// Reset ends the connection with a TCP reset instead of an orderly close.
func (c *ScriptConn) Reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Conn.Close()
}

// Serve answers every request with answer(r) until the connection ends or
// answer returns "" (then the script goes on with the connection).
func (c *ScriptConn) Serve(answer func(r *ScriptRequest) string) {
	for {
		r, err := c.ReadRequest()
		if err != nil {
			return
		}
		a := answer(r)
		if a == "" || c.Send(a) != nil {
			return
		}
	}
}

// ScriptAnswer is the answer a scripted upstream gives to r when nothing
// special is wanted: 200 with a body naming the request, so that a client
// can tell its own answer from any other.
func ScriptAnswer(r *ScriptRequest) string {
	a := RawResponse(200, OwnAnswer(r.Method, r.Target))
	if r.Method == "HEAD" {
		a = strings.TrimSuffix(a, OwnAnswer(r.Method, r.Target))
	}
	return a
}

// OwnAnswer is the body of ScriptAnswer to a request.
func OwnAnswer(method, target string) string { return "answer to " + method + " " + target }

// RawResponse is an HTTP/1.1 response with a Content-Length body and the
// given fields.
func RawResponse(status int, body string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// scriptWait bounds every read a hostile case makes, so a proxy that hangs
// fails with a message naming the request instead of the case deadline.
const scriptWait = 15 * time.Second

// scriptGet sends a GET for target on c and reads its answer.
func scriptGet(c *Conn, target string) (*Response, error) {
	if err := c.Send("GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return nil, err
	}
	return scriptRead(c, "GET")
}

func scriptRead(c *Conn, method string) (*Response, error) {
	c.SetReadDeadline(time.Now().Add(scriptWait))
	return c.Read(method)
}

// scriptWantOwn checks that r is the scripted upstream's answer to method
// target and nothing else.
func scriptWantOwn(what string, r *Response, method, target string) error {
	want := OwnAnswer(method, target)
	if r.StatusCode != http.StatusOK || string(r.Body) != want {
		return fmt.Errorf("%s: answered %s %q, want 200 %q", what, r.Status, clip(r.Body), want)
	}
	return nil
}

// rawHead is one response head as it came over the wire.
type rawHead struct {
	status int
	text   string
	fields [][2]string
}

// readInterims consumes the interim (1xx) heads that come next on c and
// returns them; the final response is left to be read with c.Read.
// http.ReadResponse would take an interim head for the whole response.
func readInterims(c *Conn) ([]rawHead, error) {
	var heads []rawHead
	c.SetReadDeadline(time.Now().Add(scriptWait))
	for {
		b, err := hopRawHead(c)
		if err != nil {
			return heads, err
		}
		f := strings.SplitN(string(b), " ", 3)
		status := 0
		if len(f) >= 2 {
			status, _ = strconv.Atoi(f[1])
		}
		if status >= 200 || status < 100 {
			return heads, nil
		}
		heads = append(heads, rawHead{status: status, text: string(b), fields: hopHeadFields(b)})
		c.R.Discard(len(b))
	}
}
