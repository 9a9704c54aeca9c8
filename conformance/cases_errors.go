package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var errorCases = []Case{
	{Group: "errors", Name: "bad-request-line", Run: errsBadRequestLine},
	{Group: "errors", Name: "bad-header-field", Run: errsBadHeaderField},
	{Group: "errors", Name: "bare-cr-or-nul", Run: errsBareCRorNUL},
	{Group: "errors", Name: "bare-lf-head", Run: errsBareLFHead},
	{Group: "errors", Name: "invalid-content-length", Run: errsInvalidContentLength},
	{Group: "errors", Name: "content-length-and-chunked", Run: errsLengthAndChunked},
	{Group: "errors", Name: "conflicting-content-lengths", Run: errsConflictingLengths},
	{Group: "errors", Name: "obsolete-line-folding", Run: errsObsFold},
	{Group: "errors", Name: "host-required", Run: errsHostRequired},
	{Group: "errors", Name: "bad-chunked-body", Run: errsBadChunkedBody},
	{Group: "errors", Name: "head-too-large", Run: errsHeadTooLarge},
	{Group: "errors", Name: "body-too-large", Run: errsBodyTooLarge},
	{Group: "errors", Name: "chunked-body-too-large", Run: errsChunkedBodyTooLarge},
	{Group: "errors", Name: "upstream-refused", Run: errsUpstreamRefused},
	{Group: "errors", Name: "upstream-timeout", Run: errsUpstreamTimeout},
	{Group: "errors", Name: "no-reuse-after-timeout", Run: errsNoReuseAfterTimeout},
	{Group: "errors", Name: "upstream-aborts-response", Run: errsUpstreamAborts},
	{Group: "errors", Name: "upstream-garbage", Run: errsUpstreamGarbage},
}

const (
	// errsAnswerWait bounds the wait for an answer the proxy can give
	// without the upstream, so a silent proxy fails with a message that
	// says so instead of running into the case deadline.
	errsAnswerWait = 10 * time.Second
	// errsCloseWait is how long a connection may stay open after an answer
	// that did not announce Connection: close but must end the stream.
	errsCloseWait = 3 * time.Second
	// errsMaxText is what "a short text body" may weigh at most.
	errsMaxText = 512
)

// errsInput is one request the proxy must refuse, named for the failure
// message.
type errsInput struct {
	name string
	raw  string
	// more is written after raw from another goroutine, while the answer
	// is being read: a proxy may answer before taking all of it.
	more string
}

// errsPost is a request head with a body announced by the given fields.
func errsPost(fields string) string {
	return "POST /echo HTTP/1.1\r\nHost: proxylab.test\r\n" + fields + "\r\n"
}

func errsGet(fields string) string {
	return "GET /?size=5 HTTP/1.1\r\nHost: proxylab.test\r\n" + fields + "\r\n"
}

func errsBadRequestLine(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "not a request line", raw: "HELLO\r\n\r\n"},
		{name: "no method", raw: "/?size=5 HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"},
		{name: "space inside the target", raw: "GET /a b HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"},
		{name: "word after the version", raw: "GET /?size=5 HTTP/1.1 extra\r\nHost: proxylab.test\r\n\r\n"},
		{name: "not an HTTP version", raw: "GET /?size=5 FOO/1.1\r\nHost: proxylab.test\r\n\r\n"},
		{name: "control byte in the target", raw: "GET /a\x01b HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"},
	})
}

func errsBadHeaderField(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		// RFC 9112 5.1: whitespace before the colon must be rejected, or
		// two hops may disagree about the field's name.
		{name: "space before the colon", raw: errsGet("X-Bad : 1\r\n")},
		{name: "tab before the colon", raw: errsGet("X-Bad\t: 1\r\n")},
		{name: "no colon", raw: errsGet("X-Bad\r\n")},
		{name: "space inside the name", raw: errsGet("X Bad: 1\r\n")},
		{name: "empty name", raw: errsGet(": 1\r\n")},
		{name: "separator in the name", raw: errsGet("X(Bad): 1\r\n")},
		{name: "NUL in the name", raw: errsGet("X-Bad\x00: 1\r\n")},
	})
}

