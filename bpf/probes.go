// Package bpf counts accepted connections and IPv4 TCP connects of chosen
// processes with eBPF, and measures how many of the per-event records sent
// through a perf buffer were lost on the way to user space.
package bpf

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Attach modes; ModeAuto tries the others in the order of chain.
const (
	ModeAuto       = "auto"
	ModeKprobe     = "kprobe"
	ModeFentry     = "fentry"
	ModeTracepoint = "tracepoint"
)

// DefaultPerfBufferPages is used when Options.PerfBufferPages is 0.
const DefaultPerfBufferPages = 64

// Options choose how to attach.
type Options struct {
	Mode            string // "auto", "kprobe", "fentry", "tracepoint"
	PerfBufferPages int    // per CPU; power of two
	// Events chooses which counted events also go through the perf
	// buffer; the zero value sends none.
	Events Events
	// ReaderCPUs, when not empty, are the CPUs the perf buffer's reader
	// thread runs on: the load generator's, so that reading the buffer
	// takes no CPU time from the process being measured.
	ReaderCPUs []int

	// readerStart, if set, holds the reader back until it is closed, so
	// tests can overflow the perf buffer on purpose.
	readerStart <-chan struct{}
}

// Attempt is an earlier mode in the auto chain that failed, and why.
type Attempt struct {
	Mode  string `json:"mode"`
	Error string `json:"error"`
}

type hook struct {
	prog   string
	attach func(*ebpf.Program) (link.Link, error)
}

// Kprobes are cheapest to keep portable (no BTF trampolines), fentry is the
// fallback where kprobes are compiled out, and tracepoints are stable ABI
// that nearly every kernel has.
var chain = []string{ModeKprobe, ModeFentry, ModeTracepoint}

var hooks = map[string][]hook{
	ModeKprobe: {
		{"kretprobe_accept", func(p *ebpf.Program) (link.Link, error) { return link.Kretprobe("inet_csk_accept", p, nil) }},
		{"kretprobe_connect", func(p *ebpf.Program) (link.Link, error) { return link.Kretprobe("tcp_v4_connect", p, nil) }},
	},
	// Resolved per kernel by fentryHooks.
	ModeFentry: nil,
	ModeTracepoint: {
		{"tp_accept4", func(p *ebpf.Program) (link.Link, error) {
			return link.Tracepoint("syscalls", "sys_exit_accept4", p, nil)
		}},
		{"tp_accept", func(p *ebpf.Program) (link.Link, error) {
			return link.Tracepoint("syscalls", "sys_exit_accept", p, nil)
		}},
		{"tp_set_state", func(p *ebpf.Program) (link.Link, error) {
			return link.Tracepoint("sock", "inet_sock_set_state", p, nil)
		}},
	},
}

func tracing(p *ebpf.Program) (link.Link, error) {
	return link.AttachTracing(link.TracingOptions{Program: p})
}

// fexitVariants maps each hooked kernel function to its fexit programs by
// the parameter count each was written for: the return value's place in
// the context depends on it.
var fexitVariants = []struct {
	fn    string
	progs map[int]string
}{
	{"inet_csk_accept", map[int]string{2: "fexit_accept_2args", 4: "fexit_accept_4args"}},
	{"tcp_v4_connect", map[int]string{3: "fexit_connect"}},
}

// fentryHooks picks, for the kernel described by spec, the fexit programs
// whose context layout matches its functions.
func fentryHooks(spec *btf.Spec) ([]hook, error) {
	var hs []hook
	for _, v := range fexitVariants {
		n, err := paramCount(spec, v.fn)
		if err != nil {
			return nil, err
		}
		prog, ok := v.progs[n]
		if !ok {
			return nil, fmt.Errorf("kernel function %s has %d parameters, which no fexit program here expects: %w", v.fn, n, ebpf.ErrNotSupported)
		}
		hs = append(hs, hook{prog, tracing})
	}
	return hs, nil
}

func paramCount(spec *btf.Spec, fn string) (int, error) {
	var f *btf.Func
	if err := spec.TypeByName(fn, &f); err != nil {
		return 0, fmt.Errorf("looking up %s in kernel BTF: %w", fn, err)
	}
	proto, ok := f.Type.(*btf.FuncProto)
	if !ok {
		return 0, fmt.Errorf("kernel BTF: %s is a %T, not a function prototype", fn, f.Type)
	}
	return len(proto.Params), nil
}

