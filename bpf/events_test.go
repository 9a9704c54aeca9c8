package bpf

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/threads"
)

// Whatever is sent, the counts are exact and every record sent is
// accounted for; only how many are sent differs.
func TestEventsSettings(t *testing.T) {
	requirePrivileges(t)
	const n = 60 // accepts, and as many connects
	cpus := runtime.NumCPU()
	for _, tc := range []struct {
		events Events
		// sent is how many of the 2n events may go through the buffer: each
		// CPU sends one in Every of the events it runs, carrying a rest of
		// up to Every-1 over from before and into after the interval.
		lo, hi int
	}{
		{EventsNone, 0, 0},
		{EventsAll, 2 * n, 2 * n},
		{EventsSample(4), 2*n/4 - cpus, 2*n/4 + cpus},
	} {
		t.Run(tc.events.Name(), func(t *testing.T) {
			p, err := Attach(Options{Mode: ModeTracepoint, Events: tc.events})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			listener := startHelper(t, "listen")
			addr := listener.line(t)
			connector := startHelper(t, "connect", addr, strconv.Itoa(n))
			for _, h := range []*helper{listener, connector} {
				if err := p.Watch(h.pid()); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, p)
			fmt.Fprintln(connector.stdin, "go")
			connector.line(t)
			d := snapshot(t, p).Sub(before)
			t.Logf("%+v", d)
			if d.Accepts != n || d.Connects != n {
				t.Errorf("accepts %d connects %d, want %d each", d.Accepts, d.Connects, n)
			}
			if int(d.Attempted) < tc.lo || int(d.Attempted) > tc.hi {
				t.Errorf("attempted %d, want %d to %d", d.Attempted, tc.lo, tc.hi)
			}
			if d.Events != tc.events.Name() || d.SampleEvery != tc.events.Every {
				t.Errorf("counts say events %q every %d, want %+v", d.Events, d.SampleEvery, tc.events)
			}
		})
	}
}

