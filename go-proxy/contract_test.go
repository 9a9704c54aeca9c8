package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRequestTargets checks what request line and Host the upstream gets
// for each target form, and that refused targets never reach it.
func TestRequestTargets(t *testing.T) {
	up := scripted(t, answerEach(okAnswer))
	proxy := startProxy(t, up.addr, nil)
	cases := []struct {
		name, raw string
		status    int
		line      string // request line the upstream must see; "" when refused
		host      string // its Host field
	}{
		{"origin-form", "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n", 200, "GET /a?b HTTP/1.1", "h"},
		{"absolute-form", "GET http://origin.test:81/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", 200,
			"GET /p/q?x=1 HTTP/1.1", "origin.test:81"},
		{"absolute-form, scheme in capitals, empty path", "GET HTTPS://origin.test HTTP/1.1\r\nHost: h\r\n\r\n", 200,
			"GET / HTTP/1.1", "origin.test"},
		{"absolute-form, query without path", "GET http://o.test?x HTTP/1.1\r\nHost: h\r\n\r\n", 200,
			"GET /?x HTTP/1.1", "o.test"},
		{"absolute-form from HTTP/1.0 without Host", "GET http://o.test/x HTTP/1.0\r\n\r\n", 200,
			"GET /x HTTP/1.1", "o.test"},
		{"server-wide OPTIONS in absolute-form", "OPTIONS http://o.test:8080 HTTP/1.1\r\nHost: h\r\n\r\n", 200,
			"OPTIONS * HTTP/1.1", "o.test:8080"},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 200, "OPTIONS * HTTP/1.1", "h"},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"authority-form with GET", "GET o.test:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"CONNECT", "CONNECT o.test:443 HTTP/1.1\r\nHost: o.test:443\r\n\r\n", 501, "", ""},
		{"CONNECT with an origin-form target", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 501, "", ""},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"fragment in absolute-form", "GET http://o.test/#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"other scheme", "GET ftp://o.test/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"userinfo", "GET http://u@o.test/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"empty host", "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"port not digits", "GET http://o.test:8x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", ""},
		{"absolute-form without Host", "GET http://o.test/ HTTP/1.1\r\n\r\n", 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.received())
			c := dial(t, proxy)
			resp, body := c.do(tc.raw, "GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			got := up.received()[before:]
			if tc.line == "" {
				if len(got) != 0 {
					t.Fatalf("refused request reached the upstream:\n%s", got[0])
				}
				if !resp.Close {
					t.Error("refusal lacks Connection: close")
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(got))
			}
			lines := strings.Split(got[0], "\r\n")
			if lines[0] != tc.line {
				t.Errorf("request line %q, want %q", lines[0], tc.line)
			}
			var hosts []string
			for _, l := range lines[1:] {
				if name, value, ok := strings.Cut(l, ": "); ok && strings.EqualFold(name, "host") {
					hosts = append(hosts, value)
				}
			}
			if len(hosts) != 1 || hosts[0] != tc.host {
				t.Errorf("Host fields %q, want exactly %q", hosts, tc.host)
			}
		})
	}
}

