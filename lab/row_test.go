package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxylab/proxylab/scenarios"
)

// The run logic is tested here without Docker: inProcess stands in for the
// engine with real HTTP servers on loopback, an upstream answering fixed
// bodies and a reverse proxy in front of it, so that the real load
// generator measures real requests through every phase of a row.

// inProcess is a Launcher whose containers are servers in this process.
type inProcess struct {
	mu       sync.Mutex
	upstream string // the last upstream started, for rows configured in their image
	specs    []ContainerSpec
	running  map[string]*server // by component name, the last started
	all      []*server
	// fail makes starting a component of this name fail.
	fail map[string]error
	// onLaunch runs before a container starts.
	onLaunch func(ContainerSpec)
}

func (l *inProcess) Launch(ctx context.Context, s ContainerSpec) (Running, error) {
	if l.onLaunch != nil {
		l.onLaunch(s)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.specs = append(l.specs, s)
	if err := l.fail[s.Artifact.Name]; err != nil {
		return nil, fmt.Errorf("start container %s: %w", s.Name, err)
	}
	env := map[string]string{}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	listen := cmp.Or(env["LISTEN_ADDR"], s.Artifact.Addr())
	h, err := l.handler(s, env)
	if err != nil {
		return nil, err
	}
	srv, err := serve(s.Name, listen, h)
	if err != nil {
		return nil, err
	}
	if s.Artifact.Name == "upstream" {
		l.upstream = listen
	}
	if l.running == nil {
		l.running = map[string]*server{}
	}
	l.running[s.Artifact.Name] = srv
	l.all = append(l.all, srv)
	return srv, nil
}

// handler is the upstream's fixed body, or a reverse proxy to the upstream
// the environment names (or, without one, the last started).
func (l *inProcess) handler(s ContainerSpec, env map[string]string) (http.Handler, error) {
	if s.Artifact.Name == "upstream" {
		n, err := strconv.Atoi(env["RESPONSE_BYTES"])
		if err != nil {
			return nil, fmt.Errorf("upstream RESPONSE_BYTES: %w", err)
		}
		body := []byte(strings.Repeat("x", n))
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }), nil
	}
	u, err := url.Parse("http://" + cmp.Or(env["UPSTREAM_ADDR"], l.upstream))
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a cut step's aborted requests are expected
	return rp, nil
}

func (l *inProcess) get(name string) *server {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running[name]
}

// started lists the components started, in order, upstreams left out.
func (l *inProcess) started() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.specs {
		if s.Artifact.Name != "upstream" {
			out = append(out, s.Artifact.Name)
		}
	}
	return out
}

func (l *inProcess) spec(name string) (ContainerSpec, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.specs, func(s ContainerSpec) bool { return s.Artifact.Name == name })
	if i < 0 {
		return ContainerSpec{}, false
	}
	return l.specs[i], true
}

// leftRunning names the servers never removed: a row must remove every
// container it started, whatever happened to it.
func (l *inProcess) leftRunning() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.all {
		if !s.removed.Load() {
			out = append(out, s.name)
		}
	}
	return out
}

// server is a Running: an HTTP server with a death that the test decides.
type server struct {
	name    string
	srv     *http.Server
	dead    chan struct{}
	why     string
	once    sync.Once
	usage   atomic.Int64 // calls of Usage, each adding a quarter CPU second
	removed atomic.Bool
}

func serve(name, addr string, h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	s := &server{name: name, srv: &http.Server{Handler: h}, dead: make(chan struct{})}
	go s.srv.Serve(ln)
	return s, nil
}

// kill ends the server as a crashing process would: its connections drop
// and Died reports why.
func (s *server) kill(why string) {
	s.once.Do(func() {
		s.why = why
		s.srv.Close()
		close(s.dead)
	})
}

func (s *server) exited() (bool, string) {
	select {
	case <-s.dead:
		return true, s.why
	default:
		return false, ""
	}
}

func (s *server) WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return waitHTTP(ctx, s.name, url, timeout, s.exited)
}

func (s *server) Died(ctx context.Context) <-chan string {
	out := make(chan string, 1)
	go func() {
		select {
		case <-s.dead:
			out <- s.why
		case <-ctx.Done():
		}
	}()
	return out
}

func (s *server) Usage() (Usage, error) {
	n := s.usage.Add(1)
	return Usage{CPUSeconds: float64(n) / 4, PeakRSSBytes: 8 << 20}, nil
}

func (s *server) Pids() []int { return []int{os.Getpid()} }

func (s *server) Logs(_ context.Context, n int) []string {
	lines := []string{s.name + " listening", s.name + " " + cmp.Or(s.why, "still running")}
	return lines[max(0, len(lines)-n):]
}

