package conformance

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fidelityCases check that what reaches the upstream is what the client
// sent, and that what reaches the client is what the upstream answered:
// proxies that compare well only because they skip part of that work would
// make the benchmark meaningless.
var fidelityCases = []Case{
	{Group: "fidelity", Name: "methods", Run: fidMethods},
	{Group: "fidelity", Name: "head-method", Run: fidHeadMethod},
	{Group: "fidelity", Name: "request-target", Run: fidRequestTarget},
	{Group: "fidelity", Name: "repeated-headers", Run: fidRepeatedHeaders},
	{Group: "fidelity", Name: "header-values", Run: fidHeaderValues},
	{Group: "fidelity", Name: "fields-exact", Run: fidFieldsExact},
	{Group: "fidelity", Name: "body-content-length", Run: fidBodyContentLength},
	{Group: "fidelity", Name: "body-chunked", Run: fidBodyChunked},
	{Group: "fidelity", Name: "expect-continue", Run: fidExpectContinue},
	{Group: "fidelity", Name: "status-codes", Run: fidStatusCodes},
	{Group: "fidelity", Name: "no-body-statuses", Run: fidNoBodyStatuses},
	{Group: "fidelity", Name: "chunked-response", Run: fidChunkedResponse},
	{Group: "fidelity", Name: "large-response", Run: fidLargeResponse},
	{Group: "fidelity", Name: "response-headers", Run: fidResponseHeaders},
}

// fidRequest is a raw HTTP/1.1 request head with a Host field, the given
// fields in the given order, and the blank line.
func fidRequest(method, target string, fields ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: conformance.test\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// fidEcho sends raw, a request to /echo, over a fresh connection and
// decodes what the upstream says it received.
func fidEcho(e *Env, raw string) (*Echo, error) {
	c, err := e.Connect()
	if err != nil {
		return nil, err
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := c.Do(method, raw)
	if err != nil {
		return nil, err
	}
	return ParseEcho(resp)
}

// fidExchange sends head and body while reading the response, so that a
// proxy answering before it has taken the whole body is reported with its
// answer instead of blocking the write until the case times out.
func fidExchange(c *Conn, method, head string, body []byte) (*Response, error) {
	written := make(chan error, 1)
	go func() {
		err := c.Send(head)
		if err == nil && len(body) > 0 {
			_, err = c.Write(body)
		}
		written <- err
	}()
	resp, rerr := c.Read(method)
	if rerr != nil || resp.StatusCode != http.StatusOK {
		// Nothing more will be read, so the writer is unblocked by closing.
		c.Close()
		<-written
		return resp, rerr
	}
	select {
	case werr := <-written:
		if werr != nil {
			return nil, fmt.Errorf("the proxy answered %s, but writing the request failed: %v", resp.Status, werr)
		}
	case <-time.After(10 * time.Second):
		c.Close()
		<-written
		return nil, fmt.Errorf("the proxy answered %s before taking the whole %d-byte body", resp.Status, len(body))
	}
	return resp, nil
}

// fidBody is n bytes that are not the upstream's pattern and hold every
// byte value, CR and LF included, so no framing can pass by accident.
func fidBody(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{'p', 'r', 'o', 'x', 'y', 'l', 'a', 'b'}).Read(b)
	return b
}

// fidGetStatus sends a GET for target on c and requires the given status.
func fidGetStatus(c *Conn, target string, status int) (*Response, error) {
	resp, err := c.Do("GET", fidRequest("GET", target))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	if resp.StatusCode != status {
		return nil, fmt.Errorf("GET %s: want status %d, got %s: %q", target, status, resp.Status, clip(resp.Body))
	}
	return resp, nil
}

// fidInStep checks that the connection still carries whole exchanges after
// the one described by after: a GET of size pattern bytes on it must come
// back 200 and whole. A proxy that framed the earlier answer wrongly leaves
// bytes behind that this request then reads.
func fidInStep(c *Conn, after string, size int) error {
	target := fmt.Sprintf("/?size=%d", size)
	next, err := fidGetStatus(c, target, http.StatusOK)
	if err != nil {
		return fmt.Errorf("after %s on the same connection: %w", after, err)
	}
	return fidSameBytes("GET "+target+" after "+after, next.Body, Pattern(size))
}

// fidSameBytes reports how got differs from want: the lengths, or the
// first differing offset with the bytes around it.
func fidSameBytes(what string, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-16, 0)
	return fmt.Errorf("%s: want %d bytes, got %d; first difference at offset %d: want %q, got %q",
		what, len(want), len(got), i, clip(want[from:min(len(want), i+32)]), clip(got[from:min(len(got), i+32)]))
}

