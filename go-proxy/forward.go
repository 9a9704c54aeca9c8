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
// fasthttp.HostClient. It writes the upstream request and reads the
// response head itself instead of calling HostClient.Do, which would
// rebuild the request target from the parsed URI, reorder fields, retry
// on its own terms and buffer whole bodies; only the pool, its buffers and
// its dialer are used.
type proxy struct {
	upstream     *fasthttp.HostClient
	pool         connPool
	timeout      time.Duration
	upstreamHost string
	maxBody      int64
	// skipResplit is the measurement-only switch: see config.
	skipResplit bool
}

const (
	// maxUpstreamConns is high enough that the pool never limits a
	// benchmark; idle connections are still reused before new ones open.
	maxUpstreamConns = 4096

	// upstreamBufferSize is the upstream read and write buffer; the read
	// buffer is also the response head limit.
	upstreamBufferSize = upstreamHeadLimit

	// headFields covers the usual request head without growing the field
	// list; a list grown past maxPooledFields is not kept for reuse.
	headFields      = 32
	maxPooledFields = 256
)

var http1Prefix = []byte("HTTP/1.")

// headPool recycles field lists: escape analysis cannot keep them on the
// stack, because the field bytes they point at reach the upstream writer.
var headPool = sync.Pool{New: func() any {
	return &requestHead{fields: make([]field, 0, headFields)}
}}

func newProxy(cfg config) *proxy {
	ap, _ := netip.ParseAddrPort(cfg.upstreamAddr)
	hc := &fasthttp.HostClient{
		Addr:               cfg.upstreamAddr,
		MaxConns:           maxUpstreamConns,
		MaxConnWaitTimeout: cfg.upstreamTimeout,
		ConnPoolStrategy:   fasthttp.LIFO,
		ReadBufferSize:     upstreamBufferSize,
		WriteBufferSize:    upstreamBufferSize,
		DialDualStack:      ap.Addr().Is6(),
		DialTimeout:        dialUpstream,
	}
	return &proxy{
		upstream:     hc,
		pool:         newConnPool(hc.AcquireConn, hc.ReleaseConn, hc.CloseConn, cfg.upstreamTimeout),
		timeout:      cfg.upstreamTimeout,
		upstreamHost: cfg.upstreamAddr,
		maxBody:      int64(cfg.maxBodyBytes),
		skipResplit:  cfg.measureSkipResplit,
	}
}

func (p *proxy) handle(ctx *fasthttp.RequestCtx) {
	// fasthttp takes any HTTP/x.y; only HTTP/1 can be read as HTTP/1.
	if !ctx.Request.Header.IsHTTP11() && !bytes.HasPrefix(ctx.Request.Header.Protocol(), http1Prefix) {
		refuse(ctx, "HTTP version not supported\n", fasthttp.StatusHTTPVersionNotSupported)
		return
	}
	// The proxy does not tunnel, whatever the target.
	if ctx.IsConnect() {
		refuse(ctx, "CONNECT not supported\n", fasthttp.StatusNotImplemented)
		return
	}
	head := headPool.Get().(*requestHead)
	defer releaseHead(head)
	var err error
	if p.skipResplit {
		head.target = target{uri: ctx.Request.Header.RequestURI()}
	} else if err = head.parse(ctx.Request.Header.RawHeaders()); err == nil {
		head.target, err = parseTarget(ctx.Method(), ctx.Request.Header.RequestURI())
	}
	if err != nil {
		refuse(ctx, "bad request: "+err.Error()+"\n", fasthttp.StatusBadRequest)
		return
	}
	if p.skipResplit {
		head.bodyLength = int64(ctx.Request.Header.ContentLength())
	}
	head.method = ctx.Method()
	if head.bodyLength > p.maxBody {
		refuse(ctx, "request body too large\n", fasthttp.StatusRequestEntityTooLarge)
		return
	}
	p.exchange(ctx, head)
}

// refuse answers the client itself and closes: whatever follows on the
// connection cannot be trusted to start where this request ended.
func refuse(ctx *fasthttp.RequestCtx, msg string, status int) {
	ctx.Error(msg, status)
	ctx.SetConnectionClose()
}

func releaseHead(h *requestHead) {
	if cap(h.fields) > maxPooledFields {
		h.fields = make([]field, 0, headFields)
	}
	h.target, h.method = target{}, nil
	headPool.Put(h)
}

// exchange sends the request upstream and sets ctx.Response to relay the
// answer; the response body streams from the upstream connection while
// fasthttp writes it to the client.
func (p *proxy) exchange(ctx *fasthttp.RequestCtx, head *requestHead) {
	pc, err := p.pool.take()
	if err != nil {
		upstreamFailed(ctx, err, false)
		return
	}
	l := p.newLeg(pc)
	interim, err := l.roundTrip(ctx, head)
	if err != nil && l.retryable(head, err) {
		// The upstream closed a pooled connection just as it was reused;
		// the request did nothing there, so it may go once more on a fresh
		// connection (RFC 9112 9.3.1).
		l.finish()
		if pc, err = p.dialFresh(); err != nil {
			upstreamFailed(ctx, err, false)
			return
		}
		l = p.newLeg(pc)
		interim, err = l.roundTrip(ctx, head)
	}
	if err != nil {
		l.finish()
		var ce *clientError
		switch {
		case errors.As(err, &ce):
			refuse(ctx, ce.msg, ce.status)
		case interim:
			closeNow(ctx)
		default:
			upstreamFailed(ctx, err, l.bodyUnread)
		}
		return
	}
	if err := l.relay(ctx); err != nil {
		l.finish()
		upstreamFailed(ctx, err, false)
	}
}

// dialFresh opens a connection outside the pool for a retry, which must
// not land on another connection that has sat idle.
func (p *proxy) dialFresh() (pooledConn, error) {
	c, err := dialUpstream(p.upstreamHost, p.timeout)
	return pooledConn{conn: c}, err
}

// upstreamFailed answers 504 when the exchange ran out of time and 502 for
// any other failure. The client's connection stays usable when its request
// was read completely.
func upstreamFailed(ctx *fasthttp.RequestCtx, err error, bodyUnread bool) {
	if isTimeout(err) {
		ctx.Error("gateway timeout\n", fasthttp.StatusGatewayTimeout)
	} else {
		ctx.Error("bad gateway\n", fasthttp.StatusBadGateway)
	}
	if bodyUnread {
		ctx.SetConnectionClose()
	}
}

// closeNow ends the client connection without a response: part of one has
// already gone out, so any answer would be read as its continuation.
func closeNow(ctx *fasthttp.RequestCtx) {
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(net.Conn) {})
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