func (s *server) Remove(context.Context) error {
	s.removed.Store(true)
	s.kill("removed")
	return nil
}

// freePort is a loopback port nothing listens on, so that the tests never
// need the lab's fixed ports.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// fastScenario holds every step at 200/s for short steps with no warm-up,
// so that a row takes a fraction of a second.
func fastScenario(repeat int, steps int) *scenarios.Scenario {
	sc := &scenarios.Scenario{Name: "rowtest", Repeat: repeat,
		Upstream: scenarios.Upstream{ResponseBytes: 64},
		Load:     scenarios.Load{Method: "GET", Path: "/", Connections: 4, Keepalive: true}}
	for range steps {
		sc.Load.Steps = append(sc.Load.Steps, scenarios.Step{Rate: 200, Duration: scenarios.Duration(200 * time.Millisecond)})
	}
	return sc
}

// testRunner measures rows (copies of the lab's components on free
// ports) through l, writing into a temporary folder.
func testRunner(t *testing.T, l *inProcess, sc *scenarios.Scenario, rows ...Component) (*runner, []*Artifact) {
	t.Helper()
	r := &runner{launch: l, sc: sc, o: Options{RunID: "t" + strconv.Itoa(freePort(t)), ResultsDir: t.TempDir()},
		placement: Placement{ProxyCPUs: "0", UpstreamCPUs: "0", LoadgenCPUs: "0", ProxyMemory: 64 << 20}}
	// of_capacity steps are shares of 20000/s.
	rates, err := StepRates(sc, &CapacityRef{Rate: 20000, Proxy: "rust"})
	if err != nil {
		t.Fatal(err)
	}
	r.rates = rates
	up := Upstream
	up.Port = freePort(t)
	r.upstream = &Artifact{Component: up, ImageTag: "proxylab/upstream:test"}
	r.res = &Results{Scenario: sc, StartedAt: time.Now().UTC()}
	var arts []*Artifact
	for _, c := range rows {
		c.Port = freePort(t) // direct's too: its load must go to the upstream regardless
		a := &Artifact{Component: c, ImageTag: "proxylab/" + c.Name + ":test"}
		arts = append(arts, a)
		r.res.Proxies = append(r.res.Proxies, proxyResult(a, nil))
	}
	r.path = FileName(r.o.ResultsDir, r.res)
	t.Cleanup(func() {
		if left := l.leftRunning(); len(left) > 0 {
			t.Errorf("containers never removed: %v", left)
		}
	})
	return r, arts
}

// proxies are the lab's components of these names, proxies or baselines.
func proxies(names ...string) []Component {
	known := append(slices.Clone(Proxies), Baselines...)
	var out []Component
	for _, n := range names {
		out = append(out, known[slices.IndexFunc(known, func(c Component) bool { return c.Name == n })])
	}
	return out
}

func TestRotation(t *testing.T) {
	cases := []struct {
		rows, rep int
		want      []int
	}{
		{1, 1, []int{0}},
		{1, 4, []int{0}},
		{3, 1, []int{0, 1, 2}},
		{3, 2, []int{1, 2, 0}},
		{3, 3, []int{2, 0, 1}},
		{3, 4, []int{0, 1, 2}},
		{2, 2, []int{1, 0}},
	}
	for _, c := range cases {
		if got := rotation(c.rows, c.rep); !slices.Equal(got, c.want) {
			t.Errorf("rotation(%d, %d) = %v, want %v", c.rows, c.rep, got, c.want)
		}
	}
}

