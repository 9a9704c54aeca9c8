package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPayload(t *testing.T) {
	addr := startUpstream(t, config{responseBytes: 777})
	big := len(patternBlock) + 12345
	cases := []struct {
		name     string
		method   string
		target   string
		status   int
		bodySize int // -1: no body may be sent at all
	}{
		{"default size on root", "GET", "/", 200, 777},
		{"default size on any path", "GET", "/some/where.html", 200, 777},
		{"size zero", "GET", "/?size=0", 200, 0},
		{"size one", "GET", "/x?size=1", 200, 1},
		{"size not a multiple of the period", "GET", "/?size=100003", 200, 100003},
		{"size past the pattern block", "GET", "/?size=" + strconv.Itoa(big), 200, big},
		{"status with body", "GET", "/?status=503&size=10", 503, 10},
		{"no content", "GET", "/?status=204", 204, -1},
		{"not modified", "GET", "/?status=304", 304, -1},
		{"post", "POST", "/?size=5", 200, 5},
		{"head", "HEAD", "/?size=5", 200, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			raw := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: origin\r\nContent-Length: 0\r\n\r\n"
			resp, body := roundTrip(t, c, bufio.NewReader(c), raw, tc.method)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			want := tc.bodySize
			if want < 0 {
				want = 0
			}
			if len(body) != want {
				t.Fatalf("body %d bytes, want %d", len(body), want)
			}
			if sha256Hex(body) != patternSHA256(want) {
				t.Fatal("body is not the pattern")
			}
			if tc.method == "HEAD" && resp.ContentLength != 5 {
				t.Fatalf("HEAD Content-Length %d, want 5", resp.ContentLength)
			}
		})
	}
}