// errsBareCRorNUL sends CR and NUL where no line ending can explain them.
// RFC 9112 2.2 and RFC 9110 5.5 would let a recipient turn them into
// spaces; the contract's "malformed request -> 400" leaves no such choice.
func errsBareCRorNUL(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "bare CR inside the target", raw: "GET /a\rb HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"},
		{name: "bare CR ending the request line", raw: "GET /?size=5 HTTP/1.1\rHost: proxylab.test\r\n\r\n"},
		{name: "NUL inside the target", raw: "GET /a\x00b HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"},
		{name: "bare CR inside a field value", raw: errsGet("X-Bad: a\rb\r\n")},
		{name: "NUL inside a field value", raw: errsGet("X-Bad: a\x00b\r\n")},
	})
}

// errsBareLFHead sends heads whose lines end in LF alone. RFC 9112 2.2 lets
// a recipient take LF as a line ending; one that does not must find the
// message malformed. Either way the client gets an answer: the request
// answered as usual, or a 400.
func errsBareLFHead(e *Env) error {
	inputs := []errsInput{
		{name: "every line ending in LF", raw: "GET /?size=5 HTTP/1.1\nHost: proxylab.test\n\n"},
		{name: "head ending in LF LF", raw: "GET /?size=5 HTTP/1.1\r\nHost: proxylab.test\n\n"},
		{name: "head ending in CRLF LF", raw: "GET /?size=5 HTTP/1.1\r\nHost: proxylab.test\r\n\n"},
	}
	for _, in := range inputs {
		if err := errsBareLFOne(e, in.raw); err != nil {
			return fmt.Errorf("%s: sent %q: %w", in.name, in.raw, err)
		}
	}
	return nil
}

func errsBareLFOne(e *Env, raw string) error {
	before, err := e.Stats(e.Upstream())
	if err != nil {
		return err
	}
	c, err := e.Connect()
	if err != nil {
		return err
	}
	if err := c.Send(raw); err != nil {
		return err
	}
	r, err := errsReadWithin(c, "GET", errsAnswerWait)
	if err != nil {
		return fmt.Errorf("%w; want the request answered as if its lines ended in CRLF, or a 400, or a 408 when a head timeout runs out", err)
	}
	switch r.StatusCode {
	case http.StatusOK:
		if !bytes.Equal(r.Body, Pattern(5)) {
			return fmt.Errorf("answered 200 with body %q, want %q", clip(r.Body), Pattern(5))
		}
		return nil
	// A proxy that does not take bare LF as a line end sees a head that
	// never completes: 408 when its head timeout runs out is the honest
	// answer to that.
	case http.StatusBadRequest, http.StatusRequestTimeout:
		if err := errsCheckRefusal(e, c, r, e.Upstream(), before); err != nil {
			return fmt.Errorf("answered %d, but %w", r.StatusCode, err)
		}
		return nil
	}
	return fmt.Errorf("answered %s %q, want 200 (LF taken as a line ending) or 400", r.Status, clip(r.Body))
}

func errsInvalidContentLength(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "letters", raw: errsPost("Content-Length: abc\r\n") + "abc"},
		{name: "negative", raw: errsPost("Content-Length: -1\r\n") + "abc"},
		{name: "plus sign", raw: errsPost("Content-Length: +3\r\n") + "abc"},
		{name: "hexadecimal", raw: errsPost("Content-Length: 0x3\r\n") + "abc"},
		{name: "digits then letters", raw: errsPost("Content-Length: 3a\r\n") + "abc"},
		{name: "fraction", raw: errsPost("Content-Length: 1.5\r\n") + "abc"},
		{name: "empty", raw: errsPost("Content-Length: \r\n") + "abc"},
		{name: "two numbers", raw: errsPost("Content-Length: 3 4\r\n") + "abcd"},
		{name: "past any integer type", raw: errsPost("Content-Length: 99999999999999999999999\r\n") + "abc"},
	})
}

