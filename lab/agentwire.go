package lab

import (
	"time"

	"github.com/proxylab/proxylab/bpf"
)

// The agent is proxylab's own reader on a SUT host (a Docker engine other
// than this host's): the lab's static binary in a scratch image, run there
// with the host's PID namespace and network (`proxylab agent`) and, when
// the probes are wanted, the least capabilities they need that the engine
// grants (startAgent). It reads what a
// single-host run reads from /proc and the probes, with the same code, and
// serves it as JSON over HTTP on the SUT address, the one address the lab
// sends traffic to there. These are its messages.
//
//	GET  /v1/host                        AgentHost
//	GET  /v1/reading?cpus=SET&trees=PIDS[&probes=1]
//	                                     AgentReading (PIDS: comma-separated root pids;
//	                                     probes=1: with the probes' counters)
//	POST /v1/probes/watch?pid=N          204: the probes count N's sockets
//	POST /v1/probes/unwatch?pid=N        204
//	POST /v1/probes/attached?on=BOOL     204: attach or detach the programs
//
// Every request carries `Authorization: Bearer TOKEN`, the token the agent
// was started with (PROXYLAB_AGENT_TOKEN): the port is reachable from the
// network between the hosts, and the agent can watch any process. Errors are
// a status other than 2xx with a one-line text body.

// AgentPort is the agent's port on the SUT address.
const AgentPort = 9190

// AgentTokenEnv names the environment variable that carries the agent's
// token.
const AgentTokenEnv = "PROXYLAB_AGENT_TOKEN"

// AgentHost describes the SUT host as its agent sees it.
type AgentHost struct {
	Host Host `json:"host"` // DescribeHost on that host; DockerVersion empty
	// BootID is /proc/sys/kernel/random/boot_id: equal to this host's, the
	// SUT engine runs on this very kernel (a namespace of this host).
	BootID string `json:"boot_id"`
	// Addresses are the host's IP addresses, every interface's.
	Addresses []string `json:"addresses"`
	PID       int      `json:"pid"` // the agent's own, in the host's PID namespace
	// Probes is how the probes attached there, nil when they were not asked
	// for; its Error says why they did not attach.
	Probes *ProbeSetup `json:"probes,omitempty"`
}

// AgentReading is one reading of the SUT host, taken in one go.
type AgentReading struct {
	At time.Time `json:"at"` // the agent's clock
	// SelfCPUSeconds is the agent's own CPU time, its probe reader's
	// included.
	SelfCPUSeconds float64 `json:"self_cpu_seconds"`
	// Cores is /proc/stat, every CPU of the host.
	Cores map[int]AgentCore `json:"cores"`
	// Others is every user-space process that last ran on one of the asked
	// CPUs, except the asked trees' processes and the agent.
	Others map[int]AgentProcess `json:"others"`
	// Trees: for each asked root pid, its process tree and what it used.
	Trees map[int]AgentTree `json:"trees"`
	// Probes are the probes' counters, when asked for and attached.
	Probes      *bpf.Counts `json:"probes,omitempty"`
	ProbesError string      `json:"probes_error,omitempty"`
}

// AgentCore is one CPU's line of /proc/stat, in seconds since boot.
type AgentCore struct {
	User    float64 `json:"user"`
	Nice    float64 `json:"nice"`
	System  float64 `json:"system"`
	Idle    float64 `json:"idle"`
	IOWait  float64 `json:"iowait"`
	IRQ     float64 `json:"irq"`
	SoftIRQ float64 `json:"softirq"`
	Steal   float64 `json:"steal"`
}

// AgentProcess is one process's CPU seconds, all its threads', and its
// start time in ticks since boot (with the pid it tells it from a later
// process that reused the pid).
type AgentProcess struct {
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Start      int64   `json:"start"`
}

// AgentTree is a process and its descendants (root first) with their
// summed usage, as Container.Usage sums them; Error is set when the root
// could not be read (it exited).
type AgentTree struct {
	Pids         []int   `json:"pids"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Error        string  `json:"error,omitempty"`
}

func agentCore(t cpuTimes) AgentCore {
	return AgentCore{t.user, t.nice, t.system, t.idle, t.iowait, t.irq, t.softirq, t.steal}
}

func (c AgentCore) times() cpuTimes {
	return cpuTimes{c.User, c.Nice, c.System, c.Idle, c.IOWait, c.IRQ, c.SoftIRQ, c.Steal}
}

func agentProcess(p procTime) AgentProcess {
	return AgentProcess{Name: p.name, CPUSeconds: p.seconds, Start: p.start}
}

func (p AgentProcess) time() procTime {
	return procTime{name: p.Name, seconds: p.CPUSeconds, start: p.Start}
}
