// Package conformance checks a proxy against the proxy contract of
// DESIGN.md before the lab measures it: a throughput figure means nothing if
// the proxies being compared do not do the same work. The cases talk raw TCP
// wherever a well-behaved client library would hide the case, and run
// against the real upstream of upstream/.
package conformance

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// ProxyConfig is the proxy contract's environment.
type ProxyConfig struct {
	Listen          string        // LISTEN_ADDR
	Upstream        string        // UPSTREAM_ADDR
	UpstreamTimeout time.Duration // UPSTREAM_TIMEOUT_MS; 0 = the contract's 5 s
	MaxHeaderBytes  int           // MAX_HEADER_BYTES; 0 = 16384
	MaxBodyBytes    int64         // MAX_BODY_BYTES; 0 = 16 MiB
}

// Contract defaults (DESIGN.md, "The proxy contract").
const (
	DefaultUpstreamTimeout = 5 * time.Second
	DefaultMaxHeaderBytes  = 16384
	DefaultMaxBodyBytes    = 16 << 20
)

// Env is the configuration as environment variables; unset limits are left
// out so the proxy's own defaults are what gets checked.
func (c ProxyConfig) Env() []string {
	env := []string{"LISTEN_ADDR=" + c.Listen, "UPSTREAM_ADDR=" + c.Upstream}
	if c.UpstreamTimeout > 0 {
		env = append(env, fmt.Sprintf("UPSTREAM_TIMEOUT_MS=%d", c.UpstreamTimeout.Milliseconds()))
	}
	if c.MaxHeaderBytes > 0 {
		env = append(env, fmt.Sprintf("MAX_HEADER_BYTES=%d", c.MaxHeaderBytes))
	}
	if c.MaxBodyBytes > 0 {
		env = append(env, fmt.Sprintf("MAX_BODY_BYTES=%d", c.MaxBodyBytes))
	}
	return env
}

// Instance is one running proxy (or upstream).
type Instance interface {
	Addr() string
	// Signal delivers sig to the proxy process.
	Signal(sig os.Signal) error
	// Wait waits for the process to exit and returns its exit code.
	Wait(ctx context.Context) (int, error)
	// Output is what the process wrote to stdout and stderr so far.
	Output() string
	// Stop kills the process if it still runs and releases everything.
	Stop() error
}

// Launcher starts proxies: as host processes (Process) or, in the lab, as
// containers.
type Launcher interface {
	// Start returns once cfg.Listen accepts TCP connections.
	Start(ctx context.Context, cfg ProxyConfig) (Instance, error)
}

// Suite is what to check.
type Suite struct {
	Name     string   // proxy name: go, rust, zig
	Proxy    Launcher // how to start it
	Upstream string   // path of the upstream binary
}

// Case is one named check of the contract.
type Case struct {
	Group string // fidelity, hop-by-hop, connections, errors, robustness, lifecycle, targets, interim, pool, upstream-framing, limits, timeouts
	Name  string
	Run   func(e *Env) error
}

// ID is how reports and `go test -run` name the case.
func (c Case) ID() string { return c.Group + "/" + c.Name }

// Result is one case's outcome.
type Result struct {
	Case    string  `json:"case"`
	Passed  bool    `json:"passed"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Report is the outcome of a suite run against one proxy.
type Report struct {
	Proxy   string   `json:"proxy"`
	Passed  bool     `json:"passed"`
	Cases   int      `json:"cases"`
	Failed  []string `json:"failed"`
	Results []Result `json:"results"`
	Seconds float64  `json:"seconds"`
}

// caseTimeout bounds one case: a proxy that hangs fails the case instead of
// the whole suite.
const caseTimeout = 90 * time.Second

// Run checks every case (or those whose ID contains one of only) against
// s's proxy, one after another, and reports each. It fails early only when
// the shared upstream or proxy cannot be started at all.
func Run(ctx context.Context, s Suite, only ...string) (*Report, error) {
	start := time.Now()
	shared, err := Start(ctx, s)
	if err != nil {
		return nil, err
	}
	defer shared.Close()
	r := &Report{Proxy: s.Name, Failed: []string{}}
	for _, c := range Cases() {
		if !selected(c, only) {
			continue
		}
		res := RunCase(ctx, shared, c)
		r.Results = append(r.Results, res)
		if !res.Passed {
			r.Failed = append(r.Failed, c.ID())
		}
	}
	r.Cases = len(r.Results)
	r.Passed = len(r.Failed) == 0
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

func selected(c Case, only []string) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if strings.Contains(c.ID(), o) {
			return true
		}
	}
	return false
}

// RunCase runs one case in a fresh Env over the shared upstream and proxy.
func RunCase(ctx context.Context, sh *Shared, c Case) Result {
	ctx, cancel := context.WithTimeout(ctx, caseTimeout)
	defer cancel()
	e := &Env{Ctx: ctx, shared: sh}
	start := time.Now()
	err := runGuarded(e, c)
	e.runCleanup()
	res := Result{Case: c.ID(), Passed: err == nil, Seconds: time.Since(start).Seconds()}
	if err != nil {
		res.Error = err.Error()
	}
	// A case may have broken the shared proxy (that is what the robustness
	// cases try to do): a dead shared proxy fails the case that killed it,
	// and is restarted so the next case starts clean.
	if err == nil {
		if herr := sh.healthy(ctx); herr != nil {
			res.Passed, res.Error = false, "the proxy stopped answering after this case: "+herr.Error()
		}
	}
	if !res.Passed {
		sh.restartProxy(context.WithoutCancel(ctx))
	}
	return res
}

func runGuarded(e *Env, c Case) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("case panicked: %v", p)
		}
	}()
	return c.Run(e)
}
