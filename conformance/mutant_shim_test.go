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
	"sync"
	"sync/atomic"
)

// A shim is a TCP relay placed in front of a proxy (client side) or behind
// it (upstream side). It understands just enough HTTP/1.1 to find where each
// message starts and ends, so a mutation rewrites whole messages whatever
// way the bytes were split into reads. Anything it cannot follow (a
// malformed request, a broken upstream answer, an upgrade) it passes on
// byte for byte from then on, so that the proxy still sees it.
type shimSpec struct {
	// request and response edit heads; nil leaves them alone. req is the
	// request line a response answers ("" when the shim lost track).
	request  func(h *msgHead)
	response func(req string, h *msgHead) verdict
	// requestBody and responseBody, when set, get the whole decoded body and
	// return the body to send instead, re-framed with Content-Length.
	requestBody  func(h *msgHead, body []byte) []byte
	responseBody func(req string, h *msgHead, body []byte) []byte
	// serial handles one connection at a time, like a server that forgot
	// to serve connections concurrently.
	serial bool
	// perRequest opens a new connection to the far side for every request
	// and closes it after the response.
	perRequest bool
	// accepted is told of every accepted connection, counting from 1.
	accepted func(n int64)
	// padShort fills a body that ends before its Content-Length with zero
	// bytes, as if it had arrived whole.
	padShort bool
	// holdOpen leaves the client's connection open when the far side
	// closes; the client has to close it.
	holdOpen bool
	// http09 takes a response that is not HTTP for a headless body, the
	// way HTTP/0.9 answered, and relays it as a 200.
	http09 bool
	// handler, when set, replaces the relaying of a connection altogether.
	handler func(s *shim, client net.Conn)
	// lockstep reads the far side's next response only once a request for
	// it has gone on: bytes the far side sends unasked wait unseen, as
	// they would for a proxy that never looks at an idle connection.
	lockstep bool
	// staleAs502 keeps the near side's connection open when the far side
	// closes, and answers the next request on it with a 502 of its own:
	// the failure of a stale connection reaches the client.
	staleAs502 bool
	// refuse, when it returns an answer for a request head, sends that
	// answer instead of forwarding the request, and ends the connection.
	refuse func(h *msgHead) string
}

// verdict is what happens to a response after its head was edited.
type verdict int

const (
	relay      verdict = iota
	relayClose         // relay it, then close the client's connection
	drop               // send nothing of a response without a body
)

type shim struct {
	spec   *shimSpec
	ln     net.Listener
	dial   func() (net.Conn, error)
	count  atomic.Int64
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startShim listens on listen and relays every connection to far.
func startShim(listen, far string, spec *shimSpec) (*shim, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	s := &shim{spec: spec, ln: ln, open: map[net.Conn]struct{}{},
		dial: func() (net.Conn, error) { return net.Dial("tcp", far) }}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *shim) Addr() string { return s.ln.Addr().String() }

func (s *shim) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			return
		}
		if s.spec.accepted != nil {
			s.spec.accepted(s.count.Add(1))
		}
		if s.spec.serial {
			s.handle(c)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// track registers c so Close can end it; false once the shim is closed.
func (s *shim) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.open[c] = struct{}{}
	return true
}

func (s *shim) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, c)
}

// StopAccepting closes the listener: new connections are refused, open
// ones go on.
func (s *shim) StopAccepting() { s.ln.Close() }