// errsLengthAndChunked is the classic request smuggling vector: two hops
// that pick different framings see different requests (RFC 9112 6.3).
func errsLengthAndChunked(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "Content-Length first", raw: errsPost("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n"},
		{name: "Transfer-Encoding first", raw: errsPost("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + "0\r\n\r\n"},
		{name: "lower-case names", raw: errsPost("content-length: 5\r\ntransfer-encoding: chunked\r\n") + "0\r\n\r\n"},
		{name: "Content-Length 0", raw: errsPost("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n"},
	})
}

func errsConflictingLengths(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "two fields", raw: errsPost("Content-Length: 3\r\nContent-Length: 4\r\n") + "abcd"},
		{name: "two fields, larger first", raw: errsPost("Content-Length: 4\r\nContent-Length: 3\r\n") + "abcd"},
		{name: "one field listing two values", raw: errsPost("Content-Length: 3, 4\r\n") + "abcd"},
	})
}

func errsObsFold(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "folded with a space", raw: errsGet("X-Folded: a\r\n b\r\n")},
		{name: "folded with a tab", raw: errsGet("X-Folded: a\r\n\tb\r\n")},
	})
}

// errsHostRequired covers RFC 9112 3.2: a server MUST answer 400 to an
// HTTP/1.1 request without Host or with more than one.
func errsHostRequired(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "HTTP/1.1 without Host", raw: "GET /?size=5 HTTP/1.1\r\nX-A: 1\r\n\r\n"},
		{name: "two different Hosts", raw: "GET /?size=5 HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"},
		{name: "the same Host twice", raw: "GET /?size=5 HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n"},
		{name: "space inside Host", raw: "GET /?size=5 HTTP/1.1\r\nHost: a b.test\r\n\r\n"},
	})
}

// errsBadChunkedBody: a proxy that streams bodies may already have sent the
// head upstream when the bad chunk arrives, and may then only be able to
// close; the upstream must still never see a complete request.
func errsBadChunkedBody(e *Env) error {
	chunked := errsPost("Transfer-Encoding: chunked\r\n")
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, true, []errsInput{
		{name: "chunk size not hexadecimal", raw: chunked + "zz\r\nabc\r\n0\r\n\r\n"},
		{name: "chunk longer than its size", raw: chunked + "3\r\nabcX\r\n0\r\n\r\n"},
		{name: "chunk size past any integer type", raw: chunked + "fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
	})
}

const errsHeadLimit = 4096

const errsPadStart, errsPadEnd = "GET /echo HTTP/1.1\r\nHost: proxylab.test\r\nX-Pad: ", "\r\n\r\n"

// errsPaddedHead is a request head of exactly n bytes, padded in one field.
func errsPaddedHead(n int) string {
	return errsPadStart + strings.Repeat("p", n-len(errsPadStart)-len(errsPadEnd)) + errsPadEnd
}

// errsHeadTooLarge: MAX_HEADER_BYTES counts the request line, every field
// line and their CRLFs, and the empty line (contract-v2 section 5), so a
// head of exactly the limit passes and one byte more is refused.
func errsHeadTooLarge(e *Env) error {
	p, err := e.StartProxy(func(c *ProxyConfig) { c.MaxHeaderBytes = errsHeadLimit })
	if err != nil {
		return err
	}
	exact := errsPaddedHead(errsHeadLimit)
	c, err := e.ConnectTo(p.Addr())
	if err != nil {
		return err
	}
	r, err := c.Do("GET", exact)
	if err != nil {
		return fmt.Errorf("a head of exactly MAX_HEADER_BYTES=%d bytes: %w", errsHeadLimit, err)
	}
	ec, err := ParseEcho(r)
	if err != nil {
		return fmt.Errorf("a head of exactly MAX_HEADER_BYTES=%d bytes must pass: %w", errsHeadLimit, err)
	}
	if pad := ec.Values("X-Pad"); len(pad) != 1 || len(pad[0]) != len(exact)-len(errsPadStart)-len(errsPadEnd) {
		return fmt.Errorf("a head of exactly MAX_HEADER_BYTES=%d bytes: the upstream got X-Pad of lengths %v", errsHeadLimit, errsLengths(pad))
	}
	var many strings.Builder
	for i := 0; many.Len() < 2*errsHeadLimit; i++ {
		fmt.Fprintf(&many, "X-Field-%03d: %s\r\n", i, strings.Repeat("v", 24))
	}
	return errsRejects(e, p.Addr(), e.Upstream(), http.StatusRequestHeaderFieldsTooLarge, false, []errsInput{
		{name: fmt.Sprintf("a head one byte over MAX_HEADER_BYTES=%d", errsHeadLimit), raw: errsPaddedHead(errsHeadLimit + 1)},
		{name: fmt.Sprintf("one field making an %d-byte head, MAX_HEADER_BYTES=%d", 2*errsHeadLimit, errsHeadLimit), raw: errsPaddedHead(2 * errsHeadLimit)},
		{name: fmt.Sprintf("%d bytes of short fields, MAX_HEADER_BYTES=%d", many.Len(), errsHeadLimit), raw: "GET /echo HTTP/1.1\r\nHost: proxylab.test\r\n" + many.String() + "\r\n"},
	})
}