// The reader runs on the CPUs it was given, on a thread of its own whose
// CPU time the counts carry.
func TestReaderPinned(t *testing.T) {
	requirePrivileges(t)
	p, err := Attach(Options{Mode: ModeTracepoint, Events: EventsAll, ReaderCPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if cpus, err := p.ReaderPin(); err != nil || len(cpus) != 1 || cpus[0] != 0 {
		t.Fatalf("ReaderPin = %v, %v; want [0]", cpus, err)
	}
	tid := int(p.readerTID.Load())
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(0) {
		t.Errorf("reader thread %d may run on %d CPUs, want CPU 0 only", tid, set.Count())
	}
	// The rest of the process is not pinned with it.
	var self unix.CPUSet
	if err := unix.SchedGetaffinity(0, &self); err != nil {
		t.Fatal(err)
	}
	if runtime.NumCPU() > 1 && self.Count() == 1 && unix.Gettid() != tid {
		t.Errorf("the test's own thread was pinned too")
	}
	c := snapshot(t, p)
	if c.ReaderCPUSeconds < 0 || c.ReaderCPUSeconds > 60 {
		t.Errorf("reader CPU seconds %v", c.ReaderCPUSeconds)
	}
	if _, err := threadCPUSeconds(int64(tid)); err != nil {
		t.Error(err)
	}
}

// The reader keeps the normal policy when the process around it runs as
// SCHED_BATCH, as the lab's load generator does: it drains the perf buffer
// as soon as it is woken, not at the next tick.
func TestReaderPolicy(t *testing.T) {
	requirePrivileges(t)
	if err := loadgen.Batch(); err != nil {
		t.Fatal(err)
	}
	defer normalAgain(t)
	p, err := Attach(Options{Mode: ModeTracepoint, Events: EventsAll, ReaderCPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ReaderPolicyError(); err != nil {
		t.Fatal(err)
	}
	for tid, want := range map[int]uint32{int(p.readerTID.Load()): unix.SCHED_NORMAL, unix.Gettid(): unix.SCHED_BATCH} {
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			t.Fatal(err)
		}
		if attr.Policy != want {
			t.Errorf("thread %d has policy %d, want %d", tid, attr.Policy, want)
		}
	}
}

// normalAgain gives every batch thread of the test process the normal
// policy back.
func normalAgain(t *testing.T) {
	if err := threads.Each(normalPolicy); err != nil {
		t.Error(err)
	}
}

func TestBadReaderCPUs(t *testing.T) {
	requirePrivileges(t)
	p, err := Attach(Options{Mode: ModeTracepoint, ReaderCPUs: []int{1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.ReaderPin(); err == nil || !strings.Contains(err.Error(), "pinning the perf reader") {
		t.Errorf("ReaderPin err = %v, want a pinning error", err)
	}
}

func TestStatCPUSeconds(t *testing.T) {
	line := "4242 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0\n"
	got, err := statCPUSeconds(line)
	if err != nil || math.Abs(got-3.8) > 1e-9 {
		t.Errorf("statCPUSeconds = %v, %v; want 3.8", got, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2"} {
		if _, err := statCPUSeconds(bad); err == nil {
			t.Errorf("statCPUSeconds(%q) succeeded", bad)
		}
	}
	if s, err := threadCPUSeconds(int64(unix.Gettid())); err != nil || s <= 0 {
		t.Errorf("own thread: %v, %v", s, err)
	}
}

func TestParseEvents(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Events
		err  bool
	}{
		{"all", EventsAll, false},
		{"none", EventsNone, false},
		{"64", EventsSample(64), false},
		{"1", Events{}, true},
		{"0", Events{}, true},
		{"-3", Events{}, true},
		{strconv.Itoa(MaxSample + 1), Events{}, true},
		{"some", Events{}, true},
	} {
		got, err := ParseEvents(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseEvents(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if _, err := Attach(Options{Events: Events{Every: MaxSample + 1}}); err == nil {
		t.Error("Attach accepted a sample rate above MaxSample")
	}
}

// Counts in files written before events could be chosen read as all.
func TestCountsOldJSON(t *testing.T) {
	var c Counts
	if err := json.Unmarshal([]byte(`{"mode":"tracepoint","accepts":3,"attempted":3,"received":3}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Events != "all" || c.SampleEvery != 1 || c.Accepts != 3 || c.MissesUnknown != MissesNotRecorded {
		t.Errorf("old counts read as %+v", c)
	}
	c = Counts{}
	if err := json.Unmarshal([]byte(`{"mode":"tracepoint","events":"none","sample_every":0,"prog_misses":0}`), &c); err != nil || c.Events != "none" || c.SampleEvery != 0 || c.MissesUnknown != "" {
		t.Errorf("new counts read as %+v, %v", c, err)
	}
}

func TestMissCoverage(t *testing.T) {
	for _, tc := range []struct {
		mode, release string
		prog, kret    bool
	}{
		{ModeKprobe, "6.12.41+deb13-amd64", true, true},
		{ModeKprobe, "6.1.0-37-amd64", false, false},
		{ModeTracepoint, "6.7.0", true, false},
		{ModeTracepoint, "6.6.9", false, false},
		{ModeFentry, "6.1.0-37-amd64", true, false},
		{ModeFentry, "5.10.0-30-amd64", false, false},
	} {
		v, ok := parseRelease(tc.release)
		if !ok {
			t.Fatalf("parseRelease(%q) failed", tc.release)
		}
		c := missCoverage(tc.mode, v, tc.release)
		if c.prog != tc.prog || c.kretprobe != tc.kret || (c.unknown == "") != (tc.prog) {
			t.Errorf("%s on %s: %+v", tc.mode, tc.release, c)
		}
		if c.unknown != "" && !strings.Contains(c.unknown, tc.release) {
			t.Errorf("%s on %s: reason %q does not name the kernel", tc.mode, tc.release, c.unknown)
		}
	}
	if _, ok := parseRelease("linux"); ok {
		t.Error("parseRelease accepted a release without numbers")
	}
}

// helperBlockAccept holds n threads inside a blocking accept(2) each (one
// listening socket per thread) and prints the addresses; every call still
// in the kernel holds a kretprobe instance. It exits when stdin closes.
func helperBlockAccept(n string) {
	count, _ := strconv.Atoi(n)
	var addrs []string
	var wg sync.WaitGroup
	for range count {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0) // blocking, unlike net's sockets
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		}
		if err == nil {
			err = unix.Listen(fd, 1)
		}
		var sa unix.Sockaddr
		if err == nil {
			sa, err = unix.Getsockname(fd)
		}
		if err != nil {
			fmt.Println("error", err)
			return
		}
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port))
		wg.Go(func() {
			if nfd, _, err := unix.Accept(fd); err == nil {
				unix.Close(nfd)
			}
		})
	}
	fmt.Println(strings.Join(addrs, " "))
	go func() {
		wg.Wait()
		fmt.Println("done")
	}()
	var b [1]byte
	os.Stdin.Read(b[:])
}

// More accepts in flight at once than a kretprobe has instances: the
// returns it misses show up as kretprobe misses, and together with the
// accepts counted they cover every accept. Runs where kprobes attach
// (the kernel matrix); skips elsewhere with the reason.
func TestKretprobeMisses(t *testing.T) {
	requirePrivileges(t)
	p, err := Attach(Options{Mode: ModeKprobe})
	if err != nil {
		t.Skipf("skipping: this host cannot attach kprobe probes: %v", err)
	}
	defer p.Close()
	if !p.coverage.kretprobe {
		t.Skipf("skipping: %s", p.coverage.unknown)
	}
	// The kernel's default is max(10, 2 * possible CPUs) instances.
	m := 32 + 4*runtime.NumCPU()
	// A miss is counted when an accept enters the kernel function, which
	// the helper's threads may do before it prints its addresses: the
	// counts start before the helper does.
	before := snapshot(t, p)
	h := startHelper(t, "blockaccept", strconv.Itoa(m))
	if err := p.Watch(h.pid()); err != nil {
		t.Fatal(err)
	}
	addrs := strings.Fields(h.line(t))
	waitBlocked(t, h.pid(), m)
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	h.line(t) // every accept returned
	d := snapshot(t, p).Sub(before)
	t.Logf("%d accepts in flight: %+v, kretprobe misses %v", m, d, *d.KretprobeMisses)
	if *d.KretprobeMisses == 0 {
		t.Fatalf("no kretprobe misses with %d accepts in flight", m)
	}
	// Misses are per probe, not per process: others may add to them.
	if d.Accepts > uint64(m) || d.Accepts+*d.KretprobeMisses < uint64(m) {
		t.Errorf("accepts %d + misses %d do not cover the %d accepts", d.Accepts, *d.KretprobeMisses, m)
	}
}

// waitBlocked waits until n threads of pid sleep in accept, so every call
// has entered the kernel function before the first one returns.
func waitBlocked(t *testing.T, pid uint32, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		blocked := 0
		for _, task := range tasks {
			// The syscall number it sleeps in: accept(43) or accept4(288).
			sc, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
			if nr, _, _ := strings.Cut(string(sc), " "); nr == "43" || nr == "288" {
				blocked++
			}
		}
		if blocked >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fewer than %d threads of %d blocked in accept after 10s", n, pid)
}

// Detached, the programs do not run: nothing is counted, and attached
// again they count as before.
func TestSetAttached(t *testing.T) {
	requirePrivileges(t)
	p, err := Attach(Options{Mode: ModeTracepoint, Events: EventsAll})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	listener := startHelper(t, "listen")
	addr := listener.line(t)
	if err := p.Watch(listener.pid()); err != nil {
		t.Fatal(err)
	}
	start := snapshot(t, p)
	if err := p.SetAttached(false); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := roundTrip(addr); err != nil {
			t.Fatal(err)
		}
	}
	off := snapshot(t, p)
	expect(t, "detached", off.Sub(start), 0, 0)
	for _, on := range []bool{true, true} { // attaching twice is one attach
		if err := p.SetAttached(on); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if err := roundTrip(addr); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, "attached again", snapshot(t, p).Sub(off), 5, 0)
	if len(p.links) != len(p.hooks) {
		t.Errorf("%d links for %d hooks", len(p.links), len(p.hooks))
	}
}
