package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The interim cases pin contract-v2 section 2: 1xx answers from the
// upstream reach HTTP/1.1 clients in order (RFC 9110 15.2), never HTTP/1.0
// ones; 100 Continue is the proxy's own; 101 is a broken upstream.
var interimCases = []Case{
	{Group: "interim", Name: "relayed-in-order", Run: interimRelayed},
	{Group: "interim", Name: "not-to-http10", Run: interimNotTo10},
	{Group: "interim", Name: "continue-absorbed", Run: interimContinue},
	{Group: "interim", Name: "switching-protocols-refused", Run: interimSwitch},
}

const (
	interimLink  = "</style.css>; rel=preload; as=style"
	interimHints = "HTTP/1.1 103 Early Hints\r\nLink: " + interimLink + "\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n"
	interimProc  = "HTTP/1.1 102 Processing\r\n\r\n"
	interimCont  = "HTTP/1.1 100 Continue\r\n\r\n"
)

// interimScript sends, before the final answer: for /hints a 103 with a
// Link field; for /two a 102 and then a 103; for /continue a 100 as soon as
// the head arrived, before reading the body; for /switch a 101, after
// which it speaks something else and closes.
func interimScript(c *ScriptConn) {
	for {
		r, err := c.ReadHead()
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(r.Target, "/hints"):
			c.Send(interimHints)
		case strings.HasPrefix(r.Target, "/two"):
			c.Send(interimProc)
			c.Send(interimHints)
		case strings.HasPrefix(r.Target, "/continue"):
			c.Send(interimCont)
		case strings.HasPrefix(r.Target, "/switch"):
			c.Send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-other\r\nConnection: Upgrade\r\n\r\nnot HTTP any more")
			return
		}
		if c.ReadBody(r) != nil || c.Send(ScriptAnswer(r)) != nil {
			return
		}
	}
}

// interimWant checks the interim heads a client got against the statuses
// the upstream sent.
func interimWant(heads []rawHead, statuses ...int) error {
	var got []int
	for _, h := range heads {
		got = append(got, h.status)
	}
	if fmt.Sprint(got) != fmt.Sprint(statuses) {
		return fmt.Errorf("the client got interim answers %v before the final one, want %v", got, statuses)
	}
	for _, h := range heads {
		if h.status != 103 {
			continue
		}
		if l := hopFieldValues(h.fields, "Link"); len(l) != 1 || l[0] != interimLink {
			return fmt.Errorf("the 103 reached the client with Link %q, want %q", l, interimLink)
		}
		if x := hopFieldValues(h.fields, "X-Hop"); len(x) > 0 {
			return fmt.Errorf("the 103 reached the client with X-Hop %q, a field its Connection named as hop-by-hop", x)
		}
	}
	return nil
}

func interimRelayed(e *Env) error {
	_, p, err := e.ScriptedProxy(interimScript)
	if err != nil {
		return err
	}
	c, err := e.ConnectTo(p.Addr())
	if err != nil {
		return err
	}
	for _, in := range []struct {
		target   string
		statuses []int
	}{{"/hints", []int{103}}, {"/two", []int{102, 103}}, {"/hints-again", []int{103}}, {"/plain", nil}} {
		what := fmt.Sprintf("GET %s (the upstream sends %v first)", in.target, in.statuses)
		if err := c.Send("GET " + in.target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"); err != nil {
			return err
		}
		heads, err := readInterims(c)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := interimWant(heads, in.statuses...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		r, err := scriptRead(c, "GET")
		if err != nil {
			return fmt.Errorf("%s: the final answer: %w", what, err)
		}
		if err := scriptWantOwn(what, r, "GET", in.target); err != nil {
			return err
		}
	}
	return nil
}

// interimNotTo10: an HTTP/1.0 client cannot tell an interim answer from
// the final one (RFC 9110 15.2).
func interimNotTo10(e *Env) error {
	_, p, err := e.ScriptedProxy(interimScript)
	if err != nil {
		return err
	}
	for _, raw := range []string{
		"GET /hints HTTP/1.0\r\n\r\n",
		"GET /two HTTP/1.0\r\nHost: proxylab.test\r\n\r\n",
		"GET /hints-kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	} {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		if err := c.Send(raw); err != nil {
			return err
		}
		heads, err := readInterims(c)
		if err != nil {
			return fmt.Errorf("sent %q: %w", raw, err)
		}
		if len(heads) > 0 {
			return fmt.Errorf("sent %q: an HTTP/1.0 client got a %d interim answer: %q", raw, heads[0].status, clip([]byte(heads[0].text)))
		}
		target := strings.Fields(raw)[1]
		r, err := scriptRead(c, "GET")
		if err != nil {
			return fmt.Errorf("sent %q: %w", raw, err)
		}
		if err := scriptWantOwn(fmt.Sprintf("sent %q", raw), r, "GET", target); err != nil {
			return err
		}
	}
	return nil
}

