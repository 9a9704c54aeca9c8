package main

import (
	"context"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	// shutdownGrace is how long in-flight requests may run after SIGTERM.
	shutdownGrace = 5 * time.Second

	// readBufferSize also caps the request head fasthttp accepts. Proxies
	// may be configured to pass heads of 16 KiB and more, plus what they add,
	// so the origin must not be the one to refuse them.
	readBufferSize = 32 << 10

	// maxRequestBody lets the origin take any body a proxy under test is
	// configured to pass.
	maxRequestBody = 256 << 20
)

// quietLogger drops fasthttp's own log lines: an origin under benchmark must
// not spend time writing a line per failed connection.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func newServer(h *handler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       h.serve,
		Logger:                        quietLogger{},
		ReadBufferSize:                readBufferSize,
		MaxRequestBodySize:            maxRequestBody,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		CloseOnShutdown:               true,
	}
}

// serve answers on ln until ctx is cancelled, then lets in-flight requests
// finish for up to shutdownGrace.
func serve(ctx context.Context, ln net.Listener, cfg config) error {
	cl := &countingListener{Listener: ln}
	srv := newServer(&handler{responseBytes: cfg.responseBytes, accepted: &cl.accepted})

	served := make(chan error, 1)
	go func() { served <- srv.Serve(cl) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Past the grace period the remaining requests are abandoned; that is
	// still a clean stop as far as the caller is concerned.
	_ = srv.ShutdownWithContext(sctx)
	// Closing the listener as well covers a cancellation that came before
	// Serve had registered it, which Shutdown would not see.
	_ = cl.Close()
	<-served
	return nil
}
