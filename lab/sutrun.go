package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/proxylab/proxylab/bpf"
)

// SUTLabel is the Host of a party, a core or a process on the SUT host,
// when that host is another machine.
const SUTLabel = "sut"

// useSUT checks the SUT host before anything is built and places the run
// on it: the containers start on its engine, and the load goes to its
// address.
func (r *runner) useSUT(ctx context.Context) error {
	s, err := checkSUT(ctx, r.e, r.o.SUT)
	if err != nil {
		return err
	}
	if r.placement, err = sutPlacement(r.sc, s.engine.CPUs, runtime.NumCPU()); err != nil {
		return err
	}
	r.sut, r.host, r.launch = s, s.addr.String(), sutLauncher{r.e, s}
	return nil
}

// startSUT starts the lab's reader on the SUT host once the images are
// there, and takes its probes when the scenario asks for them.
func (r *runner) startSUT(ctx context.Context, p *prepared) (*ProbeSetup, error) {
	s := r.sut
	r.info(fmt.Sprintf("starting the lab's reader on %s (%s)", s.Engine, s.addr))
	if err := s.start(ctx, p.agent, r.o.RunID, r.placement, &r.sc.Probes); err != nil {
		return nil, err
	}
	if s.same {
		r.info("the SUT engine runs on this host's kernel (a network namespace of it): its CPUs and processes are read here")
		if r.sc.Resources.LoadgenCPUs == "" {
			r.placement.LoadgenCPUs = DefaultPlacement(runtime.NumCPU()).LoadgenCPUs
		}
	}
	if s.refused != "" {
		r.info(fmt.Sprintf("the reader on the SUT host runs with %s; the engine refused more (%s)", s.access, s.refused))
	}
	if !r.sc.Probes.Enabled {
		return nil, nil
	}
	setup := s.info.Probes
	if setup == nil {
		setup = &ProbeSetup{Attempts: []bpf.Attempt{}, Error: "the reader on the SUT host did not say how its probes attached"}
	}
	if setup.Mode == "" {
		if s.refused != "" {
			setup.Error = fmt.Sprintf("the reader there runs with %s (the engine refused more: %s); %s", s.access, s.refused, setup.Error)
		}
		r.info("eBPF probes unavailable on the SUT host, measuring without them: " + setup.Error)
		return setup, nil
	}
	r.probes = &agentProbes{a: s.agent, cpus: r.placement.UpstreamCPUs}
	r.info(fmt.Sprintf("eBPF probes attached on the SUT host in %s mode", setup.Mode))
	return setup, nil
}

// describeHosts is the results' host: this one, and the SUT host when
// there is one.
func (r *runner) describeHosts() Host {
	if r.sut == nil {
		return DescribeHost(r.e.Version)
	}
	h := DescribeHost("")
	h.SUT = r.sut.describe()
	return h
}

// describe is what the results say about the SUT host.
func (s *sutHost) describe() *SUTHost {
	h := s.info.Host
	// The engine counts every CPU; the reader, in a cpuset, only its own.
	h.DockerVersion, h.Cores = s.e.Version, s.engine.CPUs
	return &SUTHost{
		Engine: s.Engine, Address: s.addr.String(), Name: s.engine.Name, Architecture: s.engine.Architecture, OS: s.engine.OS,
		Host: h, SameMachine: s.same, Path: networkPath(s.agent.addr), Readings: s.readings(),
	}
}

// readings says where the figures taken on the SUT host came from.
func (s *sutHost) readings() string {
	return fmt.Sprintf("CPU time and peak RSS of the proxy and the upstream: /proc of the SUT host, read by the lab's reader there "+
		"(pid %d, the host's PID namespace, %s), by the same code as on one host", s.info.PID, s.access)
}

