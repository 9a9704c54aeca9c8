package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Shared is the upstream and proxy that most cases use, started once per
// suite run.
type Shared struct {
	suite    Suite
	upstream *process
	mu       sync.Mutex
	proxy    Instance
}

// Start starts the shared upstream and proxy of a suite run; Close stops
// them.
func Start(ctx context.Context, s Suite) (*Shared, error) {
	sh := &Shared{suite: s}
	up, err := startUpstream(ctx, s.Upstream)
	if err != nil {
		return nil, err
	}
	sh.upstream = up
	if err := sh.restartProxy(ctx); err != nil {
		up.Stop()
		return nil, err
	}
	return sh, nil
}

func startUpstream(ctx context.Context, binary string) (*process, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	return startProcess(ctx, binary, addr, []string{"LISTEN_ADDR=" + addr})
}

func (sh *Shared) restartProxy(ctx context.Context) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.proxy != nil {
		sh.proxy.Stop()
		sh.proxy = nil
	}
	addr, err := FreeAddr()
	if err != nil {
		return err
	}
	p, err := sh.suite.Proxy.Start(ctx, ProxyConfig{Listen: addr, Upstream: sh.upstream.Addr()})
	if err != nil {
		return fmt.Errorf("start %s proxy: %w", sh.suite.Name, err)
	}
	sh.proxy = p
	return nil
}

func (sh *Shared) proxyInstance() Instance {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.proxy
}

// healthy checks that a plain GET through the shared proxy still works.
func (sh *Shared) healthy(ctx context.Context) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+sh.proxyInstance().Addr()+"/?size=10", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET / answered %s", resp.Status)
	}
	return nil
}

func (sh *Shared) Close() {
	if p := sh.proxyInstance(); p != nil {
		p.Stop()
	}
	sh.upstream.Stop()
}

// Env is what a case works with. Everything a case starts through it is
// stopped when the case ends.
type Env struct {
	Ctx    context.Context
	shared *Shared
	stops  []func()
}

func (e *Env) addStop(f func()) { e.stops = append(e.stops, f) }

func (e *Env) runCleanup() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

// Proxy is the address of the shared proxy, configured with the contract's
// defaults and forwarding to the shared upstream.
func (e *Env) Proxy() string { return e.shared.proxyInstance().Addr() }

// ProxyInstance is the shared proxy itself.
func (e *Env) ProxyInstance() Instance { return e.shared.proxyInstance() }

// Upstream is the address of the shared upstream.
func (e *Env) Upstream() string { return e.shared.upstream.Addr() }

// Lang is the proxy's name, as it appears in Via: 1.1 proxylab-<lang>.
func (e *Env) Lang() string { return e.shared.suite.Name }

// StartProxy starts a private proxy for this case; mod adjusts its
// configuration (which starts as the shared proxy's: a fresh free port and
// the shared upstream).
func (e *Env) StartProxy(mod func(*ProxyConfig)) (Instance, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := ProxyConfig{Listen: addr, Upstream: e.Upstream()}
	if mod != nil {
		mod(&cfg)
	}
	p, err := e.shared.suite.Proxy.Start(e.Ctx, cfg)
	if err != nil {
		return nil, err
	}
	e.addStop(func() { p.Stop() })
	return p, nil
}

// StartUpstream starts a private upstream for this case, so that its
// connection and request counts belong to the case alone.
func (e *Env) StartUpstream() (string, error) {
	up, err := startUpstream(e.Ctx, e.shared.suite.Upstream)
	if err != nil {
		return "", err
	}
	e.addStop(func() { up.Stop() })
	return up.Addr(), nil
}

// UpstreamStats is what an upstream has seen so far.
type UpstreamStats struct {
	ConnectionsAccepted uint64 `json:"connections_accepted"`
	Requests            uint64 `json:"requests"`
}

// Stats asks the upstream at addr for its counters, directly (not through
// the proxy).
func (e *Env) Stats(addr string) (UpstreamStats, error) {
	var s UpstreamStats
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(e.Ctx, "GET", "http://"+addr+"/stats", nil)
	resp, err := c.Do(req)
	if err != nil {
		return s, fmt.Errorf("upstream /stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("upstream /stats: %w", err)
	}
	return s, nil
}

// Dial opens a raw TCP connection to addr, closed when the case ends, with
// a deadline so that a proxy that hangs fails the case instead of blocking.
func (e *Env) Dial(addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(e.Ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := e.Ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	e.addStop(func() { c.Close() })
	return c, nil
}