// Rows run in rotation, and the results file on disk holds every row
// measured before the next one starts.
func TestRepeatRotatesAndWritesAfterEveryRow(t *testing.T) {
	l := &inProcess{}
	r, arts := testRunner(t, l, fastScenario(3, 1), proxies("go", "rust", "zig")...)
	var onDisk []int // runs in the file when each proxy started
	l.onLaunch = func(s ContainerSpec) {
		if s.Artifact.Name == "upstream" {
			return
		}
		n := 0
		if res, err := ReadResults(r.path); err == nil {
			for _, p := range res.Proxies {
				n += len(p.Runs)
			}
		}
		onDisk = append(onDisk, n)
	}
	if err := r.repeat(context.Background(), arts); err != nil {
		t.Fatal(err)
	}
	want := []string{"go", "rust", "zig", "rust", "zig", "go", "zig", "go", "rust"}
	if got := l.started(); !slices.Equal(got, want) {
		t.Errorf("started %v, want %v", got, want)
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(onDisk, want) {
		t.Errorf("runs on disk before each row %v, want %v", onDisk, want)
	}
	res, err := ReadResults(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.StopReason != "" {
		t.Errorf("complete %v, stop_reason %q: want a complete run", res.Complete, res.StopReason)
	}
	for _, p := range res.Proxies {
		for i, run := range p.Runs {
			if run.Status != RunOK || run.Repetition != i+1 || len(run.Steps) != 1 || run.Steps[0].Requests == 0 {
				t.Errorf("%s run %d: %+v, want repetition %d measured", p.Name, i, run, i+1)
			}
		}
		// A run the host disturbed (steal, a neighbour) enters no summary.
		rows := 0
		if slices.ContainsFunc(p.Runs, (*Run).Counts) {
			rows = 1
		}
		if len(p.Runs) != 3 || len(p.Summary) != rows {
			t.Errorf("%s: %d runs, %d summary rows; want 3 and %d", p.Name, len(p.Runs), len(p.Summary), rows)
		}
	}
}

// A row that cannot start is recorded as failed, and the next row is
// measured all the same.
func TestRowStartFailureIsRecordedAndRunGoesOn(t *testing.T) {
	l := &inProcess{fail: map[string]error{"go": errors.New("no such image")}}
	r, arts := testRunner(t, l, fastScenario(1, 1), proxies("go", "rust")...)
	err := r.repeat(context.Background(), arts)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "1 proxy run(s) failed: go (repetition 1)") {
		t.Fatalf("err = %v, want ErrIncomplete naming go's failed run", err)
	}
	goRun, rustRun := r.res.Proxies[0].Runs[0], r.res.Proxies[1].Runs[0]
	if goRun.Status != RunFailed || !strings.Contains(goRun.Error, "no such image") || len(goRun.LastLogs) != 0 {
		t.Errorf("go run %+v: want failed with the start error and no logs of a container that never ran", goRun)
	}
	if rustRun.Status != RunOK || len(rustRun.Steps) != 1 || rustRun.Steps[0].Requests == 0 {
		t.Errorf("rust run %+v: want measured after go failed", rustRun)
	}
	res, err := ReadResults(r.path)
	if err != nil || res.Complete || !strings.Contains(res.StopReason, "failed") {
		t.Errorf("results on disk: %v, complete %v, stop_reason %q: want incomplete naming the failure", err, res.Complete, res.StopReason)
	}
}

// A container that dies mid-step cuts the step short at once; the row is
// failed with the proxy's last log lines and keeps what it measured.
func TestRowWhoseProxyDiesIsFailedWithItsLogs(t *testing.T) {
	l := &inProcess{}
	sc := fastScenario(1, 0)
	sc.Load.Steps = []scenarios.Step{{Rate: 200, Duration: scenarios.Duration(5 * time.Second)}}
	r, arts := testRunner(t, l, sc, proxies("go")...)
	r.o.Observer = func(e Event) {
		if e.Kind == EventStepStart && e.Step == 1 {
			time.AfterFunc(150*time.Millisecond, func() { l.get("go").kill("exited with code 137 (killed by SIGKILL)") })
		}
	}
	began := time.Now()
	run := r.runOne(context.Background(), arts[0], 1)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the row took %s: the death did not cut the 5 s step short", took)
	}
	if run.Status != RunFailed || run.Error != "go exited with code 137 (killed by SIGKILL)" {
		t.Errorf("status %s, error %q: want failed, go exited with code 137", run.Status, run.Error)
	}
	if want := []string{r.containerName(1, "go") + " listening", r.containerName(1, "go") + " exited with code 137 (killed by SIGKILL)"}; !slices.Equal(run.LastLogs, want) {
		t.Errorf("last logs %q, want %q", run.LastLogs, want)
	}
	if len(run.Steps) != 1 || run.Steps[0].Requests == 0 || run.Steps[0].Duration >= 5 {
		t.Errorf("steps %+v: want the step measured until the proxy died", run.Steps)
	}
}

