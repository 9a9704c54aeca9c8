package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// row is one row measured once: the containers it started, the load
// generator aimed at them and the Run it records. Its phases run in order:
// start, warm-up, the steps or the search, stop.
type row struct {
	r     *runner
	proxy *Artifact
	rep   int
	run   *Run
	up    Running // the upstream
	px    Running // the measured proxy; nil for a row without a container
	// blame is the container whose last log lines explain a failure once
	// the row is up: the proxy, or the upstream when there is none.
	blame Running
	// sctx is the run's context, also cancelled when a container dies.
	sctx context.Context
	gen  *loadgen.Generator
	undo []func() // what stop undoes, last first
}

// runOne measures one row once. It never returns an error: what went wrong
// is recorded in the Run, and the caller goes on with the next row.
func (r *runner) runOne(ctx context.Context, proxy *Artifact, rep int) *Run {
	w := &row{r: r, proxy: proxy, rep: rep, run: &Run{Repetition: rep, Status: RunOK, Steps: []*Step{}}}
	defer w.stop()
	err := w.start(ctx)
	if err == nil {
		err = w.warmup()
	}
	if err == nil {
		w.settle(ctx)
	}
	if err == nil {
		if s := r.sc.Load.Search; s != nil {
			err = w.search(s)
		} else {
			err = w.steps()
		}
	}
	return w.record(ctx, err)
}

// blamedError is a row's failure together with the container whose logs
// explain it.
type blamedError struct {
	err  error
	from Running
}

func (e *blamedError) Error() string { return e.err.Error() }
func (e *blamedError) Unwrap() error { return e.err }

func blamed(err error, from Running) error { return &blamedError{err, from} }

// errDied is the cancellation cause when a measured container exits.
type errDied struct{ what, why string }

func (e errDied) Error() string { return e.what + " " + e.why }

// record writes the row's outcome into its Run: an interruption of the
// whole run is not the row's failure; a failure keeps the last log lines of
// the container that explains it, read before stop removes it.
func (w *row) record(ctx context.Context, err error) *Run {
	switch {
	case err == nil:
	case ctx.Err() != nil:
		w.run.Status, w.run.Error = RunInterrupted, context.Cause(ctx).Error()
	default:
		w.run.Status, w.run.Error = RunFailed, err.Error()
		var b *blamedError
		if errors.As(err, &b) && b.from != nil {
			w.run.LastLogs = b.from.Logs(ctx, 20)
		}
	}
	return w.run
}

// event tells the observer about this row.
func (w *row) event(e Event) {
	if o := w.r.o.Observer; o != nil {
		e.Proxy, e.Repetition, e.Repetitions, e.Steps = w.proxy.Name, w.rep, w.r.sc.Repeat, len(w.r.sc.Load.Steps)
		o(e)
	}
}

// later registers what stop must undo.
func (w *row) later(f func()) { w.undo = append(w.undo, f) }

// stop undoes what start did, last first: the load generator, the probes'
// watch, the death watch, then the containers.
func (w *row) stop() {
	for i := len(w.undo) - 1; i >= 0; i-- {
		w.undo[i]()
	}
}

// start brings the row up: a fresh upstream, the proxy's container unless
// the row has none, a watch on both, the probes on the proxy's processes
// and a load generator aimed at the row.
func (w *row) start(ctx context.Context) error {
	r := w.r
	w.event(Event{Kind: EventInfo, Message: fmt.Sprintf("starting %s (repetition %d/%d)", w.proxy.Name, w.rep, r.sc.Repeat)})
	up, err := r.launch.Launch(ctx, r.upstreamSpec(w.rep))
	if err != nil {
		return err
	}
	w.later(func() { up.Remove(ctx) })
	w.up, w.blame = up, up
	if err := up.WaitHTTP(ctx, "http://"+r.addr(r.upstream.Component)+"/", readyTimeout); err != nil {
		return blamed(err, up)
	}
	if !w.proxy.NoContainer {
		if err := w.startProxy(ctx); err != nil {
			return err
		}
	}
	w.watchDeaths(ctx)
	if err := w.watchProbes(); err != nil {
		return err
	}
	gen, err := loadgen.New(r.target(w.addr()), loadgen.Config{Connections: r.sc.Load.Connections, KeepAlive: r.sc.Load.Keepalive})
	if err != nil {
		return fmt.Errorf("load generator for %s: %w", w.proxy.Name, err)
	}
	w.later(func() { gen.Close() })
	w.gen = gen
	return nil
}

