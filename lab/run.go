package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/conformance"
	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// Options configure one comparison.
type Options struct {
	Root       string // repository root (sources, bin/)
	ResultsDir string // where the results file goes
	Version    string // proxylab's own version, stamped into binaries and results
	RunID      string // "" = a fresh random id
	SkipVerify bool   // measure proxies without running the conformance suite first
	RawDir     string // "" = none; else every step's results in vegeta's encoding, one file per step (RawFile)
	Observer   func(Event)
	// Capacity resolves the scenario's of_capacity steps; nil when it has
	// none (CapacityOf reads it from a searched run's results).
	Capacity *CapacityRef
	// Verified carries conformance results from one Compare to the next
	// of the same invocation, by image tag (a content hash of the binary)
	// and upstream: an unchanged proxy is not verified twice. nil: no
	// sharing.
	Verified map[string]*Verification
	// RetryDisturbed is how many times a disturbed repetition of a row is
	// run again; every attempt stays in the file.
	RetryDisturbed int
	// SUT, when set, is the host of the system under test: the engine
	// Compare is given is that host's, and the load goes to its address.
	// nil: everything runs on this host, and the load goes to loopback.
	SUT *SUT
}

// EventKind tells what an Event reports.
type EventKind int

// Event kinds, in the order a run emits them.
const (
	EventInfo      EventKind = iota // a line worth showing: building, starting, failures
	EventStepStart                  // a step (Step 0 = warm-up) begins
	EventProgress                   // live figures, about once per second
	EventStepDone                   // a step ended; Result holds it
)

// Event is what a run tells its observer (the CLI's progress display).
type Event struct {
	Kind        EventKind
	Proxy       string
	Repetition  int // 1-based
	Repetitions int
	Step        int // 0 = warm-up, then 1-based
	Steps       int
	Rate        int
	Duration    time.Duration
	Progress    loadgen.Progress
	Result      *Step
	Message     string
}

// ErrIncomplete is wrapped by Compare's error when the results file was
// written but does not hold every planned step.
var ErrIncomplete = errors.New("run incomplete")

// runner is one comparison in progress.
type runner struct {
	e         *Engine  // builds and preflight; nil where only measuring
	launch    Launcher // starts the measured containers
	sc        *scenarios.Scenario
	o         Options
	placement Placement
	upstream  *Artifact
	probes    probeSet // nil unless the scenario enables them and they attached
	sut       *sutHost // nil when the system under test runs on this host
	// host is the address the upstream and the proxies listen on and the
	// load goes to: loopback, or the SUT address.
	host   string
	res    *Results
	path   string
	failed []string // runs recorded as failed, for the stop reason
	rates  []int    // each step's rate, of_capacity resolved; 0 in the closed model
}

// probeSet is what a run uses of the probes: *bpf.Probes on this host,
// the agent's on a SUT host.
type probeSet interface {
	Watch(tgid uint32) error
	Unwatch(tgid uint32) error
	SetAttached(on bool) error
	Snapshot() (bpf.Counts, error)
	Close() error
}

// Compare runs a scenario: builds the images, measures every proxy in turn
// (the order rotates with each repetition so that no proxy always runs first
// on a cold or a warm machine), and writes the results file after every run
// so that an interruption loses nothing already measured. It returns the
// results and their path; err wraps ErrIncomplete when the file was written
// but is not complete, and is something else when nothing was measured.
func Compare(ctx context.Context, e *Engine, sc *scenarios.Scenario, o Options) (*Results, string, error) {
	r, rows, err := newRunner(e, sc, o)
	if err != nil {
		return nil, "", err
	}
	if o.SUT != nil {
		if err := r.useSUT(ctx); err != nil {
			return nil, "", err
		}
	}
	if err := r.preflight(ctx, rows); err != nil {
		return nil, "", err
	}
	// The checkout as the binaries are built from it, not as it is once
	// the run has started.
	source := DescribeSource(ctx, o.Root)
	p, err := r.prepare(ctx, rows)
	if err != nil {
		return nil, "", err
	}
	var setup *ProbeSetup
	if r.sut != nil {
		defer r.sut.stop(ctx)
		// startSUT settles the load generator's CPUs when the SUT's
		// engine runs on this host.
		if setup, err = r.startSUT(ctx, p); err != nil {
			return nil, "", err
		}
		if err := r.pinSelf(); err != nil {
			return nil, "", err
		}
	} else {
		// Before the probes start, so that their reader's thread can
		// take its own policy.
		if err := r.pinSelf(); err != nil {
			return nil, "", err
		}
		setup = r.attachProbes()
	}
	if r.probes != nil {
		defer r.probes.Close()
	}
	r.res = r.newResults(p, setup, source)
	r.path = FileName(o.ResultsDir, r.res)
	r.res.Calibration = r.calibrate(ctx)
	return r.res, r.path, r.repeat(ctx, p.rows)
}