// fidEchoBody checks the body the upstream reports against the one sent.
func fidEchoBody(ec *Echo, sent []byte) error {
	if ec.BodyBytes != int64(len(sent)) || ec.BodySHA256 != SHA256(sent) {
		return fmt.Errorf("upstream received a %d-byte body with SHA-256 %s; sent %d bytes with SHA-256 %s",
			ec.BodyBytes, ec.BodySHA256, len(sent), SHA256(sent))
	}
	return nil
}

func fidMethods(e *Env) error {
	form := []byte("field=value&n=1")
	for _, tc := range []struct {
		method string
		body   []byte
	}{
		{"GET", nil},
		{"POST", form},
		{"PUT", form},
		{"DELETE", nil},
		{"PATCH", form},
		{"OPTIONS", nil},
	} {
		target := "/echo/method?m=" + strings.ToLower(tc.method)
		var fields []string
		if tc.body != nil {
			fields = append(fields, "Content-Length: "+strconv.Itoa(len(tc.body)))
		}
		ec, err := fidEcho(e, fidRequest(tc.method, target, fields...)+string(tc.body))
		if err != nil {
			return fmt.Errorf("%s %s: %w", tc.method, target, err)
		}
		if ec.Method != tc.method || ec.Target != target {
			return fmt.Errorf("sent %s %s, upstream received %s %s", tc.method, target, ec.Method, ec.Target)
		}
		if err := fidEchoBody(ec, tc.body); err != nil {
			return fmt.Errorf("%s: %w", tc.method, err)
		}
	}
	return nil
}

