package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRejectsRequests covers the requests the proxy must answer itself,
// sent over raw TCP because a client library would not send most of them.
// Each answer has to close the connection: what follows on it cannot be
// trusted to start a new request.
func TestRejectsRequests(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, func(c *config) {
		c.maxHeaderBytes = 4096
		c.maxBodyBytes = 1000
	})
	padTo := func(n int) string { // a request whose head is exactly n bytes
		const start, end = "GET / HTTP/1.1\r\nHost: origin\r\nX-Pad: ", "\r\n\r\n"
		return start + strings.Repeat("p", n-len(start)-len(end)) + end
	}
	body1001 := strings.Repeat("b", 1001)
	cases := []struct {
		name   string
		raw    string
		status int
		says   string // what the answer's text must mention, if anything
	}{
		{"body over the limit by Content-Length", "POST / HTTP/1.1\r\nHost: origin\r\nContent-Length: 1001\r\n\r\n", 413, ""},
		{"body over the limit by chunks", "POST / HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3e9\r\n" + body1001 + "\r\n0\r\n\r\n", 413, ""},
		{"head over the limit", padTo(4097), 431, ""},
		{"head far over the limit", padTo(20000), 431, ""},
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: origin\r\nContent-Length: 5\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Content-Length and Transfer-Encoding"},
		{"Transfer-Encoding with Content-Length", "POST / HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n" +
			"Content-Length: 5\r\n\r\n0\r\n\r\n", 400, "Content-Length and Transfer-Encoding"},
		{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: origin\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, ""},
		{"two equal Content-Lengths", "POST / HTTP/1.1\r\nHost: origin\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc", 400, ""},
		{"Content-Length not a number", "POST / HTTP/1.1\r\nHost: origin\r\nContent-Length: 3a\r\n\r\nabc", 400, ""},
		{"identity transfer coding", "POST / HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: identity\r\n\r\n", 400, "transfer coding"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"transfer coding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"folded field", "GET / HTTP/1.1\r\nHost: origin\r\nX-Fold: a\r\n b\r\n\r\n", 400, "folding"},
		{"space in field name", "GET / HTTP/1.1\r\nHost: origin\r\nX Bad: 1\r\n\r\n", 400, ""},
		{"space before colon", "GET / HTTP/1.1\r\nHost: origin\r\nX-Bad : 1\r\n\r\n", 400, ""},
		{"no colon", "GET / HTTP/1.1\r\nHost: origin\r\nX-Bad\r\n\r\n", 400, ""},
		{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
		{"garbage request line", "HELLO\r\n\r\n", 400, ""},
		{"other major version", "GET / HTTP/2.0\r\nHost: origin\r\n\r\n", 505, ""},
		{"control byte in target", "GET /a\x01b HTTP/1.1\r\nHost: origin\r\n\r\n", 400, ""},
		{"broken chunk size", "POST / HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			resp, body := c.do(tc.raw, "GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if len(body) == 0 || len(body) > 200 || !strings.Contains(string(body), tc.says) {
				t.Errorf("body %q, want a short text saying %q", body, tc.says)
			}
			// The proxy has to answer these itself, not pass them on.
			if via := resp.Header.Get("Via"); via != "" {
				t.Errorf("answer came through the proxy from upstream (Via: %s)", via)
			}
			if !resp.Close {
				t.Error("answer lacks Connection: close")
			}
			if !c.closed() {
				t.Error("connection left open")
			}
		})
	}
	// The limits themselves are allowed.
	allowed := []struct{ name, raw string }{
		{"body at the limit", "POST /echo HTTP/1.1\r\nHost: origin\r\nContent-Length: 1000\r\n\r\n" + body1001[:1000]},
		{"head at the limit", padTo(4096)},
		{"later HTTP/1 minor version", "GET / HTTP/1.2\r\nHost: origin\r\n\r\n"},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			if resp, body := c.do(tc.raw, "POST"); resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
}

// TestUpstreamFailures covers upstreams that cannot give an answer. The
// client's connection stays usable: its request was read completely.
func TestUpstreamFailures(t *testing.T) {
	live := startUpstream(t)
	cases := []struct {
		name     string
		upstream string
		timeout  time.Duration
		target   string
		status   int
	}{
		{"refused", closedPort(t), 5 * time.Second, "/", 502},
		{"reset before answering", misbehaving(t, func(c net.Conn) {
			c.(*net.TCPConn).SetLinger(0)
		}), 5 * time.Second, "/", 502},
		{"not HTTP", misbehaving(t, func(c net.Conn) {
			fmt.Fprint(c, "SSH-2.0-OpenSSH\r\n\r\n")
		}), 5 * time.Second, "/", 502},
		{"switching protocols", misbehaving(t, func(c net.Conn) {
			fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
		}), 5 * time.Second, "/", 502},
		{"slower than the timeout", live, 200 * time.Millisecond, "/?delay_ms=1500", 504},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy := startProxy(t, tc.upstream, func(c *config) { c.upstreamTimeout = tc.timeout })
			c := dial(t, proxy)
			for i := range 2 {
				resp, body := c.do("GET "+tc.target+" HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
				if resp.StatusCode != tc.status {
					t.Fatalf("request %d: status %d (%q), want %d", i, resp.StatusCode, body, tc.status)
				}
				if resp.Close {
					t.Fatalf("request %d: client connection closed", i)
				}
			}
		})
	}
}

// TestChunkedUpstreamFailures: a failing upstream answered to a chunked
// request closes the client connection when the body was not read to its
// end (it would be read as the next request), and only then.
func TestChunkedUpstreamFailures(t *testing.T) {
	cases := []struct {
		name     string
		upstream string
		close    bool
	}{
		{"refused: body unread", closedPort(t), true},
		{"reset after the request: body read", misbehaving(t, func(c net.Conn) {
			time.Sleep(50 * time.Millisecond) // lets the whole request arrive
			c.(*net.TCPConn).SetLinger(0)
		}), false},
	}
	const request = "POST / HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, startProxy(t, tc.upstream, nil))
			for i := range 2 {
				resp, body := c.do(request, "POST")
				if resp.StatusCode != 502 || resp.Close != tc.close {
					t.Fatalf("request %d: status %d (%q), close %v; want 502, close %v", i, resp.StatusCode, body, resp.Close, tc.close)
				}
				if tc.close {
					if !c.closed() {
						t.Error("connection left open")
					}
					return
				}
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// misbehaving runs a TCP server that reads a request head, hands the
// connection to answer, then closes it.
func misbehaving(t *testing.T, answer func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 0, 4096)
				for !strings.Contains(string(buf), "\r\n\r\n") {
					n, err := c.Read(buf[len(buf):cap(buf)])
					if err != nil {
						return
					}
					buf = buf[:len(buf)+n]
				}
				answer(c)
			}()
		}
	}()
	return ln.Addr().String()
}
