package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// compared are the figures proxies are ranked on, in report order.
func compared() []lab.Metric {
	var out []lab.Metric
	for _, m := range lab.Metrics {
		if m.Compared {
			out = append(out, m)
		}
	}
	return out
}

// Verdicts of one proxy against the best.
const (
	VerdictBest       = "best"
	VerdictWorse      = "worse"           // significant, and the intervals do not overlap
	VerdictIndistinct = "not significant" // cannot be told apart from the best
	// VerdictApartFewRuns: the intervals are apart, but with so few runs
	// the test cannot reach Alpha even for complete separation.
	VerdictApartFewRuns  = "intervals apart, too few runs to test"
	VerdictSaturated     = "load generator saturated"
	VerdictBaseline      = "baseline"
	VerdictNoData        = "no data"
	VerdictCannotCompare = "too few runs" // below stats.MinN on either side
)

// Comparison ranks every proxy on one metric at one step.
type Comparison struct {
	Step       int
	TargetRate float64
	Metric     lab.Metric
	Best       string // "" when no proxy is eligible
	// Winner is true when the best is significantly better than every other
	// eligible proxy; only then may a text call it faster or smaller.
	Winner bool
	Rows   []Row
}

// Row is one proxy's place in a Comparison.
type Row struct {
	Proxy    string
	Baseline bool
	Stat     lab.Stat
	// Ratio is this proxy's median over the best's; its interval is a
	// bootstrap of the ratio of medians (HasRatioIV false below MinN runs).
	Ratio      float64
	RatioIV    stats.Interval
	HasRatioIV bool
	// Test is the two-sided Mann-Whitney U test of this proxy's runs
	// against the best's.
	Test    stats.UTest
	HasTest bool
	// ToDirect is the median over the direct baseline's; NaN without one.
	ToDirect float64
	Verdict  string
}