func TestBadOverrides(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	for _, q := range []string{
		"size=-1", "size=abc", "size=", "size=1073741825",
		"delay_ms=x", "delay_ms=600001",
		"status=99", "status=600", "status=20x",
		"chunked=2", "chunked=yes",
	} {
		t.Run(q, func(t *testing.T) {
			resp, err := http.Get("http://" + addr + "/?" + q)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	const delay = 300 * time.Millisecond
	start := time.Now()
	resp, err := http.Get(fmt.Sprintf("http://%s/?delay_ms=%d", addr, delay.Milliseconds()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A sleep never ends early, so this lower bound cannot flake.
	if elapsed := time.Since(start); elapsed < delay {
		t.Fatalf("answered after %v, want at least %v", elapsed, delay)
	}
}

// TestChunked reads the raw bytes so the chunk framing itself is checked,
// not a client library's reassembly of it.
func TestChunked(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	for _, size := range []int{0, 1, 5000, len(patternBlock) + 7} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c := dial(t, addr)
			fmt.Fprintf(c, "GET /?chunked=1&size=%d HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n", size)
			raw, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			head, rest, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
			if !ok {
				t.Fatalf("no end of head in %q", raw)
			}
			lower := strings.ToLower(string(head))
			if !strings.Contains(lower, "\r\ntransfer-encoding: chunked") {
				t.Fatalf("head lacks chunked encoding:\n%s", head)
			}
			if strings.Contains(lower, "content-length") {
				t.Fatalf("chunked head also has Content-Length:\n%s", head)
			}
			body := dechunk(t, rest)
			if len(body) != size || sha256Hex(body) != patternSHA256(size) {
				t.Fatalf("dechunked %d bytes, want %d bytes of the pattern", len(body), size)
			}
		})
	}
}

// dechunk decodes a chunked body and requires it to end exactly after the
// last chunk and an empty trailer section.
func dechunk(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for {
		line, rest, ok := bytes.Cut(b, []byte("\r\n"))
		if !ok {
			t.Fatalf("chunk size line not terminated: %q", b)
		}
		size, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || size < 0 {
			t.Fatalf("bad chunk size %q", line)
		}
		if size == 0 {
			if string(rest) != "\r\n" {
				t.Fatalf("bytes after last chunk: %q", rest)
			}
			return out
		}
		if int64(len(rest)) < size+2 || string(rest[size:size+2]) != "\r\n" {
			t.Fatalf("chunk of %d bytes not followed by CRLF", size)
		}
		out = append(out, rest[:size]...)
		b = rest[size+2:]
	}
}

func TestEcho(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	cases := []struct {
		name   string
		raw    string
		method string
		target string
		hdrs   [][2]string
		body   []byte
	}{
		{
			name: "repeated headers keep order and case",
			raw: "GET /echo HTTP/1.1\r\nHost: origin\r\nX-Rep: 1\r\nx-other: a\r\nx-rep: 2\r\nX-REP: 3\r\n" +
				"Cookie: a=1\r\nCookie: b=2\r\nUser-Agent: raw\r\n\r\n",
			method: "GET",
			target: "/echo",
			hdrs: [][2]string{{"Host", "origin"}, {"X-Rep", "1"}, {"x-other", "a"}, {"x-rep", "2"},
				{"X-REP", "3"}, {"Cookie", "a=1"}, {"Cookie", "b=2"}, {"User-Agent", "raw"}},
		},
		{
			name:   "target byte for byte",
			raw:    "GET /echo?x=%2F&y=1&&z HTTP/1.1\r\nHost: origin\r\n\r\n",
			method: "GET",
			target: "/echo?x=%2F&y=1&&z",
			hdrs:   [][2]string{{"Host", "origin"}},
		},
		{
			name:   "target under echo not normalised",
			raw:    "DELETE /echo/a//b/../c?x=%2F HTTP/1.1\r\nHost: origin\r\n\r\n",
			method: "DELETE",
			target: "/echo/a//b/../c?x=%2F",
			hdrs:   [][2]string{{"Host", "origin"}},
		},
		{
			name:   "content-length body",
			raw:    "PUT /echo HTTP/1.1\r\nHost: origin\r\ncontent-length: 11\r\n\r\nhello world",
			method: "PUT",
			target: "/echo",
			hdrs:   [][2]string{{"Host", "origin"}, {"content-length", "11"}},
			body:   []byte("hello world"),
		},
		{
			name:   "chunked body",
			raw:    "POST /echo HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			method: "POST",
			target: "/echo",
			hdrs:   [][2]string{{"Host", "origin"}, {"Transfer-Encoding", "chunked"}},
			body:   []byte("hello world"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			resp, body := roundTrip(t, c, bufio.NewReader(c), tc.raw, tc.method)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got echoReply
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%v in %s", err, body)
			}
			want := echoReply{
				Method:     tc.method,
				Target:     tc.target,
				Headers:    tc.hdrs,
				BodyBytes:  len(tc.body),
				BodySHA256: sha256Hex(tc.body),
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Fatalf("echo\n got %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestCloseEndsConnection(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	c := dial(t, addr)
	br := bufio.NewReader(c)
	resp, body := roundTrip(t, c, br, "GET /close?size=3 HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
	if resp.StatusCode != 200 || len(body) != 3 {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Fatal("response does not announce Connection: close")
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection still open after /close: read %d bytes, err %v", n, err)
	}
}

func TestStatsCountsConnections(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	for _, conns := range []int{1, 4} {
		t.Run(strconv.Itoa(conns), func(t *testing.T) {
			before, reqBefore := stats(t, addr)
			for range conns {
				c := dial(t, addr)
				br := bufio.NewReader(c)
				// Several requests on one connection must count it once.
				for range 3 {
					roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
				}
				c.Close()
			}
			// The stats request itself arrives on one more connection.
			got, reqs := stats(t, addr)
			if want := before + uint64(conns) + 1; got != want {
				t.Fatalf("connections_accepted %d, want %d", got, want)
			}
			// /stats itself is not counted as a request.
			if want := reqBefore + uint64(conns)*3; reqs != want {
				t.Fatalf("requests %d, want %d", reqs, want)
			}
		})
	}
}

// stats asks /stats on a fresh connection.
func stats(t *testing.T, addr string) (accepted, requests uint64) {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	resp, body := roundTrip(t, c, bufio.NewReader(c), "GET /stats HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("/stats status %d", resp.StatusCode)
	}
	var s struct {
		Accepted *uint64 `json:"connections_accepted"`
		Requests *uint64 `json:"requests"`
	}
	if err := json.Unmarshal(body, &s); err != nil || s.Accepted == nil || s.Requests == nil {
		t.Fatalf("/stats answered %q (%v)", body, err)
	}
	return *s.Accepted, *s.Requests
}

// The broken answers stand in for an origin that dies mid-response or
// does not speak HTTP; a proxy must turn both into 502 or a closed stream.
func TestBrokenResponses(t *testing.T) {
	addr := startUpstream(t, defaultConfig())
	cases := []struct {
		target string
		want   string // everything the connection carries before it closes
	}{
		{"/?size=30&abort_after=4", "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabcd"},
		{"/?size=3&abort_after=9", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"},
		{"/?garbage=1", "this is not an HTTP response\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			conn := dial(t, addr)
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: origin\r\n\r\n", c.target)
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("read: %v (the connection must be closed, not left hanging)", err)
			}
			if string(got) != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestRouteOf(t *testing.T) {
	cases := []struct {
		target string
		want   route
	}{
		{"/echo", echoRoute},
		{"/echo?x=1", echoRoute},
		{"/echo/", echoRoute},
		{"/echo/a//b/../c?q", echoRoute},
		{"/echoes", payloadRoute},
		{"/a/../echo", payloadRoute},
		{"/stats", statsRoute},
		{"/stats?x", statsRoute},
		{"/stats/", payloadRoute},
		{"/close", closeRoute},
		{"/close?size=1", closeRoute},
		{"/", payloadRoute},
		{"*", payloadRoute},
	}
	for _, tc := range cases {
		if got := routeOf([]byte(tc.target)); got != tc.want {
			t.Errorf("routeOf(%q) = %d, want %d", tc.target, got, tc.want)
		}
	}
}
