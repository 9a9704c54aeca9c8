package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// shutdownGrace is how long in-flight requests may run after SIGTERM.
const shutdownGrace = 5 * time.Second

const (
	// headTimeout bounds reading a request head, from its first byte (from
	// accept for a connection's first request). fasthttp waits for
	// CRLFCRLF to end a head, so a head whose lines end in bare LF would
	// otherwise hold its connection forever; after this it is answered
	// 408, as any stalled head is. The body has a progress deadline of its
	// own instead (bodyProgressTimeout), set before each read of it.
	headTimeout = 5 * time.Second
	// idleTimeout is how long a keep-alive connection may wait for its next
	// request; long, so that the pauses of a benchmark never close one.
	idleTimeout = 2 * time.Minute
)

// quietLogger drops fasthttp's own log lines: the contract allows no
// per-request logging, and fasthttp logs per failed connection.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func newServer(cfg config, p *proxy) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:        p.handle,
		HeaderReceived: limitBody(cfg.maxBodyBytes),
		ErrorHandler:   parseFailed,
		Logger:         quietLogger{},
		// The read buffer must hold the whole request head, so its size is
		// the head limit: a longer head fails with ErrSmallBuffer.
		ReadBufferSize:     cfg.maxHeaderBytes,
		MaxRequestBodySize: cfg.maxBodyBytes,
		// Bodies stream through the handler instead of being read whole
		// first; the handler refuses one announced over the limit.
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		// The proxy hands connections it took over (takenConn) back to the
		// server; fasthttp must not close them when it is done with them.
		// Its other take-overs close theirs themselves.
		KeepHijackedConns: true,
		ReadTimeout:       headTimeout,
		IdleTimeout:       idleTimeout,
	}
}

// limitBody keeps fasthttp from reading body bytes under the head's
// deadline. With a streamed body it reads up to 8 KiB of it before calling
// the handler; a request limit of one byte makes that one byte (the rest
// streams, and the handler enforces the real limit), read under a fresh
// body progress deadline. A length over the real limit is zeroed so that
// fasthttp waits for none of it: the length read from the raw head still
// tells the handler to answer 413. Bodyless requests, the usual ones, get
// no deadline change, and neither do chunked ones: fasthttp reads no byte of
// a chunked body before the handler, which leaves it to the proxy's own
// decoder (see takenConn).
func limitBody(maxBody int) func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		n := h.ContentLength()
		switch {
		case n > maxBody:
			h.SetContentLength(0)
		case n > 0:
			return fasthttp.RequestConfig{MaxRequestBodySize: 1, ReadTimeout: bodyProgressTimeout}
		}
		return fasthttp.RequestConfig{}
	}
}

// parseFailed answers requests fasthttp could not read. fasthttp closes the
// connection after the answer.
func parseFailed(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		ctx.Error("request header too large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("request body too large\n", fasthttp.StatusRequestEntityTooLarge)
	case isTimeout(err):
		ctx.Error("request timeout\n", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("bad request\n", fasthttp.StatusBadRequest)
	}
}

// serve proxies connections from ln until ctx is cancelled, then stops
// accepting and lets in-flight requests finish for up to shutdownGrace.
func serve(ctx context.Context, ln net.Listener, cfg config) error {
	p := newProxy(cfg)
	srv := newServer(cfg, p)
	p.srv = srv

	// Every write to a client, fasthttp's and the proxy's own on taken
	// connections, runs under the write progress deadline of the wrapper
	// each accepted connection gets (see progressConn).
	pln := progressListener{Listener: ln, limit: cfg.clientWriteProgress}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	p.stopping.Store(true)
	// Past the grace period the remaining requests are abandoned; that is
	// still a clean stop as far as the caller is concerned.
	_ = srv.ShutdownWithContext(sctx)
	p.waitTaken(sctx)
	// Closing the listener as well covers a cancellation that came before
	// Serve had registered it, which Shutdown would not see.
	_ = ln.Close()
	<-served
	p.upstream.CloseIdleConnections()
	return nil
}
