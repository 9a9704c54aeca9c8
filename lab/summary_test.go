package lab

import (
	"math"
	"testing"
)

func TestMedianInterval(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want Stat
	}{
		{"one value has no interval", []float64{7}, Stat{N: 1, Median: 7, Lo: 7, Hi: 7, Confidence: 0}},
		{"three values: full range, 75% coverage", []float64{3, 1, 2}, Stat{N: 3, Median: 2, Lo: 1, Hi: 3, Confidence: 0.75}},
		{"even count averages the middle pair", []float64{4, 1, 3, 2}, Stat{N: 4, Median: 2.5, Lo: 1, Hi: 4, Confidence: 0.875}},
		{"six values reach 95% with the range", []float64{6, 5, 4, 3, 2, 1}, Stat{N: 6, Median: 3.5, Lo: 1, Hi: 6, Confidence: 0.9688}},
		{"nine values drop the extremes", []float64{9, 1, 8, 2, 7, 3, 6, 4, 5}, Stat{N: 9, Median: 5, Lo: 2, Hi: 8, Confidence: 0.9609}},
		{"no values", nil, Stat{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := MedianInterval(c.in); got != c.want {
				t.Errorf("MedianInterval(%v) = %+v, want %+v", c.in, got, c.want)
			}
		})
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
	if math.Abs(got[0].CPUSeconds.Median-1) > 1e-9 {
		t.Errorf("cpu %+v", got[0].CPUSeconds)
	}
}
