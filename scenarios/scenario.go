// Package scenarios reads, checks and describes the YAML scenario files that
// drive a lab run. A scenario says which proxies to compare, what the upstream
// answers, what load to offer, on which CPUs, and whether to attach probes.
//
// Parse is strict on purpose: a typo in a scenario would otherwise silently
// measure something other than what the researcher asked for, so every
// problem is reported with its file, line and column.
package scenarios

import "time"

// KnownProxies are the lab's proxies, in the order the lab uses when a
// scenario lists none.
var KnownProxies = []string{"go", "rust", "zig"}

// Baselines are reference rows a scenario may list among its proxies:
// "direct" sends the load straight to the upstream (the ceiling of this
// host and load generator), "nginx" is the host's nginx as a reverse proxy.
// A scenario that lists no proxies gets none of them.
var Baselines = []string{"direct", "nginx"}

// ProxyNames is every name proxies may hold.
func ProxyNames() []string { return append(append([]string{}, KnownProxies...), Baselines...) }

// DefaultRun is what `proxylab compare` runs without arguments, in this
// order: the capacity of every row, latency at shares of the slowest lab
// proxy's capacity, and connection churn (file names in this folder).
var DefaultRun = []string{"capacity.yaml", "latency.yaml", "churn.yaml"}

// ProbeModes are the values probes.mode accepts; "auto" tries the others in
// turn.
var ProbeModes = []string{"auto", "kprobe", "fentry", "tracepoint"}

// Scenario is one parsed scenario file.
type Scenario struct {
	Name        string    `yaml:"name" json:"name"`
	Description string    `yaml:"description" json:"description,omitempty"`
	Proxies     []string  `yaml:"proxies,omitempty" json:"proxies,omitempty"` // empty = every lab proxy (the lab resolves which are present), no baselines
	Repeat      int       `yaml:"repeat" json:"repeat"`
	Warmup      Duration  `yaml:"warmup" json:"warmup"`
	Upstream    Upstream  `yaml:"upstream" json:"upstream"`
	Load        Load      `yaml:"load" json:"load"`
	Resources   Resources `yaml:"resources" json:"resources"`
	Probes      Probes    `yaml:"probes" json:"probes"`
	File        string    `yaml:"-" json:"-"` // path it was read from
}

// Upstream is what the origin server behind every proxy answers.
type Upstream struct {
	ResponseBytes ByteSize `yaml:"response_bytes" json:"response_bytes"`
	Delay         Duration `yaml:"delay" json:"delay"`
}

// Load models. An open model sends at a fixed rate whatever the answers
// do (vegeta's, and how users arrive); a closed model keeps each connection
// busy, its next request sent when the last answer arrived (wrk's, and
// what most published figures use). Their figures answer different
// questions and are never compared with each other.
const (
	ModelOpen   = "open"
	ModelClosed = "closed"
)

// LoadModels are the values load.model accepts.
var LoadModels = []string{ModelOpen, ModelClosed}

// Load is the offered load. Exactly one of Steps and Search is set; a
// closed model has steps only.
type Load struct {
	Model       string   `yaml:"model" json:"model,omitempty"` // ModelOpen (default) or ModelClosed
	Method      string   `yaml:"method" json:"method"`
	Path        string   `yaml:"path" json:"path"`
	BodyBytes   ByteSize `yaml:"body_bytes" json:"body_bytes"`
	Connections int      `yaml:"connections" json:"connections"`
	Keepalive   bool     `yaml:"keepalive" json:"keepalive"`
	Steps       []Step   `yaml:"steps,omitempty" json:"steps,omitempty"`
	Search      *Search  `yaml:"search,omitempty" json:"search,omitempty"`
}

// Closed reports whether the load is the closed model; an empty model (a
// scenario built in code, or echoed by an older results file) is open.
func (l *Load) Closed() bool { return l.Model == ModelClosed }

// Step holds one load level for a while: in the open model a constant
// rate, given in requests per second or as a share of the capacity a
// search measured before it (OfCapacity, resolved by the lab when the run
// starts); in the closed model only a duration, the level being
// load.connections.
type Step struct {
	Rate       int      `yaml:"rate,omitempty" json:"rate,omitempty"` // requests per second
	OfCapacity Share    `yaml:"of_capacity,omitempty" json:"of_capacity,omitempty"`
	Duration   Duration `yaml:"duration" json:"duration"`
}

// Search looks for the highest rate that still meets a latency objective.
type Search struct {
	SLOP99       Duration `yaml:"slo_p99" json:"slo_p99"`
	MinSuccess   float64  `yaml:"min_success" json:"min_success"`
	Start        int      `yaml:"start" json:"start"`
	Max          int      `yaml:"max" json:"max"`
	StepDuration Duration `yaml:"step_duration" json:"step_duration"`
}

// Resources pins the containers to CPUs and limits the proxy's memory. CPU
// sets use the cgroup cpuset syntax ("0", "1-3", "0,2"); empty fields leave
// the choice to the lab.
type Resources struct {
	ProxyCPUs    string   `yaml:"proxy_cpus" json:"proxy_cpus"`
	UpstreamCPUs string   `yaml:"upstream_cpus" json:"upstream_cpus"`
	LoadgenCPUs  string   `yaml:"loadgen_cpus" json:"loadgen_cpus"`
	ProxyMemory  ByteSize `yaml:"proxy_memory" json:"proxy_memory"` // 0 = the lab's default (lab.DefaultProxyMemory)
}

// Probes configures the eBPF counters attached to each proxy.
type Probes struct {
	Enabled         bool   `yaml:"enabled" json:"enabled"`
	Mode            string `yaml:"mode" json:"mode"`
	PerfBufferPages int    `yaml:"perf_buffer_pages" json:"perf_buffer_pages"` // per CPU
	Events          Events `yaml:"events" json:"events"`
	// Overhead runs every step twice per row, probes detached and
	// attached in alternating order, to measure what they cost the proxy.
	Overhead bool `yaml:"overhead" json:"overhead"`
}

// TotalDuration is how long one proxy is under load over the whole scenario:
// warm-up plus every step, times Repeat. Multiply by the number of proxies
// for the whole run; probes.overhead runs every step twice. Container
// start-up is not included. For a search the
// number of steps depends on the proxy, so a single step is counted and the
// result is a lower bound.
func (s *Scenario) TotalDuration() time.Duration {
	per := s.Warmup.D()
	for _, st := range s.Load.Steps {
		per += st.Duration.D()
		if s.Probes.Overhead {
			per += st.Duration.D() // once more with the probes detached
		}
	}
	if s.Load.Search != nil {
		per += s.Load.Search.StepDuration.D()
	}
	return per * time.Duration(max(s.Repeat, 1))
}
