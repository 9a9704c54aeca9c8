package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// SchemaVersion is the version of the results format (results/schema.json).
const SchemaVersion = 1

// Results is one run of one scenario; its JSON encoding is the results file.
type Results struct {
	SchemaVersion int                 `json:"schema_version"`
	ToolVersion   string              `json:"tool_version"`
	RunID         string              `json:"run_id"`
	Scenario      *scenarios.Scenario `json:"scenario"`
	StartedAt     time.Time           `json:"started_at"`
	EndedAt       time.Time           `json:"ended_at"`
	// Complete is true only when every planned step of every proxy ran.
	Complete   bool              `json:"complete"`
	StopReason string            `json:"stop_reason,omitempty"` // why an incomplete run stopped
	Host       Host              `json:"host"`
	Toolchains map[string]string `json:"toolchains"`
	Source     *Source           `json:"lab,omitempty"`            // the checkout that built what was measured
	Upstream   *Image            `json:"upstream_image,omitempty"` // the origin's image
	// SummaryMethod says how every summary figure was computed.
	SummaryMethod *SummaryMethod `json:"summary_method,omitempty"`
	Placement     Placement      `json:"placement"`
	Probes        *ProbeSetup    `json:"probes,omitempty"` // absent when the scenario disables them
	// Capacity is the capacity that steps given as of_capacity are shares
	// of; absent when the scenario has none.
	Capacity *CapacityRef `json:"capacity,omitempty"`
	// Calibration is a short fixed benchmark of the host run before the
	// rows, so that two files can say how fast their hosts were.
	Calibration *Calibration   `json:"calibration,omitempty"`
	Proxies     []*ProxyResult `json:"proxies"`
}

// CapacityRef is the capacity a scenario's of_capacity steps were resolved
// against: the lowest median capacity among the lab proxies (baselines
// excluded) of a searched run, so that every row is measured at the same
// rates and no lab proxy is asked for more than it holds.
type CapacityRef struct {
	Rate     int    `json:"rate"`     // requests per second
	Proxy    string `json:"proxy"`    // whose capacity it is
	Scenario string `json:"scenario"` // the searched scenario's name
	RunID    string `json:"run_id"`   // its results' run id
	File     string `json:"file"`     // its results file, as given
	// Runs is how many of that proxy's searched runs the median is of.
	Runs int `json:"runs"`
	// Disturbed: no run of that proxy counted, so the median is of its
	// disturbed runs.
	Disturbed bool `json:"disturbed,omitempty"`
}

// ProbeSetup says how the eBPF probes were attached: the mode in use and
// why each mode before it in the fallback chain failed.
type ProbeSetup struct {
	Mode     string        `json:"mode,omitempty"` // empty when no mode attached
	Attempts []bpf.Attempt `json:"attempts"`
	Error    string        `json:"error,omitempty"` // why the run has no probe counts
	// ReaderCPUs is the cpuset the perf buffer's reader thread is pinned
	// to (the load generator's); ReaderPinError why it is not.
	ReaderCPUs     string `json:"reader_cpus,omitempty"`
	ReaderPinError string `json:"reader_pin_error,omitempty"`
}

// Host describes the machine, so that readers can tell whether two results
// files are comparable at all.
type Host struct {
	Kernel        string  `json:"kernel"`
	CPUModel      string  `json:"cpu_model"`
	CPUMHz        float64 `json:"cpu_mhz,omitempty"`      // as /proc/cpuinfo reports it at start
	CPUGovernor   string  `json:"cpu_governor,omitempty"` // cpufreq scaling governor(s); absent when not exposed
	Cores         int     `json:"cores"`
	MemoryBytes   int64   `json:"memory_bytes"`
	DockerVersion string  `json:"docker_version"` // the engine the run used; "" with a SUT host (no engine here)
	// SUT is the host of the system under test when it is not this one
	// (compare --sut): this Host is then the load generator's.
	SUT *SUTHost `json:"sut,omitempty"`
}

// SUTHost describes the host of the system under test, the path to it,
// and where the figures taken there came from.
type SUTHost struct {
	Engine       string `json:"engine"`  // the Docker endpoint
	Address      string `json:"address"` // the address the load went to
	Name         string `json:"name"`    // the engine host's name
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	// Host is what the lab's reader found there (kernel, CPUs, memory),
	// with the engine's version.
	Host Host `json:"host"`
	// SameMachine: its kernel is this host's (the same boot id), as in a
	// network namespace of this host: the path between them is then this
	// kernel's, and its CPUs are this host's.
	SameMachine bool        `json:"same_machine"`
	Path        NetworkPath `json:"path"`
	// Readings says where the proxy's and the upstream's CPU time and peak
	// RSS came from, and how the probes ran there.
	Readings string `json:"readings"`
}

// NetworkPath is the way from this host to the SUT address.
type NetworkPath struct {
	LocalAddress string `json:"local_address"` // this host's address on it
	Interface    string `json:"interface"`     // this host's interface toward it
	MTU          int    `json:"mtu,omitempty"`
	// ConnectMicros is the median time of a TCP connect to the SUT
	// address (the reader's port), of several: a round trip.
	ConnectMicros float64 `json:"connect_us"`
}

