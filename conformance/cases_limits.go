package conformance

import (
	"fmt"
	"net/http"
	"strings"
)

// The limits cases pin contract-v2 section 5: limits are bytes, never
// counts; chunk extensions and trailers count against the head limit;
// chunked framing is CRLF only; the upstream's heads have a fixed limit.
var limitCases = []Case{
	{Group: "limits", Name: "many-small-fields", Run: limitsManyFields},
	{Group: "limits", Name: "response-head", Run: limitsResponseHead},
	{Group: "limits", Name: "chunk-extensions", Run: limitsExtensions},
	{Group: "limits", Name: "trailers", Run: limitsTrailers},
	{Group: "limits", Name: "bare-lf-in-chunks", Run: limitsBareLF},
}

// limitsResponseMax is the contract's fixed limit on an upstream response
// head.
const limitsResponseMax = 16384

// limitsManyFields: 1,000 fields of a dozen bytes, far under the byte
// limit, all forwarded in order.
func limitsManyFields(e *Env) error {
	const n = 1000
	var b strings.Builder
	b.WriteString("GET /echo/many HTTP/1.1\r\nHost: proxylab.test\r\n")
	for i := range n {
		fmt.Fprintf(&b, "X-%03d: v%03d\r\n", i, i)
	}
	b.WriteString("\r\n")
	what := fmt.Sprintf("a %d-byte head of %d small fields", b.Len(), n)
	c, err := e.Connect()
	if err != nil {
		return err
	}
	r, err := c.Do("GET", b.String())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ec, err := ParseEcho(r)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var got []string
	for _, h := range ec.Headers {
		if len(h[0]) == 5 && strings.HasPrefix(h[0], "X-") {
			got = append(got, h[0]+": "+h[1])
		}
	}
	if len(got) != n {
		return fmt.Errorf("%s: %d of the fields reached the upstream, want all %d", what, len(got), n)
	}
	for i, f := range got {
		if want := fmt.Sprintf("X-%03d: v%03d", i, i); f != want {
			return fmt.Errorf("%s: field %d reached the upstream as %q, want %q (order kept)", what, i, f, want)
		}
	}
	return nil
}

// limitsHead is a 200 response head of exactly size bytes (when size is
// large enough), padded with small fields of the given length, and a
// short body.
func limitsHead(size, fieldLen int) (head string, fields []string) {
	const body = "small body"
	start := "HTTP/1.1 200 OK\r\n"
	end := fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	var b strings.Builder
	b.WriteString(start)
	room := size - len(start) - len(end)
	for i := 0; room > 0; i++ {
		// Each field is "X-Resp-NNNNN: " and a value; the last one takes
		// what is left.
		name := fmt.Sprintf("X-Resp-%05d", i)
		l := min(fieldLen, room)
		if room-l < len(name)+4 {
			l = room
		}
		v := strings.Repeat("v", l-len(name)-4)
		f := name + ": " + v
		fields = append(fields, f)
		b.WriteString(f + "\r\n")
		room -= len(f) + 2
	}
	b.WriteString(end)
	return b.String() + body, fields
}

