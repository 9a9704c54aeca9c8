package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// hopByHopCases check what RFC 9110 7.6 asks of an intermediary: fields
// that describe one connection stay on it, and the proxy says it is there
// (Via) and whom it forwards for (X-Forwarded-For).
var hopByHopCases = []Case{
	{Group: "hop-by-hop", Name: "request-hop-fields", Run: hopRequestFields},
	{Group: "hop-by-hop", Name: "connection-named-fields", Run: hopConnectionNamed},
	{Group: "hop-by-hop", Name: "transfer-encoding-replaced", Run: hopTransferEncoding},
	{Group: "hop-by-hop", Name: "response-hop-fields", Run: hopResponseFields},
	{Group: "hop-by-hop", Name: "upstream-close-not-relayed", Run: hopUpstreamClose},
	{Group: "hop-by-hop", Name: "x-forwarded-for-set", Run: hopXFFSet},
	{Group: "hop-by-hop", Name: "x-forwarded-for-appended", Run: hopXFFAppended},
	{Group: "hop-by-hop", Name: "via-added", Run: hopViaAdded},
	{Group: "hop-by-hop", Name: "via-appended", Run: hopViaAppended},
	{Group: "hop-by-hop", Name: "via-on-response", Run: hopViaOnResponse},
}

// hopClient is the address the proxy sees the suite's connections come
// from: they are all made to a loopback IPv4 address.
const hopClient = "127.0.0.1"

// hopTokens splits comma-separated list values into their elements,
// dropping the empty ones the list syntax allows (RFC 9110 5.6.1), so that
// "a, b" in one field and "a" and "b" in two compare equal.
func hopTokens(values []string) []string {
	var t []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.Trim(s, " \t"); s != "" {
				t = append(t, s)
			}
		}
	}
	return t
}

// hopOwnConnection checks the Connection fields a proxy may send on a hop
// of its own: only its close or keep-alive choice for that connection, and
// never a field name it was given by the other side.
func hopOwnConnection(where string, values []string) error {
	for _, t := range hopTokens(values) {
		if !strings.EqualFold(t, "close") && !strings.EqualFold(t, "keep-alive") {
			return fmt.Errorf("%s has Connection %q: only the proxy's own close or keep-alive may appear there", where, values)
		}
	}
	return nil
}

// hopRequestFields sends each hop-by-hop field on its own, not named by
// any Connection field, so the proxy has to know the contract's list.
func hopRequestFields(e *Env) error {
	for _, f := range []struct{ name, value string }{
		{"Keep-Alive", "timeout=7, max=3"},
		{"Proxy-Connection", "keep-alive"},
		{"Proxy-Authorization", "Basic Y29uZm9ybWFuY2U6c2VjcmV0"},
		{"Proxy-Authenticate", `Basic realm="conformance"`},
		{"TE", "trailers"},
		{"Trailer", "X-Checksum"},
		{"Upgrade", "websocket"},
	} {
		ec, err := fidEcho(e, fidRequest("GET", "/echo/hop", f.name+": "+f.value, "X-End-To-End: kept"))
		if err != nil {
			return fmt.Errorf("GET with %s: %s: %w", f.name, f.value, err)
		}
		if got := ec.Values(f.name); len(got) > 0 {
			return fmt.Errorf("sent %s: %s, a hop-by-hop field; the upstream received %s %q", f.name, f.value, f.name, got)
		}
		if got := ec.Values("X-End-To-End"); !slices.Equal(got, []string{"kept"}) {
			return fmt.Errorf("sent %s together with X-End-To-End: kept; the upstream received X-End-To-End %q", f.name, got)
		}
		if err := hopOwnConnection("the upstream's request", ec.Values("Connection")); err != nil {
			return err
		}
	}
	return nil
}