// addr is where the row's load goes: through the proxy, or straight to the
// upstream for a row without one.
func (w *row) addr() string {
	if w.proxy.NoContainer {
		return w.r.addr(w.r.upstream.Component)
	}
	return w.r.addr(w.proxy.Component)
}

// startProxy starts the measured container and waits until a request
// through it succeeds.
func (w *row) startProxy(ctx context.Context) error {
	px, err := w.r.launch.Launch(ctx, w.r.proxySpec(w.proxy, w.rep))
	if err != nil {
		return err
	}
	w.later(func() { px.Remove(ctx) })
	w.px, w.blame = px, px
	if err := px.WaitHTTP(ctx, "http://"+w.r.addr(w.proxy.Component)+"/", readyTimeout); err != nil {
		return blamed(err, px)
	}
	return nil
}

// addr is where c listens in this run: on loopback, or on the SUT
// address.
func (r *runner) addr(c Component) string { return c.AddrOn(r.hostIP()) }

// hostIP is the address everything listens on: r.host, loopback when unset.
func (r *runner) hostIP() string { return cmp.Or(r.host, loopbackHost) }

// containerName names a container of this run and repetition.
func (r *runner) containerName(rep int, what string) string {
	return fmt.Sprintf("proxylab-%s-r%d-%s", r.o.RunID, rep, what)
}

func (r *runner) upstreamSpec(rep int) ContainerSpec {
	return ContainerSpec{
		Artifact: r.upstream, RunID: r.o.RunID, Name: r.containerName(rep, "upstream"), CPUs: r.placement.UpstreamCPUs,
		Env: []string{"LISTEN_ADDR=" + r.addr(r.upstream.Component), "RESPONSE_BYTES=" + strconv.FormatInt(int64(r.sc.Upstream.ResponseBytes), 10)},
	}
}

// proxySpec runs a row's container as the component says, on the proxy's
// CPUs and under its memory limit.
func (r *runner) proxySpec(a *Artifact, rep int) ContainerSpec {
	return ContainerSpec{
		Artifact: a, RunID: r.o.RunID, Name: r.containerName(rep, a.Name), CPUs: r.placement.ProxyCPUs, Memory: r.placement.ProxyMemory,
		Env: a.Env(r.hostIP(), r.addr(r.upstream.Component)), Tmpfs: a.Tmpfs,
	}
}

// watchDeaths makes a container that exits mid-step cancel the step at
// once, instead of letting the load generator count connection errors to
// the end of it.
func (w *row) watchDeaths(ctx context.Context) {
	sctx, cancel := context.WithCancelCause(ctx)
	w.sctx = sctx
	w.later(func() { cancel(nil) })
	var pxDied <-chan string // nil without a proxy: never ready
	if w.px != nil {
		pxDied = w.px.Died(sctx)
	}
	upDied := w.up.Died(sctx)
	go func() {
		select {
		case why := <-pxDied:
			cancel(errDied{w.proxy.Name, why})
		case why := <-upDied:
			cancel(errDied{"upstream", why})
		case <-sctx.Done():
		}
	}()
}