func errsLengths(vs []string) []int {
	n := make([]int, len(vs))
	for i, v := range vs {
		n[i] = len(v)
	}
	return n
}

const errsBodyLimit = 1 << 20

func errsBodyTooLarge(e *Env) error {
	p, err := e.StartProxy(func(c *ProxyConfig) { c.MaxBodyBytes = errsBodyLimit })
	if err != nil {
		return err
	}
	if err := errsBodyPasses(e, p.Addr(), fmt.Sprintf("Content-Length: %d\r\n", errsBodyLimit), string(Pattern(errsBodyLimit))); err != nil {
		return fmt.Errorf("a Content-Length body of exactly MAX_BODY_BYTES=%d: %w", errsBodyLimit, err)
	}
	return errsRejects(e, p.Addr(), e.Upstream(), http.StatusRequestEntityTooLarge, false, []errsInput{{
		name: fmt.Sprintf("Content-Length %d with MAX_BODY_BYTES=%d", errsBodyLimit+1, errsBodyLimit),
		raw:  errsPost(fmt.Sprintf("Content-Length: %d\r\n", errsBodyLimit+1)),
		more: string(Pattern(errsBodyLimit + 1)),
	}})
}

// errsChunkedBodyTooLarge: the size of a chunked body is only known as it
// arrives, so a proxy that streams may have started forwarding it and can
// only close; either way the upstream must not get a complete request.
func errsChunkedBodyTooLarge(e *Env) error {
	p, err := e.StartProxy(func(c *ProxyConfig) { c.MaxBodyBytes = errsBodyLimit })
	if err != nil {
		return err
	}
	if err := errsBodyPasses(e, p.Addr(), "Transfer-Encoding: chunked\r\n", errsChunks(errsBodyLimit)); err != nil {
		return fmt.Errorf("a chunked body of exactly MAX_BODY_BYTES=%d: %w", errsBodyLimit, err)
	}
	over := errsBodyLimit + 64<<10
	return errsRejects(e, p.Addr(), e.Upstream(), http.StatusRequestEntityTooLarge, true, []errsInput{{
		name: fmt.Sprintf("%d bytes in 64 KiB chunks with MAX_BODY_BYTES=%d", over, errsBodyLimit),
		raw:  errsPost("Transfer-Encoding: chunked\r\n"),
		more: errsChunks(over),
	}})
}

// errsChunks is n bytes of the pattern as a chunked body of 64 KiB chunks.
func errsChunks(n int) string {
	body := Pattern(n)
	var b strings.Builder
	for len(body) > 0 {
		k := min(len(body), 64<<10)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// errsBodyPasses posts Pattern-filled body to /echo and checks it arrived
// whole.
func errsBodyPasses(e *Env, proxy, framing, body string) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	// Written while the answer is read: a proxy that wrongly refuses the
	// body early should fail with its answer, not a broken pipe.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Send(errsPost(framing) + body)
	}()
	defer func() {
		c.Close()
		<-wrote
	}()
	r, err := errsReadWithin(c, "POST", errsAnswerWait)
	if err != nil {
		return err
	}
	ec, err := ParseEcho(r)
	if err != nil {
		return err
	}
	if ec.BodyBytes != errsBodyLimit || ec.BodySHA256 != SHA256(Pattern(errsBodyLimit)) {
		return fmt.Errorf("the upstream got %d body bytes (SHA-256 %s), want %d bytes of the pattern", ec.BodyBytes, ec.BodySHA256, errsBodyLimit)
	}
	return nil
}

