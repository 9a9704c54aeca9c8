package conformance

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The pool cases pin contract-v2 section 3: what an upstream does to a
// connection while it sits in the pool must never reach a client, and a
// request is sent twice only when that is safe (RFC 9110 9.2.2, RFC 9112
// 9.3.1).
var poolCases = []Case{
	{Group: "pool", Name: "unsolicited-bytes-discarded", Run: poolUnsolicited},
	{Group: "pool", Name: "body-longer-than-content-length", Run: poolLongBody},
	{Group: "pool", Name: "idle-close-not-used", Run: poolIdleClose},
	{Group: "pool", Name: "stale-get-retried", Run: poolStaleGetRetried},
	{Group: "pool", Name: "no-retry-with-body-or-unsafe", Run: poolNoRetryUnsafe},
	{Group: "pool", Name: "no-retry-after-response-bytes", Run: poolNoRetryAfterBytes},
}

// poolSettle is how long a case waits after the scripted upstream did
// something to an idle connection (wrote, closed) before the next request:
// on loopback the bytes or the FIN are at the proxy's socket when the
// upstream's call returns, so this is only slack for the proxy's own
// event loop.
const poolSettle = 250 * time.Millisecond

const poolFake = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"

// poolInjection is something an upstream sends that nobody asked for.
type poolInjection struct {
	name  string
	bytes string
	// later sends it a while after the response, while the connection is
	// idle in the pool; otherwise in the same write as the response.
	later bool
	// other sends the next request on a different client connection.
	other bool
}

var poolInjections = []poolInjection{
	{name: "a whole fake response in the same write", bytes: poolFake},
	{name: "junk in the same write", bytes: "junk that is not HTTP\r\n\r\n"},
	{name: "a whole fake response while idle", bytes: poolFake, later: true},
	{name: "junk while idle", bytes: "junk that is not HTTP\r\n\r\n", later: true},
	{name: "a whole fake response while idle, next request from another client", bytes: poolFake, later: true, other: true},
	{name: "a fake response in the same write, next request from another client", bytes: poolFake, other: true},
}

// poolUnsolicited: the upstream answers /inject-N and then sends bytes of
// its own on that connection; every later request must get its own
// answer.
func poolUnsolicited(e *Env) error {
	injected := make(chan struct{}, 1)
	_, p, err := e.ScriptedProxy(func(c *ScriptConn) {
		c.Serve(func(r *ScriptRequest) string {
			var in poolInjection
			var i int
			if _, err := fmt.Sscanf(r.Target, "/inject-%d", &i); err == nil {
				in = poolInjections[i]
			}
			switch {
			case in.bytes == "":
				return ScriptAnswer(r)
			case !in.later:
				return ScriptAnswer(r) + in.bytes
			}
			if c.Send(ScriptAnswer(r)) != nil {
				return ""
			}
			time.Sleep(300 * time.Millisecond)
			c.Send(in.bytes)
			injected <- struct{}{}
			// Whatever the proxy sends on it from now on gets answered
			// as usual: only the injected bytes are wrong.
			c.Serve(ScriptAnswer)
			return ""
		})
	})
	if err != nil {
		return err
	}
	for i, in := range poolInjections {
		if err := poolAfterInjection(e, p.Addr(), i, in, injected); err != nil {
			return fmt.Errorf("the upstream sent %s after answering: %w", in.name, err)
		}
	}
	return nil
}

