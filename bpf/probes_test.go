package bpf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the helper processes, so the traffic comes
// from processes with their own tgid that the test can watch or not.
const helperEnv = "PROXYLAB_BPF_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "listen":
		helperListen()
	case "connect":
		helperConnect(os.Args[len(os.Args)-2], os.Args[len(os.Args)-1])
	case "blockaccept":
		helperBlockAccept(os.Args[len(os.Args)-1])
	}
	os.Exit(0)
}

// helperListen accepts and closes connections until stdin closes.
func helperListen() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Println(ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// helperConnect waits for a line on stdin (sent once it is watched), then
// connects n times.
func helperConnect(addr, n string) {
	count, _ := strconv.Atoi(n)
	bufio.NewReader(os.Stdin).ReadString('\n')
	for range count {
		if err := roundTrip(addr); err != nil {
			fmt.Println("error", err)
			return
		}
	}
	fmt.Println("done")
}

// roundTrip returns once the peer has accepted and closed the connection,
// so the accept has happened when it returns.
func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	return err
}

type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startHelper(t *testing.T, args ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+args[0])
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	return h
}

func (h *helper) line(t *testing.T) string {
	t.Helper()
	s, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper %d: %v", h.cmd.Process.Pid, err)
	}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "error") {
		t.Fatalf("helper %d: %s", h.cmd.Process.Pid, s)
	}
	return s
}

func (h *helper) pid() uint32 { return uint32(h.cmd.Process.Pid) }

// requirePrivileges skips when the host cannot load eBPF at all.
func requirePrivileges(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: not root, loading eBPF programs needs root")
	}
}

