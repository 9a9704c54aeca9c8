package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// Capacity is one row's capacity: the highest rate each of its saturation
// searches found within the scenario's objective, summarised across runs.
type Capacity struct {
	Proxy    string
	Baseline bool
	Rates    []float64 // per finished search, in repetition order
	Stat     lab.Stat
	// StoppedBy is what ended each finished search, as stoppedBy names it.
	StoppedBy []string
	// Bound: some search was stopped by the load generator or by
	// search.max, so the figure is a lower bound of the row's capacity.
	Bound bool
	// Incomplete counts searches cut short (a failed or interrupted run);
	// they are not in Rates.
	Incomplete int
	// Disturbed counts searches left out because something outside the
	// run used its cores.
	Disturbed int
	// ToNginx and ToDirect are this row's median over the baseline's.
	ToNginx, ToDirect Ratio
}

// Ratio is a ratio of medians with the bootstrap interval of the ratio;
// OK is false when there is nothing to divide by.
type Ratio struct {
	Value float64
	IV    stats.Interval
	HasIV bool // both sides have stats.MinN runs or more
	OK    bool
}

// ratioOf is median(a)/median(b) with its bootstrap interval.
func ratioOf(a, b []float64) Ratio {
	if len(a) == 0 || len(b) == 0 || stats.Median(b) == 0 {
		return Ratio{}
	}
	r := Ratio{Value: stats.Median(a) / stats.Median(b), OK: true}
	r.IV, r.HasIV = stats.BootstrapRatio(a, b)
	return r
}

// String is "0.85× [0.80, 0.90]", the ratio alone below MinN runs, "-"
// without a ratio.
func (r Ratio) String() string {
	if !r.OK {
		return "-"
	}
	s := fmt.Sprintf("%.2f×", r.Value)
	if r.HasIV {
		s += fmt.Sprintf(" [%.2f, %.2f]", r.IV.Lo, r.IV.Hi)
	}
	return s
}

// Capacities are the capacities of f's rows in file order; none when f
// has no search.
func Capacities(f *File) []Capacity {
	var out []Capacity
	for _, p := range f.Proxies {
		if c, ok := capacityOf(p); ok {
			out = append(out, c)
		}
	}
	byName := func(name string) []float64 {
		i := slices.IndexFunc(out, func(c Capacity) bool { return c.Proxy == name })
		if i < 0 {
			return nil
		}
		return out[i].Rates
	}
	nginx, direct := byName(lab.Nginx.Name), byName(lab.Direct.Name)
	for i := range out {
		out[i].ToNginx = ratioOf(out[i].Rates, nginx)
		out[i].ToDirect = ratioOf(out[i].Rates, direct)
	}
	return out
}

func capacityOf(p *lab.ProxyResult) (Capacity, bool) {
	c := Capacity{Proxy: p.Name, Baseline: p.Baseline}
	runs := searches(p)
	for _, r := range runs {
		sr := r.Search
		if r.Disturbed {
			c.Disturbed++
			continue
		}
		if sr.StoppedBy == lab.StoppedIncomplete {
			c.Incomplete++
			continue
		}
		c.Rates = append(c.Rates, float64(sr.Rate))
		c.StoppedBy = append(c.StoppedBy, stoppedBy(p, sr))
		c.Bound = c.Bound || lowerBound(p, sr)
	}
	c.Stat = lab.Describe(c.Rates)
	return c, len(runs) > 0
}

// RateText is the median capacity with its interval: "44000/s [43000,
// 45000]"; ">=" marks a lower bound.
func (c Capacity) RateText() string {
	if c.Stat.N == 0 {
		return "-"
	}
	s := rate(c.Stat.Median) + "/s"
	if c.Bound {
		s = ">= " + s
	}
	if c.Stat.HasInterval {
		s += fmt.Sprintf(" [%s, %s]", rate(c.Stat.Lo), rate(c.Stat.Hi))
	}
	return s
}

// StoppedText counts what ended the searches: "proxy ×3", "proxy ×2,
// loadgen ×1"; searches cut short are named too.
func (c Capacity) StoppedText() string {
	var order []string
	n := map[string]int{}
	for _, s := range c.StoppedBy {
		if n[s] == 0 {
			order = append(order, s)
		}
		n[s]++
	}
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%s ×%d", s, n[s]))
	}
	if c.Incomplete > 0 {
		parts = append(parts, fmt.Sprintf("%d cut short, not counted", c.Incomplete))
	}
	return strings.Join(parts, ", ")
}

// perRun lists the rates of each search: "44000, 42000, 46000".
func (c Capacity) perRun() string {
	var s []string
	for _, r := range c.Rates {
		s = append(s, rate(r))
	}
	return strings.Join(s, ", ")
}

// slowestLab is the lab proxy (no baseline) with the lowest median
// capacity; ok is false when no lab proxy has one.
func slowestLab(cs []Capacity) (Capacity, bool) {
	best, ok := Capacity{}, false
	for _, c := range cs {
		if c.Baseline || c.Stat.N == 0 {
			continue
		}
		if !ok || c.Stat.Median < best.Stat.Median {
			best, ok = c, true
		}
	}
	return best, ok
}

// ivText is "median [lo, hi]" in unit, the median alone without an
// interval; value formats a number.
func ivText(s lab.Stat, value func(float64) string) string {
	if s.N == 0 || math.IsNaN(s.Median) {
		return "-"
	}
	if !s.HasInterval {
		return value(s.Median)
	}
	return fmt.Sprintf("%s [%s, %s]", value(s.Median), value(s.Lo), value(s.Hi))
}
