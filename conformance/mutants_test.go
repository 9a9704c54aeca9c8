package conformance_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/conformance"
)

// A mutant is the real Go proxy with one thing broken on purpose. Each
// must fail the cases listed for it: a case no mutant can make fail would
// pass a proxy that gets its subject wrong.
type mutant struct {
	name     string
	mut      mutation
	mustFail []string
	// kills is set for a mutant whose failure is that the proxy dies, so
	// the suite's liveness check counts as catching it.
	kills bool
}

// hopFields are the request fields the contract names as hop-by-hop, plus
// Connection itself.
var hopFields = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
	"Proxy-Authenticate", "TE", "Trailer", "Upgrade"}

const smuggled = "X-Smuggled-"

// fixed is a shim that is the same for every proxy a mutant starts.
func fixed(spec shimSpec) func(*mutantInstance) *shimSpec {
	return func(*mutantInstance) *shimSpec { return &spec }
}

// requestMethod is the method of a request line.
func requestMethod(line string) string {
	m, _, _ := strings.Cut(line, " ")
	return m
}

// setStatus replaces a response's status code and reason.
func setStatus(h *msgHead, status string) {
	proto, _, _ := strings.Cut(h.lines[0], " ")
	h.lines[0] = proto + " " + status
}

// lastToken keeps only the last element of a list value.
func lastToken(v string) string {
	t := strings.Split(v, ",")
	return strings.TrimSpace(t[len(t)-1])
}

