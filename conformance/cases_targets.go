package conformance

import (
	"fmt"
	"net/http"
	"slices"
)

// The targets cases pin contract-v2 section 1: the four request-target
// forms of RFC 9112 3.2, what reaches the upstream for each, and that
// every other target is refused without being forwarded.
var targetCases = []Case{
	{Group: "targets", Name: "absolute-form", Run: targetsAbsolute},
	{Group: "targets", Name: "asterisk-form", Run: targetsAsterisk},
	{Group: "targets", Name: "refused", Run: targetsRefused},
	{Group: "targets", Name: "connect-not-implemented", Run: targetsConnect},
}

// targetsForward is a request and what the upstream must see of it.
type targetsForward struct {
	raw            string
	method, target string
	host           string // the one Host field the upstream must get
	body           string
}

// targetsCheck sends each input through a private proxy to a scripted
// upstream and compares what arrived there.
func targetsCheck(e *Env, inputs []targetsForward) error {
	s, p, err := e.ScriptedProxy(func(c *ScriptConn) { c.Serve(ScriptAnswer) })
	if err != nil {
		return err
	}
	for _, in := range inputs {
		if err := targetsOne(e, s, p.Addr(), in); err != nil {
			return fmt.Errorf("sent %q: %w", clip([]byte(in.raw)), err)
		}
	}
	return nil
}

func targetsOne(e *Env, s *Scripted, proxy string, in targetsForward) error {
	c, err := e.ConnectTo(proxy)
	if err != nil {
		return err
	}
	n := len(s.Received())
	if err := c.Send(in.raw); err != nil {
		return err
	}
	r, err := scriptRead(c, in.method)
	if err != nil {
		return err
	}
	got := s.Received()[n:]
	if len(got) != 1 {
		return fmt.Errorf("answered %s, and %d requests reached the upstream, want 1", r.Status, len(got))
	}
	g := got[0]
	if g.Method != in.method || g.Target != in.target {
		return fmt.Errorf("the upstream got %s %s, want %s %s", g.Method, g.Target, in.method, in.target)
	}
	if h := g.Values("Host"); !slices.Equal(h, []string{in.host}) {
		return fmt.Errorf("the upstream got Host fields %q, want exactly one, %q (the target's authority as written)", h, in.host)
	}
	if string(g.Body) != in.body {
		return fmt.Errorf("the upstream got body %q, want %q", clip(g.Body), in.body)
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s %q, want the upstream's 200", r.Status, clip(r.Body))
	}
	return nil
}

func targetsAbsolute(e *Env) error {
	return targetsCheck(e, []targetsForward{
		{raw: "GET http://a.example:8080/p?q=1 HTTP/1.1\r\nHost: client.example\r\n\r\n",
			method: "GET", target: "/p?q=1", host: "a.example:8080"},
		{raw: "GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
			method: "GET", target: "/", host: "a.example"},
		{raw: "GET http://a.example:8080?q=1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
			method: "GET", target: "/?q=1", host: "a.example:8080"},
		{raw: "GET HTTP://A.Example:8080/Up/%2F?X=%2f HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "GET", target: "/Up/%2F?X=%2f", host: "A.Example:8080"},
		{raw: "GET HtTpS://secure.example/s HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "GET", target: "/s", host: "secure.example"},
		{raw: "GET http://127.0.0.1:9/ip HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "GET", target: "/ip", host: "127.0.0.1:9"},
		{raw: "GET http://[::1]:8080/v6 HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "GET", target: "/v6", host: "[::1]:8080"},
		{raw: "GET http://a.example/ten HTTP/1.0\r\n\r\n",
			method: "GET", target: "/ten", host: "a.example"},
		{raw: "POST http://a.example/post HTTP/1.1\r\nHost: other.example\r\nContent-Length: 4\r\n\r\nbody",
			method: "POST", target: "/post", host: "a.example", body: "body"},
	})
}

func targetsAsterisk(e *Env) error {
	return targetsCheck(e, []targetsForward{
		{raw: "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
			method: "OPTIONS", target: "*", host: "a.example"},
		{raw: "OPTIONS http://a.example:8080 HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "OPTIONS", target: "*", host: "a.example:8080"},
		{raw: "OPTIONS http://a.example:8080/ HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "OPTIONS", target: "/", host: "a.example:8080"},
		{raw: "OPTIONS http://a.example:8080?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
			method: "OPTIONS", target: "/?q=1", host: "a.example:8080"},
	})
}

// targetsGet is a GET with target and a Host field.
func targetsGet(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: a.example\r\n\r\n"
}

func targetsRefused(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusBadRequest, false, []errsInput{
		{name: "asterisk-form with GET", raw: targetsGet("*")},
		{name: "asterisk-form with POST", raw: "POST * HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n"},
		{name: "authority-form with GET", raw: targetsGet("a.example:443")},
		{name: "authority-form with OPTIONS", raw: "OPTIONS a.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n"},
		{name: "a fragment in origin-form", raw: targetsGet("/echo/p#frag")},
		{name: "an empty fragment", raw: targetsGet("/echo/p?q=1#")},
		{name: "a fragment in absolute-form", raw: targetsGet("http://a.example/echo#frag")},
		{name: "userinfo", raw: targetsGet("http://user@a.example/echo")},
		{name: "userinfo with a password", raw: targetsGet("http://user:pw@a.example:8080/echo")},
		{name: "an ftp URL", raw: targetsGet("ftp://a.example/echo")},
		{name: "a ws URL", raw: targetsGet("ws://a.example/echo")},
		{name: "no scheme, no slash", raw: targetsGet("a.example/echo")},
		{name: "one slash after the scheme", raw: targetsGet("http:/a.example/echo")},
		{name: "no slashes after the scheme", raw: targetsGet("http:a.example/echo")},
		{name: "an empty authority", raw: targetsGet("http:///echo")},
		{name: "only a port", raw: targetsGet("http://:8080/echo")},
		{name: "only a query", raw: targetsGet("?q=1")},
		{name: "absolute-form over HTTP/1.1 without Host", raw: "GET http://a.example/echo HTTP/1.1\r\n\r\n"},
	})
}

// targetsConnect: the proxies do not tunnel, so CONNECT is a method they
// do not implement (RFC 9110 15.6.2), whatever its target.
func targetsConnect(e *Env) error {
	return errsRejects(e, e.Proxy(), e.Upstream(), http.StatusNotImplemented, false, []errsInput{
		{name: "CONNECT to an authority", raw: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"},
		{name: "CONNECT to the upstream's own address", raw: "CONNECT " + e.Upstream() + " HTTP/1.1\r\nHost: " + e.Upstream() + "\r\n\r\n"},
		{name: "CONNECT with an origin-form target", raw: "CONNECT /echo HTTP/1.1\r\nHost: a.example\r\n\r\n"},
		{name: "CONNECT with an absolute-form target", raw: "CONNECT http://a.example/echo HTTP/1.1\r\nHost: a.example\r\n\r\n"},
	})
}