// pinSelf confines this process to the load generator's CPUs and runs its
// threads as SCHED_BATCH. The policy is a tuning: where the host refuses it
// the run goes on, and says so.
func (r *runner) pinSelf() error {
	if err := PinSelf(r.placement.LoadgenCPUs); err != nil {
		return err
	}
	if err := loadgen.Batch(); err != nil {
		r.info("the load generator keeps the normal scheduling policy: " + err.Error())
	}
	return nil
}

// newRunner resolves the scenario's rows and placement, before anything
// touches the host.
func newRunner(e *Engine, sc *scenarios.Scenario, o Options) (*runner, []Component, error) {
	rows, err := ResolveRows(o.Root, sc.Proxies)
	if err != nil {
		return nil, nil, err
	}
	r := &runner{e: e, launch: e, sc: sc, o: o, host: loopbackHost}
	if r.rates, err = StepRates(sc, o.Capacity); err != nil {
		return nil, nil, err
	}
	r.placement = DefaultPlacement(runtime.NumCPU()).Override(
		sc.Resources.ProxyCPUs, sc.Resources.UpstreamCPUs, sc.Resources.LoadgenCPUs, int64(sc.Resources.ProxyMemory))
	if err := r.placement.Check(runtime.NumCPU()); err != nil && o.SUT == nil {
		return nil, nil, fmt.Errorf("%s: %w", sc.File, err)
	}
	if r.o.RunID == "" {
		b := make([]byte, 4)
		rand.Read(b)
		r.o.RunID = hex.EncodeToString(b)
	}
	return r, rows, nil
}

// prepared is what compare measures: every row's artifact, in the
// scenario's order, with its conformance result and the toolchains that
// made them.
type prepared struct {
	rows       []*Artifact
	verified   map[string]*Verification
	toolchains map[string]string
	agent      *Artifact // the reader for a SUT host; nil without one
}

// prepare obtains the upstream and every row the way its component says:
// binaries first, then the conformance suite, then images, so that a proxy
// that fails the suite never gets an image that looks ready to measure.
func (r *runner) prepare(ctx context.Context, rows []Component) (*prepared, error) {
	b := &Builder{Root: r.o.Root, Engine: r.e, Version: r.o.Version, Log: r.info, Host: r.host}
	var err error
	if r.upstream, err = b.Binary(ctx, Upstream); err != nil {
		return nil, fmt.Errorf("build upstream: %w", err)
	}
	p := &prepared{rows: make([]*Artifact, len(rows))}
	for i, c := range rows {
		if p.rows[i], err = c.obtain.binary(ctx, b, c); err != nil {
			return nil, err
		}
	}
	if p.verified, err = r.verify(ctx, p.rows); err != nil {
		return nil, err
	}
	if err := b.Image(ctx, r.upstream); err != nil {
		return nil, fmt.Errorf("image of upstream: %w", err)
	}
	if r.sut != nil {
		if p.agent, err = b.Build(ctx, Agent); err != nil {
			return nil, fmt.Errorf("build the lab's reader for the SUT host: %w", err)
		}
	}
	p.toolchains = Toolchains(ctx, Upstream)
	for i, a := range p.rows {
		if p.rows[i], err = a.obtain.image(ctx, b, a, r.sc, r.placement); err != nil {
			return nil, err
		}
		maps.Copy(p.toolchains, p.rows[i].obtain.toolchains(ctx, p.rows[i]))
	}
	return p, nil
}