// chunk encodes body as one chunk and the last chunk.
func chunk(h *msgHead, body []byte) []byte {
	h.del("Content-Length")
	h.add("Transfer-Encoding: chunked")
	h.framed = true
	if len(body) == 0 {
		return []byte("0\r\n\r\n")
	}
	return fmt.Appendf(nil, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
}

// mutants is every mutant the suite must catch.
var mutants = slices.Concat(coreMutants, hostileMutants)

// coreMutants break what the first six groups check.
var coreMutants = []mutant{
	// fidelity
	{
		name: "other-methods-sent-as-POST",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			if m := requestMethod(h.lines[0]); m != "GET" && m != "HEAD" && m != "POST" {
				h.lines[0] = "POST" + strings.TrimPrefix(h.lines[0], m)
			}
		}})},
		mustFail: []string{"fidelity/methods"},
	},
	{
		name: "HEAD-sent-as-GET",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			if requestMethod(h.lines[0]) == "HEAD" {
				h.lines[0] = "GET" + strings.TrimPrefix(h.lines[0], "HEAD")
			}
		}})},
		mustFail: []string{"fidelity/head-method"},
	},
	{
		name: "target-decoded",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			h.lines[0] = strings.NewReplacer("%2F", "/", "%2f", "/", "//", "/").Replace(h.lines[0])
		}})},
		mustFail: []string{"fidelity/request-target"},
	},
	{
		name: "repeated-fields-reversed",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			// Each repeated name's values in reverse order, each field in
			// the slot of its first occurrence.
			byName := map[string][]string{}
			for _, l := range h.lines[1:] {
				n, _, _ := strings.Cut(l, ":")
				byName[strings.ToLower(n)] = append(byName[strings.ToLower(n)], l)
			}
			out := h.lines[:1]
			for _, l := range h.lines[1:] {
				n, _, _ := strings.Cut(l, ":")
				fs := byName[strings.ToLower(n)]
				if fs == nil {
					continue
				}
				slices.Reverse(fs)
				out = append(out, fs...)
				byName[strings.ToLower(n)] = nil
			}
			h.lines = out
		}})},
		mustFail: []string{"fidelity/repeated-headers"},
	},
	{
		name: "field-values-squeezed",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			for i, l := range h.lines[1:] {
				n, v, _ := strings.Cut(l, ":")
				h.lines[i+1] = n + ": " + strings.Join(strings.Fields(v), " ")
			}
		}})},
		mustFail: []string{"fidelity/header-values"},
	},
	{
		name: "host-set-to-upstream-address",
		mut: mutation{back: func(m *mutantInstance) *shimSpec {
			return &shimSpec{request: func(h *msgHead) {
				h.edit("Host", func(string) string { return m.cfg.Upstream })
			}}
		}},
		mustFail: []string{"fidelity/fields-exact"},
	},
	{
		name: "request-body-loses-last-byte",
		mut: mutation{back: fixed(shimSpec{requestBody: func(h *msgHead, body []byte) []byte {
			return body[:max(len(body)-1, 0)]
		}})},
		mustFail: []string{"fidelity/body-content-length"},
	},
	{
		name: "chunked-request-body-loses-last-byte",
		mut: mutation{front: fixed(shimSpec{requestBody: func(h *msgHead, body []byte) []byte {
			if len(h.values("Transfer-Encoding")) == 0 || len(body) == 0 {
				return body
			}
			return body[:len(body)-1]
		}})},
		mustFail: []string{"fidelity/body-chunked", "hop-by-hop/transfer-encoding-replaced"},
	},
	{
		// The proxy never learns the client waits, so it never says 100.
		name: "expect-continue-unheard",
		mut: mutation{front: fixed(shimSpec{request: func(h *msgHead) {
			h.del("Expect")
		}})},
		mustFail: []string{"fidelity/expect-continue"},
	},
	{
		name: "body-framed-after-204-and-304",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if s, _ := h.status(); s == 204 || s == 304 {
				h.add("Content-Length: 3")
				h.extra = []byte("abc")
			}
			return relay
		}})},
		mustFail: []string{"fidelity/no-body-statuses"},
	},
	{
		name: "chunked-response-loses-last-byte",
		mut: mutation{back: fixed(shimSpec{responseBody: func(req string, h *msgHead, body []byte) []byte {
			if len(h.values("Transfer-Encoding")) == 0 || len(body) == 0 {
				return body
			}
			return body[:len(body)-1]
		}})},
		mustFail: []string{"fidelity/chunked-response", "fidelity/large-response"},
	},
	{
		name: "content-type-dropped",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			h.del("Content-Type")
			return relay
		}})},
		mustFail: []string{"fidelity/response-headers"},
	},
	{
		name: "error-statuses-become-200",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if s, _ := h.status(); s >= 400 {
				setStatus(h, "200 OK")
			}
			return relay
		}})},
		// Not errors/upstream-aborts-response: a proxy that streams the body
		// has sent the upstream's status before the abort, and tells the
		// client by cutting the body short, which no status rewrite hides.
		mustFail: []string{"fidelity/status-codes", "errors/upstream-refused", "errors/upstream-garbage",
			"errors/upstream-timeout", "errors/bad-request-line"},
	},

	// hop-by-hop
	{
		// The front hides the hop-by-hop fields from the proxy under other
		// names and the back restores them: the proxy forwards them.
		name: "hop-by-hop-fields-forwarded",
		mut: mutation{
			front: fixed(shimSpec{request: func(h *msgHead) {
				for _, f := range hopFields {
					h.rename(f, smuggled+f)
				}
			}}),
			back: fixed(shimSpec{request: func(h *msgHead) {
				for _, f := range hopFields {
					h.rename(smuggled+f, f)
				}
			}}),
		},
		mustFail: []string{"hop-by-hop/request-hop-fields", "hop-by-hop/connection-named-fields"},
	},
	{
		name: "chunked-and-content-length-upstream",
		mut: mutation{back: fixed(shimSpec{requestBody: func(h *msgHead, body []byte) []byte {
			cl := h.values("Content-Length")
			b := chunk(h, body)
			for _, v := range cl {
				h.add("Content-Length: " + v)
			}
			return b
		}})},
		mustFail: []string{"hop-by-hop/transfer-encoding-replaced"},
	},
	{
		name: "keep-alive-field-on-responses",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			h.add("Keep-Alive: timeout=5, max=100")
			return relay
		}})},
		mustFail: []string{"hop-by-hop/response-hop-fields"},
	},
	{
		name: "upstream-close-relayed",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			if _, target, _ := strings.Cut(req, " "); strings.HasPrefix(target, "/close") {
				h.add("Connection: close")
				return relayClose
			}
			return relay
		}})},
		mustFail: []string{"hop-by-hop/upstream-close-not-relayed"},
	},
	{
		name: "x-forwarded-for-and-via-dropped",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			h.del("X-Forwarded-For")
			h.del("Via")
		}})},
		mustFail: []string{"hop-by-hop/x-forwarded-for-set", "hop-by-hop/x-forwarded-for-appended",
			"hop-by-hop/via-added", "hop-by-hop/via-appended"},
	},
	{
		name: "x-forwarded-for-and-via-overwritten",
		mut: mutation{back: fixed(shimSpec{request: func(h *msgHead) {
			xff, via := h.values("X-Forwarded-For"), h.values("Via")
			h.del("X-Forwarded-For")
			h.del("Via")
			if len(xff) > 0 {
				h.add("X-Forwarded-For: " + lastToken(xff[len(xff)-1]))
			}
			if len(via) > 0 {
				h.add("Via: " + lastToken(via[len(via)-1]))
			}
		}})},
		mustFail: []string{"hop-by-hop/x-forwarded-for-appended", "hop-by-hop/via-appended"},
	},
	{
		name: "no-via-on-responses",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			h.del("Via")
			return relay
		}})},
		mustFail: []string{"hop-by-hop/via-on-response"},
	},

	// connections
	{
		name: "closes-after-every-response",
		mut: mutation{front: fixed(shimSpec{response: func(req string, h *msgHead) verdict {
			h.del("Connection")
			h.add("Connection: close")
			return relayClose
		}})},
		mustFail: []string{"connections/keep-alive-sequence", "connections/pipelined"},
	},
	{
		name:     "never-closes-client-connections",
		mut:      mutation{front: fixed(shimSpec{holdOpen: true})},
		mustFail: []string{"connections/http10-closed"},
	},
	{
		name: "always-chunked-even-to-HTTP/1.0",
		mut: mutation{front: fixed(shimSpec{responseBody: func(req string, h *msgHead, body []byte) []byte {
			return chunk(h, body)
		}})},
		mustFail: []string{"connections/http10-not-chunked"},
	},
	{
		name: "connection-close-ignored",
		mut: mutation{front: fixed(shimSpec{request: func(h *msgHead) {
			h.del("Connection")
		}})},
		mustFail: []string{"connections/connection-close"},
	},
	{
		name:     "new-upstream-connection-per-request",
		mut:      mutation{back: fixed(shimSpec{perRequest: true})},
		mustFail: []string{"connections/pool-bounded", "connections/pool-reuse-sequential", "connections/pool-reuse-new-clients"},
	},
	{
		name:     "abandoned-request-bodies-completed",
		mut:      mutation{front: fixed(shimSpec{padShort: true})},
		mustFail: []string{"connections/client-gone-mid-request"},
	},

	// errors
	{
		name: "lenient-parser",
		mut:  mutation{front: fixed(shimSpec{handler: lenientHandler})},
		mustFail: []string{"errors/bad-request-line", "errors/bad-header-field", "errors/bare-cr-or-nul",
			"errors/invalid-content-length", "errors/content-length-and-chunked", "errors/conflicting-content-lengths",
			"errors/obsolete-line-folding", "errors/host-required", "errors/bad-chunked-body"},
	},
	{
		name:     "head-ends-only-at-CRLFCRLF",
		mut:      mutation{front: fixed(shimSpec{handler: crlfOnlyHandler})},
		mustFail: []string{"errors/bare-lf-head"},
	},
	{
		name: "limits-ignored",
		mut: mutation{config: func(c *conformance.ProxyConfig) {
			c.MaxHeaderBytes, c.MaxBodyBytes, c.UpstreamTimeout = 0, 0, 0
		}},
		mustFail: []string{"errors/head-too-large", "errors/body-too-large", "errors/chunked-body-too-large",
			"errors/upstream-timeout", "errors/no-reuse-after-timeout"},
	},
	{
		name: "timed-out-upstream-connection-reused",
		mut: mutation{back: func(*mutantInstance) *shimSpec {
			pool := &reusingBack{}
			return &shimSpec{handler: pool.handle}
		}},
		mustFail: []string{"errors/no-reuse-after-timeout"},
	},
	{
		name:     "aborted-upstream-bodies-padded",
		mut:      mutation{back: fixed(shimSpec{padShort: true})},
		mustFail: []string{"errors/upstream-aborts-response"},
	},
	{
		name:     "garbage-taken-for-HTTP/0.9",
		mut:      mutation{back: fixed(shimSpec{http09: true})},
		mustFail: []string{"errors/upstream-garbage"},
	},

	// robustness
	{
		name: "dies-mid-burst",
		mut: mutation{front: func(m *mutantInstance) *shimSpec {
			return &shimSpec{accepted: func(n int64) {
				if n == 700 {
					go m.Instance.Stop()
				}
			}}
		}},
		mustFail: []string{"robustness/fuzz-heads"},
		kills:    true,
	},
	{
		name:     "one-client-at-a-time",
		mut:      mutation{front: fixed(shimSpec{serial: true})},
		mustFail: []string{"robustness/slow-client"},
	},

	// lifecycle
	{
		name: "logs-every-connection",
		mut: mutation{front: func(m *mutantInstance) *shimSpec {
			return &shimSpec{accepted: func(n int64) { m.log("connection " + strconv.FormatInt(n, 10)) }}
		}},
		mustFail: []string{"lifecycle/start-up-line"},
	},
	{
		name:     "exit-status-1-after-SIGTERM",
		mut:      mutation{exitCode: func(code int) int { return max(code, 1) }},
		mustFail: []string{"lifecycle/sigterm-in-flight"},
	},
	{
		name: "SIGTERM-kills-at-once",
		mut: mutation{signal: func(m *mutantInstance, sig os.Signal) error {
			return m.Instance.Signal(os.Kill)
		}},
		mustFail: []string{"lifecycle/sigterm-in-flight"},
	},
	{
		// Late enough that the requests in flight have been answered
		// well before: it goes on accepting all the while they run.
		name:     "accepts-for-4s-after-SIGTERM",
		mut:      mutation{signal: signalLater(4 * time.Second)},
		mustFail: []string{"lifecycle/sigterm-in-flight"},
	},
}