// watchProbes has the probes count the proxy's processes only (nginx: its
// master and workers): accepts from the load generator and connects to the
// upstream.
func (w *row) watchProbes() error {
	p := w.r.probes
	if p == nil || w.px == nil {
		return nil
	}
	for _, pid := range w.px.Pids() {
		if err := p.Watch(uint32(pid)); err != nil {
			return blamed(fmt.Errorf("watch %s with the probes: %w", w.proxy.Name, err), w.px)
		}
		w.later(func() { p.Unwatch(uint32(pid)) })
	}
	return nil
}

// cut turns the end of a measuring phase into the row's error: a cancelled
// phase is explained by why it was cancelled (a container died, or the run
// was interrupted), any other failure by what failed.
func (w *row) cut(err error, what string) error {
	if w.sctx.Err() != nil {
		return blamed(context.Cause(w.sctx), w.blame)
	}
	if err != nil {
		return blamed(fmt.Errorf("%s: %w", what, err), w.blame)
	}
	return nil
}

// warmup runs load that is not measured at the first rate of the scenario.
func (w *row) warmup() error {
	d := w.r.sc.Warmup.D()
	if d <= 0 {
		return nil
	}
	rate := 0 // the closed model
	if s := w.r.sc.Load.Search; s != nil {
		rate = s.Start
	} else {
		rate = w.r.rates[0]
	}
	w.event(Event{Kind: EventStepStart, Step: 0, Rate: rate, Duration: d})
	return w.cut(w.gen.Warmup(w.sctx, loadgen.Step{Rate: rate, Duration: d}), "warm-up")
}

// steps measures the scenario's steps in order.
func (w *row) steps() error {
	for i, s := range w.r.sc.Load.Steps {
		var err error
		if w.r.sc.Probes.Overhead && w.probed() {
			err = w.measureTwins(i, w.r.rates[i], s.Duration.D())
		} else {
			_, err = w.measure(w.r.rates[i], s.Duration.D())
		}
		if err := w.cut(err, fmt.Sprintf("step %d", i+1)); err != nil {
			return err
		}
	}
	return nil
}

// measureTwins measures step i with the probes attached and again with
// them detached. Which runs first alternates by step and repetition, so
// that a drift of the machine, or the proxy warming up over the step,
// does not always favour the same half.
func (w *row) measureTwins(i, rate int, d time.Duration) error {
	offFirst := (i+w.rep)%2 == 0
	var off OffStep
	var err error
	if offFirst {
		if off, err = w.measureDetached(i, rate, d); err != nil {
			return err
		}
	}
	st, err := w.measure(rate, d)
	if err != nil {
		return err
	}
	if !offFirst {
		if off, err = w.measureDetached(i, rate, d); err != nil {
			return err
		}
	}
	st.Overhead = overheadOf(st, off, offFirst)
	return nil
}

// measureDetached runs step i once more with the probes' programs
// detached, so nothing runs in the proxy on its accepts and connects.
func (w *row) measureDetached(i, rate int, d time.Duration) (OffStep, error) {
	p := w.r.probes
	if err := p.SetAttached(false); err != nil {
		return OffStep{}, err
	}
	defer func() {
		if err := p.SetAttached(true); err != nil {
			w.event(Event{Kind: EventInfo, Message: "re-attaching the probes: " + err.Error()})
		}
	}()
	w.event(Event{Kind: EventInfo, Message: fmt.Sprintf("%s step %d at %d/s for %s with the probes detached", w.proxy.Name, i+1, rate, d)})
	before, beforeErr := w.px.Usage()
	res, err := w.gen.Attack(w.sctx, loadgen.Step{Rate: rate, Duration: d}, nil)
	if err != nil {
		return OffStep{}, fmt.Errorf("with the probes detached: %w", err)
	}
	off := OffStep{Throughput: res.Throughput, AchievedRate: res.AchievedRate, Requests: res.Requests, Success: res.Success, LoadgenSaturated: res.LoadgenSaturated}
	if after, err := w.px.Usage(); err == nil && beforeErr == nil {
		cpu := math.Round((after.CPUSeconds-before.CPUSeconds)*clockTicks) / clockTicks
		off.ProxyCPUSeconds = &cpu
	}
	return off, nil
}

