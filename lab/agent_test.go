package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/bpf"
)

const testAgentToken = "test-token"

// startAgent runs ServeAgent on a free loopback port for the test's
// duration and returns its base URL.
func startAgent(t *testing.T, cfg AgentConfig) string {
	t.Helper()
	cfg.Listen, cfg.Token = "127.0.0.1:0", testAgentToken
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeAgent(ctx, cfg, func(s string) { t.Log(s) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeAgent: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("ServeAgent returned before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent was not ready after 30 s")
	}
	return ""
}

// call sends one request with token (none when empty) and returns the
// status and body.
func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// getJSON GETs url with the right token and decodes a 200 answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	status, body := call(t, http.MethodGet, url, testAgentToken)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// allCPUs is every CPU of this host's /proc/stat as a cpuset.
func allCPUs(t *testing.T) (string, []int) {
	t.Helper()
	cores, err := readProcStat()
	if err != nil {
		t.Fatal(err)
	}
	cpus := slices.Sorted(maps.Keys(cores))
	return cpuSetString(cpus), cpus
}

func TestAgentHost(t *testing.T) {
	base := startAgent(t, AgentConfig{})
	var h AgentHost
	getJSON(t, base+"/v1/host", &h)
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(boot)); h.BootID != want {
		t.Errorf("boot id %q, want %q", h.BootID, want)
	}
	if !slices.Contains(h.Addresses, "127.0.0.1") {
		t.Errorf("addresses %v lack 127.0.0.1", h.Addresses)
	}
	if h.PID != os.Getpid() || h.Probes != nil || h.Host.Cores == 0 || h.Host.Kernel == "" || h.Host.DockerVersion != "" {
		t.Errorf("pid %d (want %d), probes %+v, host %+v", h.PID, os.Getpid(), h.Probes, h.Host)
	}
}

func TestAgentReading(t *testing.T) {
	base := startAgent(t, AgentConfig{})
	burn(50 * time.Millisecond)
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	me, kid := os.Getpid(), child.Process.Pid
	set, cpus := allCPUs(t)

	// With every CPU asked, every user-space process is an other, save
	// the agent and the trees' processes.
	var without AgentReading
	getJSON(t, base+"/v1/reading?cpus="+set, &without)
	if _, ok := without.Others[kid]; !ok {
		t.Errorf("no tree asked: the child %d is not among the others", kid)
	}
	gone := 1 << 30 // above the kernel's pid_max
	var rd AgentReading
	getJSON(t, fmt.Sprintf("%s/v1/reading?cpus=%s&trees=%d,%d", base, set, me, gone), &rd)
	tree := rd.Trees[me]
	if len(tree.Pids) < 2 || tree.Pids[0] != me || !slices.Contains(tree.Pids, kid) || tree.Error != "" {
		t.Errorf("tree of %d: %+v, want it first and the child %d in it", me, tree, kid)
	}
	if tree.CPUSeconds <= 0 || tree.PeakRSSBytes <= 0 || rd.SelfCPUSeconds <= 0 {
		t.Errorf("tree %+v, self %.2f s: want CPU time and a peak RSS", tree, rd.SelfCPUSeconds)
	}
	for _, pid := range []int{me, kid} {
		if p, ok := rd.Others[pid]; ok {
			t.Errorf("process %d of the tree is among the others: %+v", pid, p)
		}
	}
	if g := rd.Trees[gone]; g.Error == "" || !slices.Equal(g.Pids, []int{gone}) {
		t.Errorf("tree of a pid that does not exist: %+v, want an error", g)
	}
	if got := slices.Sorted(maps.Keys(rd.Cores)); !slices.Equal(got, cpus) {
		t.Errorf("cores %v, want %v", got, cpus)
	}
	if time.Since(rd.At) > time.Minute || rd.Probes != nil || rd.ProbesError != "" {
		t.Errorf("at %s, probes %+v %q", rd.At, rd.Probes, rd.ProbesError)
	}
}

