package conformance

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The upstream-framing cases pin contract-v2 section 4: a response whose
// framing the proxy cannot follow exactly is a 502, never a guess (RFC
// 9112 6.1, 6.3, 7).
var framingCases = []Case{
	{Group: "upstream-framing", Name: "transfer-codings", Run: framingCodings},
	{Group: "upstream-framing", Name: "length-conflicts", Run: framingLengths},
	{Group: "upstream-framing", Name: "chunked-bare-lf", Run: framingBareLF},
}

// framingContent is the content every broken answer carries, coded or
// not; a client that gets it in the clear got a coding stripped.
const framingContent = "the content the upstream encoded"

// framingAnswer is one raw answer of the scripted upstream, sent as is,
// after which the upstream closes the connection (so an answer without
// framing has an end a lenient proxy could read it to).
type framingAnswer struct {
	name string
	raw  string
}

// framingServe answers request /answer-N with answers[N] and closes.
func framingServe(e *Env, answers []framingAnswer) (string, error) {
	_, p, err := e.ScriptedProxy(func(c *ScriptConn) {
		r, err := c.ReadRequest()
		if err != nil {
			return
		}
		var i int
		if _, err := fmt.Sscanf(r.Target, "/answer-%d", &i); err != nil || i >= len(answers) {
			c.Send(ScriptAnswer(r))
			return
		}
		c.Send(answers[i].raw)
	})
	if err != nil {
		return "", err
	}
	return p.Addr(), nil
}