func limitsResponseHead(e *Env) error {
	type input struct {
		name  string
		raw   string
		pass  bool
		order []string
	}
	many, manyFields := limitsHead(12000, 20)
	exact, exactFields := limitsHead(limitsResponseMax, 40)
	over, _ := limitsHead(limitsResponseMax+1, 40)
	oneBig, _ := limitsHead(20000, 20000)
	lots, _ := limitsHead(20000, 20)
	bigInterim, _ := limitsHead(17000, 40)
	bigInterim = strings.Replace(bigInterim, "200 OK", "103 Early Hints", 1)
	bigInterim = bigInterim[:strings.Index(bigInterim, "Content-Length")] + "\r\n" + RawResponse(200, "final")
	inputs := []input{
		{"a 12000-byte head of small fields", many, true, manyFields},
		{"a head of exactly 16384 bytes", exact, true, exactFields},
		{"a head of 16385 bytes", over, false, nil},
		{"one 20000-byte field", oneBig, false, nil},
		{"20000 bytes of small fields", lots, false, nil},
		{"a 103 head of 17000 bytes before a small 200", bigInterim, false, nil},
	}
	answers := make([]framingAnswer, len(inputs))
	for i, in := range inputs {
		answers[i] = framingAnswer{in.name, in.raw}
	}
	proxy, err := framingServe(e, answers)
	if err != nil {
		return err
	}
	for i, in := range inputs {
		what := "the upstream answers " + in.name
		c, err := e.ConnectTo(proxy)
		if err != nil {
			return err
		}
		if err := c.Send(fmt.Sprintf("GET /answer-%d HTTP/1.1\r\nHost: proxylab.test\r\n\r\n", i)); err != nil {
			return err
		}
		if in.pass {
			if err := limitsRelayedInOrder(c, in.order); err != nil {
				return fmt.Errorf("%s (under the %d-byte limit): %w", what, limitsResponseMax, err)
			}
			continue
		}
		r, err := scriptRead(c, "GET")
		if err != nil {
			return fmt.Errorf("%s: %w; want 502", what, err)
		}
		if r.StatusCode != http.StatusBadGateway {
			return fmt.Errorf("%s: answered %s, want 502 (over the %d-byte limit)", what, r.Status, limitsResponseMax)
		}
		if err := errsShortText(r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// limitsRelayedInOrder reads a response and wants 200 with every one of
// fields, in order.
func limitsRelayedInOrder(c *Conn, fields []string) error {
	c.SetReadDeadline(deadlineIn(scriptWait))
	head, err := hopRawHead(c)
	if err != nil {
		return err
	}
	r, err := c.Read("GET")
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s %q, want 200", r.Status, clip(r.Body))
	}
	var got []string
	for _, f := range hopHeadFields(head) {
		if strings.HasPrefix(f[0], "X-Resp-") {
			got = append(got, f[0]+": "+f[1])
		}
	}
	if len(got) != len(fields) {
		return fmt.Errorf("%d of the upstream's %d fields reached the client", len(got), len(fields))
	}
	for i := range got {
		if got[i] != fields[i] {
			return fmt.Errorf("field %d reached the client as %q, want %q", i, clip([]byte(got[i])), clip([]byte(fields[i])))
		}
	}
	return nil
}

// limitsChunkedHead is a chunked POST head of exactly size bytes.
func limitsChunkedHead(size int) string {
	start := "POST /limits HTTP/1.1\r\nHost: proxylab.test\r\nTransfer-Encoding: chunked\r\nX-Pad: "
	return start + strings.Repeat("p", max(size-len(start)-4, 1)) + "\r\n\r\n"
}

// limitsHeadLimit is the MAX_HEADER_BYTES of the private proxies of these
// cases, small so that the inputs stay small.
const limitsHeadLimit = 4096

// limitsChunked checks chunked request bodies through a private proxy
// with MAX_HEADER_BYTES=limitsHeadLimit in front of a strict scripted
// upstream, which reads only a re-framed body (no extensions, no trailer
// fields) as complete. pass inputs must arrive with content; the others
// must be refused with 431 or 400 and never arrive whole.
func limitsChunked(e *Env, pass, refuse []errsInput, content string) error {
	s, err := e.StartScripted(func(c *ScriptConn) { c.Serve(ScriptAnswer) })
	if err != nil {
		return err
	}
	p, err := e.StartProxy(func(c *ProxyConfig) {
		c.Upstream = s.Addr()
		c.MaxHeaderBytes = limitsHeadLimit
	})
	if err != nil {
		return err
	}
	for _, in := range pass {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		n := len(s.Received())
		r, err := c.Do("POST", in.raw)
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		got := s.Received()[n:]
		if len(got) != 1 || !got[0].Complete || string(got[0].Body) != content {
			return fmt.Errorf("%s (MAX_HEADER_BYTES=%d): answered %s, and the upstream did not get one request with the body %q re-framed without extensions or trailer fields (got %d request(s))",
				in.name, limitsHeadLimit, r.Status, content, len(got))
		}
		if err := scriptWantOwn(in.name, r, "POST", "/limits"); err != nil {
			return err
		}
	}
	for _, in := range refuse {
		if err := limitsRefused(e, p.Addr(), s, in); err != nil {
			return fmt.Errorf("%s (MAX_HEADER_BYTES=%d): %w", in.name, limitsHeadLimit, err)
		}
	}
	return nil
}

// limitsRefused wants a 431 or 400, a closed stream and nothing complete
// at the upstream.
func limitsRefused(e *Env, proxy string, s *Scripted, in errsInput) error {
	before := s.Complete()
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Send(in.raw)
	}()
	defer func() {
		c.Close()
		<-wrote
	}()
	r, err := errsReadWithin(c, "POST", errsAnswerWait)
	if err != nil {
		return fmt.Errorf("no 431 or 400 answer: %w", err)
	}
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge && r.StatusCode != http.StatusBadRequest {
		return fmt.Errorf("answered %s %q, want 431 (or 400), never a 5xx for the client's mistake", r.Status, clip(r.Body))
	}
	if err := errsShortText(r); err != nil {
		return err
	}
	if !r.Close {
		if err := c.Closed(errsCloseWait); err != nil {
			return fmt.Errorf("answered %d without Connection: close, and %w", r.StatusCode, err)
		}
	}
	if n := s.Complete() - before; n != 0 {
		return fmt.Errorf("answered %d, but %d complete request(s) reached the upstream", r.StatusCode, n)
	}
	return nil
}

func limitsExtensions(e *Env) error {
	head := limitsChunkedHead(200)
	ext := func(n int) string { return ";x=" + strings.Repeat("e", n) }
	var many strings.Builder
	for range 100 {
		fmt.Fprintf(&many, "1%s\r\na\r\n", ext(50))
	}
	return limitsChunked(e,
		[]errsInput{
			{name: "chunks with short extensions", raw: head + "5;a=1\r\nhello\r\n6;b;c=\"q\"\r\n world\r\n0;end\r\n\r\n"},
			{name: "a 1000-byte extension", raw: head + "5" + ext(1000) + "\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
		},
		[]errsInput{
			{name: "one 5000-byte extension", raw: head + "5" + ext(5000) + "\r\nhello\r\n0\r\n\r\n"},
			{name: "100 extensions of 53 bytes", raw: head + many.String() + "0\r\n\r\n"},
			{name: "a 3000-byte head and a 1500-byte extension", raw: limitsChunkedHead(3000) + "5" + ext(1500) + "\r\nhello\r\n0\r\n\r\n"},
			{name: "a 5000-byte extension on the last chunk", raw: head + "5\r\nhello\r\n0" + ext(5000) + "\r\n\r\n"},
		}, "hello world")
}

func limitsTrailers(e *Env) error {
	head := limitsChunkedHead(200)
	body := "5\r\nhello\r\n6\r\n world\r\n0\r\n"
	var many strings.Builder
	for i := range 400 {
		fmt.Fprintf(&many, "X-T-%03d: v\r\n", i)
	}
	return limitsChunked(e,
		[]errsInput{
			{name: "two trailer fields", raw: head + body + "X-Trailer: 1\r\nX-Other: two\r\n\r\n"},
			{name: "a 1000-byte trailer field", raw: head + body + "X-Trailer: " + strings.Repeat("t", 1000) + "\r\n\r\n"},
		},
		[]errsInput{
			{name: "one 5000-byte trailer field", raw: head + body + "X-Trailer: " + strings.Repeat("t", 5000) + "\r\n\r\n"},
			{name: "400 small trailer fields (4800 bytes)", raw: head + body + many.String() + "\r\n"},
			{name: "a 3000-byte head and a 1500-byte trailer", raw: limitsChunkedHead(3000) + body + "X-Trailer: " + strings.Repeat("t", 1500) + "\r\n\r\n"},
		}, "hello world")
}

// limitsBareLF: chunked framing in requests is CRLF only; anything else
// is a 400, not a guess at where the body ends.
func limitsBareLF(e *Env) error {
	head := errsPost("Transfer-Encoding: chunked\r\n")
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "a chunk-size line ending in LF", raw: head + "5\nhello\r\n0\r\n\r\n"},
		{name: "a chunk-size line with an extension ending in LF", raw: head + "5;a=1\nhello\r\n0\r\n\r\n"},
		{name: "chunk data followed by LF", raw: head + "5\r\nhello\n0\r\n\r\n"},
		{name: "a last chunk ending in LF", raw: head + "5\r\nhello\r\n0\n\r\n"},
		{name: "a trailer field ending in LF", raw: head + "5\r\nhello\r\n0\r\nX-T: 1\n\r\n"},
		{name: "a trailer section ending in LF", raw: head + "5\r\nhello\r\n0\r\n\n"},
		{name: "a chunk-size line ending in a bare CR", raw: head + "5\rhello\r\n0\r\n\r\n"},
	})
}
