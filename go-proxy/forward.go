package main

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// proxy forwards requests to one upstream through the connection pool of a
// fasthttp.HostClient. It writes the upstream request itself instead of
// calling HostClient.Do, which would rebuild the request target from the
// parsed URI, reorder fields and could retry; only the pool, its buffers
// and its dialer are used.
type proxy struct {
	upstream     *fasthttp.HostClient
	timeout      time.Duration
	upstreamHost string
}

const (
	// maxUpstreamConns is high enough that the pool never limits a
	// benchmark; idle connections are still reused before new ones open.
	maxUpstreamConns = 4096

	// upstreamBufferSize also caps the response head the upstream may send.
	upstreamBufferSize = 16 << 10

	// headFields covers the usual request head without growing the field
	// list; a list grown past maxPooledFields is not kept for reuse.
	headFields      = 32
	maxPooledFields = 256
)

var (
	http1Prefix          = []byte("HTTP/1.")
	errSwitchedProtocols = errors.New("upstream switched protocols")
)

// headPool recycles field lists: escape analysis cannot keep them on the
// stack, because the field bytes they point at reach the upstream writer.
var headPool = sync.Pool{New: func() any {
	return &requestHead{fields: make([]field, 0, headFields)}
}}

func newProxy(cfg config) *proxy {
	ap, _ := netip.ParseAddrPort(cfg.upstreamAddr)
	return &proxy{
		upstream: &fasthttp.HostClient{
			Addr:               cfg.upstreamAddr,
			MaxConns:           maxUpstreamConns,
			MaxConnWaitTimeout: cfg.upstreamTimeout,
			ConnPoolStrategy:   fasthttp.LIFO,
			ReadBufferSize:     upstreamBufferSize,
			WriteBufferSize:    upstreamBufferSize,
			DialDualStack:      ap.Addr().Is6(),
		},
		timeout:      cfg.upstreamTimeout,
		upstreamHost: cfg.upstreamAddr,
	}
}

func (p *proxy) handle(ctx *fasthttp.RequestCtx) {
	// fasthttp takes any HTTP/x.y; only HTTP/1 can be read as HTTP/1.
	if !ctx.Request.Header.IsHTTP11() && !bytes.HasPrefix(ctx.Request.Header.Protocol(), http1Prefix) {
		ctx.Error("HTTP version not supported\n", fasthttp.StatusHTTPVersionNotSupported)
		ctx.SetConnectionClose()
		return
	}
	head := headPool.Get().(*requestHead)
	defer releaseHead(head)
	if err := head.parse(ctx.Request.Header.RawHeaders()); err != nil {
		ctx.Error("bad request: "+err.Error()+"\n", fasthttp.StatusBadRequest)
		// Whatever follows on this connection cannot be trusted to start
		// where this request ended.
		ctx.SetConnectionClose()
		return
	}
	p.exchange(ctx, head)
}

func releaseHead(h *requestHead) {
	if cap(h.fields) > maxPooledFields {
		h.fields = make([]field, 0, headFields)
	}
	headPool.Put(h)
}

// exchange sends the request upstream and reads the answer into
// ctx.Response, all within one deadline.
func (p *proxy) exchange(ctx *fasthttp.RequestCtx, head *requestHead) {
	deadline := time.Now().Add(p.timeout)
	cc, err := p.upstream.AcquireConn(p.timeout, false)
	if err != nil {
		upstreamFailed(ctx, err, deadline)
		return
	}
	conn := cc.Conn()
	if err := conn.SetDeadline(deadline); err != nil {
		p.upstream.CloseConn(cc)
		upstreamFailed(ctx, err, deadline)
		return
	}

	bw := p.upstream.AcquireWriter(conn)
	writeRequest(bw, &ctx.Request, head, clientAddr(ctx), p.upstreamHost)
	err = bw.Flush()
	p.upstream.ReleaseWriter(bw)
	if err != nil {
		p.upstream.CloseConn(cc)
		upstreamFailed(ctx, err, deadline)
		return
	}

	// Reading straight into ctx.Response keeps the flags the server set on
	// it, so no Date, Server or Content-Type of the proxy's own is added.
	resp := &ctx.Response
	resp.SkipBody = ctx.IsHead()
	br := p.upstream.AcquireReader(conn)
	err = resp.ReadLimitBody(br, 0)
	// Upgrade is never forwarded, so a switch of protocols comes from a
	// broken upstream, and the connection no longer speaks HTTP.
	if err == nil && resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		err = errSwitchedProtocols
	}
	// Bytes left over after the response mean the upstream and the proxy
	// disagree about framing; such a connection is not reused either.
	reusable := err == nil && !resp.ConnectionClose() && br.Buffered() == 0
	p.upstream.ReleaseReader(br)
	if reusable {
		p.upstream.ReleaseConn(cc)
	} else {
		p.upstream.CloseConn(cc)
	}
	if err != nil {
		upstreamFailed(ctx, err, deadline)
		return
	}
	if err := relayHead(&resp.Header); err != nil {
		ctx.Error("bad gateway\n", fasthttp.StatusBadGateway)
	}
}

// upstreamFailed answers 504 when the exchange ran out of time and 502 for
// any other failure. The client's connection stays usable: its request was
// read completely.
func upstreamFailed(ctx *fasthttp.RequestCtx, err error, deadline time.Time) {
	if isTimeout(err) || !time.Now().Before(deadline) {
		ctx.Error("gateway timeout\n", fasthttp.StatusGatewayTimeout)
		return
	}
	ctx.Error("bad gateway\n", fasthttp.StatusBadGateway)
}

func isTimeout(err error) bool {
	// Running out of pooled connections happens only after waiting the
	// whole timeout for one.
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, fasthttp.ErrNoFreeConns) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
