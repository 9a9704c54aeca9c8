package main

import (
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRelaysResponse checks what comes back through the proxy for each kind
// of upstream answer.
func TestRelaysResponse(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	cases := []struct {
		name          string
		method        string
		target        string
		status        int
		bodySize      int
		contentLength int64 // as announced; -1 when there must be none, -2 for chunked
	}{
		{"default body", "GET", "/", 200, 1024, 1024},
		{"sized body", "GET", "/x/y?size=70001", 200, 70001, 70001},
		{"empty body", "GET", "/?size=0", 200, 0, 0},
		{"error status with body", "GET", "/?status=503&size=7", 503, 7, 7},
		{"large chunked from upstream streams chunked", "GET", "/?chunked=1&size=100000", 200, 100000, -2},
		{"no content", "GET", "/?status=204", 204, 0, -1},
		{"not modified", "GET", "/?status=304", 304, 0, -1},
		{"head keeps the length", "HEAD", "/?size=4321", 200, 0, 4321},
		{"post", "POST", "/?size=3", 200, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			resp, body := c.do(tc.method+" "+tc.target+" HTTP/1.1\r\nHost: origin\r\nContent-Length: 0\r\n\r\n", tc.method)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if len(body) != tc.bodySize || sha256Hex(body) != patternSHA256(tc.bodySize) {
				t.Fatalf("body %d bytes, want %d bytes of the pattern", len(body), tc.bodySize)
			}
			cl := resp.Header.Values("Content-Length")
			chunked := slices.Equal(resp.TransferEncoding, []string{"chunked"})
			if chunked != (tc.contentLength == -2) {
				t.Fatalf("Transfer-Encoding %q", resp.TransferEncoding)
			}
			if tc.contentLength < 0 {
				if len(cl) != 0 {
					t.Fatalf("Content-Length %q on a %d", cl, tc.status)
				}
			} else if len(cl) != 1 || cl[0] != strconv.FormatInt(tc.contentLength, 10) {
				t.Fatalf("Content-Length %q, want %d", cl, tc.contentLength)
			}
			// The upstream's own fields come back untouched, and the
			// proxy adds none of its defaults.
			if got := resp.Header.Values("Server"); len(got) != 1 || got[0] != "fasthttp" {
				t.Errorf("Server %q, want the upstream's", got)
			}
			if got := resp.Header.Values("Date"); len(got) != 1 {
				t.Errorf("Date %q, want exactly the upstream's one", got)
			}
			if got := resp.Header.Values("Via"); len(got) != 1 || got[0] != "1.1 proxylab-go" {
				t.Errorf("Via %q", got)
			}
			if tc.bodySize > 0 {
				if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("Content-Type %q, want the upstream's", got)
				}
			}
			if resp.Close {
				t.Error("client connection closed")
			}
		})
	}
}

// TestUpstreamCloseStaysUpstream checks that an upstream closing its
// connection does not close the client's.
func TestUpstreamCloseStaysUpstream(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	c := dial(t, proxy)
	for i := range 3 {
		resp, body := c.do("GET /close?size=9 HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
		if resp.StatusCode != 200 || len(body) != 9 {
			t.Fatalf("request %d: status %d, %d bytes", i, resp.StatusCode, len(body))
		}
		if resp.Close || resp.Header.Get("Connection") != "" {
			t.Fatalf("request %d: upstream's Connection field relayed", i)
		}
	}
}

// TestHTTP10Client checks that an HTTP/1.0 client gets a Content-Length
// framed answer, and keep-alive only when it asks for it.
func TestHTTP10Client(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	cases := []struct {
		name      string
		raw       string
		keepAlive bool
	}{
		{"keep-alive", "GET /?chunked=1&size=500 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
		{"default close", "GET /?chunked=1&size=500 HTTP/1.0\r\n\r\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			resp, body := c.do(tc.raw, "GET")
			if resp.StatusCode != 200 || len(body) != 500 || sha256Hex(body) != patternSHA256(500) {
				t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
			}
			if resp.ContentLength != 500 {
				t.Fatalf("Content-Length %d, want 500", resp.ContentLength)
			}
			if !tc.keepAlive {
				if !c.closed() {
					t.Fatal("connection left open")
				}
				return
			}
			// A kept connection has to answer the next request.
			if resp, _ := c.do(tc.raw, "GET"); resp.StatusCode != 200 {
				t.Fatalf("second request: status %d", resp.StatusCode)
			}
		})
	}
}

// TestResponseFieldsFromAnyUpstream uses an upstream that answers with a
// fixed head, to check the relayed head field by field: hop-by-hop fields
// gone, the rest in order and unchanged (Date included), Via extended.
func TestResponseFieldsFromAnyUpstream(t *testing.T) {
	const date = "Date: Mon, 01 Jan 2024 00:00:00 GMT"
	cases := []struct {
		name   string
		answer string
		want   []string // the relayed head after the status line
		body   string
	}{
		{
			name:   "plain",
			answer: "HTTP/1.1 200 OK\r\nX-A: 1\r\n" + date + "\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nok",
			want:   []string{"Content-Length: 2", "X-A: 1", date, "x-a: 2", "Via: 1.1 proxylab-go"},
			body:   "ok",
		},
		{
			name: "hop-by-hop, chunked and trailers",
			answer: "HTTP/1.1 201 Fine\r\nX-A: 1\r\nConnection: X-Hop, keep-alive\r\nKeep-Alive: timeout=5\r\n" +
				"X-Hop: h\r\nSet-Cookie: a=1\r\nx-a: 2\r\nVia: 1.0 cache\r\nSet-Cookie: b=2\r\n" +
				"Transfer-Encoding: chunked\r\nTrailer: X-T\r\nProxy-Authenticate: Basic\r\nUpgrade: foo\r\n" +
				date + "\r\n\r\n5\r\nhello\r\n0\r\nX-T: t\r\n\r\n",
			want: []string{"Content-Length: 5", "X-A: 1", "x-a: 2", "Via: 1.0 cache, 1.1 proxylab-go", date,
				"Set-Cookie: a=1", "Set-Cookie: b=2"},
			body: "hello",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upstream := misbehaving(t, func(c net.Conn) { io.WriteString(c, tc.answer) })
			c := dial(t, startProxy(t, upstream, nil))
			c.send("GET / HTTP/1.1\r\nHost: origin\r\n\r\n")
			status, fields := c.readHead()
			if !strings.HasPrefix(tc.answer, status) {
				t.Errorf("status line %q, want the upstream's", status)
			}
			if !slices.Equal(fields, tc.want) {
				t.Errorf("relayed head\n  %s\nwant\n  %s", strings.Join(fields, "\n  "), strings.Join(tc.want, "\n  "))
			}
			body := make([]byte, len(tc.body))
			if _, err := io.ReadFull(c.br, body); err != nil || string(body) != tc.body {
				t.Fatalf("body %q (%v), want %q", body, err, tc.body)
			}
		})
	}
}
