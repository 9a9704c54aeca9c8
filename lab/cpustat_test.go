package lab

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/scenarios"
)

func TestParseProcStat(t *testing.T) {
	b, err := os.ReadFile("testdata/proc-stat")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseProcStat(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]cpuTimes{
		0: {user: 2893.60, nice: 131.03, system: 1668.93, idle: 6669.67, iowait: 12.13, irq: 0.01, softirq: 531.50, steal: 25.14},
		1: {user: 3276.55, nice: 193.62, system: 1471.55, idle: 6445.73, iowait: 41.23, irq: 0, softirq: 490.46, steal: 25.71},
	}
	if len(got) != len(want) {
		t.Fatalf("%d CPUs %v, want %d", len(got), got, len(want))
	}
	for c, w := range want {
		if g := got[c]; g != w {
			t.Errorf("cpu%d = %+v, want %+v", c, g, w)
		}
	}
}

func TestParseProcStatRefusesBrokenLines(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no CPU lines", "cpu  1 2 3 4 5 6 7 8 0 0\nintr 5\n", "no per-CPU line"},
		{"short line", "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 1 2 3\n", "/proc/stat:2: 4 fields"},
		{"not a number", "cpu0 1 2 x 4 5 6 7 8 0 0\n", "/proc/stat:1: field 4 of cpu0"},
		{"bad CPU name", "cpux 1 2 3 4 5 6 7 8 0 0\n", `/proc/stat:1: "cpux" is not a CPU`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseProcStat([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestCoreTimesAreDifferences(t *testing.T) {
	before := map[int]cpuTimes{0: {user: 10, nice: 1, system: 5, idle: 100, iowait: 1, irq: 0.5, softirq: 2, steal: 0.1}, 1: {user: 3}}
	after := map[int]cpuTimes{0: {user: 11.2, nice: 1, system: 5.5, idle: 100.2, iowait: 1, irq: 0.5, softirq: 2.07, steal: 0.12}, 1: {user: 4}}
	got := coreTimes(before, after, []int{0, 2})
	want := []CoreTime{{CPU: 0, Busy: 1.7, IRQ: 0.07, Steal: 0.02, Idle: 0.2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("coreTimes = %+v, want %+v (CPU 2 is in neither reading)", got, want)
	}
}

// inSelf is a Running whose processes are this one: its CPU time is inside
// the load generator's, so it reports none of its own, and a step's
// parties sum to what this process used.
type inSelf struct{ Running }

func (inSelf) Usage() (Usage, error) { return Usage{PeakRSSBytes: 8 << 20}, nil }

type inSelfLauncher struct{ *inProcess }

func (l inSelfLauncher) Launch(ctx context.Context, s ContainerSpec) (Running, error) {
	r, err := l.inProcess.Launch(ctx, s)
	if err != nil {
		return nil, err
	}
	return inSelf{r}, nil
}

// measuredSteps runs one row of steps at rates through the in-process
// proxy and upstream, every party placed on every CPU (this process is not
// pinned), and returns its steps.
func measuredSteps(t *testing.T, d time.Duration, rates ...int) []*Step {
	t.Helper()
	l := &inProcess{}
	sc := fastScenario(1, 0)
	for _, r := range rates {
		sc.Load.Steps = append(sc.Load.Steps, scenarios.Step{Rate: r, Duration: scenarios.Duration(d)})
	}
	r, arts := testRunner(t, l, sc, proxies("go")...)
	r.launch = inSelfLauncher{l}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	r.placement = Placement{ProxyCPUs: all, UpstreamCPUs: all, LoadgenCPUs: all}
	run := r.runOne(context.Background(), arts[0], 1)
	if run.Status != RunOK || len(run.Steps) != len(rates) {
		t.Fatalf("run %s (%s) with %d steps, want %d measured steps", run.Status, run.Error, len(run.Steps), len(rates))
	}
	return run.Steps
}

// A real step against real loopback servers records every CPU's times and
// every party's share with plausible values. Whether it was disturbed
// depends on the rest of the machine, so it is not asserted.
func TestStepRecordsCoresAndParties(t *testing.T) {
	st := measuredSteps(t, 500*time.Millisecond, 1000)[0]
	res := st.Resources
	if res == nil || res.IntervalSeconds < 0.5 || res.IntervalSeconds > 2 {
		t.Fatalf("resources %+v: want an interval bracketing the 0.5 s step", res)
	}
	if len(res.Cores) != runtime.NumCPU() {
		t.Errorf("cores %+v: want one per CPU of the placement", res.Cores)
	}
	for _, c := range res.Cores {
		total := c.Busy + c.IRQ + c.Steal + c.Idle
		if c.Busy < 0 || c.IRQ < 0 || c.Steal < 0 || c.Idle < 0 || total < res.IntervalSeconds-0.1 || total > res.IntervalSeconds+0.1 {
			t.Errorf("core %+v: want times that add up to the interval %.3f s", c, res.IntervalSeconds)
		}
	}
	names := map[string]Party{}
	for _, p := range res.Parties {
		names[p.Name] = p
		if p.CPUSeconds < 0 || p.Share < 0 || p.Share > 1.05 {
			t.Errorf("party %+v: want a share of its cpuset in [0, 1]", p)
		}
	}
	if lg := names[PartyLoadgen]; lg.CPUSeconds <= 0 || lg.CPUSeconds != res.LoadgenCPUSeconds {
		t.Errorf("load generator %+v, this process %.2f s: want the same non-zero time (no probes)", lg, res.LoadgenCPUSeconds)
	}
	if _, ok := names[PartyProxy]; !ok || len(names) != 3 || res.UpstreamCPUSeconds == nil {
		t.Errorf("parties %+v: want the proxy, the upstream and the load generator", res.Parties)
	}
	if res.Interference == nil || *res.Interference < 0 {
		t.Errorf("interference %v: want a share of a core", res.Interference)
	}
	if st.Disturbed != (st.Disturbance != "") {
		t.Errorf("disturbed %v with disturbance %q", st.Disturbed, st.Disturbance)
	}
	t.Logf("%s", cpuFigures(st))
}

// TestMeasureInterference prints what quiet steps at a few rates measure;
// it is how DisturbedThreshold was chosen. PROXYLAB_MEASURE_CPU=1 runs it.
func TestMeasureInterference(t *testing.T) {
	if os.Getenv("PROXYLAB_MEASURE_CPU") == "" {
		t.Skip("PROXYLAB_MEASURE_CPU not set")
	}
	for _, st := range measuredSteps(t, 2*time.Second, 1000, 4000, 8000, 12000) {
		t.Logf("%s", cpuFigures(st))
	}
}

func cpuFigures(st *Step) string {
	res := st.Resources
	s := fmt.Sprintf("%.0f/s in %.2f s: this process %.2f s; interference %.3f, outside %+v; cores",
		st.TargetRate, res.IntervalSeconds, res.LoadgenCPUSeconds, *res.Interference, res.Outside)
	for _, c := range res.Cores {
		s += fmt.Sprintf(" %+v", c)
	}
	return s
}

// A process's CPU between two readings is the difference of its own
// times; a kernel worker that renamed itself is the same process, a pid
// reused by a later process counts whole, and idle processes are left out.
func TestOutsideOf(t *testing.T) {
	before := map[int]procTime{
		10: {name: "kworker/u8:2-flush-254:0", seconds: 0.28, start: 500},
		11: {name: "sh", seconds: 1.00, start: 600},
		12: {name: "old", seconds: 5.00, start: 700},
		13: {name: "idle", seconds: 2.00, start: 800},
	}
	after := map[int]procTime{
		10: {name: "kworker/u8:2-events_unbound", seconds: 0.28, start: 500},
		11: {name: "sh", seconds: 3.95, start: 600},
		12: {name: "new", seconds: 0.30, start: 900},
		13: {name: "idle", seconds: 2.00, start: 800},
		14: {name: "started", seconds: 0.05, start: 950},
	}
	want := []OutsideProcess{{11, "sh", 2.95, ""}, {12, "new", 0.30, ""}, {14, "started", 0.05, ""}}
	if got := outsideOf(before, after); !reflect.DeepEqual(got, want) {
		t.Errorf("outsideOf = %+v, want %+v", got, want)
	}
}

func TestParsePidStat(t *testing.T) {
	line := "4242 (kworker/u8:2-flush 254:0) I 2 0 0 0 -1 69238880 0 0 0 0 7 21 3 4 20 0 1 0 12345 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	got, cpu, ok := parsePidStat([]byte(line))
	// utime 7 + stime 21 ticks; children's 3 + 4 are left out.
	if !ok || cpu != 1 || got != (procTime{name: "kworker/u8:2-flush 254:0", seconds: 0.28, start: 12345, kernel: true}) {
		t.Errorf("parsePidStat = %+v, cpu %d, %v", got, cpu, ok)
	}
	user := strings.Replace(line, " I 2 0 ", " S 1 0 ", 1)
	if got, _, _ := parsePidStat([]byte(user)); got.kernel {
		t.Error("a child of init taken for a kernel thread")
	}
	if _, _, ok := parsePidStat([]byte("4242 (short) S 1 2")); ok {
		t.Error("a truncated line parsed")
	}
}

// The exact interference counts the outside processes and the steal.
func TestOutsideInterference(t *testing.T) {
	in := OutsideInterference([]OutsideProcess{{7, "sh", 0.9, ""}, {8, "dockerd", 0.02, ""}}, []CoreTime{{CPU: 0, Steal: 0.03}, {CPU: 1, Steal: 0.01}}, 3)
	if in.Share != 0.32 || in.Steal != 0.04 {
		t.Errorf("share %v steal %v, want 0.32 and 0.04", in.Share, in.Steal)
	}
	ok, text := Disturbance(in, 3)
	if !ok || !strings.Contains(text, "sh (pid 7) 0.90 s") || !strings.Contains(text, "1% stolen by the hypervisor") {
		t.Errorf("Disturbance = %v, %q", ok, text)
	}
	if ok, _ := Disturbance(OutsideInterference([]OutsideProcess{{7, "kdamond.0", 0.02, ""}}, nil, 3), 3); ok {
		t.Error("0.7% of a core called disturbed")
	}
}