// TestUpstreamFraming covers response framing the proxy must refuse, and
// the limit on the response head.
func TestUpstreamFraming(t *testing.T) {
	manyFields := strings.Repeat("X-F: 0123456789\r\n", 900) // 15300 bytes
	cases := []struct {
		name, answer string
		status       int
		body         string
	}{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "ok"},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", 502, ""},
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502, ""},
		{"chunked, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 502, ""},
		{"two TE fields", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 502, ""},
		{"empty TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", 502, ""},
		{"TE and CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 502, ""},
		{"CL not digits", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", 502, ""},
		{"CLs that differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 502, ""},
		{"equal CLs", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 200, "ok"},
		{"bare LF after chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n", 502, ""},
		{"bare LF after chunk data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n", 502, ""},
		{"chunk size past any integer type", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat("f", 21) + "\r\nok\r\n0\r\n\r\n", 502, ""},
		{"bare LF in trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\n\r\n", 502, ""},
		{"extensions and trailers dropped", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nok\r\n0\r\nX-T: 1\r\n\r\n", 200, "ok"},
		{"extension over the head limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" +
			strings.Repeat("e", 16400) + "\r\nok\r\n0\r\n\r\n", 502, ""},
		{"many small fields under the limit", "HTTP/1.1 200 OK\r\n" + manyFields + "Content-Length: 2\r\n\r\nok", 200, "ok"},
		{"head over the limit", "HTTP/1.1 200 OK\r\n" + manyFields + strings.Repeat("X-G: 0123456789\r\n", 100) +
			"Content-Length: 2\r\n\r\nok", 502, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := scripted(t, answerEach(tc.answer))
			c := dial(t, startProxy(t, up.addr, nil))
			resp, body := c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET")
			if resp.StatusCode != tc.status || (tc.status == 200 && string(body) != tc.body) {
				t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if tc.name == "many small fields under the limit" && len(resp.Header.Values("X-F")) != 900 {
				t.Errorf("%d X-F fields relayed, want 900", len(resp.Header.Values("X-F")))
			}
		})
	}
}

// TestBrokenAfterHead: once part of a response went out, a failing
// upstream ends the client connection without a clean end of the body.
func TestBrokenAfterHead(t *testing.T) {
	cases := []struct{ name, answer string }{
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc"},
		{"bad chunk later", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"4000\r\n" + strings.Repeat("a", 0x4000) + "\r\n3\nabc\r\n0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := scripted(t, func(s *scriptedUpstream, _ int, c net.Conn, br *bufio.Reader) {
				s.readHead(br)
				io.WriteString(c, tc.answer)
			})
			c := dial(t, startProxy(t, up.addr, nil))
			c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := readResponse(c)
			if err == nil {
				t.Fatalf("got a complete response, status %d", resp)
			}
		})
	}
}

func readResponse(c *client) (int, error) {
	resp, err := readHTTP(c.br)
	if err != nil {
		return 0, err
	}
	_, err = io.ReadAll(resp.Body)
	return resp.StatusCode, err
}

