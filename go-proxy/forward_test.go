package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestForwardsRequest sends raw requests through the proxy to the upstream's
// /echo and compares what the upstream received, field by field and in
// order.
func TestForwardsRequest(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	xff := [2]string{"X-Forwarded-For", "127.0.0.1"}
	via := [2]string{"Via", "1.1 proxylab-go"}
	cases := []struct {
		name    string
		raw     string
		method  string
		target  string
		headers [][2]string
		body    string
	}{
		{
			name: "repeated fields keep order and spelling",
			raw: "GET /echo HTTP/1.1\r\nX-Rep: 1\r\nHost: origin\r\nx-other: a\r\nx-rep: 2\r\nUser-Agent: raw/1\r\n" +
				"X-REP: 3\r\nCookie: a=1\r\ncontent-type: text/x\r\nCookie: b=2;c=3\r\nAccept: */*\r\n\r\n",
			method: "GET",
			target: "/echo",
			headers: [][2]string{{"X-Rep", "1"}, {"Host", "origin"}, {"x-other", "a"}, {"x-rep", "2"},
				{"User-Agent", "raw/1"}, {"X-REP", "3"}, {"Cookie", "a=1"}, {"content-type", "text/x"},
				{"Cookie", "b=2;c=3"}, {"Accept", "*/*"}, xff, via},
		},
		{
			name:    "target byte for byte",
			raw:     "GET /echo/a//b/../c?x=%2F&y=1 HTTP/1.1\r\nHost: origin\r\n\r\n",
			method:  "GET",
			target:  "/echo/a//b/../c?x=%2F&y=1",
			headers: [][2]string{{"Host", "origin"}, xff, via},
		},
		{
			name:    "unusual method and empty query",
			raw:     "PURGE /echo? HTTP/1.1\r\nHost: origin\r\n\r\n",
			method:  "PURGE",
			target:  "/echo?",
			headers: [][2]string{{"Host", "origin"}, xff, via},
		},
		{
			name: "hop-by-hop fields dropped",
			raw: "GET /echo HTTP/1.1\r\nHost: origin\r\nConnection: keep-alive, X-Hop\r\nX-Keep: 1\r\nX-Hop: gone\r\n" +
				"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n" +
				"Proxy-Authenticate: Basic\r\nTE: trailers\r\nUpgrade: h2c\r\nTrailer: X-T\r\nx-keep: 2\r\n\r\n",
			method:  "GET",
			target:  "/echo",
			headers: [][2]string{{"Host", "origin"}, {"X-Keep", "1"}, {"x-keep", "2"}, xff, via},
		},
		{
			name:    "field named by a later Connection field dropped",
			raw:     "GET /echo HTTP/1.1\r\nHost: origin\r\nX-Early: gone\r\nconnection: close,x-early\r\n\r\n",
			method:  "GET",
			target:  "/echo",
			headers: [][2]string{{"Host", "origin"}, xff, via},
		},
		{
			name: "forwarded-for appended to the last field",
			raw: "GET /echo HTTP/1.1\r\nHost: origin\r\nX-Forwarded-For: 10.0.0.1\r\nX-A: a\r\n" +
				"x-forwarded-for: 10.0.0.2, 10.0.0.3\r\n\r\n",
			method: "GET",
			target: "/echo",
			headers: [][2]string{{"Host", "origin"}, {"X-Forwarded-For", "10.0.0.1"}, {"X-A", "a"},
				{"x-forwarded-for", "10.0.0.2, 10.0.0.3, 127.0.0.1"}, via},
		},
		{
			name:    "forwarded-for named by Connection replaced",
			raw:     "GET /echo HTTP/1.1\r\nHost: origin\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
			method:  "GET",
			target:  "/echo",
			headers: [][2]string{{"Host", "origin"}, xff, via},
		},
		{
			name:    "via appended",
			raw:     "GET /echo HTTP/1.1\r\nVia: 1.0 fred\r\nHost: origin\r\n\r\n",
			method:  "GET",
			target:  "/echo",
			headers: [][2]string{{"Via", "1.0 fred, 1.1 proxylab-go"}, {"Host", "origin"}, xff},
		},
		{
			name:    "content-length body",
			raw:     "PUT /echo HTTP/1.1\r\nHost: origin\r\ncontent-length: 11\r\nX-After: 1\r\n\r\nhello world",
			method:  "PUT",
			target:  "/echo",
			headers: [][2]string{{"Host", "origin"}, {"content-length", "11"}, {"X-After", "1"}, xff, via},
			body:    "hello world",
		},
		{
			name: "chunked body re-framed, extensions and trailers dropped",
			raw: "POST /echo HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\nX-After: 1\r\n\r\n" +
				"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
			method:  "POST",
			target:  "/echo",
			headers: [][2]string{{"Host", "origin"}, {"Transfer-Encoding", "chunked"}, {"X-After", "1"}, xff, via},
			body:    "hello world",
		},
		{
			name:    "empty chunked body",
			raw:     "POST /echo HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			method:  "POST",
			target:  "/echo",
			headers: [][2]string{{"Host", "origin"}, {"Transfer-Encoding", "chunked"}, xff, via},
		},
		{
			name:    "HTTP/1.0 without Host gets the upstream's",
			raw:     "GET /echo HTTP/1.0\r\nX-A: a\r\n\r\n",
			method:  "GET",
			target:  "/echo",
			headers: [][2]string{{"X-A", "a"}, xff, via, {"Host", upstream}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			got := c.echo(tc.raw, tc.method)
			if got.Method != tc.method || got.Target != tc.target {
				t.Errorf("request line %s %s, want %s %s", got.Method, got.Target, tc.method, tc.target)
			}
			if !slices.Equal(got.Headers, tc.headers) {
				t.Errorf("upstream received fields\n%s\nwant\n%s", fmtFields(got.Headers), fmtFields(tc.headers))
			}
			if got.BodyBytes != len(tc.body) || got.BodySHA256 != sha256Hex([]byte(tc.body)) {
				t.Errorf("upstream received %d body bytes (sha256 %s), want %d", got.BodyBytes, got.BodySHA256, len(tc.body))
			}
		})
	}
}

func fmtFields(fs [][2]string) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f[0] + ": " + f[1] + "\n")
	}
	return b.String()
}

// TestLargeBodies checks bodies much larger than any buffer on the way,
// with both framings, arrive intact.
func TestLargeBodies(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	chunked := strings.Builder{}
	for i := 0; i < len(body); i += 100000 {
		part := body[i:min(i+100000, len(body))]
		chunked.WriteString(strconv.FormatInt(int64(len(part)), 16) + "\r\n" + part + "\r\n")
	}
	chunked.WriteString("0\r\n\r\n")
	cases := map[string]string{
		"content-length": "POST /echo HTTP/1.1\r\nHost: origin\r\nContent-Length: 1048576\r\n\r\n" + body,
		"chunked":        "POST /echo HTTP/1.1\r\nHost: origin\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String(),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial(t, proxy)
			got := c.echo(raw, "POST")
			if got.BodyBytes != len(body) || got.BodySHA256 != sha256Hex([]byte(body)) {
				t.Fatalf("upstream received %d bytes, want %d intact", got.BodyBytes, len(body))
			}
		})
	}
}
