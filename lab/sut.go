package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proxylab/proxylab/scenarios"
)

// SUT names the host of the system under test when it is not this one: the
// Docker engine that runs the upstream and the proxies there, and the
// address of that host the load goes to. The load generator stays in this
// process, on this host.
type SUT struct {
	Engine  string // a Docker endpoint: unix:// or tcp://
	Address string // an IPv4 address of that host, reachable from this one
}

// Agent is the lab's reader on a SUT host (agentwire.go): proxylab itself,
// packed into a scratch image like every component.
var Agent = Component{Name: "agent", Language: "go", Dir: "cmd/proxylab", Binary: "proxylab-agent", Port: AgentPort, builder: goBuild}

// SUTAddress checks a SUT address as the user gave it: an IPv4 address
// that can be another host's. Loopback is this host, and a name could
// resolve anywhere.
func SUTAddress(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is4():
		return netip.Addr{}, fmt.Errorf("SUT address %q: want the IPv4 address of the SUT host, such as 10.254.254.2 (names are refused: a resolver could point them anywhere)", s)
	case a.IsLoopback():
		return netip.Addr{}, fmt.Errorf("SUT address %s is loopback, this host: leave out --sut and --sut-address to measure here", a)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, fmt.Errorf("SUT address %s cannot be a host's own address", a)
	}
	return a, nil
}

// sutHost is the SUT host during a run: the engine, the agent there and
// what both said about the host.
type sutHost struct {
	SUT
	addr   netip.Addr
	e      *Engine
	engine EngineHost
	agent  *agentClient
	box    *Container // the agent's container
	info   AgentHost
	// same: the SUT engine runs on this very kernel (a network namespace
	// of this host, as in the lab's own test host): its processes and CPUs
	// are this host's, read once, here.
	same bool
	// access is what the agent may do there: the capabilities the probes
	// need, every capability, or none; refused says which the engine
	// refused and why.
	access, refused string
	cpus            string // the agent's cpuset: the upstream's
}

// checkSUT refuses, before anything is built, a SUT the run could not
// measure: an address that cannot be another host's, or an engine that
// does not say what it runs on or runs on another architecture than
// x86-64, the only one the lab builds for.
func checkSUT(ctx context.Context, e *Engine, o *SUT) (*sutHost, error) {
	addr, err := SUTAddress(o.Address)
	if err != nil {
		return nil, err
	}
	h, err := e.Host(ctx)
	if err != nil {
		return nil, err
	}
	if h.Architecture != "x86_64" {
		return nil, fmt.Errorf("engine %s runs on %s (%s); the lab builds x86-64 binaries only: name an x86-64 host's engine", e.Endpoint, h.Architecture, h.Name)
	}
	return &sutHost{SUT: *o, addr: addr, e: e, engine: h}, nil
}

// sutPlacement places the proxy and the upstream on the SUT host's CPUs by
// DefaultPlacement's rule for its CPU count, and the load generator on
// every CPU of this host: there is nothing else here for it to share them
// with. A scenario's resources override either.
func sutPlacement(sc *scenarios.Scenario, sutCPUs, localCPUs int) (Placement, error) {
	p := DefaultPlacement(sutCPUs)
	p.LoadgenCPUs = "0"
	if localCPUs > 1 {
		p.LoadgenCPUs = fmt.Sprintf("0-%d", localCPUs-1)
	}
	res := sc.Resources
	p = p.Override(res.ProxyCPUs, res.UpstreamCPUs, res.LoadgenCPUs, int64(res.ProxyMemory))
	if err := (Placement{ProxyCPUs: p.ProxyCPUs, UpstreamCPUs: p.UpstreamCPUs, LoadgenCPUs: "0"}).Check(sutCPUs); err != nil {
		return p, fmt.Errorf("%s: on the SUT host (%d CPUs): %w", sc.File, sutCPUs, err)
	}
	if err := (Placement{ProxyCPUs: "0", UpstreamCPUs: "0", LoadgenCPUs: p.LoadgenCPUs}).Check(localCPUs); err != nil {
		return p, fmt.Errorf("%s: on this host (%d CPUs): %w", sc.File, localCPUs, err)
	}
	return p, nil
}

