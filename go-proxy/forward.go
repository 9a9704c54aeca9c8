package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
	maxHead      int
	// skipResplit is the measurement-only switch: see config.
	skipResplit bool

	// srv is the server taken connections are handed back to.
	srv *fasthttp.Server
	// stopping is set once shutdown has begun: a taken connection is then
	// closed after its response instead of being handed back.
	stopping atomic.Bool
	// takenCount counts exchanges running on taken connections.
	takenCount atomic.Int32
	// clientReaders hold the raw chunked request bodies of taken
	// connections; see newProxy for their size.
	clientReaders sync.Pool
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
	p := &proxy{
		upstream:     hc,
		pool:         newConnPool(hc.AcquireConn, hc.ReleaseConn, hc.CloseConn, cfg.upstreamTimeout),
		timeout:      cfg.upstreamTimeout,
		upstreamHost: cfg.upstreamAddr,
		maxBody:      int64(cfg.maxBodyBytes),
		maxHead:      cfg.maxHeaderBytes,
		skipResplit:  cfg.measureSkipResplit,
	}
	// A chunk-size line or trailer line must fit whole: its extensions or
	// fields are at most what the head left of MAX_HEADER_BYTES, plus the
	// size digits and the CRLF.
	size := cfg.maxHeaderBytes + chunkLineSlack
	p.clientReaders.New = func() any { return bufio.NewReaderSize(nil, size) }
	return p
}

// chunkLineSlack is what a chunk-size line holds besides its extensions:
// sixteen hex digits and the CRLF, rounded up.
const chunkLineSlack = 32

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
	if !p.forward(ctx, head) {
		releaseHead(head)
	}
}

// forward checks the request and runs the exchange; taken reports that
// the rest of it runs on a taken connection, which then owns head.
func (p *proxy) forward(ctx *fasthttp.RequestCtx, head *requestHead) (taken bool) {
	var err error
	if p.skipResplit {
		head.target = target{uri: ctx.Request.Header.RequestURI()}
	} else if err = head.parse(ctx.Request.Header.RawHeaders()); err == nil {
		head.target, err = parseTarget(ctx.Method(), ctx.Request.Header.RequestURI())
	}
	if err != nil {
		refuse(ctx, "bad request: "+err.Error()+"\n", fasthttp.StatusBadRequest)
		return false
	}
	if p.skipResplit {
		head.bodyLength = int64(ctx.Request.Header.ContentLength())
	}
	head.method = ctx.Method()
	if head.bodyLength > p.maxBody {
		refuse(ctx, "request body too large\n", fasthttp.StatusRequestEntityTooLarge)
		return false
	}
	if head.bodyLength == lengthChunked {
		// fasthttp has read no byte of a chunked body: it is all still in
		// its reader, for the proxy's own decoder on the taken connection.
		p.takeOver(ctx, head, true, func() { p.exchange(ctx, head) })
		return true
	}
	return p.exchange(ctx, head)
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
	h.target, h.method, h.client = target{}, nil, nil
	headPool.Put(h)
}

// exchange sends the request upstream and sets ctx.Response to relay the
// answer; the response body streams from the upstream connection while
// fasthttp writes it to the client. taken reports that an interim response
// made it take the client connection over for the rest (see takenConn).
func (p *proxy) exchange(ctx *fasthttp.RequestCtx, head *requestHead) (taken bool) {
	pc, err := p.pool.take()
	if err != nil {
		upstreamFailed(ctx, err, false)
		return false
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
			return false
		}
		l = p.newLeg(pc)
		interim, err = l.roundTrip(ctx, head)
	}
	if err == errTakeOver {
		p.takeOver(ctx, head, false, func() {
			interim, err := l.readHead(ctx, head)
			conclude(ctx, head, l, interim, err)
		})
		return true
	}
	conclude(ctx, head, l, interim, err)
	return false
}

// conclude relays the final response once its head is read, or answers the
// failure; interim reports that an interim response went to the client.
func conclude(ctx *fasthttp.RequestCtx, head *requestHead, l *leg, interim bool, err error) {
	if err != nil {
		l.finish()
		var ce *clientError
		switch {
		case errors.As(err, &ce):
			refuse(ctx, ce.msg, ce.status)
		case interim:
			closeNow(ctx, head.client)
		default:
			upstreamFailed(ctx, err, l.bodyUnread)
		}
		return
	}
	l.client = head.client
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
func closeNow(ctx *fasthttp.RequestCtx, t *takenConn) {
	takeAfter(ctx, t, func(net.Conn) {})
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
