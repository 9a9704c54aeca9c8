package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestPlainHead pins which heads the in-place parser takes and what it reads
// from them, and checks each one it takes against fasthttp, which reads
// every other head: both must agree on status, body size and whether the
// connection ends.
func TestPlainHead(t *testing.T) {
	cases := []struct {
		name     string
		raw      string // head and body
		skipBody bool
		ok       bool
		want     head
	}{
		{name: "content-length", raw: "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\nhello", ok: true, want: head{code: 200, length: 5}},
		{name: "lower-case names", raw: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\nhello", ok: true, want: head{code: 200, length: 5}},
		{name: "spaces around values", raw: "HTTP/1.1 200 OK\r\nContent-Length:   5  \r\nConnection:  Close \r\n\r\nhello", ok: true, want: head{code: 200, length: 5, close: true}},
		{name: "connection close", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", ok: true, want: head{code: 200, length: 2, close: true}},
		{name: "redirect", raw: "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", ok: true, want: head{code: 302}},
		{name: "no content", raw: "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", ok: true, want: head{code: 204}},
		{name: "not modified with length", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", ok: true, want: head{code: 304}},
		{name: "HEAD", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n", skipBody: true, ok: true, want: head{code: 200}},
		{name: "leading zeros", raw: "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567", ok: true, want: head{code: 200, length: 7}},
		{name: "body not all buffered", raw: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", ok: true, want: head{code: 200, length: 9}},

		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{name: "until close", raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc"},
		{name: "HTTP/1.0", raw: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "interim", raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "error status", raw: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno"},
		{name: "no reason", raw: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "two lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "signed length", raw: "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi"},
		{name: "huge length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n"},
		{name: "other connection option", raw: "HTTP/1.1 200 OK\r\nConnection: close, upgrade\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "space before colon", raw: "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi"},
		{name: "folded line", raw: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "bare LF", raw: "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"},
		{name: "tab in value", raw: "HTTP/1.1 200 OK\r\nConnection:\tclose\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "non-ASCII value", raw: "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "head not all buffered", raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"},
		{name: "trailer announced", raw: "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\nhi"},
		{name: "HEAD without length", raw: "HTTP/1.1 200 OK\r\n\r\n", skipBody: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, size, ok := plainHead([]byte(tc.raw), tc.skipBody)
			if ok != tc.ok || h != tc.want {
				t.Fatalf("plainHead = %+v, ok %v; want %+v, ok %v", h, ok, tc.want, tc.ok)
			}
			if !ok {
				return
			}
			if end := strings.Index(tc.raw, "\r\n\r\n") + 4; size != end {
				t.Errorf("head size %d, want %d", size, end)
			}
			if got, err := fasthttpHead(tc.raw, tc.skipBody); err != nil || got != h {
				t.Errorf("fasthttp reads %+v (%v), plainHead %+v", got, err, h)
			}
		})
	}
}

// fasthttpHead is what fasthttp reads of a response: the reference for
// every head plainHead takes.
func fasthttpHead(raw string, skipBody bool) (head, error) {
	var resp fasthttp.Response
	resp.StreamBody, resp.SkipBody = true, skipBody
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		return head{}, err
	}
	length := max(resp.Header.ContentLength(), 0)
	if skipBody || resp.BodyStream() == nil {
		length = 0
	}
	return head{code: resp.StatusCode(), length: length, close: resp.ConnectionClose()}, nil
}

// FuzzPlainHead: whatever bytes a hostile target answers, a head plainHead
// takes is one fasthttp reads alike (status, body size, close), and its
// size ends at the head's blank line. Heads it leaves go to fasthttp
// itself, so they need no check.
func FuzzPlainHead(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 301 Moved\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, raw string, skipBody bool) {
		h, size, ok := plainHead([]byte(raw), skipBody)
		if !ok {
			return
		}
		if size > len(raw) || size < 4 || raw[size-4:size] != "\r\n\r\n" {
			t.Fatalf("head size %d of %q does not end at a blank line", size, raw)
		}
		got, err := fasthttpHead(raw, skipBody)
		if err != nil || got != h {
			t.Fatalf("%q: fasthttp reads %+v (%v), plainHead %+v", raw, got, err, h)
		}
	})
}

// TestResponseShapes answers with each shape of response, the plain ones
// and those left to fasthttp, from a server writing exact bytes: every
// response must be read whole, the connection kept or dropped as it says,
// and failures reported as before.
func TestResponseShapes(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		response   string
		perRequest bool   // the connection ends with each response
		wantCode   string // the status every request gets
		wantErr    string // the error every request fails with
	}{
		{name: "plain", response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", wantCode: "200"},
		{name: "plain large body", response: "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("x", 20000), wantCode: "200"},
		{name: "plain close", response: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", perRequest: true, wantCode: "200"},
		{name: "HEAD", method: http.MethodHead, response: "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n", wantCode: "200"},
		{name: "not modified", response: "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", wantCode: "304"},
		{name: "chunked with trailer", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", wantCode: "200"},
		{name: "HTTP/1.0", response: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", perRequest: true, wantCode: "200"},
		{name: "HTTP/1.0 keep-alive", response: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello", wantCode: "200"},
		{name: "interim responses", response: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", wantCode: "200"},
		{name: "error status", response: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", wantCode: "503",
			wantErr: "503 Service Unavailable"},
		{name: "truncated body", response: "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", perRequest: true, wantCode: "0",
			wantErr: "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, accepted := scriptedServer(t, tc.response, tc.perRequest)
			res, err := Attack(context.Background(), Target{Method: tc.method, URL: url}, Config{Connections: 2, KeepAlive: true},
				Step{Rate: 100, Duration: 300 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || res.StatusCodes[tc.wantCode] != res.Requests {
				t.Fatalf("requests %d codes %v errors %v, want every one %s", res.Requests, res.StatusCodes, res.Errors, tc.wantCode)
			}
			if tc.wantErr != "" {
				checkErrors(t, res, tc.wantErr)
			} else if res.Success != 1 {
				t.Fatalf("success %v errors %v", res.Success, res.Errors)
			}
			n := uint64(accepted.Load())
			if tc.perRequest && n != res.Requests {
				t.Errorf("accepted %d connections for %d requests, want one each", n, res.Requests)
			}
			if !tc.perRequest && n > 2 {
				t.Errorf("accepted %d connections, want at most the 2 slots", n)
			}
			checkConsistent(t, res)
		})
	}
}

// scriptedServer answers every request with response, byte for byte, and
// closes the connection after each one when perRequest is set. It counts
// the connections it accepted.
func scriptedServer(t *testing.T, response string, perRequest bool) (string, *atomic.Int64) {
	t.Helper()
	addr, accepted := serveConns(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, response); err != nil || perRequest {
				return
			}
		}
	})
	return "http://" + addr + "/", accepted
}