func poolAfterInjection(e *Env, proxy string, i int, in poolInjection, injected <-chan struct{}) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	target := fmt.Sprintf("/inject-%d", i)
	r, err := scriptGet(c, target)
	if err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	if err := scriptWantOwn("GET "+target, r, "GET", target); err != nil {
		return err
	}
	if in.later {
		select {
		case <-injected:
		case <-time.After(scriptWait):
			return errors.New("the proxy did not keep the upstream connection open after the response")
		}
	}
	time.Sleep(poolSettle)
	next := c
	if in.other {
		if next, err = e.ConnectTo(proxy); err != nil {
			return err
		}
	}
	for k, t := range []string{fmt.Sprintf("/next-%d-a", i), fmt.Sprintf("/next-%d-b", i)} {
		r, err := scriptGet(next, t)
		if err != nil {
			return fmt.Errorf("GET %s, request %d after it: %w", t, k+1, err)
		}
		if err := scriptWantOwn(fmt.Sprintf("GET %s, request %d after it", t, k+1), r, "GET", t); err != nil {
			return err
		}
	}
	return nil
}

// poolLongBody: an upstream whose body runs past its Content-Length has
// put bytes on the connection that belong to no response.
func poolLongBody(e *Env) error {
	// Each ends in an empty line, so that a relay between proxy and
	// upstream that reads messages passes the bytes on at once too.
	extras := []string{"-and-more-body-bytes\r\n\r\n", "\r\n" + poolFake, strings.Repeat("x", 20000) + "\r\n\r\n"}
	_, p, err := e.ScriptedProxy(func(c *ScriptConn) {
		c.Serve(func(r *ScriptRequest) string {
			var i int
			if _, err := fmt.Sscanf(r.Target, "/long-%d", &i); err == nil {
				return ScriptAnswer(r) + extras[i]
			}
			return ScriptAnswer(r)
		})
	})
	if err != nil {
		return err
	}
	for i := range extras {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		target := fmt.Sprintf("/long-%d", i)
		what := fmt.Sprintf("GET %s (the upstream sends %d bytes past its Content-Length)", target, len(extras[i]))
		r, err := scriptGet(c, target)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := scriptWantOwn(what, r, "GET", target); err != nil {
			return err
		}
		other, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		for k, conn := range []*Conn{other, c} {
			t := fmt.Sprintf("/after-long-%d-%d", i, k)
			r, err := scriptGet(conn, t)
			if err != nil {
				return fmt.Errorf("GET %s after %s: %w", t, what, err)
			}
			if err := scriptWantOwn(fmt.Sprintf("GET %s after %s", t, what), r, "GET", t); err != nil {
				return err
			}
		}
	}
	return nil
}