// search looks for the highest rate meeting the scenario's objective; every
// probe is kept as a step, and what the search found as the run's Search,
// also when it was cut short.
func (w *row) search(s *scenarios.Search) error {
	res, err := searchRate(*s, func(rate int) (probeOutcome, error) { return w.probe(rate, s) })
	w.run.Search = res
	if err := w.cut(err, fmt.Sprintf("search probe %d", len(w.run.Steps))); err != nil {
		return err
	}
	by := "stopped by " + res.StoppedBy // max: no CPU was the limit
	if res.LimitedBy != "" {
		by = "limited by " + res.LimitedBy
	}
	w.event(Event{Kind: EventInfo, Message: fmt.Sprintf("%s: %d/s (%s: %s)", w.proxy.Name, res.Rate, by, res.Reason)})
	return nil
}

// probe measures one rate of a search and judges it.
func (w *row) probe(rate int, s *scenarios.Search) (probeOutcome, error) {
	st, err := w.measure(rate, s.StepDuration.D())
	if err != nil {
		return probeOutcome{}, err
	}
	o := judge(st, s)
	verdict := "fails"
	if o.passed {
		verdict = "passes"
	}
	w.event(Event{Kind: EventInfo, Message: fmt.Sprintf("%s %d/s %s: %s", w.proxy.Name, rate, verdict, o.reason)})
	return o, nil
}

// measure runs one constant-rate step and keeps what it measured, also when
// it was cut short.
func (w *row) measure(rate int, d time.Duration) (*Step, error) {
	i := len(w.run.Steps) + 1
	w.event(Event{Kind: EventStepStart, Step: i, Rate: rate, Duration: d})
	ls := loadgen.Step{Rate: rate, Duration: d}
	raw, err := w.r.rawFile(w.proxy.Name, w.rep, i)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		ls.Raw = raw // only when set: a nil *os.File would be a non-nil writer
	}
	before := w.read(w.sctx)
	res, err := w.gen.Attack(w.sctx, ls, func(p loadgen.Progress) {
		w.event(Event{Kind: EventProgress, Step: i, Rate: rate, Duration: d, Progress: p})
	})
	if raw != nil {
		if cerr := raw.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("raw results: %w", cerr)
		}
	}
	if res == nil {
		return nil, err
	}
	st := &Step{StepResult: *res}
	st.Resources, st.Probes = w.since(w.sctx, before, res)
	w.disturbance(st)
	w.run.Steps = append(w.run.Steps, st)
	w.event(Event{Kind: EventStepDone, Step: i, Rate: rate, Duration: d, Result: st})
	return st, err
}

// reading is what a step's resources and probe counts are differences of.
type reading struct {
	proxy    Usage
	proxyOK  bool // the row has a proxy and its usage could be read
	probes   bpf.Counts
	probesOK bool
	check    checkReading // only with probes on a proxy
	cpu      cpuReading
}

// cpuReading is what every party's CPU share and the cores' busy time are
// differences of. Its parts are read together, after the check's request
// to the upstream, so that they span the same interval.
type cpuReading struct {
	at         time.Time
	self       float64 // this process's CPU seconds: the load generator's and the probe reader's
	upstream   Usage
	upstreamOK bool
	cores      map[int]cpuTimes // nil when /proc/stat could not be read
	others     map[int]procTime // every other process on the run's cores; nil when /proc could not be read
	// sut is the SUT host's reading by its agent: the upstream's tree, the
	// agent's own CPU time and, when that host is another machine, its
	// cores and processes. nil on one host, or when it could not be read.
	sut *AgentReading
}

// probed reports whether the row's steps carry probe counts: probes
// attached, and a proxy process for them to watch.
func (w *row) probed() bool { return w.r.probes != nil && w.px != nil }

