package main

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

type handler struct {
	responseBytes int
	accepted      *atomic.Uint64
	// requests counts every request but those to /stats, so a test can
	// prove that a request the proxy refused never reached the origin.
	requests atomic.Uint64
}

type route uint8

const (
	payloadRoute route = iota
	echoRoute
	statsRoute
	closeRoute
)

// routeOf picks the endpoint from the raw request target, not from the
// normalised path, so that any target under /echo/ (say /echo/a//b/../c)
// still reaches /echo, which then reports it untouched.
func routeOf(target []byte) route {
	path := target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case string(path) == "/echo" || bytes.HasPrefix(path, []byte("/echo/")):
		return echoRoute
	case string(path) == "/stats":
		return statsRoute
	case string(path) == "/close":
		return closeRoute
	}
	return payloadRoute
}

func (h *handler) serve(ctx *fasthttp.RequestCtx) {
	r := routeOf(ctx.Request.Header.RequestURI())
	switch r {
	case echoRoute:
		h.requests.Add(1)
		echo(ctx)
		return
	case statsRoute:
		h.stats(ctx)
		return
	}
	h.requests.Add(1)
	o, err := parseOverrides(ctx.QueryArgs(), h.responseBytes)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	if o.delay > 0 {
		time.Sleep(o.delay)
	}
	if o.garbage || o.abortAfter >= 0 {
		breakResponse(ctx, o)
		return
	}
	if r == closeRoute {
		ctx.SetConnectionClose()
	}
	ctx.SetStatusCode(o.status)
	if o.status == fasthttp.StatusNoContent || o.status == fasthttp.StatusNotModified {
		return
	}
	ctx.SetContentType("application/octet-stream")
	setPayload(&ctx.Response, o.size, o.chunked)
}

func (h *handler) stats(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	var buf [64]byte
	b := append(buf[:0], `{"connections_accepted":`...)
	b = strconv.AppendUint(b, h.accepted.Load(), 10)
	b = append(b, `,"requests":`...)
	b = strconv.AppendUint(b, h.requests.Load(), 10)
	ctx.SetBody(append(b, "}\n"...))
}

// breakResponse takes the raw connection over to answer what no well-
// behaved server would: a truncated body or bytes that are not HTTP.
func breakResponse(ctx *fasthttp.RequestCtx, o overrides) {
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		if o.garbage {
			c.Write([]byte("this is not an HTTP response\r\n\r\n"))
			return
		}
		head := "HTTP/1.1 " + strconv.Itoa(o.status) + " OK\r\nContent-Length: " + strconv.Itoa(o.size) + "\r\n\r\n"
		c.Write([]byte(head))
		io.Copy(c, &patternReader{n: min(o.abortAfter, o.size)})
	})
}