// hopConnectionNamed checks that fields named by Connection are dropped,
// wherever the Connection field stands, however the name is spelled and
// however many Connection fields there are (RFC 9110 7.6.1).
func hopConnectionNamed(e *Env) error {
	for _, tc := range []struct {
		fields  []string
		dropped []string
	}{
		{[]string{"Connection: keep-alive, X-Secret", "X-Secret: 1"}, []string{"X-Secret"}},
		{[]string{"X-Secret: 1", "Connection: x-secret"}, []string{"X-Secret"}},
		{[]string{"Connection: X-A", "X-A: 1", "X-B: 2", "Connection:  close ,x-b , "}, []string{"X-A", "X-B"}},
		{[]string{"Connection: Upgrade", "Upgrade: websocket"}, []string{"Upgrade"}},
	} {
		fields := append(slices.Clone(tc.fields), "X-End-To-End: kept")
		ec, err := fidEcho(e, fidRequest("GET", "/echo/connection", fields...))
		if err != nil {
			return fmt.Errorf("GET with %q: %w", tc.fields, err)
		}
		for _, name := range tc.dropped {
			if got := ec.Values(name); len(got) > 0 {
				return fmt.Errorf("sent %q, which names %s as hop-by-hop; the upstream received %s %q", tc.fields, name, name, got)
			}
		}
		if got := ec.Values("X-End-To-End"); !slices.Equal(got, []string{"kept"}) {
			return fmt.Errorf("sent %q and X-End-To-End: kept; the upstream received X-End-To-End %q", tc.fields, got)
		}
		if err := hopOwnConnection(fmt.Sprintf("after %q the upstream's request", tc.fields), ec.Values("Connection")); err != nil {
			return err
		}
	}
	return nil
}

// hopTransferEncoding checks that the client's Transfer-Encoding field is
// not passed on. The proxy frames the body for the upstream itself: with a
// Content-Length, or chunked with a Transfer-Encoding of its own, which
// the odd spelling of the client's field name tells apart from a copy.
func hopTransferEncoding(e *Env) error {
	const spelling = "tRANSFER-eNCODING"
	body := fidBody(300)
	raw := fidRequest("POST", "/echo/te", spelling+": chunked") +
		"64\r\n" + string(body[:100]) + "\r\nc8\r\n" + string(body[100:]) + "\r\n0\r\n\r\n"
	ec, err := fidEcho(e, raw)
	if err != nil {
		return fmt.Errorf("chunked POST: %w", err)
	}
	if err := fidEchoBody(ec, body); err != nil {
		return err
	}
	te, cl := ec.Values("Transfer-Encoding"), ec.Values("Content-Length")
	switch {
	case len(te) == 0:
		if !slices.Equal(cl, []string{strconv.Itoa(len(body))}) {
			return fmt.Errorf("the upstream received the %d-byte body without Transfer-Encoding and with Content-Length %q", len(body), cl)
		}
	case len(te) != 1 || !strings.EqualFold(te[0], "chunked") || len(cl) > 0:
		return fmt.Errorf("the upstream received Transfer-Encoding %q and Content-Length %q: want one framing, either Content-Length: %d or Transfer-Encoding: chunked",
			te, cl, len(body))
	default:
		for _, h := range ec.Headers {
			if h[0] == spelling {
				return fmt.Errorf("the client's %s: chunked field reached the upstream as sent; the proxy must drop it and frame the body itself", spelling)
			}
		}
	}
	return nil
}

// hopRawHead returns the next response head on c without consuming it, so
// that fields the HTTP client library would fold into its own bookkeeping
// (Transfer-Encoding, Trailer) can be seen as sent.
func hopRawHead(c *Conn) ([]byte, error) {
	for {
		b, _ := c.R.Peek(c.R.Buffered())
		for _, end := range []string{"\r\n\r\n", "\n\n"} {
			if i := bytes.Index(b, []byte(end)); i >= 0 {
				return bytes.Clone(b[:i+len(end)]), nil
			}
		}
		// Waits for at least one byte more.
		if _, err := c.R.Peek(len(b) + 1); err != nil {
			return nil, fmt.Errorf("reading a response head: %w after %q", err, clip(b))
		}
	}
}