// framingWant502 sends GET /answer-N for each answer and wants a 502 with
// a short text, never the content.
func framingWant502(e *Env, answers []framingAnswer) error {
	proxy, err := framingServe(e, answers)
	if err != nil {
		return err
	}
	for i, a := range answers {
		c, err := e.ConnectTo(proxy)
		if err != nil {
			return err
		}
		target := fmt.Sprintf("/answer-%d", i)
		r, err := scriptGet(c, target)
		what := fmt.Sprintf("the upstream answers %s: %q", a.name, clip([]byte(a.raw)))
		if err != nil {
			return fmt.Errorf("%s: %w; want 502", what, err)
		}
		if r.StatusCode != http.StatusBadGateway {
			hint := ""
			if bytes.Contains(r.Body, []byte(framingContent)) {
				hint = " (the content with its coding stripped)"
			}
			return fmt.Errorf("%s: answered %s with %q%s, want 502", what, r.Status, clip(r.Body), hint)
		}
		if err := errsShortText(r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func framingGzip() string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, framingContent)
	w.Close()
	return b.String()
}

func framingDeflate() string {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	io.WriteString(w, framingContent)
	w.Close()
	return b.String()
}

// framingChunked frames body as one chunk and the last chunk.
func framingChunked(body string) string {
	return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
}

func framingHead(fields ...string) string {
	return "HTTP/1.1 200 OK\r\n" + strings.Join(fields, "\r\n") + "\r\n\r\n"
}

// framingCodings: only the single coding chunked is decoded; any other
// Transfer-Encoding in a response is a 502 (contract-v2 section 4).
func framingCodings(e *Env) error {
	gz, df := framingGzip(), framingDeflate()
	return framingWant502(e, []framingAnswer{
		{"Transfer-Encoding: gzip, the body until close", framingHead("Transfer-Encoding: gzip") + gz},
		{"Transfer-Encoding: gzip, chunked", framingHead("Transfer-Encoding: gzip, chunked") + framingChunked(gz)},
		{"Transfer-Encoding: deflate", framingHead("Transfer-Encoding: deflate") + df},
		{"Transfer-Encoding: chunked, gzip", framingHead("Transfer-Encoding: chunked, gzip") + framingChunked(gz)},
		{"Transfer-Encoding: chunked, chunked", framingHead("Transfer-Encoding: chunked, chunked") + framingChunked(framingChunked(framingContent))},
		{"an unknown coding", framingHead("Transfer-Encoding: x-proxylab") + framingContent},
		{"an unknown coding, then chunked", framingHead("Transfer-Encoding: x-proxylab, chunked") + framingChunked(framingContent)},
		{"an empty Transfer-Encoding", framingHead("Transfer-Encoding: ") + framingContent},
		{"Transfer-Encoding: gzip and Transfer-Encoding: chunked", framingHead("Transfer-Encoding: gzip", "Transfer-Encoding: chunked") + framingChunked(gz)},
		{"Transfer-Encoding: chunked twice", framingHead("Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + framingChunked(framingContent)},
	})
}

// framingLengths: two framings, or lengths that disagree, leave the end of
// the body open to interpretation (RFC 9112 6.3).
func framingLengths(e *Env) error {
	n := len(framingContent)
	return framingWant502(e, []framingAnswer{
		{"Transfer-Encoding: chunked and Content-Length",
			framingHead("Transfer-Encoding: chunked", fmt.Sprintf("Content-Length: %d", n)) + framingChunked(framingContent)},
		{"Content-Length and Transfer-Encoding: chunked",
			framingHead(fmt.Sprintf("Content-Length: %d", n), "Transfer-Encoding: chunked") + framingChunked(framingContent)},
		{"two Content-Length fields that differ",
			framingHead(fmt.Sprintf("Content-Length: %d", n), fmt.Sprintf("Content-Length: %d", n+5)) + framingContent + "12345"},
		{"one Content-Length listing two values",
			framingHead(fmt.Sprintf("Content-Length: %d, %d", n, n+5)) + framingContent + "12345"},
		{"a Content-Length that is not digits", framingHead("Content-Length: 3a") + framingContent},
		{"a negative Content-Length", framingHead("Content-Length: -1") + framingContent},
		{"a Content-Length with a plus sign", framingHead(fmt.Sprintf("Content-Length: +%d", n)) + framingContent},
	})
}

// framingBareLF: chunked framing from the upstream accepts CRLF only. A
// proxy may have sent the head already when the bad line arrives; the
// client must then see the body break off, never a clean end.
func framingBareLF(e *Env) error {
	head := framingHead("Transfer-Encoding: chunked")
	answers := []framingAnswer{
		{"a chunk-size line ending in a bare LF", head + "5\nhello\r\n0\r\n\r\n"},
		{"chunk data followed by a bare LF", head + "5\r\nhello\n0\r\n\r\n"},
		{"a last chunk ending in a bare LF", head + "5\r\nhello\r\n0\n\r\n"},
		{"a trailer field ending in a bare LF", head + "5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n"},
		{"a trailer section ending in a bare LF", head + "5\r\nhello\r\n0\r\n\n"},
		{"a chunk-size line ending in a bare CR", head + "5\rhello\r\n0\r\n\r\n"},
		{"a bare LF after 20000 good bytes", head + fmt.Sprintf("%x\r\n%s\r\n", 20000, strings.Repeat("a", 20000)) + "5\nhello\r\n0\r\n\r\n"},
	}
	proxy, err := framingServe(e, answers)
	if err != nil {
		return err
	}
	for i, a := range answers {
		what := fmt.Sprintf("the upstream answers with %s", a.name)
		if err := framingNoCleanEnd(e, proxy, fmt.Sprintf("/answer-%d", i)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// framingNoCleanEnd wants a 502, or a response whose body breaks off.
func framingNoCleanEnd(e *Env, proxy, target string) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	if err := c.Send("GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
		return err
	}
	r, err := scriptRead(c, "GET")
	switch {
	case err != nil && errsIsTimeout(err):
		return fmt.Errorf("no answer and the connection left open: %w", err)
	case err != nil:
		return nil
	case r.StatusCode == http.StatusBadGateway:
		return errsShortText(r)
	}
	return fmt.Errorf("answered %s with a cleanly ended body %q, want 502 or the body cut short", r.Status, clip(r.Body))
}