// Compare ranks the proxies of f on every compared metric at every step.
// Eligible for "best" are proxies that are not baselines and whose step
// was never saturated by the load generator in any run.
func Compare(f *File) []Comparison {
	var out []Comparison
	for step := 1; step <= f.Steps(); step++ {
		for _, m := range compared() {
			if c, ok := compareStep(f, step, m); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

func compareStep(f *File, step int, m lab.Metric) (Comparison, bool) {
	c := Comparison{Step: step, Metric: m}
	values := map[string][]float64{}
	any := false
	for _, p := range f.Proxies {
		s := p.StepSummary(step)
		if s == nil {
			continue
		}
		c.TargetRate = s.TargetRate
		st := *m.Of(s)
		values[p.Name] = m.Values(lab.StepsAt(p.Runs, step-1))
		r := Row{Proxy: p.Name, Baseline: p.Baseline, Stat: st, Ratio: math.NaN(), ToDirect: math.NaN()}
		switch {
		case st.N == 0:
			r.Verdict = VerdictNoData
		case p.Baseline:
			r.Verdict = VerdictBaseline
			any = true
		case s.Saturated > 0:
			r.Verdict = VerdictSaturated
			any = true
		default:
			any = true
			if c.Best == "" || better(m, st.Median, bestMedian(c)) {
				c.Best = p.Name
			}
		}
		c.Rows = append(c.Rows, r)
	}
	if !any {
		return c, false
	}
	var best Row
	for _, r := range c.Rows {
		if r.Proxy == c.Best {
			best = r
		}
	}
	var direct *Row
	for i := range c.Rows {
		if c.Rows[i].Proxy == lab.Direct.Name && c.Rows[i].Stat.N > 0 {
			direct = &c.Rows[i]
		}
	}
	c.Winner = c.Best != ""
	others := 0
	for i := range c.Rows {
		r := &c.Rows[i]
		if r.Stat.N == 0 {
			continue
		}
		if direct != nil && direct.Stat.Median != 0 {
			r.ToDirect = r.Stat.Median / direct.Stat.Median
		}
		if c.Best == "" {
			continue
		}
		if best.Stat.Median != 0 {
			r.Ratio = r.Stat.Median / best.Stat.Median
		} else if r.Stat.Median == 0 {
			r.Ratio = 1
		}
		if r.Proxy == c.Best {
			r.Ratio = 1
			r.Verdict = VerdictBest
			continue
		}
		r.RatioIV, r.HasRatioIV = stats.BootstrapRatio(values[r.Proxy], values[c.Best])
		r.Test, r.HasTest = stats.MannWhitney(values[r.Proxy], values[c.Best])
		if r.Verdict != "" { // baselines and saturated steps keep their mark
			continue
		}
		others++
		switch {
		case r.Stat.N < stats.MinN || best.Stat.N < stats.MinN:
			r.Verdict = VerdictCannotCompare
			c.Winner = false
		case distinct(r.Stat, best.Stat) && r.HasTest && r.Test.Significant():
			r.Verdict = VerdictWorse
		case distinct(r.Stat, best.Stat) && r.HasTest && r.Test.MinP >= stats.Alpha:
			r.Verdict = VerdictApartFewRuns
			c.Winner = false
		default:
			r.Verdict = VerdictIndistinct
			c.Winner = false
		}
	}
	// Alone, the best has beaten nobody.
	if others == 0 {
		c.Winner = false
	}
	return c, true
}

// distinct reports whether the two figures' intervals are apart; a figure
// without an interval is never apart from anything.
func distinct(a, b lab.Stat) bool {
	ia, oka := a.Interval()
	ib, okb := b.Interval()
	return oka && okb && !ia.Overlaps(ib)
}

func better(m lab.Metric, a, b float64) bool {
	if m.HigherIsBetter {
		return a > b
	}
	return a < b
}

func bestMedian(c Comparison) float64 {
	for _, r := range c.Rows {
		if r.Proxy == c.Best {
			return r.Stat.Median
		}
	}
	return math.NaN()
}

// Finding says in one sentence what a comparison supports, without ever
// calling a proxy better when the data cannot tell them apart.
func (c Comparison) Finding() string {
	if c.Best == "" {
		return fmt.Sprintf("%s: no proxy can be ranked (baselines and saturated steps only)", c.Metric.Label)
	}
	best := bestRow(c)
	eligible := 0
	same := true
	for _, r := range c.Rows {
		if r.Verdict == VerdictBaseline || r.Verdict == VerdictSaturated || r.Verdict == VerdictNoData {
			continue
		}
		eligible++
		same = same && r.Stat.Median == best.Stat.Median
	}
	if eligible > 1 && same {
		return fmt.Sprintf("%s: every proxy has the same median (%s)", c.Metric.Label, lab.FormatValue(best.Stat.Median, c.Metric.Unit))
	}
	if c.Metric.Unit == "/s" && c.TargetRate > 0 && servedAll(c) {
		return fmt.Sprintf("%s: every proxy kept up with the offered %s/s (within 1%%), so the rate does not rank them", c.Metric.Label, rate(c.TargetRate))
	}
	word := "highest"
	if !c.Metric.HigherIsBetter {
		word = "lowest"
	}
	head := fmt.Sprintf("%s: %s has the %s median (%s)", c.Metric.Label, c.Best, word, lab.FormatValue(best.Stat.Median, c.Metric.Unit))
	if c.Winner {
		return head + fmt.Sprintf("; better than every other proxy (Mann-Whitney p < %.2f, intervals apart)", stats.Alpha)
	}
	var worse, tie, apart, few, sat []string
	for _, r := range c.Rows {
		switch r.Verdict {
		case VerdictSaturated:
			sat = append(sat, r.Proxy)
		case VerdictWorse:
			worse = append(worse, fmt.Sprintf("%s (%.2f×, p = %.3f)", r.Proxy, r.Ratio, r.Test.P))
		case VerdictIndistinct:
			// A small p alone does not make a difference: the intervals
			// must be apart too, and saying why keeps p < 0.05 from
			// reading as a contradiction.
			overlap := ""
			if r.HasTest && r.Test.Significant() {
				overlap = " but the intervals overlap"
			}
			tie = append(tie, fmt.Sprintf("%s (%.2f×, p = %.2f%s)", r.Proxy, r.Ratio, r.Test.P, overlap))
		case VerdictApartFewRuns:
			apart = append(apart, fmt.Sprintf("%s (%.2f×)", r.Proxy, r.Ratio))
		case VerdictCannotCompare:
			few = append(few, r.Proxy)
		}
	}
	var parts []string
	if len(worse) > 0 {
		parts = append(parts, "significantly better than "+join(worse, "and"))
	}
	if len(apart) > 0 {
		parts = append(parts, fmt.Sprintf("its interval is apart from %s, but %d runs cannot make that significant", join(apart, "and"), best.Stat.N))
	}
	if len(tie) > 0 {
		parts = append(parts, "not significantly different from "+join(tie, "or"))
	}
	if len(few) > 0 {
		parts = append(parts, fmt.Sprintf("with fewer than %d runs it cannot be told apart from %s", stats.MinN, join(few, "or")))
	}
	if len(parts) == 0 {
		parts = append(parts, "no other proxy to rank it against")
	}
	if len(sat) > 0 {
		parts = append(parts, fmt.Sprintf("%s not ranked: the load generator was saturated", join(sat, "and")))
	}
	return head + "; " + strings.Join(parts, "; ")
}

// servedAll reports whether every eligible proxy reached 99% of the target.
func servedAll(c Comparison) bool {
	for _, r := range c.Rows {
		if r.Verdict == VerdictBaseline || r.Verdict == VerdictSaturated || r.Verdict == VerdictNoData {
			continue
		}
		if r.Stat.Median < 0.99*c.TargetRate {
			return false
		}
	}
	return true
}

func bestRow(c Comparison) Row {
	for _, r := range c.Rows {
		if r.Proxy == c.Best {
			return r
		}
	}
	return Row{}
}

func join(s []string, conj string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " " + conj + " " + s[len(s)-1]
}

// MinPNote explains, for the smallest run counts in f, whether the test can
// reach significance at all; "" when it can.
func MinPNote(f *File) string {
	minN := math.MaxInt
	for _, p := range f.Proxies {
		if p.Baseline {
			continue
		}
		for _, s := range p.Summary {
			minN = min(minN, s.AchievedRate.N)
		}
	}
	if minN == math.MaxInt || minN == 0 {
		return ""
	}
	v := make([]float64, 2*minN)
	for i := range v {
		v[i] = float64(i)
	}
	t, _ := stats.MannWhitney(v[:minN], v[minN:])
	if t.MinP < stats.Alpha {
		return ""
	}
	runs := fmt.Sprintf("%d runs", minN)
	if minN == 1 {
		runs = "1 run"
	}
	return fmt.Sprintf("With %s per proxy the smallest p-value the test can produce is %.2f, so no difference can be significant at %.2f however large it is; use `repeat: %d` or more to be able to tell proxies apart.",
		runs, t.MinP, stats.Alpha, minRepeatFor(stats.Alpha))
}

// minRepeatFor is the smallest equal run count at which complete separation
// of two groups is significant at alpha.
func minRepeatFor(alpha float64) int {
	for n := 1; n < 20; n++ {
		v := make([]float64, 2*n)
		for i := range v {
			v[i] = float64(i)
		}
		if t, _ := stats.MannWhitney(v[:n], v[n:]); t.MinP < alpha {
			return n
		}
	}
	return 20
}
