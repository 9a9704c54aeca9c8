package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

var lifecycleCases = []Case{
	{Group: "lifecycle", Name: "start-up-line", Run: startUpLine},
	{Group: "lifecycle", Name: "sigterm-in-flight", Run: sigtermInFlight},
}

// workersField is how a start-up line may state the worker count:
// "workers=2", "workers: 2", "2 workers".
var workersField = regexp.MustCompile(`(?i)\bworkers?\b\W{0,3}\d+|\d+\W{0,3}\bworkers?\b`)

// startUpLine checks the one line a proxy may write: after start-up and a
// few requests (good, refused and failed ones), its output is exactly one
// non-empty line naming the listen and upstream addresses and the workers.
func startUpLine(e *Env) error {
	p, err := e.StartProxy(nil)
	if err != nil {
		return err
	}
	// Requests of every outcome, so that per-request or per-error logging
	// shows up as extra lines.
	for _, raw := range []string{
		"GET /?size=10 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /?status=503 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /?garbage=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Field: x\r\n\r\n",
	} {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Do("GET", raw); err != nil {
			return fmt.Errorf("%q: %w", strings.SplitN(raw, "\r\n", 2)[0], err)
		}
		c.Close()
	}
	// Output is collected as the process writes it; give a buffered or
	// asynchronous writer a moment to catch up.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(p.Output(), "\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	out := p.Output()
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	switch {
	case len(lines) == 0:
		return errors.New("the proxy wrote no start-up line")
	case len(lines) > 1:
		return fmt.Errorf("after start-up and four requests the proxy wrote %d lines, want the start-up line only:\n%s", len(lines), clip([]byte(out)))
	}
	line := lines[0]
	var missing []string
	if !strings.Contains(line, p.Addr()) {
		missing = append(missing, "the listen address "+p.Addr())
	}
	if !strings.Contains(line, e.Upstream()) {
		missing = append(missing, "the upstream address "+e.Upstream())
	}
	if !workersField.MatchString(line) {
		missing = append(missing, "the worker count")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the start-up line %q does not name %s", line, strings.Join(missing, ", "))
	}
	return nil
}

const (
	sigtermRequests = 3
	sigtermDelay    = 1500 * time.Millisecond
	sigtermSize     = 100_000
	// sigtermExit bounds the exit after SIGTERM: the contract's 5 s of
	// grace plus a margin for a loaded machine.
	sigtermExit = 10 * time.Second
)

// sigtermInFlight sends SIGTERM while slow requests are in flight: they
// must complete, new connections must no longer be served, and the process
// must exit with status 0.
func sigtermInFlight(e *Env) error {
	// A private upstream, so its request count tells when all the
	// requests are in flight.
	up, err := e.StartUpstream()
	if err != nil {
		return err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = up })
	if err != nil {
		return err
	}
	before, err := e.Stats(up)
	if err != nil {
		return err
	}
	conns := make([]*Conn, sigtermRequests)
	for i := range conns {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		req := fmt.Sprintf("GET /?delay_ms=%d&size=%d&n=%d HTTP/1.1\r\nHost: x\r\n\r\n", sigtermDelay.Milliseconds(), sigtermSize, i)
		if err := c.Send(req); err != nil {
			return err
		}
		conns[i] = c
	}
	for deadline := time.Now().Add(sigtermDelay); ; {
		s, err := e.Stats(up)
		if err != nil {
			return err
		}
		if s.Requests-before.Requests >= sigtermRequests {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d requests reached the upstream within %s", s.Requests-before.Requests, sigtermRequests, sigtermDelay)
		}
		time.Sleep(20 * time.Millisecond)
	}

	errs := make([]error, sigtermRequests)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(sigtermExit))
			r, err := c.Read("GET")
			switch {
			case err != nil:
				errs[i] = err
			case r.StatusCode != 200 || !bytes.Equal(r.Body, Pattern(sigtermSize)):
				errs[i] = fmt.Errorf("%s with %d bytes, want 200 with the %d-byte pattern", r.Status, len(r.Body), sigtermSize)
			}
		})
	}
	answered := make(chan struct{})
	go func() {
		wg.Wait()
		close(answered)
	}()

	if err := p.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	signalled := time.Now()
	probes, served := sigtermProbe(e.Ctx, p.Addr(), answered)
	<-answered
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("request %d of %d in flight at SIGTERM: %v; output:\n%s", i+1, sigtermRequests, err, p.Output())
		}
	}
	// A proxy may still serve a connection that arrived before it had
	// handled the signal, so only a proxy that served every probe while
	// the slow requests ran is still accepting.
	if probes > 0 && served == probes {
		return fmt.Errorf("after SIGTERM, all %d new connections made while requests were in flight were served; want them refused or closed", probes)
	}
	ctx, cancel := context.WithTimeout(e.Ctx, sigtermExit-time.Since(signalled))
	defer cancel()
	code, err := p.Wait(ctx)
	if err != nil {
		return fmt.Errorf("the proxy had not exited %s after SIGTERM: %v", sigtermExit, err)
	}
	if code != 0 {
		return fmt.Errorf("the proxy exited with status %d after SIGTERM, want 0; output:\n%s", code, p.Output())
	}
	return nil
}

// sigtermProbe makes new connections to addr until stop closes, and counts
// them and those that were served a response.
func sigtermProbe(ctx context.Context, addr string, stop <-chan struct{}) (probes, served int) {
	for {
		select {
		case <-stop:
			return probes, served
		case <-ctx.Done():
			return probes, served
		default:
		}
		probes++
		if sigtermServed(ctx, addr) {
			served++
		}
		select {
		case <-stop:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sigtermServed reports whether a new connection to addr got a successful
// answer. A refused dial, a closed connection, an error status or no answer
// within a short wait all count as not served.
func sigtermServed(ctx context.Context, addr string) bool {
	nc, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(300 * time.Millisecond))
	c := &Conn{Conn: nc, R: bufio.NewReader(nc)}
	r, err := c.Do("GET", "GET /?size=10 HTTP/1.1\r\nHost: probe\r\n\r\n")
	return err == nil && r.StatusCode/100 == 2
}
