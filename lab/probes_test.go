package lab

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

func TestConnectionCheck(t *testing.T) {
	before := checkReading{dials: 100, upstream: upstreamStats{Accepted: 10, Requests: 500}}
	after := checkReading{dials: 1100, upstream: upstreamStats{Accepted: 21, Requests: 1490}}
	res := &loadgen.StepResult{Requests: 1000, StatusCodes: map[string]uint64{"200": 990, "502": 4, "0": 6}}
	c := connectionCheck(before, after, res, 8)
	// The later /stats query's own connection is not the proxy's.
	if c.LoadgenConnections != 1000 || *c.UpstreamConnections != 10 || *c.UpstreamRequests != 990 || c.Tolerance != 10 {
		t.Errorf("check %+v (upstream %d, %d)", c, *c.UpstreamConnections, *c.UpstreamRequests)
	}
	res.Interrupted = true
	if c := connectionCheck(before, after, res, 8); c.Tolerance != 18 {
		t.Errorf("interrupted step: tolerance %d, want 10 failed + 8 connections", c.Tolerance)
	}
	after.upErr = errors.New("upstream /stats: refused")
	if c := connectionCheck(before, after, res, 8); c.UpstreamConnections != nil || c.UpstreamError != "upstream /stats: refused" {
		t.Errorf("unreadable /stats: %+v", c)
	}
}

func TestProbesOff(t *testing.T) {
	u := func(n uint64) *uint64 { return &n }
	for _, tc := range []struct {
		name              string
		accepts, connects uint64
		check             *ConnectionCheck
		acceptsOff        uint64
		connectsOff       uint64
	}{
		{"agree", 100, 5, &ConnectionCheck{LoadgenConnections: 100, UpstreamConnections: u(5)}, 0, 0},
		{"within tolerance", 97, 6, &ConnectionCheck{LoadgenConnections: 100, UpstreamConnections: u(5), Tolerance: 3}, 0, 0},
		{"short", 60, 5, &ConnectionCheck{LoadgenConnections: 100, UpstreamConnections: u(5), Tolerance: 3}, 37, 0},
		{"too many connects", 100, 20, &ConnectionCheck{LoadgenConnections: 100, UpstreamConnections: u(5)}, 0, 15},
		{"no upstream count", 100, 20, &ConnectionCheck{LoadgenConnections: 100}, 0, 0},
		{"no check", 100, 20, nil, 0, 0},
	} {
		sp := &StepProbes{Counts: bpf.Counts{Accepts: tc.accepts, Connects: tc.connects}, Check: tc.check}
		if a, c := sp.AcceptsOff(), sp.ConnectsOff(); a != tc.acceptsOff || c != tc.connectsOff {
			t.Errorf("%s: off by %d and %d, want %d and %d", tc.name, a, c, tc.acceptsOff, tc.connectsOff)
		}
	}
}

// The check survives a round trip beside the counts, which have a decoder
// of their own.
func TestStepProbesJSON(t *testing.T) {
	n := uint64(7)
	sp := StepProbes{Counts: bpf.Counts{Mode: "tracepoint", Events: "none", Accepts: 3, ProgMisses: &n}, Check: &ConnectionCheck{LoadgenConnections: 3, Tolerance: 1}}
	b, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	var back StepProbes
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Accepts != 3 || back.Events != "none" || back.Check == nil || back.Check.LoadgenConnections != 3 || back.Check.Tolerance != 1 || *back.ProgMisses != 7 {
		t.Errorf("round trip of %s gave %+v, check %+v", b, back, back.Check)
	}
}

