package lab

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/proxylab/proxylab/bpf"
)

// AgentConfig says how to run the agent (see agentwire.go for its API).
type AgentConfig struct {
	Listen string // host:port; port 0 picks a free one (see Ready)
	Token  string // the bearer token every request must carry; required
	// Probes, when not nil, are attached with these options; attaching may
	// fail without stopping the agent (AgentHost.Probes says why).
	Probes *bpf.Options
	// IdleExit ends the agent when no authorised request came for that
	// long, so that an agent whose lab died does not stay on the host
	// (with capabilities and probes attached) for ever; 0 = never.
	IdleExit time.Duration
	// Ready, when set, is called with the bound address once the agent is
	// listening and its probes are set up, before the first request is
	// served: the way to learn the port when Listen asked for port 0.
	Ready func(addr string)
}

// Bounds of the agent's HTTP server: every message is small, and a client
// that stalls must not hold a connection.
const (
	agentReadTimeout  = 10 * time.Second
	agentWriteTimeout = 30 * time.Second
	agentIdleConn     = 2 * time.Minute
	agentMaxHeader    = 16 << 10
	agentShutdown     = 5 * time.Second
)

// agent is a running agent's state, shared by its handlers.
type agent struct {
	token  []byte
	probes *bpf.Probes // nil: not asked for, or they did not attach
	setup  *ProbeSetup // nil: not asked for
	last   atomic.Int64
}

// ServeAgent runs the agent until ctx ends or, with cfg.IdleExit, no
// authorised request came for that long; either way it returns nil after
// closing the probes. Probes that cannot attach do not stop it: the host
// description says why they are missing, as a results file does.
func ServeAgent(ctx context.Context, cfg AgentConfig, log func(string)) error {
	if log == nil {
		log = func(string) {}
	}
	if cfg.Token == "" {
		return errors.New("agent: no token: every request must be authorised")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a := &agent{token: []byte(cfg.Token)}
	a.attach(cfg.Probes)
	if a.probes != nil {
		defer a.probes.Close()
	}
	log(fmt.Sprintf("agent listening on %s; %s", ln.Addr(), a.probesText()))
	a.last.Store(time.Now().UnixNano())
	srv := &http.Server{
		Handler:           a.authorised(a.routes()),
		ReadHeaderTimeout: agentReadTimeout,
		ReadTimeout:       agentReadTimeout,
		WriteTimeout:      agentWriteTimeout,
		IdleTimeout:       agentIdleConn,
		MaxHeaderBytes:    agentMaxHeader,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	why := a.wait(ctx, cfg.IdleExit, served)
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), agentShutdown)
	defer cancel()
	srv.Shutdown(shut)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("agent: serving on %s: %w", ln.Addr(), err)
	}
	log("agent stopping: " + why)
	return nil
}

// wait blocks until ctx ends, the agent has been idle for idle (0: never)
// or the server stopped by itself, and says which.
func (a *agent) wait(ctx context.Context, idle time.Duration, served chan error) string {
	var tick <-chan time.Time
	if idle > 0 {
		t := time.NewTicker(max(min(idle/4, time.Second), time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx).Error()
		case err := <-served:
			served <- err // for ServeAgent to report
			return "the server stopped"
		case <-tick:
			if since := time.Since(time.Unix(0, a.last.Load())); since >= idle {
				return fmt.Sprintf("no request for %s", since.Round(10*time.Millisecond))
			}
		}
	}
}

// attach sets up the probes as run.go's attachProbes does, recording
// rather than returning a failure.
func (a *agent) attach(opts *bpf.Options) {
	if opts == nil {
		return
	}
	p, err := bpf.Attach(*opts)
	if err != nil {
		a.setup = &ProbeSetup{Attempts: []bpf.Attempt{}, Error: err.Error()}
		return
	}
	a.probes = p
	a.setup = &ProbeSetup{Mode: p.Mode(), Attempts: append([]bpf.Attempt{}, p.Attempts()...)}
	if cpus, err := p.ReaderPin(); err != nil {
		a.setup.ReaderPinError = err.Error()
	} else {
		a.setup.ReaderCPUs = cpuSetString(cpus)
	}
}

// probesText is the start-up line's account of the probes.
func (a *agent) probesText() string {
	switch {
	case a.setup == nil:
		return "no eBPF probes (not asked for)"
	case a.probes == nil:
		return "eBPF probes unavailable: " + a.setup.Error
	}
	s := fmt.Sprintf("eBPF probes attached in %s mode, perf buffer events: %s", a.probes.Mode(), a.probes.Events())
	for _, at := range a.setup.Attempts {
		s += fmt.Sprintf(" (%s mode unavailable: %s)", at.Mode, at.Error)
	}
	return s
}

// routes are the endpoints of agentwire.go.
func (a *agent) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/host", a.host)
	mux.HandleFunc("GET /v1/reading", a.reading)
	mux.HandleFunc("POST /v1/probes/watch", a.probeControl(func(p *bpf.Probes, r *http.Request) (int, error) {
		pid, err := pidParam(r)
		if err != nil {
			return http.StatusBadRequest, err
		}
		return http.StatusInternalServerError, p.Watch(pid)
	}))
	mux.HandleFunc("POST /v1/probes/unwatch", a.probeControl(func(p *bpf.Probes, r *http.Request) (int, error) {
		pid, err := pidParam(r)
		if err != nil {
			return http.StatusBadRequest, err
		}
		return http.StatusInternalServerError, p.Unwatch(pid)
	}))
	mux.HandleFunc("POST /v1/probes/attached", a.probeControl(func(p *bpf.Probes, r *http.Request) (int, error) {
		on := r.URL.Query().Get("on")
		if on != "true" && on != "false" {
			return http.StatusBadRequest, fmt.Errorf("on: %q is neither true nor false", on)
		}
		return http.StatusInternalServerError, p.SetAttached(on == "true")
	}))
	return mux
}