// hopHeadFields parses the field lines of a raw response head.
func hopHeadFields(head []byte) [][2]string {
	var fields [][2]string
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	for _, l := range lines[1:] {
		if name, value, ok := strings.Cut(l, ":"); ok {
			fields = append(fields, [2]string{name, strings.Trim(value, " \t")})
		}
	}
	return fields
}

func hopFieldValues(fields [][2]string, name string) []string {
	var v []string
	for _, f := range fields {
		if strings.EqualFold(f[0], name) {
			v = append(v, f[1])
		}
	}
	return v
}

// hopResponseFields checks responses of every framing the upstream uses.
// The upstream cannot be made to send hop-by-hop fields, so this checks
// that the proxy adds none but those describing its own connection to the
// client: Connection with close or keep-alive only, and Transfer-Encoding:
// chunked as the framing it chose.
func hopResponseFields(e *Env) error {
	for _, target := range []string{"/?size=10", "/?size=10&chunked=1", "/?status=503&size=5", "/?status=204", "/close?size=3", "/echo/response"} {
		c, err := e.Connect()
		if err != nil {
			return err
		}
		if err := c.Send(fidRequest("GET", target)); err != nil {
			return err
		}
		head, err := hopRawHead(c)
		if err != nil {
			return fmt.Errorf("GET %s: %w", target, err)
		}
		if _, err := c.Read("GET"); err != nil {
			return fmt.Errorf("GET %s: %w", target, err)
		}
		fields := hopHeadFields(head)
		where := fmt.Sprintf("the response to GET %s (head %q)", target, clip(head))
		for _, name := range []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Upgrade", "Trailer", "TE"} {
			if v := hopFieldValues(fields, name); len(v) > 0 {
				return fmt.Errorf("%s has the hop-by-hop field %s %q", where, name, v)
			}
		}
		if err := hopOwnConnection(where, hopFieldValues(fields, "Connection")); err != nil {
			return err
		}
		if te := hopFieldValues(fields, "Transfer-Encoding"); len(te) > 0 && (len(te) != 1 || !strings.EqualFold(te[0], "chunked")) {
			return fmt.Errorf("%s has Transfer-Encoding %q: the only transfer coding the proxy may frame with is chunked", where, te)
		}
	}
	return nil
}

// hopUpstreamClose checks that the upstream's Connection: close ends the
// upstream connection only: the client asked to keep its connection, and
// the contract honours that.
func hopUpstreamClose(e *Env) error {
	c, err := e.Connect()
	if err != nil {
		return err
	}
	resp, err := c.Do("GET", fidRequest("GET", "/close?size=6"))
	if err != nil {
		return fmt.Errorf("GET /close?size=6: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /close?size=6: want 200, got %s", resp.Status)
	}
	if err := fidSameBytes("GET /close?size=6 body", resp.Body, Pattern(6)); err != nil {
		return err
	}
	// The HTTP client library takes Connection: close out of the header
	// and reports it as Close.
	if resp.Close {
		return errors.New("after the upstream answered GET /close with Connection: close, the proxy answered the client with Connection: close as well: the upstream's choice ends the upstream connection only, and the client asked to keep its own")
	}
	next, err := c.Do("GET", fidRequest("GET", "/?size=4"))
	if err != nil {
		return fmt.Errorf("GET /?size=4 on the same client connection after the upstream closed its own: %w", err)
	}
	return fidSameBytes("GET /?size=4 after GET /close", next.Body, Pattern(4))
}