func (w *row) read(ctx context.Context) reading {
	var b reading
	if w.px != nil {
		u, err := w.px.Usage()
		b.proxy, b.proxyOK = u, err == nil
	}
	if w.probed() {
		b.check = w.readCheck(ctx)
	}
	c, err := w.r.snapshot()
	b.probes, b.probesOK = c, err == nil
	b.cpu = w.readCPU()
	return b
}

// readCPU reads this process's CPU time, the upstream's (and the SUT
// host, when there is one), every other process's on the run's cores and
// /proc/stat, in that order and at once.
func (w *row) readCPU() cpuReading {
	c := cpuReading{self: selfCPUSeconds()}
	var parties map[int]bool
	if w.r.sut != nil {
		c.sut = w.readSUT()
		if t, ok := c.sut.tree(rootPid(w.up)); ok {
			c.upstream, c.upstreamOK = Usage{CPUSeconds: t.CPUSeconds, PeakRSSBytes: t.PeakRSSBytes}, true
		}
		parties = w.sutParties(c.sut)
	} else {
		if w.up != nil {
			u, err := w.up.Usage()
			c.upstream, c.upstreamOK = u, err == nil
		}
		parties = w.parties()
	}
	c.others = processTimes(w.runCPUs(), func(pid int) bool { return parties[pid] })
	c.cores, _ = readProcStat() // without it the step has no cores, and no interference
	c.at = time.Now()
	return c
}

// readSUT reads the SUT host through its agent: the trees of the row's
// containers and, on another machine, the cores of the proxy and the
// upstream. nil when the agent did not answer: the step then has no
// upstream figures and no interference there.
func (w *row) readSUT() *AgentReading {
	rd, err := w.r.sut.agent.reading(w.sctx, w.sutCPUs(), w.roots()...)
	if err != nil {
		w.event(Event{Kind: EventInfo, Message: err.Error()})
		return nil
	}
	return rd
}

// tree is root's tree in the reading, when it was read.
func (rd *AgentReading) tree(root int) (AgentTree, bool) {
	if rd == nil {
		return AgentTree{}, false
	}
	t, ok := rd.Trees[root]
	return t, ok && t.Error == ""
}

// roots are the main processes of the row's containers.
func (w *row) roots() []int {
	var out []int
	for _, r := range []Running{w.px, w.up} {
		if r != nil {
			out = append(out, rootPid(r))
		}
	}
	return out
}

// settle waits, up to settleMax, until processes outside the run use less
// than settleShare of a core over a settleWindow, so that the first step
// does not start while the engine (dockerd, containerd and the shims)
// still works on this row's and the previous row's containers: it used a
// few tenths of a core for up to a second around a container's start and
// removal on this lab's host. A host that does not settle is said so, and
// the step will show how disturbed it was.
func (w *row) settle(ctx context.Context) {
	cpus := w.runCPUs()
	parties := w.parties()
	isParty := func(pid int) bool { return parties[pid] }
	deadline := time.Now().Add(settleMax)
	var last []OutsideProcess
	for time.Now().Before(deadline) {
		before := processTimes(cpus, isParty)
		select {
		case <-ctx.Done():
			return
		case <-time.After(settleWindow):
		}
		last = outsideOf(before, processTimes(cpus, isParty))
		used := 0.0
		for _, p := range last {
			used += p.CPUSeconds
		}
		if used/settleWindow.Seconds() < settleShare {
			return
		}
	}
	in := OutsideInterference(last, nil, settleWindow.Seconds())
	w.event(Event{Kind: EventInfo, Message: fmt.Sprintf("%s: the host did not settle in %s before the first step: %s",
		w.proxy.Name, settleMax, processesText(in, settleWindow.Seconds()))})
}

// How long and how quiet settle waits for.
const (
	settleMax    = 3 * time.Second
	settleWindow = 300 * time.Millisecond
	settleShare  = 0.02
)

