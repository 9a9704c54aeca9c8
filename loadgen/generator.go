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
// use. Each slot is driven by one worker during a step, a coroutine of one
// event loop per CPU (loop.go): at most one request is in flight per
// connection.
//
// It keeps vegeta's pacing (its ConstantPacer decides when each hit is due),
// attack model (hits numbered in order, each timed from its send to the end
// of its response body, a hit waiting while every connection is busy) and
// result format (see Step.Raw), but sends with a client of its own: one
// request encoded once, plain responses parsed in place and every other one
// by fasthttp into reused buffers, non-blocking sockets of its own read and
// written with raw system calls (socket.go), no allocation per request on
// keep-alive connections.
//
// A Generator runs one step at a time; Close it when done.
type Generator struct {
	req         *request
	config      Config
	dialer      *dialer
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
	d, err := newDialer(net.JoinHostPort(u.Hostname(), port), t.Allow)
	if err != nil {
		return nil, err
	}
	g := &Generator{
		req:    req,
		config: c,
		dialer: d,
		slots:  make([]*conn, c.Connections),
	}
	for i := range g.slots {
		g.slots[i] = newConn(d.raddr)
	}
	g.timeoutText = req.errPrefix + "no complete response within " + c.timeout().String() + " (timeout)"
	return g, nil
}

// Dials is how many connections the generator has opened so far, warm-ups
// included: the difference across a step is what the target should have
// accepted in it.
func (g *Generator) Dials() uint64 { return g.dialer.dialled.Load() }

// Close drops every connection. Call it after the last step returns: a
// step still running keeps its connections until it ends, and the
// generator takes no step after.
func (g *Generator) Close() error {
	g.closed.Store(true)
	g.closeIdle()
	return nil
}

// closeIdle closes the connections once closed and no step runs: the
// slots are the loops' while one does.
func (g *Generator) closeIdle() {
	if g.closed.Load() && g.busy.CompareAndSwap(false, true) {
		for _, c := range g.slots {
			c.close()
		}
	}
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

func (g *Generator) release() {
	g.busy.Store(false)
	g.closeIdle()
}

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