// start runs the agent on the SUT host, with the least access its probes
// need that the engine grants (startAgent), and waits until it answers on
// the SUT address: that also proves the address reachable from here, and
// its host's list of addresses that it is that host's.
func (s *sutHost) start(ctx context.Context, a *Artifact, runID string, p Placement, probes *scenarios.Probes) error {
	s.cpus = p.UpstreamCPUs
	token := make([]byte, 16)
	rand.Read(token)
	s.agent = newAgentClient(net.JoinHostPort(s.addr.String(), strconv.Itoa(AgentPort)), hex.EncodeToString(token))
	spec := ContainerSpec{
		Artifact: a, RunID: runID, Name: fmt.Sprintf("proxylab-%s-agent", runID), CPUs: p.UpstreamCPUs,
		Env: []string{AgentTokenEnv + "=" + s.agent.token}, Cmd: agentArgs(s.agent.addr, p, probes), Reader: true,
	}
	if err := s.startAgent(ctx, spec, probes.Enabled); err != nil {
		return err
	}
	if err := s.await(ctx); err != nil {
		return err
	}
	s.same = s.info.BootID != "" && s.info.BootID == bootID()
	if !slices.Contains(s.info.Addresses, s.addr.String()) {
		return fmt.Errorf("SUT address %s is not an address of the host of engine %s (its addresses: %s)", s.addr, s.Engine, strings.Join(s.info.Addresses, ", "))
	}
	return nil
}

// agentAccess is what the agent may be given, least first: the probes'
// capabilities; CAP_SYS_ADMIN alone, which covers both for an engine that
// does not know CAP_BPF (Docker 20.10); every capability; none, when the
// engine or the host's own bounding set refuses the others (a VM whose
// root lacks CAP_SYS_RESOURCE cannot start a privileged container).
var agentAccess = []struct {
	name       string
	caps       []string
	privileged bool
}{
	{"CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN", []string{"BPF", "PERFMON", "SYS_ADMIN"}, false},
	{"CAP_SYS_ADMIN", []string{"SYS_ADMIN"}, false},
	{"privileged", nil, true},
	{"no capabilities", nil, false},
}

// startAgent starts the agent container with the least access that lets
// its probes attach, or with none when the probes are off.
func (s *sutHost) startAgent(ctx context.Context, spec ContainerSpec, probes bool) error {
	var refusals []string
	for _, acc := range agentAccess {
		if !probes && (acc.caps != nil || acc.privileged) {
			continue
		}
		spec.Caps, spec.Privileged = acc.caps, acc.privileged
		box, err := s.e.Start(ctx, spec)
		if err == nil {
			s.box, s.access, s.refused = box, acc.name, strings.Join(refusals, "; ")
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		refusals = append(refusals, fmt.Sprintf("%s: %v", acc.name, err))
	}
	return fmt.Errorf("the lab's reader on %s could not start: %s", s.Engine, strings.Join(refusals, "; "))
}

// agentArgs are the agent's arguments: where it listens, and the probes
// as the scenario asks for them, their reader thread on the upstream's
// CPUs (there it competes with the upstream, not with the proxy measured).
func agentArgs(addr string, p Placement, probes *scenarios.Probes) []string {
	args := []string{"--listen", addr, "--idle-exit", agentIdleExit.String()}
	if !probes.Enabled {
		return args
	}
	events := strconv.Itoa(probes.Events.Sample)
	switch probes.Events.Sample {
	case 0:
		events = "none"
	case 1:
		events = "all"
	}
	return append(args, "--probes", "--mode", probes.Mode, "--perf-buffer-pages", strconv.Itoa(probes.PerfBufferPages),
		"--events", events, "--reader-cpus", p.UpstreamCPUs)
}

// agentIdleExit ends an agent nobody has asked anything for this long: a
// lab killed without its cleanup leaves no privileged reader behind for
// good.
const agentIdleExit = 10 * time.Minute

// await waits until the agent answers, or says why it did not: it
// exited (with its last lines), or the SUT address does not answer.
func (s *sutHost) await(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		if last = s.agent.get(ctx, "/v1/host", nil, &s.info); last == nil {
			return nil
		}
		var refused *agentError
		if errors.As(last, &refused) {
			return fmt.Errorf("the lab's reader on %s: %w", s.Engine, last)
		}
		if done, why := s.box.Exited(ctx); done {
			logs := strings.Join(s.box.Logs(ctx, 20), "\n")
			if strings.Contains(logs, "assign requested address") {
				return fmt.Errorf("SUT address %s is not an address of the host of engine %s: the lab's reader there cannot listen on it", s.addr, s.Engine)
			}
			return fmt.Errorf("the lab's reader on %s %s; its last lines:\n%s", s.Engine, why, logs)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("SUT address %s does not answer from this host: the lab's reader started on %s listens on %s, but %s did not reach it in %s (%v); check that %s is the SUT host's address and routed from here",
		s.addr, s.Engine, s.agent.addr, s.agent.addr, readyTimeout, last, s.addr)
}

// stop removes the agent.
func (s *sutHost) stop(ctx context.Context) {
	if s.box != nil {
		s.box.Remove(ctx)
	}
}

// bootID is this kernel's boot id; "" when it cannot be read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