// parties are the run's own processes on this host: this one (the load
// generator and the probe reader), the proxy's and the upstream's, and on
// a SUT host that is this machine the agent too; on a SUT host that is
// another machine, only this one. (Kernel threads processTimes leaves out
// by itself.) Read once per reading: a SUT container's tree is a request
// to its agent.
func (w *row) parties() map[int]bool {
	out := map[int]bool{os.Getpid(): true}
	if w.sutLabel() != "" {
		return out
	}
	for _, r := range []Running{w.px, w.up} {
		if r != nil {
			for _, pid := range r.Pids() {
				out[pid] = true
			}
		}
	}
	if s := w.r.sut; s != nil && s.same {
		out[s.info.PID] = true
	}
	return out
}

// sutParties are parties from the SUT host's reading, which holds the
// trees of the row's containers: this host's processes when the SUT host
// is this machine. Without a reading, or on another machine, they are
// parties().
func (w *row) sutParties(rd *AgentReading) map[int]bool {
	if rd == nil || w.sutLabel() != "" {
		return w.parties()
	}
	out := map[int]bool{os.Getpid(): true, w.r.sut.info.PID: true}
	for _, t := range rd.Trees {
		for _, pid := range t.Pids {
			out[pid] = true
		}
	}
	return out
}

// runCPUs are the CPUs of the row's parties on this host: the proxy's only
// when the row has a proxy; only the load generator's when the SUT host is
// another machine.
func (w *row) runCPUs() []int {
	p := w.r.placement
	sets := []string{p.LoadgenCPUs}
	if w.r.sut == nil || w.r.sut.same {
		sets = append(sets, p.UpstreamCPUs)
		if w.px != nil {
			sets = append(sets, p.ProxyCPUs)
		}
	}
	return cpuList(sets)
}

// sutCPUs are the CPUs of the row's parties on the SUT host, as a cpuset.
func (w *row) sutCPUs() string {
	p := w.r.placement
	sets := []string{p.UpstreamCPUs}
	if w.px != nil {
		sets = append(sets, p.ProxyCPUs)
	}
	return cpuSetString(cpuList(sets))
}

// cpuList is the sorted union of cpusets; a set that does not parse adds
// nothing.
func cpuList(sets []string) []int {
	var cpus []int
	for _, s := range sets {
		c, _ := ParseCPUSet(s)
		cpus = append(cpus, c...)
	}
	slices.Sort(cpus)
	return slices.Compact(cpus)
}

// readCheck reads the counts the probes are checked against. It is read
// before the probes at a step's start and after them at its end, so the
// check's interval holds the probes' one.
func (w *row) readCheck(ctx context.Context) checkReading {
	c := checkReading{dials: w.gen.Dials()}
	c.upstream, c.upErr = readUpstreamStats(ctx, w.r.addr(w.r.upstream.Component))
	return c
}

