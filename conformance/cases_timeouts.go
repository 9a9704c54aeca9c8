package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The timeouts cases pin contract-v2 section 6. Each runs its long waits
// side by side, so a case takes about one timeout, not one per input. The
// bounds are generous: they tell a timeout that fires from one that does
// not, not how precisely it fires.
var timeoutCases = []Case{
	{Group: "timeouts", Name: "body-progress", Run: timeoutsBodyProgress},
	{Group: "timeouts", Name: "head", Run: timeoutsHead},
	{Group: "timeouts", Name: "upstream-progress", Run: timeoutsUpstreamProgress},
	{Group: "timeouts", Name: "error-answers-close", Run: timeoutsErrorsClose},
}

const (
	// timeoutsFixed is the contract's head and body progress timeout.
	timeoutsFixed = 5 * time.Second
	// timeoutsBound is when an answer a timeout causes must have come,
	// counted from the moment the client stopped sending.
	timeoutsBound = timeoutsFixed + 10*time.Second
)

func deadlineIn(d time.Duration) time.Time { return time.Now().Add(d) }

// timeoutsParallel runs every check at once and reports the first
// failure in input order.
func timeoutsParallel(checks map[string]func() error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]error{}
	for name, f := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				errs[name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var msgs []string
	for name, err := range errs {
		msgs = append(msgs, name+": "+err.Error())
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// timeoutsWant408 reads the answer to a stalled request: 408 with
// Connection: close, within timeoutsBound.
func timeoutsWant408(c *Conn, method string) error {
	c.SetReadDeadline(deadlineIn(timeoutsBound))
	r, err := c.Read(method)
	if err != nil {
		return fmt.Errorf("no 408 within %s: %w", timeoutsBound, err)
	}
	if r.StatusCode != http.StatusRequestTimeout {
		return fmt.Errorf("answered %s %q, want 408", r.Status, clip(r.Body))
	}
	if !r.Close {
		return errors.New("the 408 has no Connection: close")
	}
	return errsShortText(r)
}

// timeoutsPrivate is a private upstream and proxy, so that the upstream's
// request count belongs to the case.
func timeoutsPrivate(e *Env) (proxy, upstream string, err error) {
	up, err := e.StartUpstream()
	if err != nil {
		return "", "", err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = up })
	if err != nil {
		return "", "", err
	}
	return p.Addr(), up, nil
}

// timeoutsBodyProgress: the body timeout bounds the gap between two body
// reads, not the whole upload (contract-v2 section 6).
func timeoutsBodyProgress(e *Env) error {
	proxy, up, err := timeoutsPrivate(e)
	if err != nil {
		return err
	}
	before, err := e.Stats(up)
	if err != nil {
		return err
	}
	stall := func(head, sent string) func() error {
		return func() error {
			c, err := e.ConnectTo(proxy)
			if err != nil {
				return err
			}
			if err := c.Send(head + sent); err != nil {
				return err
			}
			return timeoutsWant408(c, "POST")
		}
	}
	err = timeoutsParallel(map[string]func() error{
		"an upload of 8 KiB sent 1 KiB a second":        func() error { return timeoutsSlowUpload(e, proxy) },
		"an upload that stalls after 100 of 1000 bytes": stall(errsPost("Content-Length: 1000\r\n"), strings.Repeat("b", 100)),
		"an upload that stalls right after its head":    stall(errsPost("Content-Length: 1000\r\n"), ""),
		"a chunked upload that stalls after one chunk":  stall(errsPost("Transfer-Encoding: chunked\r\n"), "5\r\nhello\r\n"),
	})
	if err != nil {
		return err
	}
	after, err := e.Stats(up)
	if err != nil {
		return err
	}
	if n := after.Requests - before.Requests; n != 1 {
		return fmt.Errorf("%d requests reached the upstream whole, want 1 (the slow upload; never a stalled one)", n)
	}
	return nil
}

func timeoutsSlowUpload(e *Env, proxy string) error {
	const pieces, size = 8, 1024
	body := Pattern(pieces * size)
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	if err := c.Send(errsPost(fmt.Sprintf("Content-Length: %d\r\n", len(body)))); err != nil {
		return err
	}
	for i := range pieces {
		time.Sleep(time.Second)
		if _, err := c.Write(body[i*size : (i+1)*size]); err != nil {
			return fmt.Errorf("the proxy stopped taking the body after %d s: %w", i+1, err)
		}
	}
	c.SetReadDeadline(deadlineIn(scriptWait))
	r, err := c.Read("POST")
	if err != nil {
		return err
	}
	ec, err := ParseEcho(r)
	if err != nil {
		return err
	}
	if ec.BodyBytes != int64(len(body)) || ec.BodySHA256 != SHA256(body) {
		return fmt.Errorf("the upstream got %d body bytes, want the whole %d", ec.BodyBytes, len(body))
	}
	return nil
}

// timeoutsHead: a head must be complete within 5 s of its first byte (of
// the accept, for a connection's first request); sending slowly does not
// extend it.
func timeoutsHead(e *Env) error {
	proxy, up, err := timeoutsPrivate(e)
	if err != nil {
		return err
	}
	before, err := e.Stats(up)
	if err != nil {
		return err
	}
	partial := func(raw string) func() error {
		return func() error {
			c, err := e.ConnectTo(proxy)
			if err != nil {
				return err
			}
			if err := c.Send(raw); err != nil {
				return err
			}
			return timeoutsWant408(c, "GET")
		}
	}
	err = timeoutsParallel(map[string]func() error{
		"a head that stops before its end": partial("GET /echo/partial HTTP/1.1\r\nHost: proxylab.test\r\n"),
		"a connection that sends nothing":  partial(""),
		"a head sent a byte every 250 ms":  func() error { return timeoutsTrickle(e, proxy) },
	})
	if err != nil {
		return err
	}
	after, err := e.Stats(up)
	if err != nil {
		return err
	}
	if n := after.Requests - before.Requests; n != 0 {
		return fmt.Errorf("%d requests reached the upstream, want none", n)
	}
	return nil
}

// timeoutsTrickle keeps sending a head that never ends, a byte every
// 250 ms, until the proxy answers.
func timeoutsTrickle(e *Env, proxy string) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		head := "GET /echo/trickle HTTP/1.1\r\nHost: proxylab.test\r\nX-Pad: " + strings.Repeat("p", 200)
		for i := 0; i < len(head); i++ {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			if _, err := c.Write([]byte{head[i]}); err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	return timeoutsWant408(c, "GET")
}

// timeoutsUpstreamProgress: UPSTREAM_TIMEOUT_MS bounds each gap in the
// upstream's body, not the whole body.
func timeoutsUpstreamProgress(e *Env) error {
	const timeout = time.Second
	s, err := e.StartScripted(func(c *ScriptConn) {
		r, err := c.ReadRequest()
		if err != nil {
			return
		}
		body := Pattern(20)
		switch r.Target {
		case "/drip":
			c.Send("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
			for i := range body {
				time.Sleep(250 * time.Millisecond)
				if c.Send(string(body[i:i+1])) != nil {
					return
				}
			}
		case "/stall":
			c.Send("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + string(body[:5]))
			select {
			case <-time.After(8 * time.Second):
			case <-c.s.done:
				return
			}
			c.Send(string(body[5:]))
		}
	})
	if err != nil {
		return err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) {
		c.Upstream = s.Addr()
		c.UpstreamTimeout = timeout
	})
	if err != nil {
		return err
	}
	return timeoutsParallel(map[string]func() error{
		"GET /drip (a 20-byte body, a byte every 250 ms, UPSTREAM_TIMEOUT_MS=1000)": func() error {
			c, err := e.ConnectTo(p.Addr())
			if err != nil {
				return err
			}
			r, err := scriptGet(c, "/drip")
			if err != nil {
				return err
			}
			if r.StatusCode != http.StatusOK || !bytes.Equal(r.Body, Pattern(20)) {
				return fmt.Errorf("answered %s %q, want 200 and the whole body", r.Status, clip(r.Body))
			}
			return nil
		},
		"GET /stall (5 body bytes, then 8 s of nothing, UPSTREAM_TIMEOUT_MS=1000)": func() error {
			c, err := e.ConnectTo(p.Addr())
			if err != nil {
				return err
			}
			if err := c.Send("GET /stall HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
				return err
			}
			// The upstream resumes at 8 s; the timeout must have ended
			// the exchange well before.
			c.SetReadDeadline(deadlineIn(6 * time.Second))
			r, err := c.Read("GET")
			switch {
			case err != nil && errsIsTimeout(err):
				return fmt.Errorf("the client connection was neither answered 504 nor closed within 6 s: %w", err)
			case err != nil:
				return nil // cut short once the head went out
			case r.StatusCode == http.StatusGatewayTimeout:
				return errsShortText(r)
			}
			return fmt.Errorf("answered %s %q, want 504 or the connection cut short", r.Status, clip(r.Body))
		},
	})
}

// timeoutsErrorsClose: a 502 or 504 sent before the client's body was read
// to its end must say Connection: close, for the rest of that body is
// still coming and cannot be read as a request.
func timeoutsErrorsClose(e *Env) error {
	refused, err := FreeAddr()
	if err != nil {
		return err
	}
	pRefused, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = refused })
	if err != nil {
		return err
	}
	// Answers garbage as soon as the head is in, without reading the body.
	garbage, err := e.StartScripted(func(c *ScriptConn) {
		if _, err := c.ReadHead(); err == nil {
			c.Send("this is not HTTP\r\n\r\n")
		}
	})
	if err != nil {
		return err
	}
	pGarbage, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = garbage.Addr() })
	if err != nil {
		return err
	}
	// Reads the head, then neither the body nor answers: the proxy's
	// writes stall.
	silent, err := e.StartScripted(func(c *ScriptConn) {
		if _, err := c.ReadHead(); err == nil {
			<-c.s.done
		}
	})
	if err != nil {
		return err
	}
	pSilent, err := e.StartProxy(func(c *ProxyConfig) {
		c.Upstream = silent.Addr()
		c.UpstreamTimeout = 500 * time.Millisecond
	})
	if err != nil {
		return err
	}
	return timeoutsParallel(map[string]func() error{
		"POST with UPSTREAM_ADDR a closed port":                    func() error { return timeoutsUnreadBody(e, pRefused.Addr(), 1<<20, 502) },
		"POST to an upstream that answers garbage at once":         func() error { return timeoutsUnreadBody(e, pGarbage.Addr(), 1<<20, 502) },
		"a 16 MiB POST to an upstream that reads none of it (504)": func() error { return timeoutsUnreadBody(e, pSilent.Addr(), DefaultMaxBodyBytes, 504) },
	})
}