// attachProbes attaches the eBPF probes when the scenario enables them.
// Probes that cannot attach (no root, no BTF, no tracefs) do not stop the
// run: the numbers are still valid, and the results say why they carry no
// probe counts.
func (r *runner) attachProbes() *ProbeSetup {
	if !r.sc.Probes.Enabled {
		return nil
	}
	// The reader runs on the load generator's CPUs: there it competes with
	// the load generator, whose CPU time it is counted in, rather than with
	// the proxy being measured.
	readerCPUs, err := ParseCPUSet(r.placement.LoadgenCPUs)
	if err != nil {
		return &ProbeSetup{Attempts: []bpf.Attempt{}, Error: "reader CPUs: " + err.Error()}
	}
	p, err := bpf.Attach(bpf.Options{
		Mode: r.sc.Probes.Mode, PerfBufferPages: r.sc.Probes.PerfBufferPages,
		Events: bpf.EventsSample(uint32(r.sc.Probes.Events.Sample)), ReaderCPUs: readerCPUs,
	})
	if err != nil {
		r.info("eBPF probes unavailable, measuring without them: " + err.Error())
		return &ProbeSetup{Attempts: []bpf.Attempt{}, Error: err.Error()}
	}
	r.probes = p
	r.info(fmt.Sprintf("eBPF probes attached in %s mode, perf buffer events: %s", p.Mode(), p.Events()))
	for _, a := range p.Attempts() {
		r.info(fmt.Sprintf("  (%s mode unavailable: %s)", a.Mode, a.Error))
	}
	setup := &ProbeSetup{Mode: p.Mode(), Attempts: append([]bpf.Attempt{}, p.Attempts()...), ReaderCPUs: r.placement.LoadgenCPUs}
	if err := p.ReaderPolicyError(); err != nil {
		r.info("  (" + err.Error() + ")")
	}
	if _, err := p.ReaderPin(); err != nil {
		setup.ReaderCPUs, setup.ReaderPinError = "", err.Error()
		r.info("  (" + err.Error() + ")")
	}
	return setup
}

// newResults is the results file before the first row is measured.
func (r *runner) newResults(p *prepared, setup *ProbeSetup, source *Source) *Results {
	res := &Results{
		SchemaVersion: SchemaVersion,
		ToolVersion:   r.o.Version,
		RunID:         r.o.RunID,
		Scenario:      r.sc,
		StartedAt:     time.Now().UTC(),
		Host:          r.describeHosts(),
		Toolchains:    p.toolchains,
		Placement:     r.placement,
		Probes:        setup,
		Source:        source,
		Upstream:      &Image{Tag: r.upstream.ImageTag, ID: r.upstream.ImageID, SizeBytes: r.upstream.ImageBytes},
		SummaryMethod: Method(),
	}
	if slices.ContainsFunc(r.sc.Load.Steps, func(s scenarios.Step) bool { return s.OfCapacity > 0 }) {
		res.Capacity = r.o.Capacity
	}
	for _, a := range p.rows {
		res.Proxies = append(res.Proxies, proxyResult(a, p.verified[a.Name]))
	}
	return res
}

// proxyResult is a row's entry in the results before its first run.
func proxyResult(a *Artifact, v *Verification) *ProxyResult {
	return &ProxyResult{
		Name: a.Name, Language: a.Language, Baseline: a.Baseline, BinaryBytes: a.BinaryBytes, Runs: []*Run{}, Verified: v,
		Image: Image{Tag: a.ImageTag, ID: a.ImageID, SizeBytes: a.ImageBytes},
	}
}

// rotation is the order rows run in during repetition rep (1-based): each
// repetition starts one row later, so that drift of the machine over the
// run (warming up, a neighbour starting) hits every row alike.
func rotation(rows, rep int) []int {
	order := make([]int, rows)
	for i := range order {
		order[i] = (i + rep - 1) % rows
	}
	return order
}