// Close ends everything the shim has open.
func (s *shim) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// dialFar connects to the far side; the connection is closed with the shim.
func (s *shim) dialFar() (net.Conn, error) {
	c, err := s.dial()
	if err != nil {
		return nil, err
	}
	if !s.track(c) {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (s *shim) release(c net.Conn) {
	s.untrack(c)
	c.Close()
}

func (s *shim) handle(client net.Conn) {
	defer s.release(client)
	switch {
	case s.spec.handler != nil:
		s.spec.handler(s, client)
		return
	case s.spec.perRequest:
		s.handlePerRequest(client)
		return
	}
	server, err := s.dialFar()
	if err != nil {
		return
	}
	defer s.release(server)
	methods := make(chan string, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.requests(client, server, bufio.NewReader(client), methods)
	}()
	s.responses(server, client, bufio.NewReader(server), methods, done)
	if !s.spec.holdOpen {
		client.Close()
	}
	server.Close()
	<-done
}

// requests relays requests from client to server, queueing each request
// line for the response that answers it.
func (s *shim) requests(client, server net.Conn, br *bufio.Reader, methods chan<- string) {
	for {
		var raw bytes.Buffer
		h, err := readHead(br, &raw)
		if err == nil && s.spec.refuse != nil {
			if answer := s.spec.refuse(h); answer != "" {
				io.WriteString(client, answer)
				closeWrite(server)
				return
			}
		}
		if err == nil {
			err = s.relayRequest(server, br, h, methods)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, errUnfollowable):
			// What the shim cannot parse goes on unchanged: judging it is
			// the proxy's job.
			if len(h.lines) > 0 {
				queue(methods, h.lines[0])
			}
			server.Write(raw.Bytes())
		case errors.Is(err, errMidBody):
			// What the shim read of the body has gone on already.
		}
		io.Copy(server, br)
		// The client's end of input or of the connection is passed on as
		// an end of input, the one thing a proxy can see of either.
		closeWrite(server)
		return
	}
}

// nextRequest waits for the next request line; false when none will come.
func nextRequest(methods <-chan string, done <-chan struct{}) (string, bool) {
	select {
	case m := <-methods:
		return m, true
	case <-done:
		select {
		case m := <-methods:
			return m, true
		default:
			return "", false
		}
	}
}

// queue records the request line a response will answer. The line is
// queued before the request goes on, so it is there before any answer.
func queue(methods chan<- string, line string) {
	select {
	case methods <- line:
	default:
	}
}

func (s *shim) relayRequest(server net.Conn, br *bufio.Reader, h *msgHead, methods chan<- string) error {
	f, n, err := requestFraming(h, s.spec.requestBody != nil)
	if err != nil {
		return err
	}
	if s.spec.request != nil {
		s.spec.request(h)
	}
	queue(methods, h.lines[0])
	if s.spec.requestBody != nil && f != noBody {
		body, err := readBody(br, f, n)
		if err != nil {
			return err
		}
		body = s.spec.requestBody(h, body)
		if !h.framed {
			h.reframe(len(body))
		}
		_, err = server.Write(append(h.bytes(), body...))
		return err
	}
	if _, err := server.Write(h.bytes()); err != nil {
		return err
	}
	if err := copyBody(server, br, f, n); err != nil {
		if s.spec.padShort && f == lengthBody && errors.Is(err, io.EOF) {
			server.Write(make([]byte, n-copied(err)))
		}
		return fmt.Errorf("%w: %v", errMidBody, err)
	}
	return nil
}

// responses relays responses from server to client until either side
// ends; requestsDone closes when no more requests will come.
func (s *shim) responses(server, client net.Conn, br *bufio.Reader, methods <-chan string, requestsDone <-chan struct{}) {
	pending, ok := "", false
	for {
		if s.spec.lockstep && !ok {
			if pending, ok = nextRequest(methods, requestsDone); !ok {
				return
			}
		}
		var raw bytes.Buffer
		h, err := readHead(br, &raw)
		var status int
		if err == nil {
			status, err = h.status()
		}
		if err != nil && raw.Len() == 0 && s.spec.staleAs502 {
			if ok || func() bool { _, ok = nextRequest(methods, requestsDone); return ok }() {
				io.WriteString(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 16\r\nConnection: close\r\n\r\nstale connection")
			}
			return
		}
		if err != nil {
			if raw.Len() > 0 {
				if s.spec.http09 {
					io.WriteString(client, "HTTP/1.1 200 OK\r\n\r\n")
				}
				client.Write(raw.Bytes())
				io.Copy(client, br)
			}
			return
		}
		req := ""
		switch {
		case status < 200 && status != 101:
		case ok:
			req, pending, ok = pending, "", false
		default:
			select {
			case req = <-methods:
			default:
			}
		}
		v, err := s.relayResponse(client, br, req, status, h)
		if errors.Is(err, errUnfollowable) {
			client.Write(raw.Bytes())
			io.Copy(client, br)
		}
		if err != nil || v == relayClose {
			return
		}
	}
}

func (s *shim) relayResponse(client net.Conn, br *bufio.Reader, req string, status int, h *msgHead) (verdict, error) {
	method, _, _ := strings.Cut(req, " ")
	f, n, err := responseFraming(method, status, h)
	if err != nil {
		return relay, err
	}
	v := relay
	if s.spec.response != nil {
		v = s.spec.response(req, h)
	}
	if v == drop && f == noBody {
		return relay, nil
	}
	if status == 101 {
		client.Write(h.bytes())
		io.Copy(client, br)
		return relayClose, nil
	}
	if s.spec.responseBody != nil && f != noBody {
		body, err := readBody(br, f, n)
		if err != nil {
			return v, err
		}
		body = s.spec.responseBody(req, h, body)
		if !h.framed {
			h.reframe(len(body))
		}
		_, err = client.Write(append(h.bytes(), body...))
		if f == untilClose {
			v = relayClose
		}
		return v, err
	}
	if _, err := client.Write(h.bytes()); err != nil {
		return v, err
	}
	if err := copyBody(client, br, f, n); err != nil {
		if s.spec.padShort && f == lengthBody && errors.Is(err, io.EOF) {
			client.Write(make([]byte, n-copied(err)))
		}
		return v, err
	}
	if f == untilClose {
		v = relayClose
	}
	return v, nil
}

// handlePerRequest relays one request at a time, each over a connection
// of its own to the far side.
func (s *shim) handlePerRequest(client net.Conn) {
	br := bufio.NewReader(client)
	for {
		var raw bytes.Buffer
		h, err := readHead(br, &raw)
		if err != nil {
			return
		}
		server, err := s.dialFar()
		if err != nil {
			return
		}
		ok := s.exchangeOnce(client, br, server, h)
		s.release(server)
		if !ok {
			return
		}
	}
}

// exchangeOnce relays one request and its answer (after any interim
// ones); false when the client connection cannot go on.
func (s *shim) exchangeOnce(client net.Conn, br *bufio.Reader, server net.Conn, h *msgHead) bool {
	methods := make(chan string, 1)
	if err := s.relayRequest(server, br, h, methods); err != nil {
		return false
	}
	req := <-methods
	sbr := bufio.NewReader(server)
	for {
		var raw bytes.Buffer
		rh, err := readHead(sbr, &raw)
		var status int
		if err == nil {
			status, err = rh.status()
		}
		if err != nil {
			return false
		}
		v, err := s.relayResponse(client, sbr, req, status, rh)
		if err != nil || v != relay {
			return false
		}
		if status >= 200 || status == 101 {
			return true
		}
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

var (
	// errUnfollowable marks input the shim passes on without understanding
	// it; nothing of the message has been relayed yet.
	errUnfollowable = errors.New("not HTTP the shim can follow")
	// errMidBody marks a body that broke off or went wrong after part of
	// it was relayed.
	errMidBody = errors.New("body broke off")
)

// msgHead is a message head: the start line, then the field lines, all
// without their CRLF.
type msgHead struct {
	lines []string
	// extra is written right after the head, before any body; prefix
	// right before the head.
	extra, prefix []byte
	// framed tells a body hook's caller that the hook has set the framing
	// fields and encoded the body itself.
	framed bool
}

// readHead reads a head up to its empty line, copying every byte it
// consumes into raw. On error the head holds the lines read so far.
func readHead(br *bufio.Reader, raw *bytes.Buffer) (*msgHead, error) {
	h := &msgHead{}
	for {
		line, err := br.ReadSlice('\n')
		raw.Write(line)
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: keep reading it. What
			// ReadSlice returned is overwritten by the next read, so it is
			// copied first.
			line = bytes.Clone(line)
			rest, err2 := br.ReadBytes('\n')
			raw.Write(rest)
			line = append(line, rest...)
			err = err2
		}
		if err != nil {
			if raw.Len() > 0 && err == io.EOF {
				return h, errUnfollowable
			}
			return h, err
		}
		if raw.Len() > 1<<20 || !bytes.HasSuffix(line, []byte("\r\n")) {
			return h, errUnfollowable
		}
		s := string(line[:len(line)-2])
		if s == "" {
			if len(h.lines) == 0 {
				return h, errUnfollowable
			}
			return h, nil
		}
		if len(h.lines) > 0 {
			name, _, ok := strings.Cut(s, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return h, errUnfollowable
			}
		}
		h.lines = append(h.lines, s)
	}
}

// values returns the values of the fields named name, in order.
func (h *msgHead) values(name string) []string {
	var v []string
	for _, l := range h.lines[1:] {
		n, val, _ := strings.Cut(l, ":")
		if strings.EqualFold(n, name) {
			v = append(v, strings.Trim(val, " \t"))
		}
	}
	return v
}

// del removes every field named name.
func (h *msgHead) del(name string) {
	out := h.lines[:1]
	for _, l := range h.lines[1:] {
		n, _, _ := strings.Cut(l, ":")
		if !strings.EqualFold(n, name) {
			out = append(out, l)
		}
	}
	h.lines = out
}

func (h *msgHead) add(field string) { h.lines = append(h.lines, field) }

// reframe replaces the framing fields by a Content-Length of n.
func (h *msgHead) reframe(n int) {
	h.del("Transfer-Encoding")
	h.del("Content-Length")
	h.add("Content-Length: " + strconv.Itoa(n))
}

func (h *msgHead) bytes() []byte {
	b := append(bytes.Clone(h.prefix), strings.Join(h.lines, "\r\n")+"\r\n\r\n"...)
	return append(b, h.extra...)
}

// rename renames every field named from (any case) to to.
func (h *msgHead) rename(from, to string) {
	for i, l := range h.lines[1:] {
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, from) {
			h.lines[i+1] = to + ":" + v
		}
	}
}

// edit replaces the value of every field named name by what f makes of it.
func (h *msgHead) edit(name string, f func(string) string) {
	for i, l := range h.lines[1:] {
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, name) {
			h.lines[i+1] = n + ": " + f(strings.Trim(v, " \t"))
		}
	}
}

func (h *msgHead) status() (int, error) {
	f := strings.SplitN(h.lines[0], " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") || len(f[1]) != 3 {
		return 0, errUnfollowable
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, errUnfollowable
	}
	return n, nil
}

type framing int

const (
	noBody framing = iota
	lengthBody
	chunkedBody
	untilClose
)

// requestFraming is how a request's body is framed. wholeBody says the
// shim reads the body before sending the head on; then a body the client
// holds back until it hears 100 Continue never comes, so such a request
// is not followed. Streamed, it is: the head goes on, the interim answer
// comes back the other way, and the body follows it.
func requestFraming(h *msgHead, wholeBody bool) (framing, int64, error) {
	if (wholeBody && len(h.values("Expect")) > 0) || len(h.values("Upgrade")) > 0 {
		// A protocol switch is more than the shim follows.
		return 0, 0, errUnfollowable
	}
	return bodyFraming(h, noBody)
}

func responseFraming(method string, status int, h *msgHead) (framing, int64, error) {
	if method == "HEAD" || status < 200 || status == 204 || status == 304 {
		return noBody, 0, nil
	}
	return bodyFraming(h, untilClose)
}

func bodyFraming(h *msgHead, otherwise framing) (framing, int64, error) {
	te, cl := h.values("Transfer-Encoding"), h.values("Content-Length")
	switch {
	case len(te) > 0 && len(cl) > 0:
		return 0, 0, errUnfollowable
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return 0, 0, errUnfollowable
		}
		return chunkedBody, 0, nil
	case len(cl) > 0:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		for _, v := range cl[1:] {
			if v != cl[0] {
				err = errUnfollowable
			}
		}
		if err != nil || n < 0 || strings.ContainsAny(cl[0], "+-") {
			return 0, 0, errUnfollowable
		}
		if n == 0 {
			return noBody, 0, nil
		}
		return lengthBody, n, nil
	}
	return otherwise, 0, nil
}

