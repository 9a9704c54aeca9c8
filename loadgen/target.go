// Package loadgen drives one HTTP target with open-model, constant-rate load
// on top of vegeta's attacker and reduces the responses to latency histograms,
// status counts and a per-second timeline, without keeping any single result.
//
// It only ever sends traffic to 127.0.0.0/8, or to the one address a target
// names as allowed (the host of a system under test that the user named): a
// mistyped address must fail loudly instead of loading somebody else's
// server.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Target is the request every step sends.
type Target struct {
	Method string // "" means GET
	URL    string // e.g. http://127.0.0.1:8081/
	Body   []byte
	Header http.Header
	// Allow is the one address outside 127.0.0.0/8 the target may be at:
	// the host of the system under test, as the user named it. The zero
	// value allows loopback only.
	Allow netip.Addr
}

// Config shapes the client side of the load.
type Config struct {
	Connections int           // max connections to the target, also the max requests in flight
	KeepAlive   bool          // reuse connections; false opens one connection per request
	Timeout     time.Duration // per request; 0 means DefaultTimeout
}

// Step is one open-model load level.
type Step struct {
	// Rate is requests per second on a constant pacer. 0 means as fast as
	// the connections allow: each connection sends its next request as soon
	// as the previous answer is in (a closed model, for measuring the
	// ceiling of a target or of the load generator itself, never for
	// latency at a given load).
	Rate     int
	Duration time.Duration // how long the pacer keeps sending

	// Raw, if set, also receives every recorded request as a vegeta Result
	// in vegeta's gob encoding, the format of `vegeta attack` output, so that
	// `vegeta report` and `vegeta plot` read it. Encoding costs CPU on the
	// load generator's side; a step that cannot keep up shows as saturated.
	Raw io.Writer
}

// DefaultTimeout is the per-request timeout when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxRate is the highest Step.Rate accepted: vegeta's constant pacer works in
// whole nanoseconds between requests, and a faster rate rounds to zero.
const MaxRate = int(time.Second)

func (t Target) validate() error {
	u, err := url.Parse(t.URL)
	if err != nil {
		return fmt.Errorf("loadgen: target URL %q: %w", t.URL, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("loadgen: target URL %q: scheme must be http", t.URL)
	}
	if err := checkAddr(u.Hostname(), t.Allow); err != nil {
		return fmt.Errorf("loadgen: target URL %q: %w", t.URL, err)
	}
	// NewRequest is the authority on what vegeta will be able to build per
	// request; failing here keeps the error out of every single result.
	if _, err := http.NewRequest(t.method(), t.URL, nil); err != nil {
		return fmt.Errorf("loadgen: target: %w", err)
	}
	return nil
}

func (t Target) method() string {
	if t.Method == "" {
		return http.MethodGet
	}
	return t.Method
}

func (c Config) validate() error {
	if c.Connections <= 0 {
		return fmt.Errorf("loadgen: connections must be > 0, got %d", c.Connections)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("loadgen: timeout must be >= 0, got %s", c.Timeout)
	}
	return nil
}

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (s Step) validate() error {
	if s.Rate < 0 || s.Rate > MaxRate {
		return fmt.Errorf("loadgen: step rate must be in 0..%d requests/s (0: as fast as possible), got %d", MaxRate, s.Rate)
	}
	if s.Duration <= 0 {
		return fmt.Errorf("loadgen: step duration must be > 0, got %s", s.Duration)
	}
	return nil
}

// checkAddr accepts only IP literals in 127.0.0.0/8, or allow. Names are
// refused because a resolver (or /etc/hosts) could point them anywhere.
func checkAddr(host string, allow netip.Addr) error {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("host %q is not an IP address; use one in 127.0.0.0/8 (the lab sends traffic to loopback only)", host)
	}
	a := addr.Unmap()
	if a.Is4() && a.As4()[0] == 127 || allow.IsValid() && a == allow.Unmap() {
		return nil
	}
	if allow.IsValid() {
		return fmt.Errorf("address %s is neither in 127.0.0.0/8 nor the system under test's address %s; the lab sends traffic nowhere else", addr, allow)
	}
	return fmt.Errorf("address %s is outside 127.0.0.0/8; the lab sends traffic to loopback only (a system under test on another host is named with compare --sut-address)", addr)
}

// dialGuard runs on every socket before it connects, after any name
// resolution, so nothing the HTTP client does (proxies from the
// environment, redirects, a future option) can reach past loopback and
// allow.
func dialGuard(allow netip.Addr) func(context.Context, string, string, syscall.RawConn) error {
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("loadgen: refusing to dial %q: %w", address, err)
		}
		if err := checkAddr(ap.Addr().String(), allow); err != nil {
			return fmt.Errorf("loadgen: refusing to dial %s: %w", address, err)
		}
		return nil
	}
}

// guardDial is dialGuard for loopback only.
var guardDial = dialGuard(netip.Addr{})