// since is what the step used: every party's CPU time and share of its
// cpuset, the proxy's peak memory, what the parties' cores did and how much
// of them something else used, and the probe counts when the row has a
// proxy for the probes to watch.
func (w *row) since(ctx context.Context, b reading, lg *loadgen.StepResult) (*Resources, *StepProbes) {
	a := w.readCPU()
	res := &Resources{NoProxy: true, LoadgenCPUSeconds: roundTick(a.self - b.cpu.self)}
	pl := w.r.placement
	sut := w.sutLabel()
	party := func(name, host, cpus string, seconds float64) {
		res.Parties = append(res.Parties, Party{Name: name, Host: host, CPUs: cpus, CPUSeconds: roundTick(max(0, seconds))})
	}
	if b.proxyOK {
		if after, err := w.px.Usage(); err == nil {
			res.NoProxy = false
			res.ProxyCPUSeconds = roundTick(after.CPUSeconds - b.proxy.CPUSeconds)
			res.ProxyPeakRSSBytes = after.PeakRSSBytes
			party(PartyProxy, sut, pl.ProxyCPUs, res.ProxyCPUSeconds)
		}
	}
	if b.cpu.upstreamOK && a.upstreamOK {
		up := roundTick(a.upstream.CPUSeconds - b.cpu.upstream.CPUSeconds)
		res.UpstreamCPUSeconds = &up
		party(PartyUpstream, sut, pl.UpstreamCPUs, up)
	}
	var after bpf.Counts
	afterOK := false
	if w.r.probes != nil && b.probesOK {
		var err error
		after, err = w.r.snapshot()
		afterOK = err == nil
	}
	reader := 0.0
	switch {
	case w.r.sut != nil:
		// The reader is the agent on the SUT host, probes and all.
		party(PartyLoadgen, "", pl.LoadgenCPUs, a.self-b.cpu.self)
		if b.cpu.sut != nil && a.sut != nil {
			party(PartyReader, sut, w.r.sut.cpus, a.sut.SelfCPUSeconds-b.cpu.sut.SelfCPUSeconds)
		}
	case afterOK:
		reader = after.ReaderCPUSeconds - b.probes.ReaderCPUSeconds
		party(PartyLoadgen, "", pl.LoadgenCPUs, a.self-b.cpu.self-reader)
		party(PartyReader, "", pl.LoadgenCPUs, reader)
	default:
		party(PartyLoadgen, "", pl.LoadgenCPUs, a.self-b.cpu.self)
	}
	w.cores(res, b.cpu, a)
	if !afterOK || !w.probed() {
		return res, nil
	}
	sp := &StepProbes{Counts: after.Sub(b.probes)}
	sp.Check = connectionCheck(b.check, w.readCheck(ctx), lg, w.r.sc.Load.Connections)
	return res, sp
}

// cores fills in the parties' shares of their cpusets, the cores' times
// and the interference between two CPU readings.
func (w *row) cores(res *Resources, b, a cpuReading) {
	res.IntervalSeconds = math.Round(a.at.Sub(b.at).Seconds()*1000) / 1000
	if res.IntervalSeconds <= 0 {
		return
	}
	for i, p := range res.Parties {
		if n := len(partyCPUs(p)); n > 0 {
			res.Parties[i].Share = roundShare(p.CPUSeconds / (float64(n) * res.IntervalSeconds))
		}
	}
	if b.cores == nil || a.cores == nil {
		return
	}
	res.Cores = coreTimes(b.cores, a.cores, w.runCPUs())
	if w.sutLabel() != "" {
		if b.sut == nil || a.sut == nil {
			return // the SUT host's cores are unknown: so is the interference
		}
		res.Cores = append(res.Cores, sutCoreTimes(b.sut, a.sut, w.sutCPUs())...)
	}
	if b.others == nil || a.others == nil {
		return
	}
	res.Outside = outsideOf(b.others, a.others)
	if w.sutLabel() != "" {
		res.Outside = append(res.Outside, sutOutside(b.sut, a.sut)...)
	}
	in := OutsideInterference(res.Outside, res.Cores, res.IntervalSeconds).Share
	res.Interference = &in
}

// sutLabel is the Host of what is on the SUT host: SUTLabel when that is
// another machine, "" on one host or in a namespace of this one.
func (w *row) sutLabel() string {
	if w.r.sut == nil || w.r.sut.same {
		return ""
	}
	return SUTLabel
}

// disturbance marks st, and the row's run, disturbed when something
// outside the run used the run's cores during it.
func (w *row) disturbance(st *Step) {
	res := st.Resources
	if res == nil || res.Outside == nil {
		return
	}
	st.Disturbed, st.Disturbance = Disturbance(OutsideInterference(res.Outside, res.Cores, res.IntervalSeconds), res.IntervalSeconds)
	if st.Disturbed {
		w.run.Disturbed = true
	}
}
