package loadgen

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// request is the one HTTP/1.1 request every hit of a step sends, encoded
// once: the hot path writes the same bytes again and again.
type request struct {
	method string
	url    string
	wire   []byte
	body   int // bytes

	// replayable requests may be sent again on a fresh connection when a
	// reused one turns out to have been closed by the peer, as net/http does.
	replayable bool
	// errPrefix starts transport error texts the way net/http's do
	// (`Get "http://...": `), so errors read as they did with vegeta's client.
	errPrefix string
}

func newRequest(t Target, keepAlive bool) (*request, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: target URL %q: %w", t.URL, err)
	}
	method := t.method()
	if !httpguts.ValidHeaderFieldName(method) {
		return nil, fmt.Errorf("loadgen: target: invalid method %q", method)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	names := make([]string, 0, len(t.Header))
	for name := range t.Header {
		names = append(names, name)
	}
	// Sorted, so that the bytes on the wire do not change from run to run.
	slices.Sort(names)
	for _, name := range names {
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Connection", "Transfer-Encoding":
			return nil, fmt.Errorf("loadgen: target header %q is set by the load generator", name)
		}
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("loadgen: target header name %q is invalid", name)
		}
		for _, v := range t.Header[name] {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("loadgen: target header %s: invalid value %q", name, v)
			}
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	if len(t.Body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b.WriteString("Content-Length: " + strconv.Itoa(len(t.Body)) + "\r\n")
	}
	if !keepAlive {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(t.Body)

	r := &request{
		method:     method,
		url:        t.URL,
		wire:       []byte(b.String()),
		body:       len(t.Body),
		errPrefix:  fmt.Sprintf("%s%s %q: ", method[:1], strings.ToLower(method[1:]), t.URL),
		replayable: slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace}, method),
	}
	return r, nil
}
