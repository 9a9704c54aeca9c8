package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestIdleConnectionHalfClosedByPeer: a server that ends an idle keep-alive
// connection by closing only its sending side, then lingers reading what
// still comes (as servers with a lingering close do), must not leave the
// next request waiting for an answer that never comes: the client finds the
// end of the stream and sends again on a fresh connection.
func TestIdleConnectionHalfClosedByPeer(t *testing.T) {
	addr, accepted := serveConns(t, func(c net.Conn) { lingeringServe(c.(*net.TCPConn), 20*time.Millisecond) })
	res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
		Config{Connections: 1, KeepAlive: true, Timeout: time.Second}, Step{Rate: 10, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Success != 1 || res.Requests < 5 {
		t.Fatalf("requests %d success %v errors %v", res.Requests, res.Success, res.Errors)
	}
	if accepted.Load() < 2 {
		t.Errorf("accepted %d connection(s): the server never closed one, the test proves nothing", accepted.Load())
	}
}

// lingeringServe answers requests on c until it has been idle for idle,
// then closes its sending side and reads and drops whatever arrives for a
// second before closing.
func lingeringServe(c *net.TCPConn, idle time.Duration) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		if _, err := br.Peek(1); err != nil {
			break
		}
		c.SetReadDeadline(time.Time{})
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
			return
		}
	}
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, c)
}

// TestLargeRequestBody: a request too large for the socket's send buffer
// goes out whole, the worker waiting in its loop each time the buffer is
// full.
func TestLargeRequestBody(t *testing.T) {
	const size = 8 << 20
	var short atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n, _ := io.Copy(io.Discard, r.Body); n != size {
			short.Add(1)
		}
		io.WriteString(w, "ok")
	})
	body := make([]byte, size)
	res, err := Attack(context.Background(), Target{Method: http.MethodPost, URL: srv.URL, Body: body},
		Config{Connections: 2, KeepAlive: true}, Step{Rate: 20, Duration: 500 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Success != 1 || short.Load() != 0 {
		t.Fatalf("requests %d success %v errors %v; %d bodies arrived short", res.Requests, res.Success, res.Errors, short.Load())
	}
}