func TestAutoModeChain(t *testing.T) {
	requirePrivileges(t)
	p, err := Attach(Options{Mode: ModeAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Every mode before the one used must be reported with its error.
	var want []string
	for _, m := range chain {
		if m == p.Mode() {
			break
		}
		want = append(want, m)
	}
	got := p.Attempts()
	if len(got) != len(want) {
		t.Fatalf("mode %s, attempts %+v, want modes %v", p.Mode(), got, want)
	}
	for i, a := range got {
		if a.Mode != want[i] || a.Error == "" {
			t.Errorf("attempt %d = %+v, want mode %s with an error", i, a, want[i])
		}
	}
	t.Logf("auto attached %s after %+v", p.Mode(), got)
	if !kprobesAvailable() && len(got) > 0 && !strings.Contains(got[0].Error, "no kprobe support") {
		t.Errorf("kprobe attempt does not say kprobes are missing: %s", got[0].Error)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Mode: "uprobe"}, {PerfBufferPages: 3}, {PerfBufferPages: -4}} {
		if p, err := Attach(o); err == nil {
			p.Close()
			t.Errorf("Attach(%+v) succeeded", o)
		}
	}
}

func TestCounts(t *testing.T) {
	requirePrivileges(t)
	for _, mode := range []string{ModeTracepoint, ModeKprobe, ModeFentry} {
		t.Run(mode, func(t *testing.T) {
			p, err := Attach(Options{Mode: mode, PerfBufferPages: 64, Events: EventsAll})
			if err != nil {
				if mode == ModeTracepoint {
					t.Fatal(err)
				}
				if !strings.Contains(err.Error(), mode) || !strings.Contains(err.Error(), "use mode") {
					t.Errorf("error does not name the mode and a way out: %v", err)
				}
				t.Skipf("skipping: this host cannot attach %s probes: %v", mode, err)
			}
			defer p.Close()
			testCounts(t, p)
		})
	}
}

func testCounts(t *testing.T, p *Probes) {
	const n = 25
	listener := startHelper(t, "listen")
	addr := listener.line(t)
	if err := p.Watch(listener.pid()); err != nil {
		t.Fatal(err)
	}
	start := snapshot(t, p)

	// The test process is not watched: its connects must not count, the
	// watched listener's accepts must.
	for range n {
		if err := roundTrip(addr); err != nil {
			t.Fatal(err)
		}
	}
	afterAccepts := snapshot(t, p)
	expect(t, "test process -> watched listener", afterAccepts.Sub(start), n, 0)

	connector := startHelper(t, "connect", addr, strconv.Itoa(n))
	if err := p.Watch(connector.pid()); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(connector.stdin, "go")
	connector.line(t)
	afterConnects := snapshot(t, p)
	expect(t, "watched connector -> watched listener", afterConnects.Sub(afterAccepts), n, n)

	// Unwatched on both ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	stranger := startHelper(t, "connect", ln.Addr().String(), strconv.Itoa(n))
	fmt.Fprintln(stranger.stdin, "go")
	stranger.line(t)
	end := snapshot(t, p)
	expect(t, "unwatched connector -> unwatched listener", end.Sub(afterConnects), 0, 0)

	if err := p.Unwatch(listener.pid()); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(addr); err != nil {
		t.Fatal(err)
	}
	expect(t, "after Unwatch", snapshot(t, p).Sub(end), 0, 0)
}

func snapshot(t *testing.T, p *Probes) Counts {
	t.Helper()
	c, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if c.Attempted != c.Received+c.Failed {
		t.Fatalf("attempted %d != received %d + failed %d", c.Attempted, c.Received, c.Failed)
	}
	// Every failure in these tests is a full buffer, which the ring reports.
	if c.LostSamples != c.Failed {
		t.Fatalf("lost_samples %d != failed %d", c.LostSamples, c.Failed)
	}
	if c.Mode != p.Mode() {
		t.Fatalf("counts mode %q, probes mode %q", c.Mode, p.Mode())
	}
	if c.Events != p.Events().Name() || c.SampleEvery != p.Events().Every {
		t.Fatalf("counts events %q every %d, probes %+v", c.Events, c.SampleEvery, p.Events())
	}
	// The kernels these tests run on keep every miss count a mode has.
	if _, known := c.Missed(); !known {
		v, _ := runningKernel()
		if v.atLeast(6, 7) {
			t.Fatalf("miss counts unknown on kernel %s: %s", v, c.MissesUnknown)
		}
	}
	return c
}

func expect(t *testing.T, what string, d Counts, accepts, connects uint64) {
	t.Helper()
	if d.Accepts != accepts || d.Connects != connects {
		t.Errorf("%s: accepts %d connects %d, want %d and %d", what, d.Accepts, d.Connects, accepts, connects)
	}
	// Quiet test traffic: nothing is sent while a snapshot pauses output,
	// and a 64-page buffer does not overflow.
	if d.Attempted != accepts+connects || d.Received != d.Attempted || d.Failed != 0 {
		t.Errorf("%s: %+v, want every event attempted and received", what, d)
	}
}

// A one-page buffer and a burst of events: whatever is lost, every attempt
// is accounted for.
func TestSmallBufferBurst(t *testing.T) {
	requirePrivileges(t)
	p, err := Attach(Options{Mode: ModeAuto, PerfBufferPages: 1, Events: EventsAll})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	listener := startHelper(t, "listen")
	addr := listener.line(t)
	if err := p.Watch(listener.pid()); err != nil {
		t.Fatal(err)
	}

	const workers, each = 32, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if err := roundTrip(addr); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Snapshots taken mid-burst must be consistent too.
	for range 5 {
		snapshot(t, p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := snapshot(t, p)
	if c.Accepts != workers*each {
		t.Errorf("accepts %d, want %d", c.Accepts, workers*each)
	}
	if c.Failed > 0 && c.LossRatio != float64(c.Failed)/float64(c.Attempted) {
		t.Errorf("loss ratio %v for %+v", c.LossRatio, c)
	}
	t.Logf("%+v", c)
}

// A one-page buffer nobody reads while tens of thousands of events arrive
// drops nearly all of them. The kernel reports such drops only with a ring's
// next successful output, so after a plain drain the lost samples lag the
// failed outputs; Snapshot makes that output and the two agree.
func TestForcedLoss(t *testing.T) {
	requirePrivileges(t)
	start := make(chan struct{})
	var once sync.Once
	startReader := func() { once.Do(func() { close(start) }) }
	p, err := Attach(Options{Mode: ModeAuto, PerfBufferPages: 1, Events: EventsAll, readerStart: start})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer startReader() // before Close, which waits for the reader

	const n = 10000
	listener := startHelper(t, "listen")
	addr := listener.line(t)
	connector := startHelper(t, "connect", addr, strconv.Itoa(n))
	for _, h := range []*helper{listener, connector} {
		if err := p.Watch(h.pid()); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintln(connector.stdin, "go")
	connector.line(t)

	startReader()
	if err := p.drain(); err != nil {
		t.Fatal(err)
	}
	k, err := p.kernel()
	if err != nil {
		t.Fatal(err)
	}
	received, lost := p.received.Load(), p.lost.Load()
	attempted, failed := k[counterAttempted], k[counterFailed]
	t.Logf("drained: attempted %d received %d failed %d lost_samples %d", attempted, received, failed, lost)
	if attempted != 2*n {
		t.Fatalf("attempted %d, want %d", attempted, 2*n)
	}
	if failed == 0 {
		t.Fatal("nothing failed although the reader started only after the events")
	}
	if attempted != received+failed {
		t.Errorf("drained: attempted %d != received %d + failed %d", attempted, received, failed)
	}
	if lost >= failed {
		t.Errorf("drained: lost_samples %d already caught up with failed %d; the ring should still owe its LOST records", lost, failed)
	}

	c := snapshot(t, p)
	t.Logf("snapshot: %+v", c)
	if c.Accepts != n || c.Connects != n {
		t.Errorf("accepts %d connects %d, want %d each", c.Accepts, c.Connects, n)
	}
	// The flush outputs are not events: nothing new is attempted or received.
	if c.Attempted != attempted || c.Received != received || c.Failed != failed {
		t.Errorf("snapshot %+v moved from the drained attempted %d received %d failed %d", c, attempted, received, failed)
	}
	if c.LostSamples != c.Failed {
		t.Errorf("lost_samples %d != failed %d after Snapshot", c.LostSamples, c.Failed)
	}
	if c.LossRatio != float64(c.Failed)/float64(c.Attempted) {
		t.Errorf("loss ratio %v for %+v", c.LossRatio, c)
	}
}

func TestSub(t *testing.T) {
	u := func(n uint64) *uint64 { return &n }
	a := Counts{Mode: "tracepoint", Events: "all", SampleEvery: 1, Accepts: 10, Connects: 4, Attempted: 14, Received: 10, Failed: 4, LostSamples: 4, ProgMisses: u(2), ReaderCPUSeconds: 0.5}
	b := Counts{Mode: "tracepoint", Events: "all", SampleEvery: 1, Accepts: 30, Connects: 4, Attempted: 34, Received: 29, Failed: 5, LostSamples: 5, ProgMisses: u(5), ReaderCPUSeconds: 0.75}
	d := b.Sub(a)
	want := Counts{Mode: "tracepoint", Events: "all", SampleEvery: 1, Accepts: 20, Attempted: 20, Received: 19, Failed: 1, LostSamples: 1, LossRatio: 0.05, ReaderCPUSeconds: 0.25}
	if d.ProgMisses == nil || *d.ProgMisses != 3 || d.KretprobeMisses != nil {
		t.Errorf("Sub misses = %v, %v; want 3 and unknown", d.ProgMisses, d.KretprobeMisses)
	}
	d.ProgMisses = nil
	if d != want {
		t.Errorf("Sub = %+v, want %+v", d, want)
	}
	if z := a.Sub(a); z.LossRatio != 0 {
		t.Errorf("loss ratio of an empty interval = %v", z.LossRatio)
	}
}