// interimContinue: the upstream says 100 Continue to every request; the
// proxy absorbs it, so a client that asked sees only the proxy's own 100
// and one that did not sees none.
func interimContinue(e *Env) error {
	_, p, err := e.ScriptedProxy(interimScript)
	if err != nil {
		return err
	}
	c, err := e.ConnectTo(p.Addr())
	if err != nil {
		return err
	}
	for _, target := range []string{"/continue-get", "/continue-post"} {
		raw := "GET " + target + " HTTP/1.1\r\nHost: proxylab.test\r\n\r\n"
		if strings.HasSuffix(target, "post") {
			raw = "POST " + target + " HTTP/1.1\r\nHost: proxylab.test\r\nContent-Length: 5\r\n\r\nhello"
		}
		what := fmt.Sprintf("%s without Expect (the upstream answers 100 first)", strings.Fields(raw)[0]+" "+target)
		if err := interimNoneThenOwn(c, raw, what, target); err != nil {
			return err
		}
	}
	const target = "/continue-expect"
	const what = "POST " + target + " with Expect: 100-continue (the upstream answers 100 too)"
	if err := c.Send("POST " + target + " HTTP/1.1\r\nHost: proxylab.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(scriptWait))
	first, err := c.Read("POST")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if first.StatusCode != http.StatusContinue {
		return fmt.Errorf("%s: answered %s before the body was sent, want 100 Continue", what, first.Status)
	}
	return interimNoneThenOwn(c, "hello", what, target)
}

// interimNoneThenOwn sends raw and wants the final answer to target with
// no interim answer before it.
func interimNoneThenOwn(c *Conn, raw, what, target string) error {
	if err := c.Send(raw); err != nil {
		return err
	}
	heads, err := readInterims(c)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(heads) > 0 {
		return fmt.Errorf("%s: the client got %d interim answer(s), the first %q, want none (more)", what, len(heads), clip([]byte(heads[0].text)))
	}
	r, err := scriptRead(c, "POST")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	method := "POST"
	if strings.HasPrefix(raw, "GET ") {
		method = "GET"
	}
	return scriptWantOwn(what, r, method, target)
}

// interimSwitch: the proxy never forwards Upgrade, so a 101 answers a
// question it never asked.
func interimSwitch(e *Env) error {
	_, p, err := e.ScriptedProxy(interimScript)
	if err != nil {
		return err
	}
	for _, raw := range []string{
		"GET /switch HTTP/1.1\r\nHost: proxylab.test\r\n\r\n",
		"GET /switch HTTP/1.1\r\nHost: proxylab.test\r\nConnection: Upgrade\r\nUpgrade: x-other\r\n\r\n",
	} {
		c, err := e.ConnectTo(p.Addr())
		if err != nil {
			return err
		}
		if err := c.Send(raw); err != nil {
			return err
		}
		r, err := scriptRead(c, "GET")
		if err != nil {
			return fmt.Errorf("sent %q (the upstream answers 101): %w; want 502", raw, err)
		}
		if r.StatusCode != http.StatusBadGateway {
			return fmt.Errorf("sent %q (the upstream answers 101): answered %s %q, want 502", raw, r.Status, clip(r.Body))
		}
		if err := errsShortText(r); err != nil {
			return err
		}
	}
	return nil
}