func errsUpstreamRefused(e *Env) error {
	closed, err := FreeAddr()
	if err != nil {
		return err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) { c.Upstream = closed })
	if err != nil {
		return err
	}
	return errsUpstreamFailure(e, p.Addr(), "/?size=5", http.StatusBadGateway, "with UPSTREAM_ADDR a closed port")
}

func errsUpstreamGarbage(e *Env) error {
	return errsUpstreamFailure(e, e.Proxy(), "/?garbage=1", http.StatusBadGateway, "(the upstream answers bytes that are not HTTP)")
}

// errsUpstreamFailure sends GET target and wants status with a short text.
func errsUpstreamFailure(e *Env, proxy, target string, status int, why string) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	if err := c.Send("GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return err
	}
	r, err := errsReadWithin(c, "GET", errsAnswerWait)
	if err != nil {
		return fmt.Errorf("GET %s %s: %w", target, why, err)
	}
	if r.StatusCode != status {
		return fmt.Errorf("GET %s %s: answered %s %q, want %d", target, why, r.Status, clip(r.Body), status)
	}
	if err := errsShortText(r); err != nil {
		return fmt.Errorf("GET %s %s: %w", target, why, err)
	}
	return nil
}

const (
	errsTimeout = 500 * time.Millisecond
	// errsTimeoutBound is when a 504 must have come: the timeout plus a
	// margin generous enough for a loaded machine, and still well before
	// the upstream's answer at errsSlowDelay.
	errsTimeoutBound = 2500 * time.Millisecond
	errsSlowDelay    = 3000 * time.Millisecond
)

func errsUpstreamTimeout(e *Env) error {
	p, err := e.StartProxy(func(c *ProxyConfig) { c.UpstreamTimeout = errsTimeout })
	if err != nil {
		return err
	}
	c, err := e.ConnectTo(p.Addr())
	if err != nil {
		return err
	}
	// An upstream well within the timeout is answered as usual, so a 504
	// below is about the delay and nothing else.
	r, err := c.Do("GET", "GET /?size=5&delay_ms=50 HTTP/1.1\r\nHost: proxylab.test\r\n\r\n")
	if err != nil {
		return fmt.Errorf("GET /?delay_ms=50 with UPSTREAM_TIMEOUT_MS=%d: %w", errsTimeout.Milliseconds(), err)
	}
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.Body, Pattern(5)) {
		return fmt.Errorf("GET /?delay_ms=50 with UPSTREAM_TIMEOUT_MS=%d: answered %s %q, want 200 %q", errsTimeout.Milliseconds(), r.Status, clip(r.Body), Pattern(5))
	}

	c, err = e.ConnectTo(p.Addr())
	if err != nil {
		return err
	}
	target := fmt.Sprintf("/?size=5&delay_ms=%d", errsSlowDelay.Milliseconds())
	what := fmt.Sprintf("GET %s with UPSTREAM_TIMEOUT_MS=%d", target, errsTimeout.Milliseconds())
	start := time.Now()
	if err := c.Send("GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return err
	}
	r, err = errsReadWithin(c, "GET", errsAnswerWait)
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.StatusCode != http.StatusGatewayTimeout {
		return fmt.Errorf("%s: answered %s %q after %s, want 504", what, r.Status, clip(r.Body), took.Round(time.Millisecond))
	}
	if took > errsTimeoutBound {
		return fmt.Errorf("%s: the 504 came after %s, want it within %s", what, took.Round(time.Millisecond), errsTimeoutBound)
	}
	// The proxy's clock starts after ours, so a correct proxy cannot be
	// early; a fifth of slack covers clock granularity.
	if took < errsTimeout*4/5 {
		return fmt.Errorf("%s: the 504 came after only %s, before the timeout", what, took.Round(time.Millisecond))
	}
	return errsShortText(r)
}