// networkPath finds this host's address and interface toward addr and
// times a few TCP connects to it.
func networkPath(addr string) NetworkPath {
	var p NetworkPath
	if c, err := net.Dial("udp", addr); err == nil { // no packet: only the route is looked up
		p.LocalAddress = c.LocalAddr().(*net.UDPAddr).IP.String()
		c.Close()
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.String() == p.LocalAddress {
					p.Interface, p.MTU = i.Name, i.MTU
				}
			}
		}
	}
	var times []float64
	for range 9 {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		times = append(times, float64(time.Since(start).Microseconds()))
		c.Close()
	}
	if len(times) > 0 {
		slices.Sort(times)
		p.ConnectMicros = times[len(times)/2]
	}
	return p
}

// portFree refuses a port of c that something on the SUT host answers on
// already (the lab uses fixed ports there too), and a SUT address that
// does not answer at all.
func (s *sutHost) portFree(ctx context.Context, c Component) error {
	addr := c.AddrOn(s.addr.String())
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	switch {
	case err == nil:
		conn.Close()
		return fmt.Errorf("%s needs %s on the SUT host, where something already listens; stop it (containers of an earlier run: proxylab cleanup --sut %s)", c.Name, addr, s.Engine)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil
	}
	return fmt.Errorf("SUT address %s does not answer from this host (%v); check that it is the SUT host's address and routed from here", s.addr, err)
}

// sutLauncher starts containers on the SUT host's engine, read there by
// its agent.
type sutLauncher struct {
	e *Engine
	s *sutHost
}

func (l sutLauncher) Launch(ctx context.Context, spec ContainerSpec) (Running, error) {
	c, err := l.e.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &sutContainer{Container: c, s: l.s}, nil
}

// sutContainer is a container on the SUT host: its processes are that
// host's, so their usage and their tree are read by the agent there.
type sutContainer struct {
	*Container
	s *sutHost
}

func (c *sutContainer) tree() (AgentTree, error) {
	rd, err := c.s.agent.reading(context.Background(), c.s.cpus, c.Pid)
	if err != nil {
		return AgentTree{}, err
	}
	t, ok := rd.Trees[c.Pid]
	switch {
	case !ok:
		return AgentTree{}, fmt.Errorf("the reader on the SUT host did not read process %d", c.Pid)
	case t.Error != "":
		return AgentTree{}, fmt.Errorf("process %d on the SUT host: %s", c.Pid, t.Error)
	}
	return t, nil
}

// Usage is read by the agent, from that host's /proc.
func (c *sutContainer) Usage() (Usage, error) {
	t, err := c.tree()
	return Usage{CPUSeconds: t.CPUSeconds, PeakRSSBytes: t.PeakRSSBytes}, err
}

// Pids are the container's processes in the SUT host's PID namespace.
func (c *sutContainer) Pids() []int {
	t, err := c.tree()
	if err != nil {
		return []int{c.Pid}
	}
	return t.Pids
}

// rootPid is the main process of a running container: in this host's PID
// namespace, or in the SUT host's.
func rootPid(r Running) int {
	switch c := r.(type) {
	case *sutContainer:
		return c.Pid
	case *Container:
		return c.Pid
	}
	if p := r.Pids(); len(p) > 0 {
		return p[0]
	}
	return 0
}

// sutCoreTimes is what the SUT host's cpus did between two of its
// readings, as CoreTime with the SUT host's label.
func sutCoreTimes(b, a *AgentReading, cpus string) []CoreTime {
	list, _ := ParseCPUSet(cpus)
	out := coreTimes(agentCores(b), agentCores(a), list)
	for i := range out {
		out[i].Host = SUTLabel
	}
	return out
}

func agentCores(rd *AgentReading) map[int]cpuTimes {
	out := make(map[int]cpuTimes, len(rd.Cores))
	for cpu, c := range rd.Cores {
		out[cpu] = c.times()
	}
	return out
}

// sutOutside is what the processes outside the run used on the SUT host
// between two of its readings.
func sutOutside(b, a *AgentReading) []OutsideProcess {
	conv := func(rd *AgentReading) map[int]procTime {
		out := make(map[int]procTime, len(rd.Others))
		for pid, p := range rd.Others {
			out[pid] = p.time()
		}
		return out
	}
	out := outsideOf(conv(b), conv(a))
	for i := range out {
		out[i].Host = SUTLabel
	}
	return out
}
