package loadgen

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Generator sends load to one target over one connection pool, so that
// connections opened by Warmup are the ones the following Attacks use.
//
// vegeta's Attacker is single use (its Attack ends by closing the attacker's
// stop channel for good), so every step gets a fresh Attacker that shares the
// Generator's http.Client and with it the pool.
//
// A Generator runs one step at a time; Close it when done.
type Generator struct {
	target vegeta.Target
	config Config
	client *http.Client
	conns  *connSet

	busy   atomic.Bool
	closed atomic.Bool
}

// New validates the target and configuration and prepares the connection pool.
// It sends nothing.
func New(t Target, c Config) (*Generator, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	conns := newConnSet()
	transport := &http.Transport{
		// The same limits vegeta.Connections and vegeta.MaxConnections set;
		// configured here because the pool outlives any one Attacker.
		MaxIdleConnsPerHost: c.Connections,
		MaxConnsPerHost:     c.Connections,
		DisableKeepAlives:   !c.KeepAlive,
		DialContext:         conns.dial,
		// Without this the client would add Accept-Encoding and inflate
		// bodies, and the proxies would see a request the scenario never named.
		DisableCompression: true,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   c.timeout(),
		// A redirect is the proxy's answer; following it would measure a
		// second request under the first one's latency.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Generator{
		target: vegeta.Target{
			Method: t.method(),
			URL:    t.URL,
			Body:   bytes.Clone(t.Body),
			Header: t.Header.Clone(),
		},
		config: c,
		client: client,
		conns:  conns,
	}, nil
}

// Close drops every connection of the pool. Call it after the last step returns.
func (g *Generator) Close() error {
	g.closed.Store(true)
	g.conns.abort()
	g.client.CloseIdleConnections()
	return nil
}

func (g *Generator) acquire() error {
	if g.closed.Load() {
		return errors.New("loadgen: generator is closed")
	}
	if !g.busy.CompareAndSwap(false, true) {
		return errors.New("loadgen: a step is already running on this generator")
	}
	return nil
}

func (g *Generator) release() { g.busy.Store(false) }

// Attack runs one step on a connection pool of its own. Use a Generator to
// carry warm connections from Warmup into the steps.
func Attack(ctx context.Context, t Target, c Config, s Step, progress func(Progress)) (*StepResult, error) {
	g, err := New(t, c)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return g.Attack(ctx, s, progress)
}

// Warmup sends load and discards the measurements. On its own pool it only
// warms the target, not the client; use a Generator to warm both.
func Warmup(ctx context.Context, t Target, c Config, s Step) error {
	g, err := New(t, c)
	if err != nil {
		return err
	}
	defer g.Close()
	return g.Warmup(ctx, s)
}