// errsNoReuseAfterTimeout: the upstream connection of a timed-out exchange
// still owes an answer. Put back in the pool, it hands that late answer to
// whichever request uses it next.
func errsNoReuseAfterTimeout(e *Env) error {
	up, err := e.StartUpstream()
	if err != nil {
		return err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) {
		c.Upstream = up
		c.UpstreamTimeout = errsTimeout
	})
	if err != nil {
		return err
	}
	const delay = 1500 * time.Millisecond
	c, err := e.ConnectTo(p.Addr())
	if err != nil {
		return err
	}
	slow := fmt.Sprintf("/?size=33&delay_ms=%d", delay.Milliseconds())
	start := time.Now()
	if err := c.Send("GET " + slow + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return err
	}
	r, err := errsReadWithin(c, "GET", errsAnswerWait)
	if err != nil {
		return fmt.Errorf("GET %s with UPSTREAM_TIMEOUT_MS=%d: %w", slow, errsTimeout.Milliseconds(), err)
	}
	if r.StatusCode != http.StatusGatewayTimeout {
		return fmt.Errorf("GET %s with UPSTREAM_TIMEOUT_MS=%d: answered %s, want 504", slow, errsTimeout.Milliseconds(), r.Status)
	}
	// Wait until the upstream has sent its late answer, so it is there to
	// be read by a proxy that reuses the connection.
	select {
	case <-time.After(time.Until(start.Add(delay + time.Second))):
	case <-e.Ctx.Done():
		return e.Ctx.Err()
	}
	for i := range 3 {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		r, err := c.Do("GET", "GET /?size=7 HTTP/1.1\r\nHost: proxylab.test\r\n\r\n")
		if err != nil {
			return fmt.Errorf("GET /?size=7 #%d after a 504: %w", i+1, err)
		}
		if r.StatusCode != http.StatusOK || !bytes.Equal(r.Body, Pattern(7)) {
			hint := ""
			if bytes.Equal(r.Body, Pattern(33)) {
				hint = " (that is the late answer to the timed-out request: its upstream connection was reused)"
			}
			return fmt.Errorf("GET /?size=7 #%d after a 504: answered %s %q, want 200 %q%s", i+1, r.Status, clip(r.Body), Pattern(7), hint)
		}
	}
	return nil
}

// errsUpstreamAborts: the upstream announces a body and closes part way.
// A proxy that buffers can answer 502; one that streams has sent the head
// already and can only cut the client connection short too. What the
// client must never get is a response that looks complete, or no end.
func errsUpstreamAborts(e *Env) error {
	for _, tc := range []struct{ size, after int }{{1000, 100}, {1 << 20, 256 << 10}} {
		target := fmt.Sprintf("/?size=%d&abort_after=%d", tc.size, tc.after)
		if err := errsAbortOne(e, target, tc.size); err != nil {
			return fmt.Errorf("GET %s (the upstream sends %d of %d body bytes, then closes): %w", target, tc.after, tc.size, err)
		}
	}
	return nil
}

func errsAbortOne(e *Env, target string, size int) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	if err := c.Send("GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return err
	}
	// Longer than the contract's upstream timeout: a proxy that waits that
	// long for the missing bytes still ends the exchange.
	c.SetReadDeadline(time.Now().Add(DefaultUpstreamTimeout + errsAnswerWait))
	resp, err := http.ReadResponse(c.R, &http.Request{Method: "GET"})
	if err != nil {
		if errsIsTimeout(err) {
			return fmt.Errorf("no answer and the connection left open: %v", err)
		}
		if errsClosedEarly(err) {
			return nil
		}
		return fmt.Errorf("unreadable answer: %v", err)
	}
	body, berr := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case berr == nil && resp.StatusCode == http.StatusBadGateway:
		return errsShortText(&Response{Response: resp, Body: body})
	case berr == nil:
		return fmt.Errorf("answered %s with a complete-looking body of %d bytes, want 502 or the client connection cut short", resp.Status, len(body))
	case errsIsTimeout(berr):
		return fmt.Errorf("answered %s, then the body stalled after %d bytes with the connection left open", resp.Status, len(body))
	}
	// Cut short: what did arrive must be the upstream's bytes.
	if len(body) >= size || !bytes.Equal(body, Pattern(len(body))) {
		return fmt.Errorf("answered %s, then a body cut short (%v) of %d bytes that is not a prefix of the upstream's body: %q", resp.Status, berr, len(body), clip(body))
	}
	return nil
}