// An interruption stops the run after the row it cut, which is kept as
// interrupted in a file marked incomplete.
func TestInterruptedRunIsKeptIncomplete(t *testing.T) {
	l := &inProcess{}
	sc := fastScenario(2, 0)
	sc.Load.Steps = []scenarios.Step{{Rate: 200, Duration: scenarios.Duration(time.Second)}}
	r, arts := testRunner(t, l, sc, proxies("go", "rust")...)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r.o.Observer = func(e Event) {
		if e.Kind == EventStepStart && e.Proxy == "rust" {
			time.AfterFunc(150*time.Millisecond, func() { cancel(errors.New("interrupted by SIGINT")) })
		}
	}
	err := r.repeat(ctx, arts)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "interrupted by SIGINT") {
		t.Fatalf("err = %v, want ErrIncomplete with the cause", err)
	}
	res, err := ReadResults(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || res.StopReason != "interrupted by SIGINT" {
		t.Errorf("complete %v, stop_reason %q: want incomplete, interrupted by SIGINT", res.Complete, res.StopReason)
	}
	goRuns, rustRuns := res.Proxies[0].Runs, res.Proxies[1].Runs
	if len(goRuns) != 1 || goRuns[0].Status != RunOK {
		t.Errorf("go runs %+v: want the one measured before the interruption", goRuns)
	}
	if len(rustRuns) != 1 || rustRuns[0].Status != RunInterrupted || rustRuns[0].Error != "interrupted by SIGINT" ||
		len(rustRuns[0].Steps) != 1 || rustRuns[0].Steps[0].Requests == 0 {
		t.Errorf("rust runs %+v: want one interrupted, its cut step kept", rustRuns)
	}
	if got := l.started(); !slices.Equal(got, []string{"go", "rust"}) {
		t.Errorf("started %v: nothing may start after the interruption", got)
	}
}

// A searched row keeps what the search found and every probe as a step.
func TestSearchRowRecordsEveryProbe(t *testing.T) {
	l := &inProcess{}
	sc := fastScenario(1, 0)
	sc.Load.Search = &scenarios.Search{SLOP99: scenarios.Duration(time.Second), MinSuccess: 0.5, Start: 100, Max: 400,
		StepDuration: scenarios.Duration(200 * time.Millisecond)}
	r, arts := testRunner(t, l, sc, proxies("go")...)
	run := r.runOne(context.Background(), arts[0], 1)
	if run.Status != RunOK || run.Search == nil {
		t.Fatalf("run %+v: want a measured search", run)
	}
	s := run.Search
	if s.StoppedBy == StoppedIncomplete || len(s.Probes) == 0 || len(s.Probes) != len(run.Steps) {
		t.Fatalf("search %+v with %d steps: want every probe kept as a step", s, len(run.Steps))
	}
	for i, p := range s.Probes {
		if st := run.Steps[i]; st.TargetRate != float64(p.TargetRate) || st.Requests == 0 {
			t.Errorf("probe %d at %d/s, step at %.0f/s with %d requests", i, p.TargetRate, st.TargetRate, st.Requests)
		}
	}
	if s.Probes[0].TargetRate != 100 {
		t.Errorf("first probe at %d/s, want search.start", s.Probes[0].TargetRate)
	}
}

// Steps given as shares of a capacity (testRunner's 20000/s) run at their
// resolved rates, and a
// closed-model step runs unpaced, each connection sending when its last
// answer arrived: no target rate, never called saturated.
func TestSharesAndClosedModelSetTheLoad(t *testing.T) {
	d := scenarios.Duration(300 * time.Millisecond)
	shares := fastScenario(1, 0)
	shares.Load.Steps = []scenarios.Step{{OfCapacity: 0.01, Duration: d}, {OfCapacity: 0.02, Duration: d}}
	closed := fastScenario(1, 0)
	closed.Load.Model = scenarios.ModelClosed
	closed.Load.Steps = []scenarios.Step{{Duration: d}}
	tests := []struct {
		name  string
		sc    *scenarios.Scenario
		rates []float64
	}{
		{"shares of 20000/s", shares, []float64{200, 400}},
		{"closed", closed, []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &inProcess{}
			r, arts := testRunner(t, l, tt.sc, proxies("go")...)
			run := r.runOne(context.Background(), arts[0], 1)
			if run.Status != RunOK || len(run.Steps) != len(tt.rates) {
				t.Fatalf("run %+v with %d steps, want %d measured steps", run, len(run.Steps), len(tt.rates))
			}
			for i, st := range run.Steps {
				if st.TargetRate != tt.rates[i] || st.Requests == 0 || st.LoadgenSaturated {
					t.Errorf("step %d: target %.0f/s, %d requests, saturated %v (%s); want %.0f/s, requests, not saturated",
						i+1, st.TargetRate, st.Requests, st.LoadgenSaturated, st.Saturation, tt.rates[i])
				}
			}
			if tt.rates[0] == 0 && run.Steps[0].AchievedRate < 1000 {
				// Unpaced on loopback, four connections do thousands a
				// second; a paced 200/s would be far below.
				t.Errorf("closed step achieved %.0f/s: it was paced", run.Steps[0].AchievedRate)
			}
		})
	}
}

