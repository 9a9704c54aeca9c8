package conformance

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

var connectionCases = []Case{
	{Group: "connections", Name: "keep-alive-sequence", Run: connKeepAlive},
	{Group: "connections", Name: "pipelined", Run: connPipelined},
	{Group: "connections", Name: "http10-closed", Run: connHTTP10Closed},
	{Group: "connections", Name: "http10-not-chunked", Run: connHTTP10NotChunked},
	{Group: "connections", Name: "connection-close", Run: connCloseRequested},
	{Group: "connections", Name: "pool-bounded", Run: connPoolBounded},
	{Group: "connections", Name: "pool-reuse-sequential", Run: connPoolSequential},
	{Group: "connections", Name: "pool-reuse-new-clients", Run: connPoolNewClients},
	{Group: "connections", Name: "client-gone-mid-request", Run: connClientGone},
}

// connCloseWait is how long a connection the proxy must close may stay
// open after the last answer.
const connCloseWait = 5 * time.Second

// connWait bounds every read, so that a request the proxy never answers
// fails the case with a message naming it, not at the case deadline.
const connWait = 20 * time.Second

func connDo(c *Conn, method, raw string) (*Response, error) {
	if err := c.Send(raw); err != nil {
		return nil, err
	}
	return connRead(c, method)
}

func connRead(c *Conn, method string) (*Response, error) {
	c.SetReadDeadline(time.Now().Add(connWait))
	return c.Read(method)
}

func connGet(target, fields string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n" + fields + "\r\n"
}

// connWant checks an answer to GET /?size=n.
func connWant(what string, r *Response, n int) error {
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: answered %s %q, want 200", what, r.Status, clip(r.Body))
	}
	if !bytes.Equal(r.Body, Pattern(n)) {
		return fmt.Errorf("%s: answered a %d-byte body %q, want the %d-byte pattern (an answer to another request?)", what, len(r.Body), clip(r.Body), n)
	}
	return nil
}

// connSize gives every request of a case its own body size, so an answer
// relayed to the wrong request shows.
func connSize(i int) int { return 100 + 37*i }

func connKeepAlive(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	const n = 20
	for i := range n {
		target := fmt.Sprintf("/?size=%d", connSize(i))
		what := fmt.Sprintf("request %d of %d on one connection (GET %s)", i+1, n, target)
		r, err := connDo(c, "GET", connGet(target, ""))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := connWant(what, r, connSize(i)); err != nil {
			return err
		}
		if r.Close && i < n-1 {
			return fmt.Errorf("%s: the answer closes the connection (Connection %q), want keep-alive", what, r.Header.Values("Connection"))
		}
	}
	return nil
}

// connPipelined writes several requests before reading any answer (RFC
// 9112 9.3.2): GETs of distinct sizes and POSTs with bodies of distinct
// lengths, so that both the order and the body framing show.
func connPipelined(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	const n = 10
	var raw strings.Builder
	for i := range n {
		if i%2 == 0 {
			raw.WriteString(connGet(fmt.Sprintf("/?size=%d", connSize(i)), ""))
			continue
		}
		body := Pattern(connSize(i))
		fmt.Fprintf(&raw, "POST /echo?seq=%d HTTP/1.1\r\nHost: proxylab.test\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
	}
	if err := c.Send(raw.String()); err != nil {
		return err
	}
	for i := range n {
		what := fmt.Sprintf("answer %d of %d requests sent in one write", i+1, n)
		if i%2 == 0 {
			r, err := connRead(c, "GET")
			if err != nil {
				return fmt.Errorf("%s (GET /?size=%d): %w", what, connSize(i), err)
			}
			if err := connWant(fmt.Sprintf("%s (GET /?size=%d)", what, connSize(i)), r, connSize(i)); err != nil {
				return err
			}
			continue
		}
		what = fmt.Sprintf("%s (POST /echo?seq=%d with %d body bytes)", what, i, connSize(i))
		r, err := connRead(c, "POST")
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ec, err := ParseEcho(r)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if want := fmt.Sprintf("/echo?seq=%d", i); ec.Target != want || ec.BodyBytes != int64(connSize(i)) || ec.BodySHA256 != SHA256(Pattern(connSize(i))) {
			return fmt.Errorf("%s: the upstream got %s %s with %d body bytes, want POST %s with the %d-byte pattern", what, ec.Method, ec.Target, ec.BodyBytes, want, connSize(i))
		}
	}
	return nil
}

// connHTTP10Closed: an HTTP/1.0 request without keep-alive asks for the
// connection to end after the answer (RFC 9112 9.3).
func connHTTP10Closed(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	r, err := connDo(c, "GET", "GET /?size=100 HTTP/1.0\r\n\r\n")
	if err != nil {
		return fmt.Errorf("GET /?size=100 HTTP/1.0: %w", err)
	}
	if err := connWant("GET /?size=100 HTTP/1.0", r, 100); err != nil {
		return err
	}
	if err := c.Closed(connCloseWait); err != nil {
		return fmt.Errorf("after answering an HTTP/1.0 request without keep-alive: %w", err)
	}
	return nil
}

// connHTTP10NotChunked: an HTTP/1.0 client does not know chunked framing
// (RFC 9112 7.1), so an upstream's chunked body must reach it some other
// way.
func connHTTP10NotChunked(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	const what = "GET /?size=3000&chunked=1 HTTP/1.0 (the upstream answers chunked)"
	r, err := connDo(c, "GET", "GET /?size=3000&chunked=1 HTTP/1.0\r\n\r\n")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if slices.Contains(r.TransferEncoding, "chunked") {
		return fmt.Errorf("%s: answered with Transfer-Encoding: chunked, which an HTTP/1.0 client cannot read", what)
	}
	return connWant(what, r, 3000)
}

// connCloseRequested: after a request with Connection: close the server
// closes and processes nothing more from that connection (RFC 9112 9.6),
// even a request already written behind it.
func connCloseRequested(e *Env) error {
	before, err := e.Stats(e.Upstream())
	if err != nil {
		return err
	}
	c, err := e.Connect()
	if err != nil {
		return err
	}
	const what = "GET /?size=100 with Connection: close, and a second request written behind it"
	r, err := connDo(c, "GET", connGet("/?size=100", "Connection: close\r\n")+connGet("/?size=200", ""))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := connWant(what, r, 100); err != nil {
		return err
	}
	if err := c.Closed(connCloseWait); err != nil {
		return fmt.Errorf("%s: after the first answer: %w", what, err)
	}
	after, err := e.Stats(e.Upstream())
	if err != nil {
		return err
	}
	if n := after.Requests - before.Requests; n != 1 {
		return fmt.Errorf("%s: %d requests reached the upstream, want only the first", what, n)
	}
	return nil
}

// connPrivate starts an upstream and a proxy of the case's own, so the
// upstream's counts are the case's alone.
func connPrivate(e *Env) (proxy, upstream string, err error) {
	upstream, err = e.StartUpstream()
	if err != nil {
		return "", "", err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = upstream })
	if err != nil {
		return "", "", err
	}
	return p.Addr(), upstream, nil
}

