package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binaries built once for the whole package: the real origin every test
// proxies to, and the proxy itself for the tests that need a process.
var upstreamBin, proxyBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "go-proxy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	upstreamBin = filepath.Join(dir, "upstream")
	proxyBin = filepath.Join(dir, "go-proxy")
	for bin, pkg := range map[string]string{upstreamBin: "../upstream", proxyBin: "."} {
		cmd := exec.Command("go", "build", "-ldflags=-X main.version=v-test", "-o", bin, pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// proc is a running binary started by a test.
type proc struct {
	cmd    *exec.Cmd
	addr   string        // the listen address from its start-up line
	exited chan struct{} // closed once it has exited; err is set by then
	err    error
}

// startProcess runs a built binary with the given environment, waits for its
// start-up line and checks it against re, whose first group must capture
// the listen address. The process gets SIGTERM when the test ends.
func startProcess(t *testing.T, bin string, env []string, re *regexp.Regexp) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	br := bufio.NewReader(stderr)
	line, err := br.ReadString('\n')
	go func() {
		io.Copy(io.Discard, br)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if err != nil {
		t.Fatalf("%s wrote no start-up line: %v", bin, err)
	}
	m := re.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start-up line %q does not match %s", line, re)
	}
	p.addr = m[1]
	return p
}

var upstreamLine = regexp.MustCompile(`^proxylab-upstream v-test go\S+ listen=(127\.0\.0\.1:\d+) response_bytes=\d+\n$`)

// startUpstream runs the real origin as a process on a free port.
func startUpstream(t *testing.T) string {
	t.Helper()
	return startProcess(t, upstreamBin, []string{"LISTEN_ADDR=127.0.0.1:0"}, upstreamLine).addr
}

// startProxy runs the proxy in-process on a free port in front of upstream.
func startProxy(t *testing.T, upstream string, adjust func(*config)) string {
	t.Helper()
	cfg := defaultConfig()
	cfg.upstreamAddr = upstream
	if adjust != nil {
		adjust(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, cfg)
}

// serveOn runs the proxy in-process on ln until the test ends.
func serveOn(t *testing.T, ln net.Listener, cfg config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// client is one raw TCP connection to a server, for requests a client
// library would rewrite or refuse to send.
type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Only turns a hang into a failure; never reached on a healthy run.
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, br: bufio.NewReader(c)}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatal(err)
	}
}

// read parses one response; method tells whether a body may follow.
func (c *client) read(method string) (*http.Response, []byte) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp, body
}

func (c *client) do(raw, method string) (*http.Response, []byte) {
	c.t.Helper()
	c.send(raw)
	return c.read(method)
}

// readHead reads a response head as raw lines: the status line, then each
// field line in the order it arrived.
func (c *client) readHead() (status string, fields []string) {
	c.t.Helper()
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading head: %v", err)
		}
		line = strings.TrimSuffix(line, "\r\n")
		switch {
		case status == "":
			status = line
		case line == "":
			return status, fields
		default:
			fields = append(fields, line)
		}
	}
}

// closed waits for the peer to close the connection and reports whether it
// did so without sending anything more.
func (c *client) closed() bool {
	c.t.Helper()
	n, err := c.br.Read(make([]byte, 1))
	return n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
}

// echoReply mirrors what the upstream's /echo answers.
type echoReply struct {
	Method     string      `json:"method"`
	Target     string      `json:"target"`
	Headers    [][2]string `json:"headers"`
	BodyBytes  int         `json:"body_bytes"`
	BodySHA256 string      `json:"body_sha256"`
}

// echo sends a raw request meant for the upstream's /echo and decodes what
// the upstream says it received.
func (c *client) echo(raw, method string) echoReply {
	c.t.Helper()
	resp, body := c.do(raw, method)
	if resp.StatusCode != 200 {
		c.t.Fatalf("echo status %d: %s", resp.StatusCode, body)
	}
	var e echoReply
	if err := json.Unmarshal(body, &e); err != nil {
		c.t.Fatalf("%v in %s", err, body)
	}
	return e
}

// upstreamAccepted reads the upstream's connection count over c, a
// connection straight to the upstream that the count already includes.
func upstreamAccepted(t *testing.T, c *client) uint64 {
	t.Helper()
	resp, body := c.do("GET /stats HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
	var s struct {
		Accepted *uint64 `json:"connections_accepted"`
	}
	if err := json.Unmarshal(body, &s); resp.StatusCode != 200 || err != nil || s.Accepted == nil {
		t.Fatalf("/stats answered %d %q (%v)", resp.StatusCode, body, err)
	}
	return *s.Accepted
}

// pattern is the upstream's body: the byte at offset i is 'a'+i%26.
func patternSHA256(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return sha256Hex(b)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readHTTP(br *bufio.Reader) (*http.Response, error) {
	return http.ReadResponse(br, &http.Request{Method: "GET"})
}