func hopXFFSet(e *Env) error {
	ec, err := fidEcho(e, fidRequest("GET", "/echo/xff"))
	if err != nil {
		return err
	}
	if got := ec.Values("X-Forwarded-For"); !slices.Equal(hopTokens(got), []string{hopClient}) {
		return fmt.Errorf("sent no X-Forwarded-For; want the upstream to receive X-Forwarded-For: %s, got %q", hopClient, got)
	}
	return nil
}

// hopXFFAppended checks that the client's address goes after the ones
// already listed, whether the proxy appends to the last field or adds one.
func hopXFFAppended(e *Env) error {
	for _, tc := range []struct {
		fields []string
		want   []string
	}{
		{[]string{"X-Forwarded-For: 203.0.113.7"}, []string{"203.0.113.7", hopClient}},
		{[]string{"x-forwarded-for: 198.51.100.1, 203.0.113.7"}, []string{"198.51.100.1", "203.0.113.7", hopClient}},
		{[]string{"X-Forwarded-For: 198.51.100.1", "X-Other: 1", "X-Forwarded-For: 203.0.113.7"}, []string{"198.51.100.1", "203.0.113.7", hopClient}},
	} {
		ec, err := fidEcho(e, fidRequest("GET", "/echo/xff", tc.fields...))
		if err != nil {
			return fmt.Errorf("GET with %q: %w", tc.fields, err)
		}
		if got := ec.Values("X-Forwarded-For"); !slices.Equal(hopTokens(got), tc.want) {
			return fmt.Errorf("sent %q; want the upstream to receive X-Forwarded-For: %s, got %q", tc.fields, strings.Join(tc.want, ", "), got)
		}
	}
	return nil
}

// hopVia is the entry the proxy under test adds to Via.
func hopVia(e *Env) string { return "1.1 proxylab-" + e.Lang() }

func hopViaAdded(e *Env) error {
	ec, err := fidEcho(e, fidRequest("GET", "/echo/via"))
	if err != nil {
		return err
	}
	if got := ec.Values("Via"); !slices.Equal(hopTokens(got), []string{hopVia(e)}) {
		return fmt.Errorf("sent no Via; want the upstream to receive Via: %s, got %q", hopVia(e), got)
	}
	return nil
}

func hopViaAppended(e *Env) error {
	for _, tc := range []struct {
		fields []string
		want   []string
	}{
		{[]string{"Via: 1.0 fred"}, []string{"1.0 fred"}},
		{[]string{"via: 1.0 fred, 1.1 p.example.net (Apache/1.1)", "X-Other: 1", "Via: HTTP/1.1 edge"},
			[]string{"1.0 fred", "1.1 p.example.net (Apache/1.1)", "HTTP/1.1 edge"}},
	} {
		want := slices.Concat(tc.want, []string{hopVia(e)})
		ec, err := fidEcho(e, fidRequest("GET", "/echo/via", tc.fields...))
		if err != nil {
			return fmt.Errorf("GET with %q: %w", tc.fields, err)
		}
		if got := ec.Values("Via"); !slices.Equal(hopTokens(got), want) {
			return fmt.Errorf("sent %q; want the upstream to receive Via: %s, got %q", tc.fields, strings.Join(want, ", "), got)
		}
	}
	return nil
}

// hopViaOnResponse checks Via on answers of each kind the upstream gives:
// with a length, chunked, without a body, an error status and /echo.
func hopViaOnResponse(e *Env) error {
	for _, target := range []string{"/?size=10", "/?size=10&chunked=1", "/?status=204", "/?status=404&size=3", "/echo/via-response"} {
		c, err := e.Connect()
		if err != nil {
			return err
		}
		resp, err := c.Do("GET", fidRequest("GET", target))
		if err != nil {
			return fmt.Errorf("GET %s: %w", target, err)
		}
		if got := resp.Header.Values("Via"); !slices.Equal(hopTokens(got), []string{hopVia(e)}) {
			return fmt.Errorf("GET %s: want the response to carry Via: %s, got %q", target, hopVia(e), got)
		}
	}
	return nil
}