// TestInterimResponses checks 1xx relaying by client version.
func TestInterimResponses(t *testing.T) {
	const final = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\nConnection: x\r\nX: hop\r\n\r\n"
	cases := []struct {
		name, answer, request string
		want                  []string // status lines the client sees, in order
	}{
		{"103 and 102 relayed in order", hints + "HTTP/1.1 102 Processing\r\n\r\n" + final,
			"HTTP/1.1", []string{"HTTP/1.1 103 Early Hints", "HTTP/1.1 102 Processing", "HTTP/1.1 200 OK"}},
		{"never to HTTP/1.0", hints + final, "HTTP/1.0", []string{"HTTP/1.1 200 OK"}},
		{"100 absorbed", "HTTP/1.1 100 Continue\r\n\r\n" + final, "HTTP/1.1", []string{"HTTP/1.1 200 OK"}},
		{"101 refused", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "HTTP/1.1", []string{"HTTP/1.1 502 Bad Gateway"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := scripted(t, answerEach(tc.answer))
			c := dial(t, startProxy(t, up.addr, nil))
			c.send("GET / " + tc.request + "\r\nHost: h\r\n\r\n")
			var got []string
			for len(got) < len(tc.want) {
				status, fields := c.readHead()
				got = append(got, status)
				if strings.HasPrefix(status, "HTTP/1.1 103") {
					want := []string{"Link: </a>; rel=preload", "Via: 1.1 proxylab-go"}
					if strings.Join(fields, "|") != strings.Join(want, "|") {
						t.Errorf("103 fields %q, want %q", fields, want)
					}
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("status lines %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPooledConnections covers the checks on take and put and the stale
// connection retry, each with an upstream scripted per connection.
func TestPooledConnections(t *testing.T) {
	cases := []struct {
		name     string
		script   upstreamConnScript
		second   string // the second request, on a reused connection if any
		status   int
		accepted int32 // upstream connections after both requests
	}{
		{
			name: "closed while idle: not used",
			script: func(s *scriptedUpstream, n int, c net.Conn, br *bufio.Reader) {
				s.readHead(br)
				io.WriteString(c, okAnswer) // then closes, unasked
				if n > 0 {
					answerEach(okAnswer)(s, n, c, br)
				}
			},
			second: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", status: 200, accepted: 2,
		},
		{
			name: "unsolicited bytes: not used, never delivered",
			script: func(s *scriptedUpstream, n int, c net.Conn, br *bufio.Reader) {
				s.readHead(br)
				io.WriteString(c, okAnswer)
				if n == 0 {
					time.Sleep(50 * time.Millisecond)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
				}
				answerEach(okAnswer)(s, n, c, br)
			},
			second: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 200, accepted: 2,
		},
		{
			name:   "stale GET retried on a fresh connection",
			script: dropSecond,
			second: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 200, accepted: 2,
		},
		{
			name:   "stale POST not retried",
			script: dropSecond,
			second: "POST / HTTP/1.1\r\nHost: h\r\n\r\n", status: 502, accepted: 1,
		},
		{
			name:   "stale PUT with a body not retried",
			script: dropSecond,
			second: "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", status: 502, accepted: 1,
		},
		{
			name: "bytes beyond the body: not reused",
			script: func(s *scriptedUpstream, n int, c net.Conn, br *bufio.Reader) {
				answerEach(okAnswer+"junk")(s, n, c, br)
			},
			second: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 200, accepted: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := scripted(t, tc.script)
			c := dial(t, startProxy(t, up.addr, nil))
			if resp, body := c.do("GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET"); resp.StatusCode != 200 {
				t.Fatalf("first request: %d %q", resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond) // lets the upstream's close or extra bytes arrive
			resp, body := c.do(tc.second, "GET")
			if resp.StatusCode != tc.status || (tc.status == 200 && string(body) != "ok") {
				t.Fatalf("second request: %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if got := up.accepted.Load(); got != tc.accepted {
				t.Errorf("upstream accepted %d connections, want %d", got, tc.accepted)
			}
		})
	}
}

// dropSecond answers the first request on its first connection, then
// closes it on reading the second one, as an upstream does that times out
// an idle connection just as it is reused. Later connections answer.
func dropSecond(s *scriptedUpstream, n int, c net.Conn, br *bufio.Reader) {
	if n > 0 {
		answerEach(okAnswer)(s, n, c, br)
		return
	}
	s.readHead(br)
	io.WriteString(c, okAnswer)
	s.readHead(br)
	c.(*net.TCPConn).SetLinger(0)
}

// TestBackpressure: a client that does not read stops the proxy reading an
// endless upstream body, so what the upstream gets to write stays bounded
// by socket buffers, not by the body.
func TestBackpressure(t *testing.T) {
	written := make(chan int64, 1)
	up := scripted(t, func(s *scriptedUpstream, _ int, c net.Conn, br *bufio.Reader) {
		s.readHead(br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", 1<<16, strings.Repeat("z", 1<<16)))
		var n int64
		for n < 1<<30 {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			k, err := c.Write(chunk)
			n += int64(k)
			if err != nil {
				break
			}
		}
		written <- n
	})
	c := dial(t, startProxy(t, up.addr, nil))
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	n := <-written
	if n >= 64<<20 {
		t.Fatalf("the upstream wrote %d bytes to a client that reads nothing", n)
	}
	t.Logf("upstream stalled after %d bytes", n)
}

// TestBodyProgress: an upload that keeps sending is never cut, however
// long it takes; the head timeout does not cover the body.
func TestBodyProgress(t *testing.T) {
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	const pieces = 7
	cases := []struct {
		name, head string
		piece      string // sent once a second
		end        string
	}{
		{"content-length", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", pieces), "x", ""},
		{"chunked", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n", "0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, proxy)
			c.send(tc.head)
			for range pieces {
				time.Sleep(time.Second)
				c.send(tc.piece)
			}
			got := c.echo(tc.end, "POST")
			if got.BodyBytes != pieces {
				t.Fatalf("upstream received %d bytes, want %d", got.BodyBytes, pieces)
			}
		})
	}
}

// TestManySmallRequestFields: the head limit is bytes only.
func TestManySmallRequestFields(t *testing.T) {
	upstream := startUpstream(t)
	c := dial(t, startProxy(t, upstream, nil))
	var b strings.Builder
	b.WriteString("GET /echo HTTP/1.1\r\nHost: h\r\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "X-%03d: v\r\n", i)
	}
	got := c.echo(b.String()+"\r\n", "GET")
	if len(got.Headers) != 1003 {
		t.Fatalf("upstream received %d fields, want 1003", len(got.Headers))
	}
	for i := range 1000 {
		if f := got.Headers[i+1]; f[0] != fmt.Sprintf("X-%03d", i) {
			t.Fatalf("field %d is %q", i+1, f)
		}
	}
}

// chunkedHead is a chunked POST head of exactly n bytes.
func chunkedHead(n int) string {
	const start, end = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Pad: ", "\r\n\r\n"
	return start + strings.Repeat("p", n-len(start)-len(end)) + end
}

// dechunk decodes a body as readReframed recorded it.
func dechunk(raw string) string {
	var b strings.Builder
	for {
		line, rest, _ := strings.Cut(raw, "\r\n")
		n, _ := strconv.ParseInt(line, 16, 64)
		if n == 0 {
			return b.String()
		}
		b.WriteString(rest[:n])
		raw = rest[n+2:]
	}
}

func always(answer string) func(string) string {
	return func(string) string { return answer }
}

// TestChunkedRequestBodies: the proxy decodes chunked request bodies
// itself, CRLF only, counting extensions and trailer fields against what
// the head left of MAX_HEADER_BYTES, and forwards the data re-framed.
func TestChunkedRequestBodies(t *testing.T) {
	up := scripted(t, answerReadingBodies(always(okAnswer)))
	proxy := startProxy(t, up.addr, func(c *config) {
		c.maxHeaderBytes = 4096
		c.maxBodyBytes = 1000
	})
	head := chunkedHead(1000)
	const left = 4096 - 1000                                            // what the head leaves for extensions and trailers
	ext := func(n int) string { return ";" + strings.Repeat("e", n-1) } // n bytes
	trailer := func(n int) string { return "X-T: " + strings.Repeat("t", n-7) + "\r\n" }
	var many strings.Builder
	for i := range 400 {
		fmt.Fprintf(&many, "X-%03d: v\r\n", i) // 400 fields of 10 bytes
	}
	cases := []struct {
		name, body string
		status     int
		data       string // what the upstream must get, for a 200
	}{
		{"extensions dropped", "5;a=1\r\nhello\r\n6;b;c=\"q\"\r\n world\r\n0;end\r\n\r\n", 200, "hello world"},
		{"trailer fields dropped", "5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n", 200, "hello"},
		{"empty body", "0\r\n\r\n", 200, ""},
		{"an extension filling the head limit", "5" + ext(left) + "\r\nhello\r\n0\r\n\r\n", 200, "hello"},
		{"an extension one byte over it", "5" + ext(left+1) + "\r\nhello\r\n0\r\n\r\n", 431, ""},
		{"extensions summed over it", "1" + ext(left/2) + "\r\na\r\n1" + ext(left/2+1) + "\r\nb\r\n0\r\n\r\n", 431, ""},
		{"an extension on the last chunk over it", "5\r\nhello\r\n0" + ext(left+1) + "\r\n\r\n", 431, ""},
		{"a trailer filling the head limit", "5\r\nhello\r\n0\r\n" + trailer(left) + "\r\n", 200, "hello"},
		{"a trailer one byte over it", "5\r\nhello\r\n0\r\n" + trailer(left+1) + "\r\n", 431, ""},
		{"many small trailer fields under it", "5\r\nhello\r\n0\r\n" + many.String()[:2000] + "\r\n", 200, "hello"},
		{"many small trailer fields over it", "5\r\nhello\r\n0\r\n" + many.String() + "\r\n", 431, ""},
		{"extension and trailer filling it together", "5" + ext(1000) + "\r\nhello\r\n0\r\n" + trailer(left-1000) + "\r\n", 200, "hello"},
		{"extension and trailer over it together", "5" + ext(1000) + "\r\nhello\r\n0\r\n" + trailer(left-999) + "\r\n", 431, ""},
		{"bare LF after a chunk size", "5\nhello\r\n0\r\n\r\n", 400, ""},
		{"bare LF after an extension", "5;a=1\nhello\r\n0\r\n\r\n", 400, ""},
		{"bare CR in a chunk-size line", "5\rhello\r\n0\r\n\r\n", 400, ""},
		{"bare LF after chunk data", "5\r\nhello\n0\r\n\r\n", 400, ""},
		{"bare LF after the last chunk", "5\r\nhello\r\n0\n\r\n", 400, ""},
		{"bare LF ending a trailer field", "5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 400, ""},
		{"bare LF ending the trailer section", "5\r\nhello\r\n0\r\n\n", 400, ""},
		{"chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n", 400, ""},
		{"chunk size past any integer type", strings.Repeat("f", 21) + "\r\nhello\r\n0\r\n\r\n", 400, ""},
		{"chunk size of sixteen digits", strings.Repeat("f", 16) + "\r\nhello\r\n0\r\n\r\n", 400, ""},
		{"data longer than its size", "3\r\nhello\r\n0\r\n\r\n", 400, ""},
		{"decoded body over the limit", "3e8\r\n" + strings.Repeat("b", 1000) + "\r\n1\r\nb\r\n0\r\n\r\n", 413, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.bodies())
			c := dial(t, proxy)
			start := time.Now()
			resp, body := c.do(head+tc.body, "POST")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q) after %v, want %d", resp.StatusCode, body, time.Since(start), tc.status)
			}
			got := up.bodies()[before:]
			if tc.status != 200 {
				if !resp.Close || !c.closed() {
					t.Error("refusal left the connection open")
				}
				if len(got) != 0 {
					t.Errorf("refused body reached the upstream whole: %q", got[0])
				}
				return
			}
			if len(got) != 1 || dechunk(got[0]) != tc.data {
				t.Fatalf("upstream got bodies %q, want one with the data %q", got, tc.data)
			}
		})
	}
}

// TestChunkedKeepAlive: a connection goes on serving requests after a
// chunked one, pipelined or not, and stays a keep-alive connection (idle
// timeout, not head timeout) while it waits for the next.
func TestChunkedKeepAlive(t *testing.T) {
	up := scripted(t, answerReadingBodies(always(okAnswer)))
	proxy := startProxy(t, up.addr, nil)
	chunked := "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
	plain := "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	withLength := "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
	cases := []struct {
		name      string
		requests  []string
		pipelined bool
		pause     time.Duration // before the last request
	}{
		{"chunked, then plain", []string{chunked, plain}, false, 0},
		{"chunked three times, then a length", []string{chunked, chunked, chunked, withLength, plain}, false, 0},
		{"pipelined chunked and plain", []string{chunked, plain, chunked, withLength, chunked}, true, 0},
		{"idle past the head timeout", []string{chunked, plain}, false, headTimeout + time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			if tc.pipelined {
				c.send(strings.Join(tc.requests, ""))
			}
			for i, raw := range tc.requests {
				if i == len(tc.requests)-1 {
					time.Sleep(tc.pause)
				}
				if !tc.pipelined {
					c.send(raw)
				}
				resp, body := c.read("POST")
				if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
					t.Fatalf("request %d: status %d %q (close %v), want 200 ok", i, resp.StatusCode, body, resp.Close)
				}
			}
		})
	}
}

// TestInterimOrder: an interim response goes out after every earlier
// response on its connection, even when fasthttp still held those back
// for pipelining, and before the final response of its own request.
func TestInterimOrder(t *testing.T) {
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
	up := scripted(t, answerReadingBodies(func(head string) string {
		if strings.Contains(head, " /hints") {
			return hints + okAnswer
		}
		return okAnswer
	}))
	proxy := startProxy(t, up.addr, nil)
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n" }
	chunked := "POST /hints HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
	cases := []struct {
		name      string
		requests  []string
		pipelined bool
		want      string // status codes the client sees, in order
	}{
		{"behind a pipelined response", []string{get("/a"), get("/hints")}, true, "200 103 200"},
		{"between pipelined responses", []string{get("/a"), get("/b"), get("/hints"), get("/c"), get("/hints")}, true,
			"200 200 103 200 200 103 200"},
		{"then more requests", []string{get("/hints"), get("/a"), get("/hints"), get("/b")}, false, "103 200 200 103 200 200"},
		{"answering a chunked request", []string{chunked, get("/a")}, true, "103 200 200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, proxy)
			if tc.pipelined {
				c.send(strings.Join(tc.requests, ""))
			}
			var got []string
			for _, raw := range tc.requests {
				if !tc.pipelined {
					c.send(raw)
				}
				for {
					status, _ := c.readHead()
					code := strings.Fields(status)[1]
					got = append(got, code)
					if code != "103" {
						body := make([]byte, 2)
						if _, err := io.ReadFull(c.br, body); err != nil || string(body) != "ok" {
							t.Fatalf("body %q, %v", body, err)
						}
						break
					}
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("status codes %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}