// timeoutsUnreadBody posts n body bytes, holding the last half back until
// the answer arrives (or 3 s pass). An answer that comes while the body is
// still held back, or being written, came before the proxy read the body
// to its end, and must carry Connection: close.
func timeoutsUnreadBody(e *Env, proxy string, n, status int) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	body := Pattern(n)
	if err := c.Send(errsPost(fmt.Sprintf("Content-Length: %d\r\n", n))); err != nil {
		return err
	}
	answered, written := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	whole := false
	go func() {
		defer close(written)
		if _, err := c.Write(body[:n/2]); err != nil {
			return
		}
		select {
		case <-answered:
			return
		case <-time.After(3 * time.Second):
		}
		if _, err := c.Write(body[n/2:]); err == nil {
			mu.Lock()
			whole = true
			mu.Unlock()
		}
	}()
	c.SetReadDeadline(deadlineIn(scriptWait))
	r, err := c.Read("POST")
	close(answered)
	if err != nil {
		return fmt.Errorf("no %d answer: %w", status, err)
	}
	if r.StatusCode != status {
		return fmt.Errorf("answered %s %q, want %d", r.Status, clip(r.Body), status)
	}
	if !r.Close {
		// A body written in full just before the answer may have been
		// read in full: give the writer a moment to say so.
		select {
		case <-written:
		case <-time.After(time.Second):
		}
	}
	mu.Lock()
	sent := whole
	mu.Unlock()
	if !sent && !r.Close {
		return fmt.Errorf("answered %d before the body was read to its end, without Connection: close", status)
	}
	return errsShortText(r)
}