// fidHeadMethod checks HEAD where the upstream's answer announces a body:
// the client must get the head alone, or the next response on the
// connection starts with stray body bytes.
func fidHeadMethod(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	// The upstream echoes the method in its JSON, so its answer to HEAD
	// announces exactly one byte more than its answer to the same GET: the
	// only way to see from the client that HEAD arrived as HEAD.
	const echoTarget = "/echo/head?x=1"
	head, err := c.Do("HEAD", fidRequest("HEAD", echoTarget))
	if err != nil {
		return fmt.Errorf("HEAD %s: %w", echoTarget, err)
	}
	if head.StatusCode != http.StatusOK {
		return fmt.Errorf("HEAD %s: want 200, got %s", echoTarget, head.Status)
	}
	get, err := c.Do("GET", fidRequest("GET", echoTarget))
	if err != nil {
		return fmt.Errorf("GET %s after HEAD on the same connection: %w (did the proxy send a body with the HEAD response?)", echoTarget, err)
	}
	ec, err := ParseEcho(get)
	if err != nil {
		return fmt.Errorf("GET %s after HEAD on the same connection: %w (did the proxy send a body with the HEAD response?)", echoTarget, err)
	}
	if ec.Method != "GET" || ec.Target != echoTarget {
		return fmt.Errorf("GET %s after HEAD: upstream received %s %s", echoTarget, ec.Method, ec.Target)
	}
	cl := head.Header.Values("Content-Length")
	if want := strconv.Itoa(len(get.Body) + 1); len(cl) != 1 || cl[0] != want {
		return fmt.Errorf("HEAD %s: want the upstream's Content-Length: %s (one more than the %d bytes answered to GET, for the method's name), got Content-Length %q",
			echoTarget, want, len(get.Body), cl)
	}

	for _, target := range []string{"/?size=3000", "/?size=3000&chunked=1"} {
		resp, err := c.Do("HEAD", fidRequest("HEAD", target))
		if err != nil {
			return fmt.Errorf("HEAD %s: %w", target, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HEAD %s: want 200, got %s", target, resp.Status)
		}
		if cl := resp.Header.Values("Content-Length"); len(cl) > 0 && (len(cl) != 1 || cl[0] != "3000") {
			return fmt.Errorf("HEAD %s: the upstream announced 3000 bytes, the proxy's answer has Content-Length %q", target, cl)
		}
		if err := fidInStep(c, "HEAD "+target+" (did the proxy send a body with the HEAD response?)", 7); err != nil {
			return err
		}
	}
	return nil
}

func fidRequestTarget(e *Env) error {
	for _, target := range []string{
		"/echo/%41%2F%2f%20%25x",
		"/echo//a//b//",
		"/echo/a/../../c",
		"/echo/./a/./b/.",
		"/echo/a//b/../c?x=%2F&y=1",
		"/echo?",
		"/echo/x;p=1?a=1&a=2&&b=+&c=%7e~!$'()*,;:@/?&",
		"/echo?q=" + strings.Repeat("a%2Fb-", 683),
	} {
		ec, err := fidEcho(e, fidRequest("GET", target))
		if err != nil {
			return fmt.Errorf("GET %q: %w", clip([]byte(target)), err)
		}
		if ec.Target != target {
			return fmt.Errorf("request target changed on the way: sent %q, upstream received %q", clip([]byte(target)), clip([]byte(ec.Target)))
		}
	}
	return nil
}

// fidRepeatedHeaders checks that repeated fields keep their values in
// order. RFC 9110 5.3 lets a proxy combine them into one comma-separated
// field, so the values are compared as one list.
func fidRepeatedHeaders(e *Env) error {
	ec, err := fidEcho(e, fidRequest("GET", "/echo/repeated",
		"X-Multi: one",
		"X-Other: a",
		"X-Multi: two, three",
		"x-multi: four",
		"X-Other: b",
		"X-MULTI: five",
	))
	if err != nil {
		return err
	}
	for name, want := range map[string]string{
		"X-Multi": "one, two, three, four, five",
		"X-Other": "a, b",
	} {
		got := ec.Values(name)
		if strings.Join(got, ", ") != want {
			return fmt.Errorf("%s: sent the values %q in this order, upstream received the fields %q", name, want, got)
		}
	}
	return nil
}

// fidHeaderValues checks that field values arrive unchanged. Only the
// optional whitespace around a value is not part of it (RFC 9112 5), so
// that alone may go. Names are compared without case, which is all RFC 9110
// 5.1 and the contract ask for.
func fidHeaderValues(e *Env) error {
	fields := []struct{ name, sent, want string }{
		{"X-Spaces", "a  b \t c", "a  b \t c"},
		{"X-Padded", " \t padded \t ", "padded"},
		{"X-Quoted", `"a, b", c;q=0.5`, `"a, b", c;q=0.5`},
		{"X-Empty", "", ""},
		{"X-Obs-Text", "caf\xc3\xa9", "caf\xc3\xa9"},
		{"X-Symbols", "!#$%&'*+-.^_`|~/\\()<>@[]{}?=", "!#$%&'*+-.^_`|~/\\()<>@[]{}?="},
		{"X-Long", strings.Repeat("0123456789", 400), strings.Repeat("0123456789", 400)},
	}
	var sent []string
	for _, f := range fields {
		sent = append(sent, f.name+":"+f.sent)
	}
	ec, err := fidEcho(e, fidRequest("GET", "/echo/values", sent...))
	if err != nil {
		return err
	}
	for _, f := range fields {
		got := ec.Values(f.name)
		if len(got) != 1 || strings.Trim(got[0], " \t") != f.want {
			return fmt.Errorf("%s: sent the value %q, upstream received %q", f.name, clip([]byte(f.sent)), got)
		}
	}
	return nil
}

// fidFieldsExact checks that the upstream gets the client's fields, Host
// included, and no others but what the contract lets the proxy add: its
// X-Forwarded-For and Via entries, its own Connection option for the
// upstream hop, and a Content-Length of 0 for the empty body. Order between
// different names carries no meaning (RFC 9110 5.3), so only each name's
// values are compared.
func fidFieldsExact(e *Env) error {
	sent := [][2]string{
		{"Host", "conformance.test:8443"},
		{"User-Agent", "proxylab-conformance"},
		{"Accept", "*/*"},
		{"X-A", "1"},
		{"Cookie", "a=1; b=2"},
		{"X-B", "2"},
	}
	var raw strings.Builder
	raw.WriteString("GET /echo/fields HTTP/1.1\r\n")
	want := map[string][]string{}
	for _, f := range sent {
		raw.WriteString(f[0] + ": " + f[1] + "\r\n")
		want[strings.ToLower(f[0])] = append(want[strings.ToLower(f[0])], f[1])
	}
	raw.WriteString("\r\n")
	ec, err := fidEcho(e, raw.String())
	if err != nil {
		return err
	}
	got := map[string][]string{}
	for _, h := range ec.Headers {
		name := strings.ToLower(h[0])
		switch {
		case name == "x-forwarded-for" || name == "via":
			// Checked by the hop-by-hop group.
			continue
		case name == "connection":
			if err := hopOwnConnection("the upstream's request", []string{h[1]}); err != nil {
				return err
			}
			continue
		case name == "content-length" && h[1] == "0":
			continue
		}
		got[name] = append(got[name], h[1])
	}
	for name, w := range want {
		if g := got[name]; !slices.Equal(g, w) {
			return fmt.Errorf("sent %s %q, the upstream received %q", name, w, g)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			return fmt.Errorf("the upstream received %s %q, which the client did not send and the contract does not let the proxy add", name, g)
		}
	}
	return nil
}

func fidBodyContentLength(e *Env) error {
	for _, n := range []int{0, 1, 1 << 20, DefaultMaxBodyBytes} {
		body := fidBody(n)
		c, err := e.Connect()
		if err != nil {
			return err
		}
		head := fidRequest("POST", "/echo/body", "Content-Length: "+strconv.Itoa(n))
		resp, err := fidExchange(c, "POST", head, body)
		if err != nil {
			return fmt.Errorf("POST of %d bytes: %w", n, err)
		}
		ec, err := ParseEcho(resp)
		if err != nil {
			return fmt.Errorf("POST of %d bytes: %w", n, err)
		}
		if err := fidEchoBody(ec, body); err != nil {
			return err
		}
	}
	return nil
}

// fidBodyChunked sends a chunked body with chunk extensions, upper- and
// lower-case sizes and a last chunk without trailers, then a second
// request on the same connection: if the proxy took the body's end in the
// wrong place, that request would not parse.
func fidBodyChunked(e *Env) error {
	body := fidBody(70000)
	var raw strings.Builder
	raw.WriteString(fidRequest("POST", "/echo/chunked", "Transfer-Encoding: chunked"))
	off := 0
	for i, n := range []int{5, 26, 1, 65536, 1000, 3432} {
		ext := [...]string{";ext=1", `;name="quoted value"`, ";flag", "", ";a=1;b=2", ""}[i]
		size := strconv.FormatInt(int64(n), 16)
		if i%2 == 1 {
			size = strings.ToUpper(size)
		}
		raw.WriteString(size + ext + "\r\n")
		raw.Write(body[off : off+n])
		raw.WriteString("\r\n")
		off += n
	}
	if off != len(body) {
		panic("chunk sizes do not add up to the body")
	}
	raw.WriteString("0\r\n\r\n")

	c, err := e.Connect()
	if err != nil {
		return err
	}
	resp, err := c.Do("POST", raw.String())
	if err != nil {
		return fmt.Errorf("chunked POST: %w", err)
	}
	ec, err := ParseEcho(resp)
	if err != nil {
		return fmt.Errorf("chunked POST: %w", err)
	}
	if err := fidEchoBody(ec, body); err != nil {
		return err
	}
	next, err := c.Do("GET", fidRequest("GET", "/echo/after-chunked"))
	if err != nil {
		return fmt.Errorf("GET after a chunked POST on the same connection: %w", err)
	}
	if ec, err := ParseEcho(next); err != nil {
		return fmt.Errorf("GET after a chunked POST on the same connection: %w", err)
	} else if ec.Method != "GET" || ec.Target != "/echo/after-chunked" {
		return fmt.Errorf("GET /echo/after-chunked after a chunked POST: upstream received %s %s", ec.Method, ec.Target)
	}
	return nil
}

func fidStatusCodes(e *Env) error {
	for i, status := range []int{201, 202, 301, 404, 418, 500, 503, 599} {
		size := 11 + i*97
		target := fmt.Sprintf("/?status=%d&size=%d", status, size)
		c, err := e.Connect()
		if err != nil {
			return err
		}
		resp, err := fidGetStatus(c, target, status)
		if err != nil {
			return err
		}
		if err := fidSameBytes("GET "+target+" body", resp.Body, Pattern(size)); err != nil {
			return err
		}
	}
	return nil
}

// fidNoBodyStatuses checks 204 and 304, which end at their head whatever it
// says (RFC 9112 6.3): a proxy that frames a body after them desynchronises
// the connection, which the following request shows.
func fidNoBodyStatuses(e *Env) error {
	for _, status := range []int{http.StatusNoContent, http.StatusNotModified} {
		c, err := e.Connect()
		if err != nil {
			return err
		}
		if _, err := fidGetStatus(c, fmt.Sprintf("/?status=%d", status), status); err != nil {
			return err
		}
		if err := fidInStep(c, fmt.Sprintf("a %d (did the proxy frame a body after it?)", status), 9); err != nil {
			return err
		}
	}
	return nil
}

// fidChunkedResponse checks chunked upstream answers; the proxy may pass
// them on chunked or with a Content-Length, but the content must be whole,
// and the next response on the connection must start where this one ends.
func fidChunkedResponse(e *Env) error {
	for _, size := range []int{0, 1, 5000, 300000} {
		c, err := e.Connect()
		if err != nil {
			return err
		}
		target := fmt.Sprintf("/?chunked=1&size=%d", size)
		resp, err := fidGetStatus(c, target, http.StatusOK)
		if err != nil {
			return err
		}
		if err := fidSameBytes("GET "+target+" body", resp.Body, Pattern(size)); err != nil {
			return err
		}
		if err := fidInStep(c, "GET "+target, 4); err != nil {
			return err
		}
	}
	return nil
}

func fidLargeResponse(e *Env) error {
	const size = 8 << 20
	want := SHA256(Pattern(size))
	for _, target := range []string{
		fmt.Sprintf("/?size=%d", size),
		fmt.Sprintf("/?size=%d&chunked=1", size),
	} {
		c, err := e.Connect()
		if err != nil {
			return err
		}
		resp, err := fidGetStatus(c, target, http.StatusOK)
		if err != nil {
			return err
		}
		if got := SHA256(resp.Body); len(resp.Body) != size || got != want {
			return fmt.Errorf("GET %s: want %d bytes with SHA-256 %s, got %d bytes with SHA-256 %s",
				target, size, want, len(resp.Body), got)
		}
	}
	return nil
}

// fidResponseHeaders compares the upstream's own answer with the one
// relayed through the proxy. Date changes from one answer to the next,
// framing and connection fields belong to each hop, and Via is what the
// proxy adds; every other field must come through with the same values.
func fidResponseHeaders(e *Env) error {
	hop := map[string]bool{"Date": true, "Content-Length": true, "Transfer-Encoding": true,
		"Connection": true, "Keep-Alive": true, "Via": true}
	for _, target := range []string{"/?size=10", "/?status=404&size=3", "/echo/response-headers"} {
		direct, err := e.ConnectTo(e.Upstream())
		if err != nil {
			return err
		}
		want, err := direct.Do("GET", fidRequest("GET", target))
		if err != nil {
			return fmt.Errorf("GET %s from the upstream itself: %w", target, err)
		}
		c, err := e.Connect()
		if err != nil {
			return err
		}
		got, err := c.Do("GET", fidRequest("GET", target))
		if err != nil {
			return fmt.Errorf("GET %s: %w", target, err)
		}
		if got.StatusCode != want.StatusCode {
			return fmt.Errorf("GET %s: the upstream answers %s, the proxy relayed %s", target, want.Status, got.Status)
		}
		for name, values := range want.Header {
			if hop[name] {
				continue
			}
			if g := got.Header.Values(name); strings.Join(g, ", ") != strings.Join(values, ", ") {
				return fmt.Errorf("GET %s: the upstream answers %s: %q, the proxy relayed %q", target, name, values, g)
			}
		}
	}
	return nil
}

// continueWait bounds how long a client holding its body back waits for
// 100 Continue. Every proxy sends it before reading the body, so the bound
// only decides how soon a proxy that never does is reported.
const continueWait = 5 * time.Second

// fidExpectContinue sends an HTTP/1.1 request with Expect: 100-continue
// and holds its body back, as curl does for large uploads: the proxy must
// answer 100 Continue (once: an interim answer relayed from the upstream as
// well would be read as the final one), then forward the whole body. An
// HTTP/1.0 client cannot read interim answers, so its request, body sent
// at once, gets the final answer first.
func fidExpectContinue(e *Env) error {
	body := fidBody(70000)
	c, err := e.Connect()
	if err != nil {
		return err
	}
	head := fidRequest("POST", "/echo/expect", "Expect: 100-continue", "Content-Length: "+strconv.Itoa(len(body)))
	if err := c.Send(head); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(continueWait))
	interim, err := c.Read("POST")
	if err != nil {
		return fmt.Errorf("POST with Expect: 100-continue, body held back: no 100 Continue within %s: %w", continueWait, err)
	}
	if interim.StatusCode != http.StatusContinue {
		return fmt.Errorf("POST with Expect: 100-continue, body held back: want 100 Continue first, got %s", interim.Status)
	}
	c.SetReadDeadline(time.Time{})
	resp, err := fidExchange(c, "POST", "", body)
	if err != nil {
		return fmt.Errorf("POST with Expect: 100-continue after 100 Continue: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST with Expect: 100-continue after 100 Continue: want 200, got %s (a second interim answer?): %q", resp.Status, clip(resp.Body))
	}
	ec, err := ParseEcho(resp)
	if err != nil {
		return err
	}
	if err := fidEchoBody(ec, body); err != nil {
		return fmt.Errorf("POST with Expect: 100-continue: %w", err)
	}
	if err := fidInStep(c, "POST with Expect: 100-continue", 100); err != nil {
		return err
	}

	c10, err := e.Connect()
	if err != nil {
		return err
	}
	raw := "POST /echo/expect10 HTTP/1.0\r\nHost: conformance.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
	resp, err = c10.Do("POST", raw)
	if err != nil {
		return fmt.Errorf("HTTP/1.0 POST with Expect: 100-continue: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP/1.0 POST with Expect: 100-continue: want 200 as the first answer, got %s", resp.Status)
	}
	ec, err = ParseEcho(resp)
	if err != nil {
		return err
	}
	return fidEchoBody(ec, []byte("hello"))
}