// Source identifies the lab checkout.
type Source struct {
	Commit string `json:"commit"`
	Dirty  bool   `json:"dirty"` // tracked files differed from the commit
}

// ProxyResult is everything measured for one proxy.
type ProxyResult struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	// Baseline rows are not lab proxies: "direct" (no proxy at all) and
	// "nginx" (the reverse proxy a user would pick instead). They are not
	// checked against the proxy contract; "direct" has no image.
	Baseline    bool          `json:"baseline,omitempty"`
	Image       Image         `json:"image,omitzero"`
	BinaryBytes int64         `json:"binary_bytes,omitzero"`
	Verified    *Verification `json:"verified"`
	Runs        []*Run        `json:"runs"`
	Summary     []StepSummary `json:"summary"`
}

// Image identifies the exact image measured.
type Image struct {
	Tag       string `json:"tag"`
	ID        string `json:"id"`
	SizeBytes int64  `json:"size_bytes"`
}

// Run statuses.
const (
	RunOK          = "ok"
	RunFailed      = "failed"      // the proxy did not become ready or died
	RunInterrupted = "interrupted" // Ctrl-C or SIGTERM
)

// Run is one repetition of the scenario's steps against one proxy.
type Run struct {
	Repetition int      `json:"repetition"` // 1-based
	Status     string   `json:"status"`
	Error      string   `json:"error,omitempty"`
	LastLogs   []string `json:"last_logs,omitempty"` // the proxy's last lines when it failed
	// Steps are the scenario's steps in order; in a searched run, every
	// rate the search probed, in the order it probed them.
	Steps  []*Step       `json:"steps"`
	Search *SearchResult `json:"search,omitempty"` // only when the scenario has load.search
	// Disturbed: a step of this run was disturbed (something outside the
	// run used its cores); its figures are kept but enter no summary or
	// verdict.
	Disturbed bool `json:"disturbed,omitempty"`
	// Attempt numbers the tries of one repetition: 2 and up are re-runs
	// of a disturbed one (compare --retry-disturbed).
	Attempt int `json:"attempt,omitempty"`
}

// Step is the measurement of one load step: the load generator's view plus
// what the proxy process consumed meanwhile.
type Step struct {
	loadgen.StepResult
	Resources *Resources  `json:"resources,omitempty"`
	Probes    *StepProbes `json:"probes,omitempty"`   // the proxy's accepts and connects during the step, and their check
	Overhead  *Overhead   `json:"overhead,omitempty"` // probes.overhead: the step's twin with the probes detached
	// Disturbed: something outside the run used more than
	// DisturbedThreshold of a core on the run's cores during the step
	// (Resources.Interference); Disturbance says how much and where.
	Disturbed   bool   `json:"disturbed,omitempty"`
	Disturbance string `json:"disturbance,omitempty"`
}

// Resources the parties of a row used during one step, and what the run's
// cores did meanwhile. Files written before the parties and cores were
// recorded have only the proxy and load generator figures.
type Resources struct {
	// The proxy's processes (nginx: master and workers, summed).
	ProxyCPUSeconds   float64
	ProxyPeakRSSBytes int64 // high-water mark since the proxy started
	// NoProxy: there are no proxy figures, because the row has no proxy
	// (the direct baseline) or its usage could not be read. The proxy
	// fields are then left out of the file rather than written as zeros.
	NoProxy bool
	// LoadgenCPUSeconds is this process's own CPU time in the step: the
	// load generator runs inside proxylab, so a value near the step's
	// duration times its CPUs means it, not the proxy, was the limit. It
	// includes the probe reader thread's time (PartyReader).
	LoadgenCPUSeconds float64
	// UpstreamCPUSeconds is the upstream container's processes' CPU time,
	// read from /proc as the proxy's is; nil when it could not be read.
	UpstreamCPUSeconds *float64
	// Parties is every party's CPU time and the share of its cpuset it
	// used; see Party.
	Parties []Party
	// Cores is what each CPU of the parties' cpusets did, from /proc/stat.
	Cores []CoreTime
	// IntervalSeconds is the wall time between the step's two readings,
	// which bracket the load generator's step; shares are of it.
	IntervalSeconds float64
	// Interference is CPU time spent on the run's cores by anything outside
	// the run, as a share of one core (OutsideInterference); nil when /proc
	// could not be read.
	Interference *float64
	// Outside are the processes outside the run that ran on its cores
	// during the step, largest first; nil when /proc could not be read.
	Outside []OutsideProcess
}

// The parties of a row, by the names Party.Name and attributions use.
const (
	PartyProxy    = "proxy"          // the measured proxy's processes
	PartyUpstream = "upstream"       // the origin's processes
	PartyLoadgen  = "load generator" // this process, less the probe reader
	PartyReader   = "probe reader"   // the eBPF perf buffer's reader thread, inside this process
)

