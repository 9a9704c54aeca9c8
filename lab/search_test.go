package lab

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// fakeTarget passes every rate up to knee; above ceiling (if set) the load
// generator cannot deliver the rate.
type fakeTarget struct {
	knee, ceiling int
	failAt        int // the probe of this rate returns an error (0: never)
	probed        []int
}

func (f *fakeTarget) probe(rate int) (probeOutcome, error) {
	if rate == f.failAt {
		return probeOutcome{}, errors.New("proxy died")
	}
	f.probed = append(f.probed, rate)
	switch {
	case f.ceiling > 0 && rate > f.ceiling:
		return probeOutcome{saturated: true, reason: "short of rate"}, nil
	case rate > f.knee:
		return probeOutcome{reason: "p99 too high"}, nil
	}
	return probeOutcome{passed: true, reason: "ok"}, nil
}

func TestSearchFindsKnee(t *testing.T) {
	cases := []struct {
		name        string
		start, max  int
		target      fakeTarget
		wantStopped string
		wantRate    int // -1: anywhere within one bisection step below the knee
		wantErr     bool
	}{
		{"knee between doublings", 1000, 500000, fakeTarget{knee: 7300}, StoppedByProxy, -1, false},
		{"knee on a doubling", 1000, 500000, fakeTarget{knee: 8000}, StoppedByProxy, 8000, false},
		{"high knee", 1000, 1000000, fakeTarget{knee: 123457}, StoppedByProxy, -1, false},
		{"max clips the doubling", 1000, 5000, fakeTarget{knee: 4700}, StoppedByProxy, -1, false},
		{"small integers end at a gap of one", 1, 10, fakeTarget{knee: 3}, StoppedByProxy, 3, false},
		{"start fails", 1000, 500000, fakeTarget{knee: 500}, StoppedByProxy, 0, false},
		{"max passes", 1000, 6000, fakeTarget{knee: 1 << 30}, StoppedByMax, 6000, false},
		{"start equals max", 1000, 1000, fakeTarget{knee: 5000}, StoppedByMax, 1000, false},
		{"load generator below the knee", 1000, 500000, fakeTarget{knee: 90000, ceiling: 21000}, StoppedByLoadgen, -1, false},
		{"load generator above the knee", 1000, 500000, fakeTarget{knee: 21000, ceiling: 90000}, StoppedByProxy, -1, false},
		{"probe error keeps what was found", 1000, 500000, fakeTarget{knee: 50000, failAt: 8000}, StoppedIncomplete, 4000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.target
			res, err := searchRate(scenarios.Search{Start: c.start, Max: c.max}, f.probe)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if res.StoppedBy != c.wantStopped {
				t.Errorf("stopped by %q (%s), want %q", res.StoppedBy, res.Reason, c.wantStopped)
			}
			limit := f.knee
			if f.ceiling > 0 {
				limit = min(f.knee, f.ceiling)
			}
			switch {
			case c.wantRate >= 0 && res.Rate != c.wantRate:
				t.Errorf("rate %d, want %d", res.Rate, c.wantRate)
			case c.wantRate < 0:
				// Found within one bisection step: at or below the limit, and
				// the limit below the lowest failing rate probed, which is
				// within SearchPrecision of the rate found.
				fail := 0
				for _, p := range res.Probes {
					if !p.Passed && (fail == 0 || p.TargetRate < fail) {
						fail = p.TargetRate
					}
				}
				if gap := fail - res.Rate; res.Rate > limit || limit >= fail || gap > 1 && float64(gap) > SearchPrecision*float64(res.Rate) {
					t.Errorf("rate %d, lowest fail %d: want rate <= %d < fail, within %.0f%%", res.Rate, fail, limit, 100*SearchPrecision)
				}
			}
			if len(res.Probes) != len(f.probed) {
				t.Fatalf("%d probes recorded, %d made", len(res.Probes), len(f.probed))
			}
			seen := map[int]bool{}
			doublings := 0
			for i, p := range res.Probes {
				if p.TargetRate != f.probed[i] || seen[p.TargetRate] || p.TargetRate < 1 || p.TargetRate > c.max {
					t.Errorf("probe %d at %d/s: probed %v; want each rate once, within [1, max]", i, p.TargetRate, f.probed)
				}
				seen[p.TargetRate] = true
				if i == 0 || p.TargetRate == min(2*res.Probes[i-1].TargetRate, c.max) && res.Probes[i-1].Passed {
					doublings++
				}
			}
			if bisections := len(res.Probes) - doublings; bisections > 5 {
				t.Errorf("%d bisection probes %v; the precision needs at most 5", bisections, f.probed)
			}
			if res.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestJudge(t *testing.T) {
	search := &scenarios.Search{SLOP99: scenarios.Duration(10 * time.Millisecond), MinSuccess: 0.999}
	step := func(p99 int64, success float64, saturated bool) *Step {
		st := &Step{StepResult: loadgen.StepResult{Requests: 1000, Success: success, Duration: 3, LoadgenSaturated: saturated}}
		st.Latency.P99 = p99
		if saturated {
			st.Saturation = "achieved 80.0/s of 100/s"
		}
		st.Resources = &Resources{NoProxy: true, LoadgenCPUSeconds: 2.9}
		return st
	}
	cases := []struct {
		name            string
		st              *Step
		passed, satured bool
		reason          string
	}{
		{"within", step(9000, 1, false), true, false, "p99 9.00ms within 10ms, success 100.00%"},
		{"at the SLO", step(10000, 0.999, false), true, false, "within 10ms"},
		{"slow", step(10001, 1, false), false, false, "p99 10.00ms is above the SLO of 10ms"},
		{"errors", step(100, 0.99, false), false, false, "success 99.00% is below 99.90%"},
		{"slow proxy says how busy it was", func() *Step {
			st := step(12000, 1, false)
			st.Resources = &Resources{ProxyCPUSeconds: 1.37, ProxyPeakRSSBytes: 1}
			return st
		}(), false, false, "p99 12.00ms is above the SLO of 10ms (the proxy used 1.37 CPU s in 3.0 s)"},
		{"load generator short", step(100, 1, true), false, true, "could not deliver the rate: achieved 80.0/s of 100/s (it used 2.90 CPU s in 3.0 s)"},
		{"short and slow", step(20000, 1, true), false, true, "; p99 20.00ms is above"},
		// Every connection busy is the target's limit, not the load
		// generator's: the search stops at the proxy.
		{"connections busy", func() *Step {
			st := step(9000, 1, true)
			st.SaturationCause = loadgen.SaturatedConnections
			st.Resources = &Resources{ProxyCPUSeconds: 2.8, ProxyPeakRSSBytes: 1}
			return st
		}(), false, false, "the rate was not delivered: achieved 80.0/s of 100/s (the proxy used 2.80 CPU s in 3.0 s)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := judge(c.st, search)
			if o.passed != c.passed || o.saturated != c.satured || !strings.Contains(o.reason, c.reason) {
				t.Errorf("judge = %+v, want passed %v saturated %v reason containing %q", o, c.passed, c.satured, c.reason)
			}
		})
	}
}

func TestSummariseSearchGroupsByRate(t *testing.T) {
	st := func(rate float64, p99 int64) *Step {
		s := &Step{StepResult: loadgen.StepResult{TargetRate: rate, AchievedRate: rate, Requests: 1, Success: 1}}
		s.Latency.P99 = p99
		return s
	}
	runs := []*Run{
		{Status: RunOK, Steps: []*Step{st(1000, 1), st(2000, 2), st(4000, 9), st(3000, 3)}},
		{Status: RunOK, Steps: []*Step{st(1000, 3), st(2000, 4), st(4000, 11), st(3000, 5), st(3500, 7)}},
	}
	got := summariseSearch(runs)
	want := []struct {
		rate float64
		n    int
		p99  float64
	}{{1000, 2, 2}, {2000, 2, 3}, {3000, 2, 4}, {3500, 1, 7}, {4000, 2, 10}}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if g := got[i]; g.Step != i+1 || g.TargetRate != w.rate || g.P99.N != w.n || g.P99.Median != w.p99 {
			t.Errorf("row %d: step %d rate %.0f n %d p99 %.0f, want step %d rate %.0f n %d p99 %.0f",
				i, g.Step, g.TargetRate, g.P99.N, g.P99.Median, i+1, w.rate, w.n, w.p99)
		}
	}
}