// authorised lets through only requests that carry the token; only those
// count as activity for the idle exit, so that a stranger probing the
// port does not keep the agent alive.
func (a *agent) authorised(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), a.token) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "agent: missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		a.last.Store(time.Now().UnixNano())
		defer a.last.Store(time.Now().UnixNano())
		next.ServeHTTP(w, r)
	})
}

// host answers GET /v1/host.
func (a *agent) host(w http.ResponseWriter, r *http.Request) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		http.Error(w, "agent: boot id: "+err.Error(), http.StatusInternalServerError)
		return
	}
	addrs, err := hostAddresses()
	if err != nil {
		http.Error(w, "agent: addresses: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, AgentHost{
		Host: DescribeHost(""), BootID: strings.TrimSpace(string(boot)),
		Addresses: addrs, PID: os.Getpid(), Probes: a.setup,
	})
}

// hostAddresses lists every interface's IP addresses, without prefix
// lengths.
func hostAddresses() ([]string, error) {
	list, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, ad := range list {
		switch v := ad.(type) {
		case *net.IPNet:
			out = append(out, v.IP.String())
		case *net.IPAddr:
			out = append(out, v.IP.String())
		}
	}
	return out, nil
}

// reading answers GET /v1/reading.
func (a *agent) reading(w http.ResponseWriter, r *http.Request) {
	cpus, roots, err := readingParams(r)
	if err != nil {
		http.Error(w, "agent: "+err.Error(), http.StatusBadRequest)
		return
	}
	rd, status, err := a.read(cpus, roots, r.URL.Query().Get("probes") == "1")
	if err != nil {
		http.Error(w, "agent: "+err.Error(), status)
		return
	}
	writeJSON(w, rd)
}

// readingParams parses cpus (a cpuset, required) and trees (root pids,
// comma-separated, possibly none).
func readingParams(r *http.Request) ([]int, []int, error) {
	q := r.URL.Query()
	if q.Get("cpus") == "" {
		return nil, nil, errors.New("cpus: missing (a cpuset such as 0-1,3)")
	}
	cpus, err := ParseCPUSet(q.Get("cpus"))
	if err != nil {
		return nil, nil, fmt.Errorf("cpus: %w", err)
	}
	var roots []int
	if t := q.Get("trees"); t != "" {
		for _, f := range strings.Split(t, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return nil, nil, fmt.Errorf("trees: %q is not a process id", f)
			}
			roots = append(roots, pid)
		}
	}
	return cpus, roots, nil
}

// read takes one reading, the probes' counters only when asked for: a
// snapshot flushes the perf buffer, which a reading of the CPUs alone
// need not disturb. The CPUs are checked against /proc/stat first:
// one the host does not have is the client's mistake (400), since it
// would silently read nothing. The trees come before Others, which leaves
// out every one of their processes.
func (a *agent) read(cpus, roots []int, probes bool) (AgentReading, int, error) {
	rd := AgentReading{At: time.Now(), SelfCPUSeconds: selfCPUSeconds(),
		Cores: map[int]AgentCore{}, Trees: map[int]AgentTree{}, Others: map[int]AgentProcess{}}
	cores, err := readProcStat()
	if err != nil {
		return rd, http.StatusInternalServerError, err
	}
	for _, c := range cpus {
		if _, ok := cores[c]; !ok {
			return rd, http.StatusBadRequest, fmt.Errorf("cpus: CPU %d is not in this host's /proc/stat", c)
		}
	}
	for c, t := range cores {
		rd.Cores[c] = agentCore(t)
	}
	skip := map[int]bool{os.Getpid(): true}
	for _, root := range roots {
		t := readTree(root)
		rd.Trees[root] = t
		for _, pid := range t.Pids {
			skip[pid] = true
		}
	}
	for pid, t := range processTimes(cpus, func(pid int) bool { return skip[pid] }) {
		rd.Others[pid] = agentProcess(t)
	}
	if probes && a.probes != nil {
		if c, err := a.probes.Snapshot(); err != nil {
			rd.ProbesError = err.Error()
		} else {
			rd.Probes = &c
		}
	}
	return rd, http.StatusOK, nil
}

// readTree is a root's process tree and its summed usage, as a
// Container's.
func readTree(root int) AgentTree {
	pids := pidTree(root)
	u, err := treeUsage(pids)
	if err != nil {
		return AgentTree{Pids: pids, Error: err.Error()}
	}
	return AgentTree{Pids: pids, CPUSeconds: u.CPUSeconds, PeakRSSBytes: u.PeakRSSBytes}
}

// probeControl wraps a probe command: 409 without probes, 204 when it
// succeeded, else the status it returns with its error.
func (a *agent) probeControl(do func(*bpf.Probes, *http.Request) (int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.probes == nil {
			why := "not asked for"
			if a.setup != nil {
				why = a.setup.Error
			}
			http.Error(w, "agent: the probes are not attached: "+why, http.StatusConflict)
			return
		}
		if status, err := do(a.probes, r); err != nil {
			http.Error(w, "agent: "+err.Error(), status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// pidParam reads the pid parameter: a process id as the host's PID
// namespace numbers it.
func pidParam(r *http.Request) (uint32, error) {
	s := r.URL.Query().Get("pid")
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("pid: %q is not a process id", s)
	}
	return uint32(n), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "agent: encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// cpuSetString writes cpus in the kernel's cpuset list syntax, as
// ParseCPUSet reads it ("0-2,5"); none is "".
func cpuSetString(cpus []int) string {
	cpus = slices.Sorted(slices.Values(cpus))
	cpus = slices.Compact(cpus)
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