// healthFailure is how the suite reports a case after which the shared
// proxy no longer answered.
const healthFailure = "the proxy stopped answering after this case"

// TestSuiteCatchesBrokenProxies runs each mutant through the cases it
// breaks and expects every one of them to fail, for its own reason rather
// than because the mutant stopped answering altogether. A control run with
// shims that change nothing on both sides must pass every case, so that
// what the mutants are caught at is their mutation, not the shims.
func TestSuiteCatchesBrokenProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite against every mutant")
	}
	proxy, upstream := buildForMutants(t, t.TempDir())
	real := conformance.Process{Binary: proxy}
	run := func(t *testing.T, mut mutation, only ...string) *conformance.Report {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		rep, err := conformance.Run(ctx, conformance.Suite{Name: "go", Proxy: mutantLauncher{real: real, mut: mut}, Upstream: upstream}, only...)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		transparent := mutation{front: fixed(shimSpec{}), back: fixed(shimSpec{})}
		failed := map[string]string{}
		var ids []string
		for _, r := range run(t, transparent).Results {
			if !r.Passed {
				failed[r.Case] = r.Error
				ids = append(ids, r.Case)
			}
		}
		if len(ids) == 0 {
			return
		}
		// A case the proxy fails on its own is for TestConformance to
		// report; only a case the shims make fail is wrong here.
		for _, r := range run(t, mutation{}, ids...).Results {
			if msg, ok := failed[r.Case]; ok && r.Passed {
				t.Errorf("%s fails with shims that change nothing, and passes without them: %s", r.Case, msg)
			} else if ok {
				t.Logf("%s fails with and without shims; TestConformance reports it", r.Case)
			}
		}
	})
	for _, m := range mutants {
		if len(m.mustFail) == 0 {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rep := run(t, m.mut, m.mustFail...)
			for _, id := range m.mustFail {
				i := slices.IndexFunc(rep.Results, func(r conformance.Result) bool { return r.Case == id })
				switch {
				case i < 0:
					t.Errorf("%s: no such case", id)
				case rep.Results[i].Passed:
					t.Errorf("%s passes against this mutant", id)
				case strings.HasPrefix(rep.Results[i].Error, healthFailure) && !m.kills:
					t.Errorf("%s fails only because the mutant stopped answering: %s", id, rep.Results[i].Error)
				default:
					t.Logf("%s caught it: %s", id, firstLine(rep.Results[i].Error))
				}
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// unbreakable lists cases no shim or wrapper around the real proxy can
// make fail, each with the reason. Every case so far has a mutant.
var unbreakable = map[string]string{}

// TestEveryCaseHasAMutant keeps the table complete: a new case must come
// with a mutant that it catches.
func TestEveryCaseHasAMutant(t *testing.T) {
	covered := map[string]bool{}
	for _, m := range mutants {
		for _, id := range m.mustFail {
			covered[id] = true
		}
	}
	ids := map[string]bool{}
	for _, c := range conformance.Cases() {
		ids[c.ID()] = true
		_, exempt := unbreakable[c.ID()]
		switch {
		case !covered[c.ID()] && !exempt:
			t.Errorf("no mutant fails %s: add one to mutants in mutants_test.go", c.ID())
		case covered[c.ID()] && exempt:
			t.Errorf("%s has a mutant now: take it off unbreakable", c.ID())
		}
	}
	for id := range covered {
		if !ids[id] {
			t.Errorf("a mutant lists %s, which is not a case", id)
		}
	}
	for id := range unbreakable {
		if !ids[id] {
			t.Errorf("unbreakable lists %s, which is not a case", id)
		}
	}
}