// repeat measures every row once per repetition, in rotation, and rewrites
// the results file after every row. A failed row is recorded and the run
// goes on; an interruption stops it. The error wraps ErrIncomplete when the
// file was written but does not hold every planned step.
func (r *runner) repeat(ctx context.Context, arts []*Artifact) error {
	for rep := 1; rep <= r.sc.Repeat; rep++ {
		for _, k := range rotation(len(arts), rep) {
			if err := r.repetition(ctx, k, arts[k], rep); err != nil {
				return err
			}
		}
	}
	if len(r.failed) > 0 {
		reason := fmt.Sprintf("%d proxy run(s) failed: %s", len(r.failed), r.failed[0])
		if err := r.write(false, reason); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s", ErrIncomplete, reason)
	}
	return r.write(true, "")
}

// repetition measures row k once for repetition rep and, while that run
// was disturbed, again, up to Options.RetryDisturbed more times. Every
// attempt is kept: a disturbed one enters no figure, but the reader sees
// that it happened and what it measured.
func (r *runner) repetition(ctx context.Context, k int, a *Artifact, rep int) error {
	for attempt := 1; ; attempt++ {
		run := r.runOne(ctx, a, rep)
		if attempt > 1 {
			run.Attempt = attempt
		}
		if err := r.keep(ctx, k, run); err != nil {
			return err
		}
		if !run.Disturbed || run.Status != RunOK {
			return nil
		}
		if attempt > r.o.RetryDisturbed {
			r.info(fmt.Sprintf("%s repetition %d was disturbed (%s); it is left out of the figures", a.Name, rep, disturbance(run)))
			return nil
		}
		r.info(fmt.Sprintf("%s repetition %d was disturbed (%s): running it again (attempt %d of at most %d)",
			a.Name, rep, disturbance(run), attempt+1, r.o.RetryDisturbed+1))
	}
}

// keep records row k's run, summarises the row again and rewrites the
// results file; after an interruption it returns ErrIncomplete, so the
// caller stops.
func (r *runner) keep(ctx context.Context, k int, run *Run) error {
	pr := r.res.Proxies[k]
	pr.Runs = append(pr.Runs, run)
	pr.Summary = SummariseFor(r.sc, pr.Runs)
	if run.Status == RunFailed {
		r.failed = append(r.failed, fmt.Sprintf("%s (repetition %d): %s", pr.Name, run.Repetition, run.Error))
		r.info(fmt.Sprintf("%s failed in repetition %d: %s; going on with the next proxy", pr.Name, run.Repetition, run.Error))
	}
	reason := ""
	if run.Status == RunInterrupted {
		reason = "interrupted"
		if c := context.Cause(ctx); c != nil {
			reason = c.Error()
		}
	}
	if err := r.write(false, reason); err != nil {
		return err
	}
	if reason != "" {
		return fmt.Errorf("%w: %s", ErrIncomplete, reason)
	}
	return nil
}

// ErrNotConformant is wrapped by Compare's error when a proxy fails the
// conformance suite: its numbers would not be comparable with the others'.
var ErrNotConformant = errors.New("proxy fails the conformance suite")

// verify runs the conformance suite against every row it applies to before
// anything is measured, and refuses the run if one fails. The other rows
// get a verification that says why they were not checked.
func (r *runner) verify(ctx context.Context, arts []*Artifact) (map[string]*Verification, error) {
	out := map[string]*Verification{}
	var bad []string
	for _, a := range arts {
		switch {
		case a.NotVerified != "":
			out[a.Name] = &Verification{Skipped: true, Reason: a.NotVerified, Failed: []string{}}
			continue
		case r.o.SkipVerify:
			out[a.Name] = &Verification{Skipped: true, Reason: "--skip-verify", Failed: []string{}}
			continue
		}
		key := a.ImageTag + " " + r.upstream.ImageTag
		if v := r.o.Verified[key]; v != nil {
			out[a.Name] = v
			r.info(fmt.Sprintf("%s: verified earlier in this invocation, the same binary: %d of %d cases passed", a.Name, v.Cases-len(v.Failed), v.Cases))
			continue
		}
		r.info(fmt.Sprintf("verifying %s against the proxy contract (%d cases)", a.Name, len(conformance.Cases())))
		rep, err := Verify(ctx, a, r.upstream)
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", a.Name, err)
		}
		out[a.Name] = &Verification{Passed: rep.Passed, Cases: rep.Cases, Failed: rep.Failed, Seconds: math.Round(rep.Seconds*10) / 10}
		if r.o.Verified != nil && rep.Passed {
			r.o.Verified[key] = out[a.Name]
		}
		r.reportVerification(a, rep)
		if !rep.Passed {
			bad = append(bad, fmt.Sprintf("%s (%d of %d cases failed)", a.Name, len(rep.Failed), rep.Cases))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s; fix it, or measure anyway with --skip-verify", ErrNotConformant, strings.Join(bad, ", "))
	}
	return out, nil
}