// connOpened is how many connections the upstream accepted between two
// reads of its counters, less the one the second read itself came on.
func connOpened(before, after UpstreamStats) int {
	return int(after.ConnectionsAccepted) - int(before.ConnectionsAccepted) - 1
}

const (
	poolClients           = 64
	poolRequestsPerClient = 8
	// poolSlack lets a pool that puts a connection back only after the
	// client has its answer open a few more than the number of requests in
	// flight; far fewer than the number of requests all the same.
	poolSlack = poolClients / 2
)

// connPoolBounded: concurrent clients need at most as many upstream
// connections as there are requests in flight, not one per request.
func connPoolBounded(e *Env) error {
	proxy, upstream, err := connPrivate(e)
	if err != nil {
		return err
	}
	// Dialled one after another: Env is not safe for concurrent use.
	clients := make([]*Conn, poolClients)
	for i := range clients {
		if clients[i], err = e.ConnectTo(proxy); err != nil {
			return err
		}
	}
	before, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	errs := make(chan error, poolClients)
	for k, c := range clients {
		go func() {
			for i := range poolRequestsPerClient {
				size := connSize(k*poolRequestsPerClient + i)
				target := fmt.Sprintf("/?size=%d", size)
				what := fmt.Sprintf("client %d, request %d (GET %s)", k+1, i+1, target)
				r, err := connDo(c, "GET", connGet(target, ""))
				if err != nil {
					errs <- fmt.Errorf("%s: %w", what, err)
					return
				}
				if err := connWant(what, r, size); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	after, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	const total = poolClients * poolRequestsPerClient
	if n := after.Requests - before.Requests; n != total {
		return fmt.Errorf("%d clients sent %d requests in all, the upstream got %d", poolClients, total, n)
	}
	if n := connOpened(before, after); n > poolClients+poolSlack {
		return fmt.Errorf("%d concurrent keep-alive clients, %d requests each, made the proxy open %d upstream connections for %d requests; with pooling at most about %d (limit %d)",
			poolClients, poolRequestsPerClient, n, total, poolClients, poolClients+poolSlack)
	}
	return nil
}

// poolSequentialSlack allows one extra connection for a pool that puts a
// connection back only after the client has its answer.
const poolSequentialSlack = 1

// connPoolSequential: requests one after another on one client connection
// share one upstream connection.
func connPoolSequential(e *Env) error {
	proxy, upstream, err := connPrivate(e)
	if err != nil {
		return err
	}
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	before, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	const n = 30
	for i := range n {
		target := fmt.Sprintf("/?size=%d", connSize(i))
		what := fmt.Sprintf("request %d (GET %s)", i+1, target)
		r, err := connDo(c, "GET", connGet(target, ""))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := connWant(what, r, connSize(i)); err != nil {
			return err
		}
	}
	after, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	if got := connOpened(before, after); got > 1+poolSequentialSlack {
		return fmt.Errorf("%d requests one after another on one client connection made the proxy open %d upstream connections, want 1 reused (at most %d)", n, got, 1+poolSequentialSlack)
	}
	return nil
}

// connPoolNewClients: the upstream connection belongs to the proxy, not to
// a client connection, so clients that close after each request (by
// Connection: close, or by speaking HTTP/1.0) still share it. Neither way
// of closing may be passed upstream.
func connPoolNewClients(e *Env) error {
	proxy, upstream, err := connPrivate(e)
	if err != nil {
		return err
	}
	before, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	const n = 20
	for i := range n {
		size := connSize(i)
		raw := connGet(fmt.Sprintf("/?size=%d", size), "Connection: close\r\n")
		what := fmt.Sprintf("client %d (GET /?size=%d with Connection: close)", i+1, size)
		if i%2 == 1 {
			raw = fmt.Sprintf("GET /?size=%d HTTP/1.0\r\n\r\n", size)
			what = fmt.Sprintf("client %d (GET /?size=%d HTTP/1.0)", i+1, size)
		}
		c, err := e.ConnectTo(proxy)
		if err != nil {
			return err
		}
		r, err := connDo(c, "GET", raw)
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := connWant(what, r, size); err != nil {
			return err
		}
	}
	after, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	if got := connOpened(before, after); got > 1+poolSequentialSlack {
		return fmt.Errorf("%d clients one after another, each closing after its request (Connection: close or HTTP/1.0), made the proxy open %d upstream connections, want 1 reused (at most %d)", n, got, 1+poolSequentialSlack)
	}
	return nil
}

// connClientGone: clients that vanish part way through a request must
// cost the proxy nothing but that request. In particular an upstream
// connection that carried part of such a request cannot go back to the
// pool: the next request on it would be read as the rest of the body.
func connClientGone(e *Env) error {
	chunked := "POST /echo?gone HTTP/1.1\r\nHost: proxylab.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	partial := []struct {
		name, raw string
		reset     bool
	}{
		{name: "half a request head", raw: "POST /echo?gone HTTP/1.1\r\nHost: proxylab.test\r\nContent-Le"},
		{name: "a head with Content-Length: 1000 and 500 body bytes", raw: "POST /echo?gone HTTP/1.1\r\nHost: proxylab.test\r\nContent-Length: 1000\r\n\r\n" + string(Pattern(500))},
		{name: "the same, ended by a reset", raw: "POST /echo?gone HTTP/1.1\r\nHost: proxylab.test\r\nContent-Length: 1000\r\n\r\n" + string(Pattern(500)), reset: true},
		{name: "a head with Content-Length: 4194304 and 1 MiB of body", raw: "POST /echo?gone HTTP/1.1\r\nHost: proxylab.test\r\nContent-Length: 4194304\r\n\r\n" + string(Pattern(1<<20))},
		{name: "a chunked body stopping inside a chunk", raw: chunked + "64\r\n" + string(Pattern(50))},
	}
	before, err := e.Stats(e.Upstream())
	if err != nil {
		return err
	}
	for _, p := range partial {
		c, err := e.Connect()
		if err != nil {
			return err
		}
		if err := c.Send(p.raw); err != nil {
			return fmt.Errorf("sending %s: %w", p.name, err)
		}
		if p.reset {
			if tc, ok := c.Conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
		}
		c.Close()
	}
	// Give the proxy time to notice the closes before the next requests,
	// which is when a connection it wrongly pooled would be picked up.
	select {
	case <-time.After(200 * time.Millisecond):
	case <-e.Ctx.Done():
		return e.Ctx.Err()
	}
	after, err := e.Stats(e.Upstream())
	if err != nil {
		return err
	}
	if n := after.Requests - before.Requests; n != 0 {
		return fmt.Errorf("after clients went away part way through %d requests, %d complete request(s) reached the upstream, want none", len(partial), n)
	}
	c, err := e.Connect()
	if err != nil {
		return err
	}
	for i := range 10 {
		body := Pattern(connSize(i))
		target := fmt.Sprintf("/echo?after=%d", i)
		what := fmt.Sprintf("POST %s with %d body bytes, after clients went away part way through requests", target, len(body))
		r, err := connDo(c, "POST", fmt.Sprintf("POST %s HTTP/1.1\r\nHost: proxylab.test\r\nContent-Length: %d\r\n\r\n%s", target, len(body), body))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ec, err := ParseEcho(r)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ec.Target != target || ec.BodyBytes != int64(len(body)) || ec.BodySHA256 != SHA256(body) {
			return fmt.Errorf("%s: the upstream got %s %s with %d body bytes (SHA-256 %s), want it with the %d-byte pattern", what, ec.Method, ec.Target, ec.BodyBytes, ec.BodySHA256, len(body))
		}
	}
	return nil
}