// Party is what one party of a row used in a step.
type Party struct {
	Name       string  `json:"name"`        // PartyProxy, PartyUpstream, PartyLoadgen or PartyReader
	CPUs       string  `json:"cpus"`        // the cpuset it is confined to
	CPUSeconds float64 `json:"cpu_seconds"` // user + system, to /proc's 10 ms tick
	// Share is CPUSeconds / (CPUs in the cpuset * the step's interval):
	// 1 is every CPU of its cpuset all the time.
	Share float64 `json:"share"`
	// Host is SUTLabel for a party on a SUT host that is another machine;
	// "" is this host.
	Host string `json:"host,omitempty"`
}

// CoreTime is what one CPU did during a step, in seconds, from the
// difference of two /proc/stat readings.
type CoreTime struct {
	CPU   int     `json:"cpu"`
	Busy  float64 `json:"busy"`           // user + nice + system (guest time is inside user)
	IRQ   float64 `json:"irq"`            // irq + softirq
	Steal float64 `json:"steal"`          // taken by the hypervisor for other guests
	Idle  float64 `json:"idle"`           // idle + iowait
	Host  string  `json:"host,omitempty"` // as Party.Host
}

type resourcesJSON struct {
	ProxyCPUSeconds    *float64         `json:"proxy_cpu_seconds,omitempty"`
	ProxyPeakRSSBytes  *int64           `json:"proxy_peak_rss_bytes,omitempty"`
	LoadgenCPUSeconds  float64          `json:"loadgen_cpu_seconds"`
	UpstreamCPUSeconds *float64         `json:"upstream_cpu_seconds,omitempty"`
	Parties            []Party          `json:"parties,omitempty"`
	Cores              []CoreTime       `json:"cores,omitempty"`
	IntervalSeconds    float64          `json:"interval_seconds,omitempty"`
	Interference       *float64         `json:"interference,omitempty"`
	Outside            []OutsideProcess `json:"outside,omitempty"`
}

// MarshalJSON leaves the proxy figures out when there are none, so that a
// reader cannot take the direct baseline's absent proxy for one using no CPU.
func (r Resources) MarshalJSON() ([]byte, error) {
	j := resourcesJSON{LoadgenCPUSeconds: r.LoadgenCPUSeconds, UpstreamCPUSeconds: r.UpstreamCPUSeconds,
		Parties: r.Parties, Cores: r.Cores, IntervalSeconds: r.IntervalSeconds, Interference: r.Interference,
		Outside: r.Outside}
	if !r.NoProxy {
		j.ProxyCPUSeconds, j.ProxyPeakRSSBytes = &r.ProxyCPUSeconds, &r.ProxyPeakRSSBytes
	}
	return json.Marshal(j)
}

func (r *Resources) UnmarshalJSON(b []byte) error {
	var j resourcesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Resources{LoadgenCPUSeconds: j.LoadgenCPUSeconds, NoProxy: j.ProxyCPUSeconds == nil, UpstreamCPUSeconds: j.UpstreamCPUSeconds,
		Parties: j.Parties, Cores: j.Cores, IntervalSeconds: j.IntervalSeconds, Interference: j.Interference,
		Outside: j.Outside}
	if j.ProxyCPUSeconds != nil {
		r.ProxyCPUSeconds = *j.ProxyCPUSeconds
	}
	if j.ProxyPeakRSSBytes != nil {
		r.ProxyPeakRSSBytes = *j.ProxyPeakRSSBytes
	}
	return nil
}

// FileName is where a run's results go: results/<scenario>-<UTC start>.json.
func FileName(dir string, r *Results) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s.json", r.Scenario.Name, r.StartedAt.UTC().Format("20060102T150405Z")))
}

// Write encodes r to path atomically: a reader (or a crash) sees either the
// previous complete file or the new one, never half of one.
func Write(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write results %s: %w", path, err)
	}
	return nil
}

// ReadResults decodes a results file and brings a file written by an
// older version up to what this version writes (upgrade), so that every
// reader sees one shape.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	upgrade(&r)
	return &r, nil
}

// upgrade fills in what older files lack. Summaries computed by another
// method (or before the method was recorded) are computed again from the
// runs, so that two files are summarised alike; SummaryMethod keeps what the
// file said, since it also tells which fields the writer knew of. The
// direct row predates the baseline flag.
func upgrade(r *Results) {
	resummarise := r.SummaryMethod == nil || *r.SummaryMethod != *Method()
	for _, p := range r.Proxies {
		if p.Name == Direct.Name {
			p.Baseline = true
		}
		if resummarise {
			p.Summary = SummariseFor(r.Scenario, p.Runs)
		}
	}
}

// StepSummary returns the summary of step (1-based), or nil.
func (p *ProxyResult) StepSummary(step int) *StepSummary {
	for i := range p.Summary {
		if p.Summary[i].Step == step {
			return &p.Summary[i]
		}
	}
	return nil
}
