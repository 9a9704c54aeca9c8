package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxylab/proxylab/conformance"
	"github.com/proxylab/proxylab/lab"
)

// mutation describes how a mutant differs from the real proxy. Every
// field may be left nil.
type mutation struct {
	// front and back make the shims in front of the proxy (the client's
	// side) and behind it (the upstream's side), one per started proxy.
	front func(m *mutantInstance) *shimSpec
	back  func(m *mutantInstance) *shimSpec
	// config changes the configuration the real proxy is started with.
	config func(c *conformance.ProxyConfig)
	// signal replaces the delivery of a signal to the proxy.
	signal func(m *mutantInstance, sig os.Signal) error
	// exitCode replaces the proxy's exit status.
	exitCode func(code int) int
}

// mutantLauncher starts the real proxy with a mutation around it.
type mutantLauncher struct {
	real conformance.Launcher
	mut  mutation
}

// mutantInstance looks like one proxy to the suite: it listens where the
// suite asked, and its output names the addresses the suite gave, whatever
// shims stand between.
type mutantInstance struct {
	conformance.Instance // the real proxy
	mut                  mutation
	cfg, inner           conformance.ProxyConfig
	front, back          *shim

	mu    sync.Mutex
	extra strings.Builder // output the mutation adds
}

func (l mutantLauncher) Start(ctx context.Context, cfg conformance.ProxyConfig) (conformance.Instance, error) {
	m := &mutantInstance{mut: l.mut, cfg: cfg, inner: cfg}
	if l.mut.config != nil {
		l.mut.config(&m.inner)
	}
	fail := func(err error) (conformance.Instance, error) {
		m.closeShims()
		return nil, err
	}
	if l.mut.back != nil {
		s, err := startShim("127.0.0.1:0", cfg.Upstream, l.mut.back(m))
		if err != nil {
			return fail(err)
		}
		m.back = s
		m.inner.Upstream = s.Addr()
	}
	if l.mut.front != nil {
		addr, err := conformance.FreeAddr()
		if err != nil {
			return fail(err)
		}
		m.inner.Listen = addr
	}
	p, err := l.real.Start(ctx, m.inner)
	if err != nil {
		return fail(err)
	}
	m.Instance = p
	if l.mut.front != nil {
		s, err := startShim(cfg.Listen, m.inner.Listen, l.mut.front(m))
		if err != nil {
			p.Stop()
			return fail(err)
		}
		m.front = s
		// A proxy that has gone no longer takes connections, whatever
		// stands in front of it.
		go func() {
			p.Wait(context.Background())
			s.StopAccepting()
		}()
	}
	return m, nil
}

func (m *mutantInstance) Addr() string { return m.cfg.Listen }

func (m *mutantInstance) Signal(sig os.Signal) error {
	if m.mut.signal != nil {
		return m.mut.signal(m, sig)
	}
	return m.Instance.Signal(sig)
}

func (m *mutantInstance) Wait(ctx context.Context) (int, error) {
	code, err := m.Instance.Wait(ctx)
	if err == nil && m.mut.exitCode != nil {
		code = m.mut.exitCode(code)
	}
	return code, err
}

func (m *mutantInstance) Output() string {
	out := m.Instance.Output()
	out = strings.ReplaceAll(out, m.inner.Listen, m.cfg.Listen)
	out = strings.ReplaceAll(out, m.inner.Upstream, m.cfg.Upstream)
	m.mu.Lock()
	defer m.mu.Unlock()
	return out + m.extra.String()
}

// log adds a line to the output.
func (m *mutantInstance) log(line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.extra.WriteString(line + "\n")
}

func (m *mutantInstance) Stop() error {
	err := m.Instance.Stop()
	m.closeShims()
	return err
}

func (m *mutantInstance) closeShims() {
	if m.front != nil {
		m.front.Close()
	}
	if m.back != nil {
		m.back.Close()
	}
}