// reportVerification tells the observer how a proxy fared, naming every
// failed case, so that a refused run says what to fix.
func (r *runner) reportVerification(a *Artifact, rep *conformance.Report) {
	r.info(fmt.Sprintf("%s: %d of %d cases passed in %.1fs", a.Name, rep.Cases-len(rep.Failed), rep.Cases, rep.Seconds))
	for _, res := range rep.Results {
		if !res.Passed {
			r.info(fmt.Sprintf("  FAIL %s: %s", res.Case, res.Error))
		}
	}
}

func (r *runner) write(complete bool, reason string) error {
	r.res.EndedAt = time.Now().UTC()
	r.res.Complete = complete
	r.res.StopReason = reason
	return Write(r.path, r.res)
}

func (r *runner) info(msg string) {
	if r.o.Observer != nil {
		r.o.Observer(Event{Kind: EventInfo, Message: msg})
	}
}

// preflight fails before anything is built when the run could not go
// through: leftovers of an earlier run, or a port already in use (the lab
// uses fixed ports on host networking).
func (r *runner) preflight(ctx context.Context, rows []Component) error {
	left, err := r.e.Leftovers(ctx, "")
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	if len(left) > 0 {
		cleanup := "proxylab cleanup"
		if r.sut != nil {
			cleanup += " --sut " + r.sut.Engine
		}
		return fmt.Errorf("%d container(s) of an earlier proxylab run still exist on %s; remove them with: %s", len(left), r.e.Endpoint, cleanup)
	}
	for _, c := range append([]Component{Upstream}, rows...) {
		if c.NoContainer {
			continue // the upstream's port
		}
		if r.sut != nil {
			if err := r.sut.portFree(ctx, c); err != nil {
				return err
			}
			continue
		}
		l, err := net.Listen("tcp", c.Addr())
		if err != nil {
			return fmt.Errorf("%s needs %s, which is in use (%v); stop what listens there (docker-compose down?)", c.Name, c.Addr(), err)
		}
		l.Close()
	}
	return nil
}

// target is the request the load generator sends to addr.
func (r *runner) target(addr string) loadgen.Target {
	u := url.URL{Scheme: "http", Host: addr}
	path, rawQuery, _ := strings.Cut(r.sc.Load.Path, "?")
	u.Path = path
	q := rawQuery
	if d := r.sc.Upstream.Delay.D(); d > 0 {
		if q != "" {
			q += "&"
		}
		q += "delay_ms=" + strconv.FormatInt(d.Milliseconds(), 10)
	}
	u.RawQuery = q
	t := loadgen.Target{Method: r.sc.Load.Method, URL: u.String(), Header: http.Header{}}
	if r.sut != nil {
		t.Allow = r.sut.addr
	}
	if n := int(r.sc.Load.BodyBytes); n > 0 {
		t.Body = bytes.Repeat([]byte("x"), n)
		t.Header.Set("Content-Type", "application/octet-stream")
	}
	return t
}

// snapshot reads the probes' counters; without probes it reads nothing.
func (r *runner) snapshot() (bpf.Counts, error) {
	if r.probes == nil {
		return bpf.Counts{}, nil
	}
	return r.probes.Snapshot()
}

// selfCPUSeconds is this process's CPU time so far. The load generator
// runs in this process, and nothing else here is busy during a step.
func selfCPUSeconds() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
