package loadgen

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync/atomic"
)

// Generator sends load to one target over a fixed set of connection slots,
// so that connections opened by Warmup are the ones the following Attacks
// use. Each slot is driven by one worker goroutine during a step: at most
// one request is in flight per connection.
//
// It keeps vegeta's pacing (its ConstantPacer decides when each hit is due),
// attack model (hits numbered in order, each timed from its send to the end
// of its response body, a hit waiting while every connection is busy) and
// result format (see Step.Raw), but sends with a client of its own: one
// request encoded once, plain responses parsed in place and every other one
// by fasthttp into reused buffers, socket I/O below net.Conn (socket.go), no
// allocation per request on keep-alive connections.
//
// A Generator runs one step at a time; Close it when done.
type Generator struct {
	req         *request
	addr        string // host:port dialled
	config      Config
	conns       *connSet
	slots       []*conn
	timeoutText string

	busy   atomic.Bool
	closed atomic.Bool
}

// New validates the target and configuration and prepares the connection
// slots. It sends nothing.
func New(t Target, c Config) (*Generator, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	req, err := newRequest(t, c.KeepAlive)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(t.URL) // validate parsed it
	port := u.Port()
	if port == "" {
		port = "80"
	}
	g := &Generator{
		req:    req,
		addr:   net.JoinHostPort(u.Hostname(), port),
		config: c,
		conns:  newConnSet(c.timeout(), t.Allow),
		slots:  make([]*conn, c.Connections),
	}
	for i := range g.slots {
		g.slots[i] = newConn()
	}
	g.timeoutText = req.errPrefix + "no complete response within " + c.timeout().String() + " (timeout)"
	return g, nil
}

// Dials is how many connections the generator has opened so far, warm-ups
// included: the difference across a step is what the target should have
// accepted in it.
func (g *Generator) Dials() uint64 { return g.conns.dialled.Load() }

// Close drops every connection. Call it after the last step returns.
func (g *Generator) Close() error {
	g.closed.Store(true)
	g.conns.abort()
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