// errsClosedEarly tells whether a response could not be read because the
// proxy closed the connection before a complete head: http.ReadResponse
// reports even a close before the first byte as an unexpected EOF.
func errsClosedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

func errsIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errsRejects sends each input on a connection of its own to proxy and
// checks that the proxy answered it itself with status: a short text, the
// connection closed, and nothing arriving at upstream. closeOK also lets
// the proxy close without any answer, for input it may only discover to be
// bad after it started forwarding.
func errsRejects(e *Env, proxy, upstream string, status int, closeOK bool, inputs []errsInput) error {
	for _, in := range inputs {
		if err := errsRejectOne(e, proxy, upstream, status, closeOK, in); err != nil {
			return fmt.Errorf("%s: sent %q: %w", in.name, clip([]byte(in.raw+in.more)), err)
		}
	}
	return nil
}

func errsRejectOne(e *Env, proxy, upstream string, status int, closeOK bool, in errsInput) error {
	before, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	if err := c.Send(in.raw); err != nil {
		return err
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// A proxy that answers early may close before taking it all, which
		// fails this write; the answer is what counts.
		c.Send(in.more)
	}()
	defer func() {
		c.Close()
		<-wrote
	}()
	r, err := errsReadWithin(c, "GET", errsAnswerWait)
	if err != nil {
		if !errsClosedEarly(err) {
			return fmt.Errorf("no %d answer: %w", status, err)
		}
		if !closeOK {
			return fmt.Errorf("closed the connection without an answer (%v), want %d", err, status)
		}
		return errsNotForwarded(e, upstream, before)
	}
	if r.StatusCode != status {
		return fmt.Errorf("answered %s %q, want %d", r.Status, clip(r.Body), status)
	}
	if err := errsCheckRefusal(e, c, r, upstream, before); err != nil {
		return fmt.Errorf("answered %d, but %w", status, err)
	}
	return nil
}

// errsCheckRefusal checks what every refusal of a malformed or oversized
// request must do besides its status: a short text, an end to a stream
// that can no longer be trusted, and nothing arriving at upstream, whose
// counts before the request were before.
func errsCheckRefusal(e *Env, c *Conn, r *Response, upstream string, before UpstreamStats) error {
	if err := errsShortText(r); err != nil {
		return err
	}
	if !r.Close {
		if err := c.Closed(errsCloseWait); err != nil {
			return fmt.Errorf("no Connection: close, and %w", err)
		}
	}
	return errsNotForwarded(e, upstream, before)
}

func errsNotForwarded(e *Env, upstream string, before UpstreamStats) error {
	after, err := e.Stats(upstream)
	if err != nil {
		return err
	}
	if n := after.Requests - before.Requests; n != 0 {
		return fmt.Errorf("the request reached the upstream anyway (%d request(s) arrived there)", n)
	}
	return nil
}

// errsReadWithin reads one response, waiting at most wait for all of it.
func errsReadWithin(c *Conn, method string, wait time.Duration) (*Response, error) {
	c.SetReadDeadline(time.Now().Add(wait))
	r, err := c.Read(method)
	if err != nil && errsIsTimeout(err) {
		return nil, fmt.Errorf("no complete answer within %s: %w", wait, err)
	}
	return r, err
}

// errsShortText checks the contract's "every error response is a short
// text body".
func errsShortText(r *Response) error {
	switch {
	case len(r.Body) == 0:
		return fmt.Errorf("the %s answer has an empty body, want a short text", r.Status)
	case len(r.Body) > errsMaxText:
		return fmt.Errorf("the %s answer has a %d-byte body, want a short text (at most %d bytes): %q", r.Status, len(r.Body), errsMaxText, clip(r.Body))
	case !utf8.Valid(r.Body) || bytes.ContainsFunc(r.Body, func(c rune) bool { return unicode.IsControl(c) && !unicode.IsSpace(c) }):
		return fmt.Errorf("the %s answer's body is not text: %q", r.Status, clip(r.Body))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "text/") {
		return fmt.Errorf("the %s answer's body is labelled Content-Type: %s, want text", r.Status, ct)
	}
	return nil
}
