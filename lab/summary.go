package lab

import (
	"encoding/json"
	"math"

	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/stats"
)

// Stat summarises one figure across repetitions: the median, and from three
// values on a 95% percentile-bootstrap interval of the median (seeded, so a
// file always gives the same interval) and the coefficient of variation.
// Below three values there is no interval, and the JSON says so by leaving
// lo, hi and confidence out instead of inventing bounds.
type Stat struct {
	N      int
	Median float64
	// HasInterval is false below stats.MinN values; Lo, Hi and Confidence
	// are then zero and not encoded.
	HasInterval bool
	Lo, Hi      float64
	// Confidence is a distribution-free lower bound on the interval's real
	// coverage of the median: with three runs the bootstrap can only return
	// the full range, which holds the median 75% of the time, not 95%.
	Confidence float64
	// CV is the sample standard deviation over the mean; NaN (not encoded)
	// below two values or for a zero mean.
	CV float64
}

type statJSON struct {
	N          int      `json:"n"`
	Median     float64  `json:"median"`
	Lo         *float64 `json:"lo,omitempty"`
	Hi         *float64 `json:"hi,omitempty"`
	Confidence *float64 `json:"confidence,omitempty"`
	CV         *float64 `json:"cv,omitempty"`
}

// MarshalJSON leaves out what could not be computed.
func (s Stat) MarshalJSON() ([]byte, error) {
	j := statJSON{N: s.N, Median: s.Median}
	if s.HasInterval {
		j.Lo, j.Hi, j.Confidence = &s.Lo, &s.Hi, &s.Confidence
	}
	if !math.IsNaN(s.CV) && s.N >= 2 {
		j.CV = &s.CV
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Stat) UnmarshalJSON(b []byte) error {
	var j statJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Stat{N: j.N, Median: j.Median, CV: math.NaN()}
	// Files from before the bootstrap gave every n an interval; below MinN
	// it was only the range of one or two values, so it is dropped here.
	if j.Lo != nil && j.Hi != nil && j.N >= stats.MinN {
		s.HasInterval, s.Lo, s.Hi = true, *j.Lo, *j.Hi
		if j.Confidence != nil {
			s.Confidence = *j.Confidence
		}
	}
	if j.CV != nil {
		s.CV = *j.CV
	}
	return nil
}

// HalfWidth is half the interval's width, the "±" of a table; 0 without one.
func (s Stat) HalfWidth() float64 {
	if !s.HasInterval {
		return 0
	}
	return (s.Hi - s.Lo) / 2
}

// Interval is [Lo, Hi]; ok is false when there is none.
func (s Stat) Interval() (iv stats.Interval, ok bool) {
	return stats.Interval{Lo: s.Lo, Hi: s.Hi}, s.HasInterval
}

// Noisy reports whether the runs disagree by more than NoiseCV.
func (s Stat) Noisy() bool { return !math.IsNaN(s.CV) && s.CV > NoiseCV }

// NoiseCV is the coefficient of variation across repetitions above which a
// figure is flagged as noisy. Run-to-run spread of 10% is already as large
// as many of the differences a comparison wants to show.
const NoiseCV = 0.10

// Describe summarises v.
func Describe(v []float64) Stat {
	s := Stat{N: len(v), CV: math.NaN()}
	if len(v) == 0 {
		return s
	}
	s.Median = stats.Median(v)
	s.CV = stats.CV(v)
	if iv, ok := stats.BootstrapMedian(v); ok {
		s.HasInterval, s.Lo, s.Hi = true, iv.Lo, iv.Hi
		s.Confidence = stats.MedianCoverage(v, iv)
	}
	return s
}

// SummaryMethod says how every Stat in a results file was computed, so that
// a file stays readable when the method changes.
type SummaryMethod struct {
	Interval  string  `json:"interval"`
	Level     float64 `json:"level"`
	Resamples int     `json:"resamples"`
	Seed      uint64  `json:"seed"`
	MinN      int     `json:"min_n"`
	NoiseCV   float64 `json:"noise_cv"`
}

// Method is the SummaryMethod of this version.
func Method() *SummaryMethod {
	return &SummaryMethod{
		Interval:  "percentile bootstrap of the median across repetitions",
		Level:     stats.Level,
		Resamples: stats.Resamples,
		Seed:      stats.Seed,
		MinN:      stats.MinN,
		NoiseCV:   NoiseCV,
	}
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
	// The same percentiles from each request's intended send time (its
	// pacer slot): what a user would have seen. n = 0 for unpaced steps.
	IntendedP50  Stat `json:"latency_intended_p50_us"`
	IntendedP90  Stat `json:"latency_intended_p90_us"`
	IntendedP99  Stat `json:"latency_intended_p99_us"`
	IntendedP999 Stat `json:"latency_intended_p99_9_us"`
	IntendedMax  Stat `json:"latency_intended_max_us"`
	CPUSeconds   Stat `json:"proxy_cpu_seconds"`
	PeakRSSBytes Stat `json:"proxy_peak_rss_bytes"`
	// ProbeLossRatio is the perf buffer's failed/attempted; n = 0 without probes.
	ProbeLossRatio Stat `json:"probe_loss_ratio"`
	// Saturated counts runs in which the load generator, not the proxy, fell
	// short of the target rate: their figures describe the load generator.
	Saturated int `json:"loadgen_saturated_runs"`
}

// Metric is one figure of a step that is summarised and compared.
type Metric struct {
	Key   string // as in the summary's JSON
	Label string
	Unit  string // "/s", "us", "bytes", "s", "ratio"
	// HigherIsBetter orders proxies for "best": rates up, latency and cost down.
	HigherIsBetter bool
	// Compared: proxies are ranked on it, and diffs of two files show it.
	Compared bool
	// NoiseChecked: its run-to-run spread is flagged when above NoiseCV.
	// The perf-buffer loss ratio is not: near zero, any loss is a large CV.
	NoiseChecked bool
	// Value reads the figure from a step; ok is false when the step lacks it
	// (no resources read, no probes).
	Value func(*Step) (v float64, ok bool)
	Of    func(*StepSummary) *Stat
}

func always(f func(*Step) float64) func(*Step) (float64, bool) {
	return func(s *Step) (float64, bool) { return f(s), true }
}

// intended is a percentile of the latency from the intended send time,
// which only paced steps have; compared says whether proxies are ranked on
// it (the p99: what a user at the tail waited).
func intended(key, label string, compared bool, pick func(*loadgen.Latency) int64, of func(*StepSummary) *Stat) Metric {
	return Metric{Key: key, Label: label, Unit: "us", Compared: compared, NoiseChecked: compared,
		Value: func(s *Step) (float64, bool) {
			if s.IntendedLatency == nil {
				return 0, false
			}
			return float64(pick(s.IntendedLatency)), true
		}, Of: of}
}

// Metrics lists every summarised figure, in the order comparisons show
// them. It is the one list of figures: summaries, rankings, noise checks
// and diffs all read it.
var Metrics = []Metric{
	{"throughput", "throughput", "/s", true, true, true, always(func(s *Step) float64 { return s.Throughput }), func(s *StepSummary) *Stat { return &s.Throughput }},
	{"achieved_rate", "achieved rate", "/s", true, true, true, always(func(s *Step) float64 { return s.AchievedRate }), func(s *StepSummary) *Stat { return &s.AchievedRate }},
	{"success", "success", "ratio", true, false, false, always(func(s *Step) float64 { return s.Success }), func(s *StepSummary) *Stat { return &s.Success }},
	{"latency_p50_us", "p50", "us", false, true, true, always(func(s *Step) float64 { return float64(s.Latency.P50) }), func(s *StepSummary) *Stat { return &s.P50 }},
	{"latency_p90_us", "p90", "us", false, false, false, always(func(s *Step) float64 { return float64(s.Latency.P90) }), func(s *StepSummary) *Stat { return &s.P90 }},
	{"latency_p99_us", "p99", "us", false, true, true, always(func(s *Step) float64 { return float64(s.Latency.P99) }), func(s *StepSummary) *Stat { return &s.P99 }},
	{"latency_p99_9_us", "p99.9", "us", false, true, true, always(func(s *Step) float64 { return float64(s.Latency.P999) }), func(s *StepSummary) *Stat { return &s.P999 }},
	{"latency_max_us", "max", "us", false, false, false, always(func(s *Step) float64 { return float64(s.Latency.Max) }), func(s *StepSummary) *Stat { return &s.Max }},
	intended("latency_intended_p50_us", "intended p50", false, func(l *loadgen.Latency) int64 { return l.P50 }, func(s *StepSummary) *Stat { return &s.IntendedP50 }),
	intended("latency_intended_p90_us", "intended p90", false, func(l *loadgen.Latency) int64 { return l.P90 }, func(s *StepSummary) *Stat { return &s.IntendedP90 }),
	intended("latency_intended_p99_us", "intended p99", true, func(l *loadgen.Latency) int64 { return l.P99 }, func(s *StepSummary) *Stat { return &s.IntendedP99 }),
	intended("latency_intended_p99_9_us", "intended p99.9", false, func(l *loadgen.Latency) int64 { return l.P999 }, func(s *StepSummary) *Stat { return &s.IntendedP999 }),
	intended("latency_intended_max_us", "intended max", false, func(l *loadgen.Latency) int64 { return l.Max }, func(s *StepSummary) *Stat { return &s.IntendedMax }),
	{"proxy_cpu_seconds", "proxy CPU", "s", false, true, true, func(s *Step) (float64, bool) {
		if s.Resources == nil || s.Resources.NoProxy {
			return 0, false
		}
		return s.Resources.ProxyCPUSeconds, true
	}, func(s *StepSummary) *Stat { return &s.CPUSeconds }},
	{"proxy_peak_rss_bytes", "peak RSS", "bytes", false, true, true, func(s *Step) (float64, bool) {
		if s.Resources == nil || s.Resources.NoProxy {
			return 0, false
		}
		return float64(s.Resources.ProxyPeakRSSBytes), true
	}, func(s *StepSummary) *Stat { return &s.PeakRSSBytes }},
	{"probe_loss_ratio", "perf loss ratio", "ratio", false, true, false, func(s *Step) (float64, bool) {
		if s.Probes == nil || s.Probes.SampleEvery == 0 {
			// Nothing was sent, so there is no ratio to give.
			return 0, false
		}
		return s.Probes.LossRatio, true
	}, func(s *StepSummary) *Stat { return &s.ProbeLossRatio }},
}

// Counts reports whether the run's figures enter summaries and verdicts:
// it finished, and nothing outside the run disturbed it. A disturbed run
// stays in the file, for the reader to see what it measured.
func (r *Run) Counts() bool { return r.Status == RunOK && !r.Disturbed }

// StepsAt returns step i (0-based) of every run that counts (Counts), and
// only steps that were not cut short.
func StepsAt(runs []*Run, i int) []*Step {
	var steps []*Step
	for _, r := range runs {
		if r.Counts() && i < len(r.Steps) && !r.Steps[i].Interrupted {
			steps = append(steps, r.Steps[i])
		}
	}
	return steps
}

// Values reads m from every step that has it.
func (m Metric) Values(steps []*Step) []float64 {
	var v []float64
	for _, s := range steps {
		if x, ok := m.Value(s); ok {
			v = append(v, x)
		}
	}
	return v
}

// Summarise computes the per-step summary from the runs that completed.
func Summarise(runs []*Run) []StepSummary {
	var out []StepSummary
	for i := 0; ; i++ {
		steps := StepsAt(runs, i)
		if len(steps) == 0 {
			return out
		}
		s := StepSummary{Step: i + 1, TargetRate: steps[0].TargetRate}
		for _, m := range Metrics {
			*m.Of(&s) = Describe(m.Values(steps))
		}
		for _, st := range steps {
			if st.LoadgenSaturated {
				s.Saturated++
			}
		}
		out = append(out, s)
	}
}