// poolIdleClose: an upstream that closes idle keep-alive connections (as
// Node.js does after keepAliveTimeout) without announcing it. The proxy
// must notice the close when it takes the connection, so even a POST,
// which may not be retried, goes through.
func poolIdleClose(e *Env) error {
	closed := make(chan struct{}, 1)
	s, p, err := e.ScriptedProxy(func(c *ScriptConn) {
		c.Serve(func(r *ScriptRequest) string {
			if !strings.HasPrefix(r.Target, "/then-close") {
				return ScriptAnswer(r)
			}
			c.Send(ScriptAnswer(r))
			if strings.Contains(r.Target, "later") {
				time.Sleep(300 * time.Millisecond)
			}
			c.Close()
			closed <- struct{}{}
			return ""
		})
	})
	if err != nil {
		return err
	}
	type input struct{ name, first, method, body string }
	inputs := []input{
		{"closed at once, then a GET", "/then-close-1", "GET", ""},
		{"closed 300 ms later, then a GET", "/then-close-later-2", "GET", ""},
		{"closed at once, then a POST with a body", "/then-close-3", "POST", "posted"},
		{"closed 300 ms later, then a HEAD", "/then-close-later-4", "HEAD", ""},
	}
	for i, in := range inputs {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		r, err := scriptGet(c, in.first)
		if err != nil {
			return fmt.Errorf("%s: GET %s: %w", in.name, in.first, err)
		}
		if err := scriptWantOwn("GET "+in.first, r, "GET", in.first); err != nil {
			return err
		}
		select {
		case <-closed:
		case <-time.After(scriptWait):
			return fmt.Errorf("%s: the upstream never got to close its connection", in.name)
		}
		time.Sleep(poolSettle)
		for k, conn := range []*Conn{c, nil} {
			if conn == nil {
				if conn, err = e.ConnectTo(p.Addr()); err != nil {
					return err
				}
			}
			target := fmt.Sprintf("/after-close-%d-%d", i, k)
			what := fmt.Sprintf("upstream connection %s: %s %s", in.name, in.method, target)
			if err := poolRequestOwn(conn, in.method, target, in.body); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	if n := s.Count("/after-close-2-0"); n != 1 {
		return fmt.Errorf("the POST after an idle close reached the upstream %d times, want once", n)
	}
	return nil
}

// poolRequestOwn sends method target (with body, if any) and wants the
// scripted upstream's own answer.
func poolRequestOwn(c *Conn, method, target, body string) error {
	raw := method + " " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n"
	if body != "" {
		raw += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	if err := c.Send(raw + "\r\n" + body); err != nil {
		return err
	}
	r, err := scriptRead(c, method)
	if err != nil {
		return err
	}
	if method == "HEAD" {
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("answered %s, want 200", r.Status)
		}
		return nil
	}
	return scriptWantOwn("answer", r, method, target)
}

// poolDropScript answers every request, except that a target containing
// "drop" is read whole and then the connection is closed without an
// answer, the first time only: a retried request is answered as usual, so
// that a proxy that retries when it must not shows as a 200.
func poolDropScript(c *ScriptConn) {
	c.Serve(func(r *ScriptRequest) string {
		if strings.Contains(r.Target, "drop") && c.s.Count(r.Target) == 1 {
			return ""
		}
		return ScriptAnswer(r)
	})
}

// poolStaleGetRetried: a GET without a body on a reused connection that
// the upstream closes before answering is retried once on a new
// connection (contract-v2 section 3) and so succeeds.
func poolStaleGetRetried(e *Env) error {
	s, p, err := e.ScriptedProxy(poolDropScript)
	if err != nil {
		return err
	}
	for i, method := range []string{"GET", "HEAD", "DELETE", "OPTIONS"} {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		warm := fmt.Sprintf("/warm-%d", i)
		if err := poolRequestOwn(c, "GET", warm, ""); err != nil {
			return fmt.Errorf("GET %s: %w", warm, err)
		}
		target := fmt.Sprintf("/drop-%d", i)
		what := fmt.Sprintf("%s %s on a reused upstream connection that the upstream closes without answering", method, target)
		if err := poolRequestOwn(c, method, target, ""); err != nil {
			return fmt.Errorf("%s: %w; want it retried once on a new connection", what, err)
		}
		if n := s.Count(target); n != 2 {
			return fmt.Errorf("%s: it reached the upstream %d times, want twice (the failed try and one retry)", what, n)
		}
	}
	return nil
}

// poolNoRetryUnsafe: a request that is not idempotent or has a body is
// never sent twice; its failure is a 502.
func poolNoRetryUnsafe(e *Env) error {
	s, p, err := e.ScriptedProxy(poolDropScript)
	if err != nil {
		return err
	}
	type input struct{ method, fields, body string }
	inputs := []input{
		{"POST", "Content-Length: 6\r\n", "posted"},
		{"POST", "Content-Length: 0\r\n", ""},
		{"PATCH", "Content-Length: 7\r\n", "patched"},
		{"PUT", "Content-Length: 3\r\n", "put"},
		{"PUT", "Transfer-Encoding: chunked\r\n", "3\r\nput\r\n0\r\n\r\n"},
		{"GET", "Content-Length: 4\r\n", "body"},
		{"LOCK", "", ""},
	}
	for i, in := range inputs {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		warm := fmt.Sprintf("/warm-%d", i)
		if err := poolRequestOwn(c, "GET", warm, ""); err != nil {
			return fmt.Errorf("GET %s: %w", warm, err)
		}
		target := fmt.Sprintf("/drop-%d", i)
		what := fmt.Sprintf("%s %s with %q on a reused upstream connection that the upstream closes without answering", in.method, target, in.fields)
		if err := poolWant502Once(c, s, in.method, target, in.fields, in.body); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	// On a connection of its own, the first one a new proxy opens, not
	// even a GET is retried.
	p2, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = s.Addr() })
	if err != nil {
		return err
	}
	c, err := e.ConnectTo(p2.Addr())
	if err != nil {
		return err
	}
	if err := poolWant502Once(c, s, "GET", "/drop-fresh", "", ""); err != nil {
		return fmt.Errorf("GET /drop-fresh, the first request of a new proxy, which the upstream drops: %w", err)
	}
	return nil
}

func poolWant502Once(c *Conn, s *Scripted, method, target, fields, body string) error {
	if err := c.Send(method + " " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n" + fields + "\r\n" + body); err != nil {
		return err
	}
	r, err := scriptRead(c, method)
	if err != nil {
		return err
	}
	if n := s.Count(target); n != 1 {
		return fmt.Errorf("answered %s and the request reached the upstream %d times, want exactly once", r.Status, n)
	}
	if r.StatusCode != http.StatusBadGateway {
		return fmt.Errorf("answered %s %q, want 502", r.Status, clip(r.Body))
	}
	return errsShortText(r)
}

// poolNoRetryAfterBytes: once any byte of the response arrived, the
// request is not retried, whatever its method: the client gets a 502 or a
// response cut short, and the upstream sees the request once.
func poolNoRetryAfterBytes(e *Env) error {
	type input struct {
		name  string
		bytes string
		reset bool
	}
	inputs := []input{
		{"part of the status line, then a close", "HTTP/1.1 2", false},
		{"part of the head, then a close", "HTTP/1.1 200 OK\r\nContent-Le", false},
		{"the head and part of the body, then a close", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", false},
		{"part of the head, then a reset", "HTTP/1.1 200 OK\r\nX-Partial: 1", true},
		{"the head and part of the body, then a reset", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", true},
	}
	s, p, err := e.ScriptedProxy(func(c *ScriptConn) {
		c.Serve(func(r *ScriptRequest) string {
			var i int
			if _, err := fmt.Sscanf(r.Target, "/cut-%d", &i); err != nil || c.s.Count(r.Target) > 1 {
				return ScriptAnswer(r)
			}
			c.Send(inputs[i].bytes)
			// Long enough for any proxy to have read what was sent
			// before the connection ends.
			time.Sleep(200 * time.Millisecond)
			if inputs[i].reset {
				c.Reset()
			}
			return ""
		})
	})
	if err != nil {
		return err
	}
	for i, in := range inputs {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		warm := fmt.Sprintf("/warm-%d", i)
		if err := poolRequestOwn(c, "GET", warm, ""); err != nil {
			return fmt.Errorf("GET %s: %w", warm, err)
		}
		target := fmt.Sprintf("/cut-%d", i)
		what := fmt.Sprintf("GET %s on a reused upstream connection, the upstream sends %s", target, in.name)
		if err := poolCutShort(c, s, target); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// poolCutShort wants a 502 or a response that visibly broke off, and the
// request seen once upstream.
func poolCutShort(c *Conn, s *Scripted, target string) error {
	if err := c.Send("GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return err
	}
	r, err := scriptRead(c, "GET")
	if n := s.Count(target); n != 1 {
		return fmt.Errorf("the request reached the upstream %d times, want exactly once (no retry after a response byte arrived)", n)
	}
	switch {
	case err != nil && errsIsTimeout(err):
		return fmt.Errorf("no answer and the connection left open: %w", err)
	case err != nil:
		return nil // cut short
	case r.StatusCode == http.StatusBadGateway:
		return errsShortText(r)
	}
	return fmt.Errorf("answered %s with a complete body %q, want 502 or the connection cut short", r.Status, clip(r.Body))
}
