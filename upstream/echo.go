package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// echoReply is what /echo answers: the request as the server received it.
// Headers are name/value pairs in wire order with the names' original case,
// so a test can see exactly what a proxy forwarded.
type echoReply struct {
	Method     string      `json:"method"`
	Target     string      `json:"target"`
	Headers    [][2]string `json:"headers"`
	BodyBytes  int         `json:"body_bytes"`
	BodySHA256 string      `json:"body_sha256"`
}

func echo(ctx *fasthttp.RequestCtx) {
	body := ctx.Request.Body()
	sum := sha256.Sum256(body)
	reply := echoReply{
		Method:     string(ctx.Method()),
		Target:     string(ctx.Request.Header.RequestURI()),
		Headers:    [][2]string{},
		BodyBytes:  len(body),
		BodySHA256: hex.EncodeToString(sum[:]),
	}
	for name, value := range ctx.Request.Header.AllInOrder() {
		reply.Headers = append(reply.Headers, [2]string{string(name), string(value)})
	}
	b, err := json.Marshal(reply)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}
