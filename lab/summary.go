package lab

import (
	"math"
	"slices"
)

// Stat summarises one figure across repetitions: the median and an interval
// around it from order statistics, which assumes nothing about the shape of
// the distribution (benchmark timings are rarely normal).
type Stat struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	// Confidence is the real coverage of [lo, hi] for the median. It reaches
	// 0.95 only from n = 6 on; with fewer repetitions [lo, hi] is the full
	// range and says so here, rather than claiming a 95% interval it is not.
	Confidence float64 `json:"confidence"`
}

// StepSummary is one step summarised across the proxy's successful runs.
type StepSummary struct {
	Step         int     `json:"step"` // 1-based index into the scenario's steps
	TargetRate   float64 `json:"target_rate"`
	AchievedRate Stat    `json:"achieved_rate"`
	Throughput   Stat    `json:"throughput"`
	Success      Stat    `json:"success"`
	P50          Stat    `json:"latency_p50_us"`
	P90          Stat    `json:"latency_p90_us"`
	P99          Stat    `json:"latency_p99_us"`
	P999         Stat    `json:"latency_p99_9_us"`
	Max          Stat    `json:"latency_max_us"`
	CPUSeconds   Stat    `json:"proxy_cpu_seconds"`
	PeakRSSBytes Stat    `json:"proxy_peak_rss_bytes"`
	// Saturated counts runs in which the load generator, not the proxy, fell
	// short of the target rate: their figures describe the load generator.
	Saturated int `json:"loadgen_saturated_runs"`
}

// Summarise computes the per-step summary from the runs that completed.
func Summarise(runs []*Run) []StepSummary {
	var out []StepSummary
	for i := 0; ; i++ {
		var steps []*Step
		for _, r := range runs {
			if r.Status == RunOK && i < len(r.Steps) && !r.Steps[i].Interrupted {
				steps = append(steps, r.Steps[i])
			}
		}
		if len(steps) == 0 {
			return out
		}
		s := StepSummary{Step: i + 1, TargetRate: steps[0].TargetRate}
		pick := func(f func(*Step) float64) Stat {
			v := make([]float64, 0, len(steps))
			for _, st := range steps {
				v = append(v, f(st))
			}
			return MedianInterval(v)
		}
		s.AchievedRate = pick(func(st *Step) float64 { return st.AchievedRate })
		s.Throughput = pick(func(st *Step) float64 { return st.Throughput })
		s.Success = pick(func(st *Step) float64 { return st.Success })
		s.P50 = pick(func(st *Step) float64 { return float64(st.Latency.P50) })
		s.P90 = pick(func(st *Step) float64 { return float64(st.Latency.P90) })
		s.P99 = pick(func(st *Step) float64 { return float64(st.Latency.P99) })
		s.P999 = pick(func(st *Step) float64 { return float64(st.Latency.P999) })
		s.Max = pick(func(st *Step) float64 { return float64(st.Latency.Max) })
		var withRes []*Step
		for _, st := range steps {
			if st.LoadgenSaturated {
				s.Saturated++
			}
			if st.Resources != nil && !st.Resources.NoProxy {
				withRes = append(withRes, st)
			}
		}
		steps = withRes
		s.CPUSeconds = pick(func(st *Step) float64 { return st.Resources.ProxyCPUSeconds })
		s.PeakRSSBytes = pick(func(st *Step) float64 { return float64(st.Resources.ProxyPeakRSSBytes) })
		out = append(out, s)
	}
}

// MedianInterval returns the median of v and the distribution-free interval
// [x(k), x(n-k+1)] with the largest k whose coverage is still >= 95%
// (binomial with p = 1/2). Below n = 6 no k reaches 95%, so the interval is
// the whole range and Confidence reports its smaller coverage.
func MedianInterval(v []float64) Stat {
	n := len(v)
	if n == 0 {
		return Stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	st := Stat{N: n}
	if n%2 == 1 {
		st.Median = s[n/2]
	} else {
		st.Median = (s[n/2-1] + s[n/2]) / 2
	}
	k := 1
	for c := 2; c <= n/2; c++ {
		if coverage(n, c) >= 0.95 {
			k = c
		} else {
			break
		}
	}
	st.Lo, st.Hi = s[k-1], s[n-k]
	st.Confidence = coverage(n, k)
	return st
}

// coverage is P(x(k) <= median <= x(n-k+1)) = 1 - 2·P(Bin(n, 1/2) <= k-1).
func coverage(n, k int) float64 {
	tail := 0.0
	for i := 0; i < k; i++ {
		tail += binom(n, i)
	}
	c := 1 - 2*tail*math.Pow(0.5, float64(n))
	return math.Round(c*1e4) / 1e4
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}