func modeHooks(mode string) ([]hook, error) {
	if mode != ModeFentry {
		return hooks[mode], nil
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("reading kernel BTF: %w", err)
	}
	return fentryHooks(spec)
}

// Probes are attached eBPF programs and the reader of their events.
// Nothing is pinned: closing the Probes, or the process exiting, removes all.
type Probes struct {
	mode     string
	attempts []Attempt

	maps   probesMaps       // every map, typed as bpf2go generated them
	flush  *ebpf.Program    // the program flushRings runs, loaded in every mode
	coll   *ebpf.Collection // the attach mode's own programs
	hooks  []hook           // where the mode's programs attach
	links  []link.Link      // nil while detached
	reader *perf.Reader

	events     Events
	coverage   coverage // which miss counts the kernel keeps
	kretBase   uint64   // kretprobe misses of links closed by SetAttached
	readerCPUs []int
	readerTID  atomic.Int64 // the reader's thread; 0 until it runs
	pinErr     error        // why the reader could not be pinned; set before ready closes
	policyErr  error        // why the reader kept SCHED_BATCH; set before ready closes
	ready      chan struct{}

	received atomic.Uint64
	lost     atomic.Uint64
	flushed  chan struct{}
	done     chan struct{}
	readErr  atomic.Pointer[error]

	mu      sync.Mutex // serialises Snapshot and Close
	noFlush bool       // the kernel cannot run the flush program per CPU
}

// Attach loads and attaches the programs per opts.Mode. In mode auto it
// tries kprobe, then fentry, then tracepoint; Attempts tells why the
// earlier ones failed.
func Attach(opts Options) (*Probes, error) {
	pages := opts.PerfBufferPages
	if pages == 0 {
		pages = DefaultPerfBufferPages
	}
	if pages < 0 || pages&(pages-1) != 0 {
		return nil, fmt.Errorf("bpf: perf buffer pages must be a power of two, got %d", opts.PerfBufferPages)
	}
	if err := opts.Events.check(); err != nil {
		return nil, err
	}
	mode := opts.Mode
	if mode == "" {
		mode = ModeAuto
	}
	modes := chain
	if mode != ModeAuto {
		if _, ok := hooks[mode]; !ok {
			return nil, fmt.Errorf("bpf: unknown probe mode %q (want auto, kprobe, fentry or tracepoint)", mode)
		}
		modes = []string{mode}
	}

	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain(mode, fmt.Errorf("bpf: raising RLIMIT_MEMLOCK: %w", err))
	}
	// Tracepoints need tracefs; kprobes fall back to it on kernels without
	// the kprobe PMU. A failure here surfaces later as an attach error.
	tracefsErr := ensureTracefs()

	var attempts []Attempt
	for _, m := range modes {
		p, err := attachMode(m, pages, opts)
		if err == nil {
			p.attempts = attempts
			return p, nil
		}
		err = explain(m, err)
		if m == ModeTracepoint && tracefsErr != nil {
			err = fmt.Errorf("%w (%v)", err, tracefsErr)
		}
		attempts = append(attempts, Attempt{Mode: m, Error: err.Error()})
	}
	if len(attempts) == 1 {
		return nil, fmt.Errorf("bpf: %s mode: %s", attempts[0].Mode, attempts[0].Error)
	}
	var b strings.Builder
	for _, a := range attempts {
		fmt.Fprintf(&b, "; %s: %s", a.Mode, a.Error)
	}
	return nil, fmt.Errorf("bpf: no attach mode worked%s", b.String())
}