// burn uses about d of CPU time in this process.
func burn(d time.Duration) {
	for start := selfCPUSeconds(); selfCPUSeconds()-start < d.Seconds(); {
		for i := 0; i < 1e6; i++ {
			_ = strconv.Itoa(i)
		}
	}
}

func TestAgentErrors(t *testing.T) {
	base := startAgent(t, AgentConfig{})
	set, _ := allCPUs(t)
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		says                      string
	}{
		{"no token", "GET", "/v1/host", "", 401, "token"},
		{"wrong token", "GET", "/v1/host", "wrong", 401, "token"},
		{"token prefix", "GET", "/v1/host", testAgentToken[:4], 401, "token"},
		{"no token, unknown path", "GET", "/v2/nothing", "", 401, "token"},
		{"no cpus", "GET", "/v1/reading", testAgentToken, 400, "cpus: missing"},
		{"bad cpus", "GET", "/v1/reading?cpus=x", testAgentToken, 400, "cpus:"},
		{"reversed range", "GET", "/v1/reading?cpus=3-1", testAgentToken, 400, "cpus:"},
		{"CPU not on the host", "GET", "/v1/reading?cpus=4095", testAgentToken, 400, "cpus: CPU 4095"},
		{"bad tree", "GET", "/v1/reading?cpus=" + set + "&trees=1,x", testAgentToken, 400, "trees:"},
		{"zero tree", "GET", "/v1/reading?cpus=" + set + "&trees=0", testAgentToken, 400, "trees:"},
		{"empty tree", "GET", "/v1/reading?cpus=" + set + "&trees=1,", testAgentToken, 400, "trees:"},
		{"wrong method", "POST", "/v1/host", testAgentToken, 405, ""},
		{"watch without probes", "POST", "/v1/probes/watch?pid=1", testAgentToken, 409, "not attached: not asked for"},
		{"unwatch without probes", "POST", "/v1/probes/unwatch?pid=1", testAgentToken, 409, "not attached"},
		{"attach without probes", "POST", "/v1/probes/attached?on=true", testAgentToken, 409, "not attached"},
	} {
		status, body := call(t, tc.method, base+tc.path, tc.token)
		if status != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %s %s gave %d %q, want %d saying %q", tc.name, tc.method, tc.path, status, body, tc.status, tc.says)
		}
	}
}

// With the probes attached, a watched process's accepts and connects are
// counted, and not once it is unwatched or the programs are detached. The
// watched process is this one, so every count is at least the test's own
// connections (the client may open more to the agent).
func TestAgentProbes(t *testing.T) {
	base := startAgent(t, AgentConfig{Probes: &bpf.Options{Mode: bpf.ModeAuto}})
	var h AgentHost
	getJSON(t, base+"/v1/host", &h)
	if h.Probes == nil {
		t.Fatal("probes asked for, but no setup in the host description")
	}
	if e := h.Probes.Error; e != "" {
		if why := lacksBPFCapability(t); why != "" {
			t.Skipf("skipping: %s, and the probes did not attach: %s", why, e)
		}
		t.Fatalf("the probes did not attach: %s", e)
	}
	if h.Probes.Mode == "" {
		t.Fatalf("probes attached in no mode: %+v", h.Probes)
	}
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pid := strconv.Itoa(os.Getpid())
	set, _ := allCPUs(t)
	for _, step := range []struct {
		control string // a probe command before the connections
		counted bool
	}{
		{"watch?pid=" + pid, true},
		{"attached?on=false", false},
		{"attached?on=true", true},
		{"unwatch?pid=" + pid, false},
	} {
		if status, body := call(t, "POST", base+"/v1/probes/"+step.control, testAgentToken); status != http.StatusNoContent {
			t.Fatalf("%s: %d %s", step.control, status, body)
		}
		var before, after AgentReading
		getJSON(t, base+"/v1/reading?probes=1&cpus="+set, &before)
		const n = 3
		connect(t, srv, n)
		getJSON(t, base+"/v1/reading?probes=1&cpus="+set, &after)
		if before.Probes == nil || after.Probes == nil {
			t.Fatalf("after %s: no counts (%q, %q)", step.control, before.ProbesError, after.ProbesError)
		}
		accepts, connects := after.Probes.Accepts-before.Probes.Accepts, after.Probes.Connects-before.Probes.Connects
		if counted := accepts >= n && connects >= n; counted != step.counted || !step.counted && (accepts != 0 || connects != 0) {
			t.Errorf("after %s: %d accepts and %d connects for %d connections, want them counted: %v", step.control, accepts, connects, n, step.counted)
		}
	}
	var plain AgentReading
	if getJSON(t, base+"/v1/reading?cpus="+set, &plain); plain.Probes != nil {
		t.Errorf("a reading that did not ask for the probes carries their counts: %+v", plain.Probes)
	}
	for _, bad := range []string{"watch?pid=x", "watch?pid=0", "unwatch?pid=-1", "watch", "attached?on=yes"} {
		if status, body := call(t, "POST", base+"/v1/probes/"+bad, testAgentToken); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad, status, body)
		}
	}
}