// buildForMutants compiles the Go proxy and the upstream into dir. They
// are not built into bin/ as the lab does: other test runs may be using
// those files at the same time.
func buildForMutants(t *testing.T, dir string) (proxy, upstream string) {
	t.Helper()
	root, err := lab.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []lab.Component{lab.Proxies[0], lab.Upstream} {
		out := filepath.Join(dir, c.Binary)
		cmd := exec.Command("go", "build", "-o", out, "./"+c.Dir)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", c.Dir, err, o)
		}
	}
	return filepath.Join(dir, lab.Proxies[0].Binary), filepath.Join(dir, lab.Upstream.Binary)
}

// lenientHandler is a front that makes sense of whatever the client sends:
// it repairs or drops malformed parts of a head, settles conflicting
// framing on a guess and ends a broken chunked body where it breaks. The
// proxy behind it only ever sees well-formed requests.
func lenientHandler(s *shim, client net.Conn) {
	server, err := s.dialFar()
	if err != nil {
		return
	}
	defer s.release(server)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		io.Copy(client, server)
		client.Close()
	}()
	defer func() { <-answered }()
	br := bufio.NewReader(client)
	for {
		lines, err := looseHead(br)
		if err != nil {
			closeWrite(server)
			return
		}
		head, chunked, n := sanitize(lines)
		if _, err := io.WriteString(server, head); err != nil {
			return
		}
		if chunked {
			if !looseChunks(server, br) {
				closeWrite(server)
				return
			}
		} else if _, err := io.CopyN(server, br, n); err != nil {
			closeWrite(server)
			return
		}
	}
}

// looseHead reads head lines up to an empty one, taking LF, CR LF and
// anything else before an LF as a line.
func looseHead(br *bufio.Reader) ([]string, error) {
	var lines []string
	size := 0
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size += len(l)
		if size > 1<<20 {
			return nil, fmt.Errorf("head too long")
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			if len(lines) == 0 {
				continue
			}
			return lines, nil
		}
		lines = append(lines, l)
	}
}

// sanitize turns any head into a well-formed one and says how its body is
// framed.
func sanitize(lines []string) (head string, chunked bool, length int64) {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < ' ' && r != '\t' || r == 0x7f {
				return -1
			}
			return r
		}, s)
	}
	method, target := "GET", "/"
	for i, tok := range strings.Fields(clean(lines[0])) {
		switch {
		case i == 0 && strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "":
			method = tok
		case strings.HasPrefix(tok, "/") && target == "/":
			target = tok
		}
	}
	var fields []string
	var host string
	var lengths, codings []string
	for _, l := range lines[1:] {
		if l = clean(l); l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		name = strings.Map(func(r rune) rune {
			if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
				return -1
			}
			return r
		}, name)
		if !ok || name == "" {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "host":
			if host == "" {
				host = strings.ReplaceAll(value, " ", "")
			}
		case "content-length":
			lengths = append(lengths, value)
		case "transfer-encoding":
			codings = append(codings, value)
		default:
			fields = append(fields, name+": "+value)
		}
	}
	if host == "" {
		host = "lenient.test"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	switch {
	case len(codings) > 0:
		chunked = true
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case len(lengths) > 0:
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, strings.Fields(strings.ReplaceAll(lengths[0], ",", " ") + " 0")[0])
		length, _ = strconv.ParseInt(digits, 10, 64)
		length = min(max(length, 0), 1<<30)
		fmt.Fprintf(&b, "Content-Length: %d\r\n", length)
	}
	b.WriteString("\r\n")
	return b.String(), chunked, length
}

