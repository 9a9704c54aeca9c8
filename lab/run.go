package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
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

type runner struct {
	e         *Engine
	sc        *scenarios.Scenario
	o         Options
	placement Placement
	upstream  *Artifact
	probes    *bpf.Probes // nil unless the scenario enables them
	res       *Results
	path      string
}

// Compare runs a scenario: builds the images, measures every proxy in turn
// (the order rotates with each repetition so that no proxy always runs first
// on a cold or a warm machine), and writes the results file after every run
// so that an interruption loses nothing already measured. It returns the
// results and their path; err wraps ErrIncomplete when the file was written
// but is not complete, and is something else when nothing was measured.
func Compare(ctx context.Context, e *Engine, sc *scenarios.Scenario, o Options) (*Results, string, error) {
	rows, err := ResolveRows(o.Root, sc.Proxies)
	if err != nil {
		return nil, "", err
	}
	var proxies []Component // the lab's own, which are built and verified
	for _, c := range rows {
		if !c.Baseline {
			proxies = append(proxies, c)
		}
	}
	r := &runner{e: e, sc: sc, o: o}
	r.placement = DefaultPlacement(runtime.NumCPU()).Override(
		sc.Resources.ProxyCPUs, sc.Resources.UpstreamCPUs, sc.Resources.LoadgenCPUs, int64(sc.Resources.ProxyMemory))
	if err := r.placement.Check(runtime.NumCPU()); err != nil {
		return nil, "", fmt.Errorf("%s: %w", sc.File, err)
	}
	if r.o.RunID == "" {
		b := make([]byte, 4)
		rand.Read(b)
		r.o.RunID = hex.EncodeToString(b)
	}
	if err := r.preflight(ctx, rows); err != nil {
		return nil, "", err
	}

	// The checkout as the binaries are built from it, not as it is once
	// the run has started.
	source := DescribeSource(ctx, o.Root)

	// Binaries first, then the conformance suite, then images: a proxy that
	// fails the suite never gets an image that looks ready to measure.
	b := &Builder{Root: o.Root, Engine: e, Version: o.Version, Log: r.info}
	if r.upstream, err = b.Binary(ctx, Upstream); err != nil {
		return nil, "", err
	}
	arts := make([]*Artifact, len(rows))
	var built []*Artifact
	for i, c := range rows {
		if c.Baseline {
			arts[i] = &Artifact{Component: c}
			continue
		}
		if arts[i], err = b.Binary(ctx, c); err != nil {
			return nil, "", err
		}
		built = append(built, arts[i])
	}
	verified, err := r.verify(ctx, built)
	if err != nil {
		return nil, "", err
	}
	for _, a := range append([]*Artifact{r.upstream}, built...) {
		if err := b.Image(ctx, a); err != nil {
			return nil, "", err
		}
	}
	toolchains := Toolchains(ctx, append([]Component{Upstream}, proxies...)...)
	for i, a := range arts {
		if a.Name != Nginx.Name {
			continue
		}
		cpus, _ := ParseCPUSet(r.placement.ProxyCPUs) // checked above
		if arts[i], err = b.Nginx(ctx, NginxSettings{Workers: len(cpus), Connections: sc.Load.Connections}); err != nil {
			return nil, "", err
		}
		toolchains["nginx"] = NginxVersion(ctx, arts[i].BinaryPath)
	}
	var probeSetup *ProbeSetup
	if sc.Probes.Enabled {
		// Probes that cannot attach (no root, no BTF, no tracefs) do not
		// stop the run: the numbers are still valid, and the results say
		// why they carry no probe counts.
		p, err := bpf.Attach(bpf.Options{Mode: sc.Probes.Mode, PerfBufferPages: sc.Probes.PerfBufferPages})
		if err != nil {
			probeSetup = &ProbeSetup{Attempts: []bpf.Attempt{}, Error: err.Error()}
			r.info("eBPF probes unavailable, measuring without them: " + err.Error())
		} else {
			defer p.Close()
			r.probes = p
			probeSetup = &ProbeSetup{Mode: p.Mode(), Attempts: append([]bpf.Attempt{}, p.Attempts()...)}
			r.info(fmt.Sprintf("eBPF probes attached in %s mode", p.Mode()))
			for _, a := range p.Attempts() {
				r.info(fmt.Sprintf("  (%s mode unavailable: %s)", a.Mode, a.Error))
			}
		}
	}
	if err := PinSelf(r.placement.LoadgenCPUs); err != nil {
		return nil, "", err
	}

	r.res = &Results{
		SchemaVersion: SchemaVersion,
		ToolVersion:   o.Version,
		RunID:         r.o.RunID,
		Scenario:      sc,
		StartedAt:     time.Now().UTC(),
		Host:          DescribeHost(e.Version),
		Toolchains:    toolchains,
		Placement:     r.placement,
		Probes:        probeSetup,
		Source:        source,
		Upstream:      &Image{Tag: r.upstream.ImageTag, ID: r.upstream.ImageID, SizeBytes: r.upstream.ImageBytes},
		SummaryMethod: Method(),
	}
	for _, a := range arts {
		v := verified[a.Name]
		if a.Baseline {
			v = &Verification{Skipped: true, Reason: "not a lab proxy", Failed: []string{}}
		}
		r.res.Proxies = append(r.res.Proxies, &ProxyResult{
			Name: a.Name, Language: a.Language, Baseline: a.Baseline, BinaryBytes: a.BinaryBytes, Runs: []*Run{}, Verified: v,
			Image: Image{Tag: a.ImageTag, ID: a.ImageID, SizeBytes: a.ImageBytes},
		})
	}
	r.path = FileName(o.ResultsDir, r.res)

	var failed []string
	for rep := 1; rep <= sc.Repeat; rep++ {
		for i := range arts {
			k := (i + rep - 1) % len(arts)
			run := r.runOne(ctx, arts[k], rep)
			pr := r.res.Proxies[k]
			pr.Runs = append(pr.Runs, run)
			pr.Summary = SummariseFor(sc, pr.Runs)
			if run.Status == RunFailed {
				failed = append(failed, fmt.Sprintf("%s (repetition %d): %s", pr.Name, rep, run.Error))
				r.info(fmt.Sprintf("%s failed in repetition %d: %s; going on with the next proxy", pr.Name, rep, run.Error))
			}
			reason := ""
			if run.Status == RunInterrupted {
				reason = "interrupted"
				if c := context.Cause(ctx); c != nil {
					reason = c.Error()
				}
			}
			if err := r.write(false, reason); err != nil {
				return r.res, r.path, err
			}
			if reason != "" {
				return r.res, r.path, fmt.Errorf("%w: %s", ErrIncomplete, reason)
			}
		}
	}
	if len(failed) > 0 {
		reason := fmt.Sprintf("%d proxy run(s) failed: %s", len(failed), failed[0])
		if err := r.write(false, reason); err != nil {
			return r.res, r.path, err
		}
		return r.res, r.path, fmt.Errorf("%w: %s", ErrIncomplete, reason)
	}
	return r.res, r.path, r.write(true, "")
}