// Rows differ only by what their component carries: direct starts no
// container and has no proxy figures; nginx runs with its tmpfs and no
// environment; a lab proxy gets the contract's environment.
func TestRowsFollowTheirComponent(t *testing.T) {
	l := &inProcess{}
	r, arts := testRunner(t, l, fastScenario(1, 1), proxies("direct", "nginx", "go")...)
	r.o.RawDir = t.TempDir()
	if err := r.repeat(context.Background(), arts); err != nil {
		t.Fatal(err)
	}
	if got := l.started(); !slices.Equal(got, []string{"nginx", "go"}) {
		t.Errorf("started %v: want no container for direct", got)
	}
	ng, _ := l.spec("nginx")
	if ng.Env != nil || !maps.Equal(ng.Tmpfs, NginxTmpfs) || ng.CPUs != "0" || ng.Memory != 64<<20 {
		t.Errorf("nginx spec env %q tmpfs %v cpus %q memory %d: want no env, its tmpfs, the proxy's placement", ng.Env, ng.Tmpfs, ng.CPUs, ng.Memory)
	}
	gp, _ := l.spec("go")
	if want := []string{"LISTEN_ADDR=" + arts[2].Addr(), "UPSTREAM_ADDR=" + r.upstream.Addr()}; !slices.Equal(gp.Env, want) || gp.Tmpfs != nil {
		t.Errorf("go spec env %q tmpfs %v, want %q and none", gp.Env, gp.Tmpfs, want)
	}
	for i, p := range r.res.Proxies {
		st := p.Runs[0].Steps[0]
		if p.Runs[0].Status != RunOK || st.Requests == 0 || st.Success != 1 {
			t.Errorf("%s: run %+v, want measured", p.Name, p.Runs[0])
			continue
		}
		if direct := arts[i].NoContainer; st.Resources.NoProxy != direct || st.Probes != nil ||
			(!direct && st.Resources.ProxyCPUSeconds != 0.25) {
			t.Errorf("%s: resources %+v probes %v, want proxy figures: %v", p.Name, st.Resources, st.Probes, !direct)
		}
		if _, err := os.Stat(filepath.Join(r.o.RawDir, RawFile("rowtest", r.o.RunID, p.Name, 1, 1))); err != nil {
			t.Errorf("%s: raw results: %v", p.Name, err)
		}
	}
}

// Verification follows the component too: the suite applies to the lab's
// proxies only, and the results say why not for the others.
func TestVerificationOfRowsNotChecked(t *testing.T) {
	r := &runner{o: Options{SkipVerify: true}}
	var arts []*Artifact
	for _, c := range proxies("go", "direct", "nginx") {
		arts = append(arts, &Artifact{Component: c})
	}
	got, err := r.verify(context.Background(), arts)
	if err != nil {
		t.Fatal(err)
	}
	for name, reason := range map[string]string{"go": "--skip-verify", "direct": "not a lab proxy", "nginx": "not a lab proxy"} {
		if v := got[name]; v == nil || !v.Skipped || v.Reason != reason || v.Failed == nil {
			t.Errorf("%s: verification %+v, want skipped: %s", name, v, reason)
		}
	}
}

func TestComponentsCarryTheirDifferences(t *testing.T) {
	cases := []struct {
		c           Component
		env         []string
		noContainer bool
		tmpfs       bool
		verified    bool
		obtain      provider
	}{
		{Proxies[0], []string{"LISTEN_ADDR=127.0.0.1:8081", "UPSTREAM_ADDR=127.0.0.1:9000"}, false, false, true, fromSource{}},
		{Proxies[1], []string{"LISTEN_ADDR=127.0.0.1:8082", "UPSTREAM_ADDR=127.0.0.1:9000"}, false, false, true, fromSource{}},
		{Proxies[2], []string{"LISTEN_ADDR=127.0.0.1:8083", "UPSTREAM_ADDR=127.0.0.1:9000"}, false, false, true, fromSource{}},
		{Nginx, nil, false, true, false, hostNginx{}},
		{Direct, nil, true, false, false, nothing{}},
	}
	for _, c := range cases {
		if got := c.c.Env(loopbackHost, Upstream.Addr()); !slices.Equal(got, c.env) {
			t.Errorf("%s: env %q, want %q", c.c.Name, got, c.env)
		}
		if c.c.NoContainer != c.noContainer || (c.c.Tmpfs != nil) != c.tmpfs || (c.c.NotVerified == "") != c.verified ||
			c.c.obtain != c.obtain || c.c.Baseline == c.verified {
			t.Errorf("%s: %+v", c.c.Name, c.c)
		}
	}
}