func attachMode(mode string, pages int, opts Options) (_ *Probes, err error) {
	// Tracepoint records have a fixed layout; the other modes relocate
	// against, or attach by, kernel types.
	if mode != ModeTracepoint {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			return nil, fmt.Errorf("kernel BTF missing (%w): %s mode needs a kernel built with CONFIG_DEBUG_INFO_BTF=y; use mode tracepoint", err, mode)
		}
	}
	spec, err := loadProbes()
	if err != nil {
		return nil, err
	}
	var specs probesSpecs
	if err := spec.Assign(&specs); err != nil {
		return nil, fmt.Errorf("reading the object's programs and maps: %w", err)
	}
	if err := specs.SampleEvery.Set(opts.Events.Every); err != nil {
		return nil, fmt.Errorf("setting sample_every: %w", err)
	}
	hs, err := modeHooks(mode)
	if err != nil {
		return nil, err
	}
	// Only this mode's programs are loaded: the others may need kernel
	// features (BTF, trampolines) that are missing.
	keep := map[string]*ebpf.ProgramSpec{specs.Flush.Name: specs.Flush}
	for _, h := range hs {
		keep[h.prog] = spec.Programs[h.prog]
	}
	spec.Programs = keep

	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("loading programs: %w", err)
	}
	p := &Probes{
		mode:       mode,
		coll:       coll,
		events:     opts.Events,
		readerCPUs: append([]int(nil), opts.ReaderCPUs...),
		ready:      make(chan struct{}),
		flushed:    make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	// The maps and the flush program move into typed fields; the mode's
	// programs, which differ per mode, stay in the collection.
	if err := coll.Assign(&p.maps); err != nil {
		return nil, fmt.Errorf("taking the maps: %w", err)
	}
	p.flush = coll.Programs[specs.Flush.Name]
	delete(coll.Programs, specs.Flush.Name)
	p.hooks = hs
	if err := p.attachLinks(); err != nil {
		return nil, err
	}
	p.reader, err = perf.NewReader(p.maps.Events, pages*os.Getpagesize())
	if err != nil {
		return nil, fmt.Errorf("opening perf buffer: %w", err)
	}
	v, release := runningKernel()
	p.coverage = missCoverage(mode, v, release)
	go p.read(opts.readerStart)
	<-p.ready
	return p, nil
}