// ErrNotConformant is wrapped by Compare's error when a proxy fails the
// conformance suite: its numbers would not be comparable with the others'.
var ErrNotConformant = errors.New("proxy fails the conformance suite")

// verify runs the conformance suite against every proxy before anything is
// measured, and refuses the run if one fails.
func (r *runner) verify(ctx context.Context, arts []*Artifact) (map[string]*Verification, error) {
	out := map[string]*Verification{}
	var bad []string
	for _, a := range arts {
		if r.o.SkipVerify {
			out[a.Name] = &Verification{Skipped: true, Reason: "--skip-verify", Failed: []string{}}
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
		r.info(fmt.Sprintf("%s: %d of %d cases passed in %.1fs", a.Name, rep.Cases-len(rep.Failed), rep.Cases, rep.Seconds))
		for _, res := range rep.Results {
			if !res.Passed {
				r.info(fmt.Sprintf("  FAIL %s: %s", res.Case, res.Error))
			}
		}
		if !rep.Passed {
			bad = append(bad, fmt.Sprintf("%s (%d of %d cases failed)", a.Name, len(rep.Failed), rep.Cases))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s; fix it, or measure anyway with --skip-verify", ErrNotConformant, strings.Join(bad, ", "))
	}
	return out, nil
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
		return fmt.Errorf("%d container(s) of an earlier proxylab run still exist; remove them with: proxylab cleanup", len(left))
	}
	for _, c := range append([]Component{Upstream}, rows...) {
		if c.Name == Direct.Name {
			continue // the upstream's port
		}
		l, err := net.Listen("tcp", c.Addr())
		if err != nil {
			return fmt.Errorf("%s needs %s, which is in use (%v); stop what listens there (docker-compose down?)", c.Name, c.Addr(), err)
		}
		l.Close()
	}
	return nil
}

// target is the request the load generator sends through the proxy.
func (r *runner) target(proxy *Artifact) loadgen.Target {
	u := url.URL{Scheme: "http", Host: proxy.Addr()}
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

// errDied is the cancellation cause when a measured container exits.
type errDied struct{ what, why string }

func (e errDied) Error() string { return e.what + " " + e.why }

// runOne measures one row once: fresh upstream and proxy containers (no
// proxy for the direct baseline), warm-up, then every step or the search.
// It never returns an error: what went wrong is recorded in the Run, and
// the caller goes on with the next proxy.
func (r *runner) runOne(ctx context.Context, proxy *Artifact, rep int) *Run {
	run := &Run{Repetition: rep, Status: RunOK, Steps: []*Step{}}
	base := fmt.Sprintf("proxylab-%s-r%d-", r.o.RunID, rep)
	search := r.sc.Load.Search
	ev := func(e Event) {
		if r.o.Observer != nil {
			e.Proxy, e.Repetition, e.Repetitions, e.Steps = proxy.Name, rep, r.sc.Repeat, len(r.sc.Load.Steps)
			r.o.Observer(e)
		}
	}
	fail := func(c *Container, err error) *Run {
		if ctx.Err() != nil {
			run.Status, run.Error = RunInterrupted, context.Cause(ctx).Error()
			return run
		}
		run.Status, run.Error = RunFailed, err.Error()
		if c != nil {
			run.LastLogs = c.Logs(ctx, 20)
		}
		return run
	}

	ev(Event{Kind: EventInfo, Message: fmt.Sprintf("starting %s (repetition %d/%d)", proxy.Name, rep, r.sc.Repeat)})
	up, err := r.e.Start(ctx, ContainerSpec{
		Artifact: r.upstream, RunID: r.o.RunID, Name: base + "upstream", CPUs: r.placement.UpstreamCPUs,
		Env: []string{"LISTEN_ADDR=" + r.upstream.Addr(), "RESPONSE_BYTES=" + strconv.FormatInt(int64(r.sc.Upstream.ResponseBytes), 10)},
	})
	if err != nil {
		return fail(nil, err)
	}
	defer up.Remove(ctx)
	if err := up.WaitHTTP(ctx, "http://"+r.upstream.Addr()+"/", 20*time.Second); err != nil {
		return fail(up, err)
	}
	// px is the measured proxy's container; the direct baseline has none,
	// and its failures are the upstream's.
	var px *Container
	logs := up
	if proxy.Name != Direct.Name {
		spec := ContainerSpec{
			Artifact: proxy, RunID: r.o.RunID, Name: base + proxy.Name, CPUs: r.placement.ProxyCPUs, Memory: r.placement.ProxyMemory,
			Env: []string{"LISTEN_ADDR=" + proxy.Addr(), "UPSTREAM_ADDR=" + r.upstream.Addr()},
		}
		if proxy.Name == Nginx.Name {
			spec.Env, spec.Tmpfs = nil, NginxTmpfs
		}
		if px, err = r.e.Start(ctx, spec); err != nil {
			return fail(nil, err)
		}
		defer px.Remove(ctx)
		logs = px
		if err := px.WaitHTTP(ctx, "http://"+proxy.Addr()+"/", 20*time.Second); err != nil {
			return fail(px, err)
		}
	}

	// A container that exits mid-step cancels the step at once instead of
	// letting the load generator count connection errors to the end.
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var pxDied <-chan string
	if px != nil {
		pxDied = px.Died(sctx)
	}
	go func() {
		select {
		case why := <-pxDied:
			cancel(errDied{proxy.Name, why})
		case why := <-up.Died(sctx):
			cancel(errDied{"upstream", why})
		case <-sctx.Done():
		}
	}()
	stopped := func() *Run {
		if ctx.Err() != nil {
			run.Status, run.Error = RunInterrupted, context.Cause(ctx).Error()
			return run
		}
		return fail(logs, context.Cause(sctx))
	}

	// The probes count the proxy's processes only (nginx: its master and
	// workers): accepts from the load generator and connects to the upstream.
	if r.probes != nil && px != nil {
		for _, pid := range px.Pids() {
			if err := r.probes.Watch(uint32(pid)); err != nil {
				return fail(px, fmt.Errorf("watch %s with the probes: %w", proxy.Name, err))
			}
			defer r.probes.Unwatch(uint32(pid))
		}
	}

	gen, err := loadgen.New(r.target(proxy), loadgen.Config{Connections: r.sc.Load.Connections, KeepAlive: r.sc.Load.Keepalive})
	if err != nil {
		return fail(nil, err)
	}
	defer gen.Close()

	if w := r.sc.Warmup.D(); w > 0 {
		rate := 0
		if search != nil {
			rate = search.Start
		} else {
			rate = r.sc.Load.Steps[0].Rate
		}
		ev(Event{Kind: EventStepStart, Step: 0, Rate: rate, Duration: w})
		if err := gen.Warmup(sctx, loadgen.Step{Rate: rate, Duration: w}); err != nil {
			if sctx.Err() != nil {
				return stopped()
			}
			return fail(logs, fmt.Errorf("warm-up: %w", err))
		}
	}

	// measure runs one constant-rate step and keeps what it measured, also
	// when it was cut short.
	measure := func(rate int, d time.Duration) (*Step, error) {
		i := len(run.Steps) + 1
		ev(Event{Kind: EventStepStart, Step: i, Rate: rate, Duration: d})
		var before Usage
		uerr := errors.New("no proxy")
		if px != nil {
			before, uerr = px.Usage()
		}
		probesBefore, perr := r.snapshot()
		ls := loadgen.Step{Rate: rate, Duration: d}
		raw, err := r.rawFile(proxy.Name, rep, i)
		if err != nil {
			return nil, err
		}
		if raw != nil {
			ls.Raw = raw
		}
		selfBefore := selfCPUSeconds()
		res, err := gen.Attack(sctx, ls, func(p loadgen.Progress) {
			ev(Event{Kind: EventProgress, Step: i, Rate: rate, Duration: d, Progress: p})
		})
		if raw != nil {
			if cerr := raw.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		if res == nil {
			return nil, err
		}
		st := &Step{StepResult: *res}
		// Rounded to the 10 ms tick /proc counts in, so no false digits.
		round := func(s float64) float64 { return math.Round(s*clockTicks) / clockTicks }
		st.Resources = &Resources{NoProxy: true, LoadgenCPUSeconds: round(selfCPUSeconds() - selfBefore)}
		if px != nil && uerr == nil {
			if after, err := px.Usage(); err == nil {
				st.Resources.NoProxy = false
				st.Resources.ProxyCPUSeconds = round(after.CPUSeconds - before.CPUSeconds)
				st.Resources.ProxyPeakRSSBytes = after.PeakRSSBytes
			}
		}
		if after, err := r.snapshot(); err == nil && perr == nil && r.probes != nil && px != nil {
			d := after.Sub(probesBefore)
			st.Probes = &d
		}
		run.Steps = append(run.Steps, st)
		ev(Event{Kind: EventStepDone, Step: i, Rate: rate, Duration: d, Result: st})
		return st, err
	}

	if search != nil {
		res, err := searchRate(*search, func(rate int) (probeOutcome, error) {
			st, err := measure(rate, search.StepDuration.D())
			if err != nil {
				return probeOutcome{}, err
			}
			o := judge(st, search)
			verdict := "fails"
			if o.passed {
				verdict = "passes"
			}
			ev(Event{Kind: EventInfo, Message: fmt.Sprintf("%s %d/s %s: %s", proxy.Name, rate, verdict, o.reason)})
			return o, nil
		})
		run.Search = res
		if sctx.Err() != nil {
			return stopped()
		}
		if err != nil {
			return fail(logs, fmt.Errorf("search probe %d: %w", len(run.Steps), err))
		}
		ev(Event{Kind: EventInfo, Message: fmt.Sprintf("%s: %d/s (stopped by %s: %s)", proxy.Name, res.Rate, res.StoppedBy, res.Reason)})
		return run
	}
	for i, s := range r.sc.Load.Steps {
		_, err := measure(s.Rate, s.Duration.D())
		if sctx.Err() != nil {
			return stopped()
		}
		if err != nil {
			return fail(logs, fmt.Errorf("step %d: %w", i+1, err))
		}
	}
	return run
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