// results-probes.json holds every probe field; older files read with
// their events as all and their miss counts as not recorded.
func TestProbeResultsFiles(t *testing.T) {
	if err := ValidateResults("..", "testdata/results-probes.json"); err != nil {
		t.Fatal(err)
	}
	r, err := ReadResults("testdata/results-probes.json")
	if err != nil {
		t.Fatal(err)
	}
	if r.Scenario.Probes.Events != (scenarios.Events{Sample: 64}) || r.Probes.ReaderCPUs == "" {
		t.Errorf("probes setup read as %+v, events %v", r.Probes, r.Scenario.Probes.Events)
	}
	st := r.Proxies[0].Runs[1].Steps[2].Probes
	if st == nil || st.Check == nil || st.AcceptsOff() == 0 || st.ProgMisses == nil || *st.ProgMisses == 0 {
		t.Errorf("go repetition 2 step 3 should hold a mismatch and misses: %+v", st)
	}

	old, err := ReadResults("testdata/results-repeat3.json")
	if err != nil {
		t.Fatal(err)
	}
	if old.Scenario.Probes.Events != (scenarios.Events{Sample: 1}) {
		t.Errorf("old scenario's events read as %v, want all", old.Scenario.Probes.Events)
	}
	c := old.Proxies[0].Runs[0].Steps[0].Probes
	if c.Events != "all" || c.SampleEvery != 1 || c.MissesUnknown != bpf.MissesNotRecorded || c.Check != nil {
		t.Errorf("old step probes read as %+v", c)
	}
}

// A scenario's sample bound is the bpf package's.
func TestSampleBoundsAgree(t *testing.T) {
	if scenarios.MaxSample != bpf.MaxSample {
		t.Errorf("scenarios.MaxSample %d, bpf.MaxSample %d", scenarios.MaxSample, bpf.MaxSample)
	}
}

func TestOverheadOf(t *testing.T) {
	cpu := 0.5
	on := &Step{StepResult: loadgen.StepResult{Throughput: 900, Requests: 1000}, Resources: &Resources{ProxyCPUSeconds: 0.6}}
	o := overheadOf(on, OffStep{Throughput: 1000, Requests: 1000, ProxyCPUSeconds: &cpu}, true)
	if o.ThroughputRatio == nil || *o.ThroughputRatio != 0.9 || o.CPUPerRequestRatio == nil || math.Abs(*o.CPUPerRequestRatio-1.2) > 1e-9 || !o.OffFirst {
		t.Errorf("overhead %+v", o)
	}
	if o := overheadOf(on, OffStep{}, false); o.ThroughputRatio != nil || o.CPUPerRequestRatio != nil {
		t.Errorf("a twin that served nothing gives ratios: %+v", o)
	}
	on.Resources.NoProxy = true
	if o := overheadOf(on, OffStep{Throughput: 1000, Requests: 1000, ProxyCPUSeconds: &cpu}, false); o.CPUPerRequestRatio != nil {
		t.Errorf("a step without proxy figures gives a CPU ratio: %+v", o)
	}
}

// With probes.overhead every step has a twin with the probes detached,
// run first in every other step; the probes count only the attached half.
func TestOverheadTwins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: attaching eBPF probes needs root")
	}
	p, err := bpf.Attach(bpf.Options{Mode: bpf.ModeTracepoint})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sc := fastScenario(1, 2)
	sc.Probes = scenarios.Probes{Enabled: true, Mode: "tracepoint", PerfBufferPages: 8, Overhead: true}
	sc.Load.Keepalive = false
	r, arts := testRunner(t, &inProcess{}, sc, proxies("go")...)
	r.probes = p
	run := r.runOne(context.Background(), arts[0], 1)
	if run.Status != RunOK || len(run.Steps) != 2 {
		t.Fatalf("run %+v", run)
	}
	for i, st := range run.Steps {
		o := st.Overhead
		if o == nil || st.Probes == nil {
			t.Fatalf("step %d: overhead %+v probes %+v", i+1, o, st.Probes)
		}
		if o.OffFirst != (i == 1) || o.Off.Requests == 0 || o.ThroughputRatio == nil {
			t.Errorf("step %d: overhead %+v", i+1, o)
		}
		// The test process is the watched "proxy" (and the upstream): it
		// accepts every connection it opens, and the check covers the
		// attached half only.
		if c := st.Probes.Check; c == nil || c.LoadgenConnections != st.Requests || st.Probes.Accepts < st.Requests {
			t.Errorf("step %d: %d accepts, check %+v, for %d requests of the attached half", i+1, st.Probes.Accepts, c, st.Requests)
		}
	}
}