// attachLinks attaches every program of the mode; on failure none stays
// attached.
func (p *Probes) attachLinks() error {
	for _, h := range p.hooks {
		l, err := h.attach(p.coll.Programs[h.prog])
		if err != nil {
			p.closeLinks()
			return fmt.Errorf("attaching %s: %w", h.prog, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

func (p *Probes) closeLinks() {
	// A link's miss count ends with it; kept, so the total never goes back.
	if p.coverage.kretprobe {
		if n, err := kretprobeMisses(p.links); err == nil {
			p.kretBase += n
		}
	}
	for _, l := range p.links {
		l.Close()
	}
	p.links = nil
}

// SetAttached detaches the programs (false) or attaches them again
// (true), keeping the maps, the counts and the reader: with the programs
// detached nothing runs in the watched processes at all, which is what a
// run without probes is compared against.
func (p *Probes) SetAttached(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.coll == nil {
		return errors.New("bpf: probes are closed")
	}
	switch {
	case on && p.links == nil:
		return p.attachLinks()
	case !on:
		p.closeLinks()
	}
	return nil
}

// release undoes attachMode; links go first so no program runs against a
// closed reader.
func (p *Probes) release() {
	p.closeLinks()
	if p.reader != nil {
		p.reader.Close()
		<-p.done
		p.reader = nil
	}
	p.coll.Close()
	p.maps.Close()
	if p.flush != nil {
		p.flush.Close()
	}
}

func (p *Probes) read(start <-chan struct{}) {
	defer close(p.done)
	// The thread is kept to this goroutine, and ends with it, so that its
	// affinity binds nothing else and its CPU time is the reader's alone.
	runtime.LockOSThread()
	p.pinErr = pinThread(p.readerCPUs)
	if _, err := normalPolicy(0); err != nil {
		p.policyErr = fmt.Errorf("bpf: giving the perf reader the normal scheduling policy: %w", err)
	}
	p.readerTID.Store(int64(unix.Gettid()))
	close(p.ready)
	if start != nil {
		<-start
	}
	var rec perf.Record
	for {
		err := p.reader.ReadInto(&rec)
		switch {
		case err == nil && rec.LostSamples > 0:
			p.lost.Add(rec.LostSamples)
		case err == nil && isFlush(rec.RawSample):
		case err == nil:
			p.received.Add(1)
		case errors.Is(err, perf.ErrFlushed):
			select {
			case p.flushed <- struct{}{}:
			default:
			}
		case errors.Is(err, perf.ErrClosed):
			return
		default:
			p.readErr.Store(&err)
			return
		}
	}
}

// normalPolicy gives thread tid (0: the calling one) the normal scheduling
// policy back from SCHED_BATCH, and reports whether it had to. The load
// generator's threads, whose CPUs the reader shares, run as SCHED_BATCH and
// do not preempt on waking; the reader does, so that the perf buffer is
// drained as soon as it has records, not at the next tick. It overrides a
// batch policy chosen for the whole process too; a real-time or idle one is
// kept.
func normalPolicy(tid int) (bool, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil || attr.Policy != unix.SCHED_BATCH {
		return false, err
	}
	return true, unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: attr.Nice}, 0)
}

// pinThread binds the calling thread to cpus; none leaves it alone.
func pinThread(cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("bpf: pinning the perf reader to CPUs %v: %w", cpus, err)
	}
	return nil
}

// ReaderPolicyError says why the perf buffer's reader kept the batch
// policy of the load generator's threads, if it did.
func (p *Probes) ReaderPolicyError() error { return p.policyErr }

// ReaderPin says where the perf buffer's reader runs: the CPUs it is
// pinned to (none: wherever the scheduler puts it) and, if pinning failed,
// why.
func (p *Probes) ReaderPin() ([]int, error) {
	if p.pinErr != nil {
		return nil, p.pinErr
	}
	return append([]int(nil), p.readerCPUs...), nil
}

// Events is what the programs send through the perf buffer.
func (p *Probes) Events() Events { return p.events }

// Mode is the attach mode in use.
func (p *Probes) Mode() string { return p.mode }

// Attempts lists the modes tried and failed before Mode, in order.
func (p *Probes) Attempts() []Attempt { return append([]Attempt(nil), p.attempts...) }

// Watch adds a process (its tgid as seen from the initial PID namespace,
// e.g. a container's State.Pid) to the allow-list.
func (p *Probes) Watch(tgid uint32) error {
	if err := p.maps.Watched.Put(tgid, uint8(1)); err != nil {
		return fmt.Errorf("bpf: watching %d: %w", tgid, err)
	}
	return nil
}

// Unwatch removes a process from the allow-list; unknown ones are ignored.
func (p *Probes) Unwatch(tgid uint32) error {
	err := p.maps.Watched.Delete(tgid)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: unwatching %d: %w", tgid, err)
	}
	return nil
}

// Close detaches all programs and frees the maps and the perf buffer.
func (p *Probes) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.coll == nil {
		return nil
	}
	p.release()
	p.coll = nil
	return nil
}

func ensureTracefs() error {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.TRACEFS_MAGIC {
			return nil
		}
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("tracefs is not mounted and mounting it failed: %w; run `mount -t tracefs nodev /sys/kernel/tracing` as root", err)
	}
	return nil
}

// explain turns the kernel's terse refusals into what to do about them.
func explain(mode string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		if os.Geteuid() != 0 {
			return fmt.Errorf("%w: not running as root; eBPF probes need root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE): run with sudo", err)
		}
		if mode == ModeFentry {
			return fmt.Errorf("%w: the kernel refuses fentry/fexit although running as root (no BPF trampoline support, lockdown or an LSM); use mode kprobe or tracepoint", err)
		}
		return fmt.Errorf("%w: refused although running as root (kernel lockdown or an LSM)", err)
	case mode == ModeKprobe && !kprobesAvailable():
		return fmt.Errorf("%w: this kernel has no kprobe support (CONFIG_KPROBES, CONFIG_KPROBE_EVENTS); use mode fentry or tracepoint", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w: this kernel lacks the feature; use mode auto to fall back", err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: the kernel function or tracepoint does not exist on this kernel", err)
	}
	return err
}

// kprobesAvailable reports whether either way of creating a kprobe exists:
// the perf PMU or tracefs' kprobe_events.
func kprobesAvailable() bool {
	for _, f := range []string{
		"/sys/bus/event_source/devices/kprobe/type",
		"/sys/kernel/tracing/kprobe_events",
		"/sys/kernel/debug/tracing/kprobe_events",
	} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}