// copyBody relays a body as it is framed on the wire.
func copyBody(w io.Writer, br *bufio.Reader, f framing, n int64) error {
	switch f {
	case lengthBody:
		k, err := io.CopyN(w, br, n)
		if err != nil {
			return shortBody{k, err}
		}
		return nil
	case untilClose:
		_, err := io.Copy(w, br)
		return err
	case chunkedBody:
		return chunks(br, w, nil)
	}
	return nil
}

// readBody reads a whole body and returns its content.
func readBody(br *bufio.Reader, f framing, n int64) ([]byte, error) {
	var b bytes.Buffer
	var err error
	switch f {
	case lengthBody:
		_, err = io.CopyN(&b, br, n)
	case untilClose:
		_, err = io.Copy(&b, br)
	case chunkedBody:
		err = chunks(br, io.Discard, &b)
	}
	return b.Bytes(), err
}

// chunks reads a chunked body: its wire bytes go to wire, its content to
// content (when not nil).
func chunks(br *bufio.Reader, wire io.Writer, content io.Writer) error {
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if _, err := io.WriteString(wire, l); err != nil {
			return "", err
		}
		return strings.TrimRight(l, "\r\n"), nil
	}
	for {
		l, err := line()
		if err != nil {
			return err
		}
		sz, _, _ := strings.Cut(l, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", l)
		}
		if n == 0 {
			for {
				t, err := line()
				if err != nil || t == "" {
					return err
				}
			}
		}
		dst := wire
		if content != nil {
			dst = io.MultiWriter(wire, content)
		}
		if _, err := io.CopyN(dst, br, n); err != nil {
			return err
		}
		if _, err := line(); err != nil {
			return err
		}
	}
}

// shortBody is a body that ended after k of its bytes.
type shortBody struct {
	k   int64
	err error
}

func (e shortBody) Error() string { return fmt.Sprintf("body ended after %d bytes: %v", e.k, e.err) }
func (e shortBody) Unwrap() error { return e.err }

func copied(err error) int64 {
	var sb shortBody
	if errors.As(err, &sb) {
		return sb.k
	}
	return 0
}