// lacksBPFCapability says why this process may not load eBPF programs
// (CapEff has neither CAP_SYS_ADMIN nor both CAP_BPF and CAP_PERFMON), or
// "" when it may.
func lacksBPFCapability(t *testing.T) string {
	capEff := procField("/proc/self/status", "CapEff")
	caps, err := strconv.ParseUint(capEff, 16, 64)
	if err != nil {
		t.Fatalf("/proc/self/status: CapEff %q: %v", capEff, err)
	}
	const sysAdmin, perfmon, bpfCap = 21, 38, 39
	has := func(c uint) bool { return caps&(1<<c) != 0 }
	if has(sysAdmin) || has(perfmon) && has(bpfCap) {
		return ""
	}
	return fmt.Sprintf("this process lacks CAP_SYS_ADMIN and CAP_BPF+CAP_PERFMON (CapEff %s)", capEff)
}

// connect makes n connections to srv and waits until srv accepted each.
func connect(t *testing.T, srv net.Listener, n int) {
	t.Helper()
	for range n {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := srv.Accept()
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		c.Close()
	}
}

// An agent nobody talks to stops by itself; requests keep it alive.
func TestAgentIdleExit(t *testing.T) {
	ready := make(chan string, 1)
	done := make(chan error, 1)
	idle := 500 * time.Millisecond
	cfg := AgentConfig{Listen: "127.0.0.1:0", Token: testAgentToken, IdleExit: idle, Ready: func(a string) { ready <- a }}
	go func() { done <- ServeAgent(context.Background(), cfg, func(s string) { t.Log(s) }) }()
	base := "http://" + <-ready
	for end := time.Now().Add(3 * idle); time.Now().Before(end); time.Sleep(idle / 10) {
		call(t, "GET", base+"/v1/host", testAgentToken)
	}
	select {
	case err := <-done:
		t.Fatalf("the agent stopped while it was asked every %s: %v", idle/10, err)
	default:
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("idle exit: %v", err)
		}
	case <-time.After(10 * idle):
		t.Fatalf("the agent still runs after %s without a request", 10*idle)
	}
}

func TestAgentNeedsToken(t *testing.T) {
	err := ServeAgent(context.Background(), AgentConfig{Listen: "127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("no token: %v, want a refusal", err)
	}
}

func TestAgentCPUSetString(t *testing.T) {
	for _, tc := range []struct {
		cpus []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{3, 0, 1, 2, 5}, "0-3,5"},
		{[]int{1, 1, 4, 6, 7}, "1,4,6-7"},
	} {
		got := cpuSetString(tc.cpus)
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.cpus, got, tc.want)
		}
		if back, err := ParseCPUSet(got); got != "" && (err != nil || cpuSetString(back) != got) {
			t.Errorf("%q does not parse back: %v %v", got, back, err)
		}
	}
}