// looseChunks relays a chunked body, ending it properly where the client's
// framing breaks; false when the rest of the connection cannot be read as
// requests.
func looseChunks(w io.Writer, br *bufio.Reader) bool {
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			io.WriteString(w, "0\r\n\r\n")
			return false
		}
		l = strings.TrimSpace(l)
		end := 0
		for end < len(l) && strings.ContainsRune("0123456789abcdefABCDEF", rune(l[end])) {
			end++
		}
		n, err := strconv.ParseInt(l[:min(end, 15)], 16, 64)
		if err != nil || end > 15 {
			io.WriteString(w, "0\r\n\r\n")
			return false
		}
		if n == 0 {
			io.WriteString(w, "0\r\n\r\n")
			for {
				t, err := br.ReadString('\n')
				if err != nil || strings.TrimSpace(t) == "" {
					return err == nil
				}
			}
		}
		fmt.Fprintf(w, "%x\r\n", n)
		if _, err := io.CopyN(w, br, n); err != nil {
			io.WriteString(w, "\r\n0\r\n\r\n")
			return false
		}
		io.WriteString(w, "\r\n")
		if t, err := br.ReadString('\n'); err != nil || strings.TrimSpace(t) != "" {
			io.WriteString(w, "0\r\n\r\n")
			return false
		}
	}
}

// crlfOnlyHandler is a front that finds the end of a head only at CR LF CR
// LF: a head whose lines end in a bare LF never ends for it.
func crlfOnlyHandler(s *shim, client net.Conn) {
	var buf []byte
	b := make([]byte, 4096)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		n, err := client.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil {
			return
		}
	}
	server, err := s.dialFar()
	if err != nil {
		return
	}
	defer s.release(server)
	server.Write(buf)
	go func() {
		io.Copy(server, client)
		closeWrite(server)
	}()
	io.Copy(client, server)
}

// reusingBack is an upstream side that pools upstream connections of its
// own and, when the proxy gives up on an exchange, puts the upstream
// connection back without reading the answer still owed on it.
type reusingBack struct {
	mu   sync.Mutex
	idle []*pooledConn
}

type pooledConn struct {
	net.Conn
	br *bufio.Reader
	// owed, when not nil, delivers the end of a wait for an answer that
	// nobody read.
	owed chan error
}

func (p *reusingBack) get(s *shim) (*pooledConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if c.owed != nil {
			<-c.owed
			c.owed = nil
		}
		return c, nil
	}
	p.mu.Unlock()
	c, err := s.dialFar()
	if err != nil {
		return nil, err
	}
	return &pooledConn{Conn: c, br: bufio.NewReader(c)}, nil
}

func (p *reusingBack) put(c *pooledConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, c)
}

func (p *reusingBack) handle(s *shim, proxy net.Conn) {
	br := bufio.NewReader(proxy)
	for {
		var raw bytes.Buffer
		h, err := readHead(br, &raw)
		if err != nil {
			return
		}
		up, err := p.get(s)
		if err != nil {
			return
		}
		methods := make(chan string, 1)
		if err := s.relayRequest(up, br, h, methods); err != nil {
			s.release(up)
			return
		}
		answer := make(chan error, 1)
		go func() {
			_, err := up.br.Peek(1)
			answer <- err
		}()
		// The proxy sends nothing while it waits for an answer, so a read
		// that ends meanwhile means it has given up on the exchange.
		gone := make(chan error, 1)
		go func() {
			_, err := br.Peek(1)
			gone <- err
		}()
		select {
		case <-gone:
			up.owed = answer
			p.put(up)
			return
		case err := <-answer:
			if err != nil {
				s.release(up)
				return
			}
		}
		var rraw bytes.Buffer
		rh, err := readHead(up.br, &rraw)
		var status int
		if err == nil {
			status, err = rh.status()
		}
		if err == nil {
			_, err = s.relayResponse(proxy, up.br, <-methods, status, rh)
		}
		if err != nil {
			s.release(up)
			return
		}
		p.put(up)
		if err := <-gone; err != nil {
			return
		}
	}
}

// signalLater delivers a signal only after a delay: the proxy goes on
// accepting connections as if it had not been told to stop.
func signalLater(d time.Duration) func(m *mutantInstance, sig os.Signal) error {
	return func(m *mutantInstance, sig os.Signal) error {
		time.AfterFunc(d, func() { m.Instance.Signal(sig) })
		return nil
	}
}
