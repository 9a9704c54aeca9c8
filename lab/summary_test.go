package lab

import (
	"encoding/json"
	"math"
	"testing"
)

func TestDescribe(t *testing.T) {
	cases := []struct {
		name       string
		in         []float64
		median     float64
		interval   bool
		lo, hi     float64
		confidence float64
		json       string
	}{
		{"one value: no interval, no CV", []float64{7}, 7, false, 0, 0, 0, `{"n":1,"median":7}`},
		{"two values: CV but no interval", []float64{4, 6}, 5, false, 0, 0, 0, `{"n":2,"median":5,"cv":0.282842712474619}`},
		{"three values: the whole range, 75% coverage", []float64{3, 1, 2}, 2, true, 1, 3, 0.75, `{"n":3,"median":2,"lo":1,"hi":3,"confidence":0.75,"cv":0.5}`},
		{"no values", nil, 0, false, 0, 0, 0, `{"n":0,"median":0}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Describe(c.in)
			if got.N != len(c.in) || got.Median != c.median || got.HasInterval != c.interval || got.Lo != c.lo || got.Hi != c.hi || got.Confidence != c.confidence {
				t.Errorf("Describe(%v) = %+v", c.in, got)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.json {
				t.Errorf("JSON %s, want %s", b, c.json)
			}
			var back Stat
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.HasInterval != got.HasInterval || back.Lo != got.Lo || back.Hi != got.Hi || math.IsNaN(back.CV) != math.IsNaN(got.CV) {
				t.Errorf("round trip %+v, want %+v", back, got)
			}
		})
	}
}

// From more values on, the interval narrows inside the range and its
// distribution-free coverage bound rises.
func TestDescribeNarrowsWithMoreRuns(t *testing.T) {
	v := []float64{101, 99, 103, 97, 100, 102, 98, 150, 50, 100.5, 99.5}
	s := Describe(v)
	if !s.HasInterval || s.Lo <= 50 || s.Hi >= 150 || s.Lo > s.Median || s.Hi < s.Median {
		t.Errorf("Describe(%v) = %+v: want an interval around the median that drops the outliers", v, s)
	}
	if s.Confidence < 0.5 || s.Confidence > 1 {
		t.Errorf("confidence %v", s.Confidence)
	}
	if !s.Noisy() {
		t.Errorf("CV %.3f with two 50%% outliers is not flagged as noisy", s.CV)
	}
	if Describe([]float64{100, 101, 99}).Noisy() {
		t.Error("1% spread flagged as noisy")
	}
}

func TestSummariseSkipsFailedAndInterrupted(t *testing.T) {
	step := func(rate, p99 float64, interrupted bool) *Step {
		s := &Step{Resources: &Resources{ProxyCPUSeconds: 1, ProxyPeakRSSBytes: 10}}
		s.TargetRate, s.AchievedRate, s.Interrupted = 100, rate, interrupted
		s.Latency.P99 = int64(p99)
		return s
	}
	runs := []*Run{
		{Status: RunOK, Steps: []*Step{step(99, 100, false), step(98, 300, false)}},
		{Status: RunOK, Steps: []*Step{step(97, 200, false)}},
		{Status: RunFailed, Steps: []*Step{step(1, 9999, false)}},
		{Status: RunOK, Steps: []*Step{step(100, 400, false), step(5, 9999, true)}},
	}
	got := Summarise(runs)
	if len(got) != 2 {
		t.Fatalf("%d summary rows, want 2", len(got))
	}
	if got[0].AchievedRate.N != 3 || got[0].AchievedRate.Median != 99 || got[0].P99.Median != 200 {
		t.Errorf("step 1: %+v %+v, want n=3 median rate 99, p99 200", got[0].AchievedRate, got[0].P99)
	}
	if got[1].AchievedRate.N != 1 || got[1].P99.Median != 300 {
		t.Errorf("step 2: %+v, want only the uninterrupted ok run", got[1].P99)
	}
	if got[0].ProbeLossRatio.N != 0 {
		t.Errorf("probe loss ratio %+v from steps without probes", got[0].ProbeLossRatio)
	}
	if math.Abs(got[0].CPUSeconds.Median-1) > 1e-9 {
		t.Errorf("cpu %+v", got[0].CPUSeconds)
	}
}
