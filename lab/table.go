package lab

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/proxylab/proxylab/scenarios"
	"github.com/proxylab/proxylab/stats"
)

// PrintTable writes the terminal comparison: one row per proxy and step,
// medians across repetitions with the half-width of their interval, and a
// note wherever a figure should not be read as the proxy's capacity or is
// too noisy to lean on.
func PrintTable(w io.Writer, r *Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows, minN := 0, math.MaxInt
	for _, p := range r.Proxies {
		rows += len(p.Summary)
		for _, s := range p.Summary {
			minN = min(minN, s.AchievedRate.N)
		}
	}
	if rows > 0 {
		fmt.Fprintln(tw, "proxy\tstep\ttarget/s\tachieved/s\tsuccess\tp50\tp99\tp99.9\tmax\tCPU s\tpeak RSS\tn\t")
	}
	for _, p := range r.Proxies {
		for _, s := range p.Summary {
			// * marks a row whose rate was not delivered: it is no
			// measurement at that rate, so no verdict may rest on it.
			mark := ""
			if s.Saturated > 0 {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
				p.Name, s.Step, s.TargetRate, FormatStat(s.AchievedRate, "/s"), mark, percent(s.Success.Median),
				FormatStat(s.P50, "us"), FormatStat(s.P99, "us"), FormatStat(s.P999, "us"), FormatStat(s.Max, "us"),
				FormatStat(s.CPUSeconds, "s"), FormatStat(s.PeakRSSBytes, "bytes"), s.AchievedRate.N)
		}
	}
	tw.Flush()
	var notes []string
	for _, p := range r.Proxies {
		switch v := p.Verified; {
		case v == nil:
		case p.Name == Direct.Name && p.Baseline:
			notes = append(notes, "direct: baseline, no proxy: the load goes straight to the upstream")
		case p.Baseline:
			notes = append(notes, p.Name+": baseline, not a lab proxy: not checked against the proxy contract")
		case v.Skipped:
			notes = append(notes, p.Name+": NOT verified against the proxy contract (--skip-verify)")
		default:
			notes = append(notes, fmt.Sprintf("%s: passed %d of %d conformance cases", p.Name, v.Cases-len(v.Failed), v.Cases))
		}
		if len(p.Summary) == 0 {
			notes = append(notes, fmt.Sprintf("%s: no step completed, so nothing to summarise (partial steps are in the results file)", p.Name))
		}
		var short []string
		for _, s := range p.Summary {
			if s.Saturated > 0 {
				rate := fmt.Sprintf("%.0f/s", s.TargetRate)
				if s.Saturated < s.AchievedRate.N {
					rate += fmt.Sprintf(" (in %d of %d runs)", s.Saturated, s.AchievedRate.N)
				}
				short = append(short, rate)
			}
		}
		if len(short) > 0 {
			notes = append(notes, fmt.Sprintf("* %s: the target rate was not delivered at %s (the step's saturation says why: every connection busy, or the load generator short of CPU); those rows are no measurement at their rate",
				p.Name, strings.Join(short, ", ")))
		}
		for _, s := range p.Summary {
			if n := NoiseNote(&s); n != "" {
				notes = append(notes, fmt.Sprintf("%s step %d: %s", p.Name, s.Step, n))
			}
		}
		for _, run := range p.Runs {
			if sr := run.Search; sr != nil && r.Scenario.Load.Search != nil {
				notes = append(notes, searchNote(p.Name, run.Repetition, sr, r.Scenario.Load.Search))
			}
			if run.Status != RunOK {
				notes = append(notes, fmt.Sprintf("%s repetition %d %s: %s", p.Name, run.Repetition, run.Status, run.Error))
				for _, l := range run.LastLogs {
					notes = append(notes, "    | "+l)
				}
			}
		}
	}
	if r.Probes != nil && r.Probes.Error != "" {
		notes = append(notes, "no eBPF probe counts: "+r.Probes.Error)
	}
	if r.Probes != nil && r.Probes.Mode != "" {
		notes = append(notes, fmt.Sprintf("eBPF probes (%s mode), per proxy process and step:", r.Probes.Mode))
		for _, p := range r.Proxies {
			for _, run := range p.Runs {
				for i, st := range run.Steps {
					if c := st.Probes; c != nil {
						notes = append(notes, fmt.Sprintf("  %s repetition %d step %d: %d accepts, %d connects; perf buffer: %d of %d events delivered, %d failed, %d lost (loss ratio %.4f)",
							p.Name, run.Repetition, i+1, c.Accepts, c.Connects, c.Received, c.Attempted, c.Failed, c.LostSamples, c.LossRatio))
					}
				}
			}
		}
	}
	if !r.Complete {
		reason := r.StopReason
		if reason == "" {
			reason = "not finished"
		}
		notes = append(notes, "INCOMPLETE: "+reason)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\n"+strings.Join(notes, "\n"))
	}
	fmt.Fprintf(w, "\n%s; latency as the load generator saw it; CPU s = proxy CPU time in the step\nplacement: proxy on CPU %s, upstream on CPU %s, load generator on CPU %s\n",
		IntervalLegend(minN), r.Placement.ProxyCPUs, r.Placement.UpstreamCPUs, r.Placement.LoadgenCPUs)
}

// IntervalLegend explains the "median ±half-width" cells for the smallest
// number of repetitions in a table.
func IntervalLegend(minN int) string {
	switch {
	case minN == math.MaxInt:
		return "medians over n repetitions"
	case minN < stats.MinN:
		return fmt.Sprintf("medians over n repetitions; with n < %d no interval can be given, so rows with fewer runs show the median alone", stats.MinN)
	}
	return fmt.Sprintf("median ±half-width of its %.0f%% bootstrap interval (%d resamples, seed %d) over n repetitions; with n = 3 that interval is the full range of the runs",
		100*stats.Level, stats.Resamples, stats.Seed)
}

// noiseMetrics are the figures checked for run-to-run noise: the ones a
// comparison is drawn from.
var noiseMetrics = []string{"achieved_rate", "throughput", "latency_p50_us", "latency_p99_us", "latency_p99_9_us", "proxy_cpu_seconds", "proxy_peak_rss_bytes"}

// NoiseNote names the figures of a step whose coefficient of variation
// across repetitions exceeds NoiseCV; "" when none does.
func NoiseNote(s *StepSummary) string {
	var noisy []string
	for _, key := range noiseMetrics {
		m, _ := MetricByKey(key)
		if st := m.Of(s); st.Noisy() {
			noisy = append(noisy, fmt.Sprintf("%s %.0f%%", m.Label, 100*st.CV))
		}
	}
	if len(noisy) == 0 {
		return ""
	}
	slices.Sort(noisy)
	return fmt.Sprintf("NOISY: CV across runs above %.0f%% for %s; differences of that size between proxies may be noise",
		100*NoiseCV, strings.Join(noisy, ", "))
}

// FormatStat renders a Stat as "median ±half-width" in one unit chosen for
// the median (unit as in Metric.Unit); without an interval the median alone.
func FormatStat(s Stat, unit string) string {
	if s.N == 0 {
		return "-"
	}
	v := FormatValue(s.Median, unit)
	if !s.HasInterval {
		return v
	}
	return v + " ±" + formatSpread(s.HalfWidth(), s.Median, unit)
}

// FormatValue renders one figure with a unit a reader takes in at a glance.
func FormatValue(v float64, unit string) string {
	switch unit {
	case "/s":
		return fmt.Sprintf("%.1f", v)
	case "us":
		return micros(v)
	case "bytes":
		return bytesIEC(int64(v))
	case "s":
		return fmt.Sprintf("%.2f", v)
	case "ratio":
		return percent(v)
	}
	return fmt.Sprintf("%g", v)
}

// formatSpread renders a half-width in the unit its median was shown in, so
// "4.66ms ±0.81" reads as milliseconds.
func formatSpread(h, median float64, unit string) string {
	switch unit {
	case "us":
		div, _ := microsUnit(median)
		if own, _ := microsUnit(h); own > div {
			// A tail interval far wider than the median reads better in
			// its own unit: "777µs ±6.54ms", not "±6536".
			return micros(h)
		}
		return trimFloat(h/div, min(2, int(math.Log10(div))))
	case "bytes":
		div, _ := iecUnit(int64(median))
		return trimFloat(h/div, min(1, int(math.Log10(div))))
	case "ratio":
		return trimFloat(100*h, 2)
	case "s":
		return trimFloat(h, 2)
	}
	return trimFloat(h, 1)
}

func trimFloat(v float64, prec int) string { return fmt.Sprintf("%.*f", prec, v) }

// searchNote states what a search found; a rate that is only a lower
// bound (the load generator or search.max stopped the search) says so with
// ">=", so it is never read as the proxy's capacity.
func searchNote(name string, rep int, sr *SearchResult, s *scenarios.Search) string {
	bound := ""
	if sr.StoppedBy == StoppedByLoadgen || sr.StoppedBy == StoppedByMax {
		bound = ">= "
	}
	by := sr.StoppedBy
	if name == Direct.Name && by == StoppedByProxy {
		// The direct row has no proxy: what stopped it is the upstream
		// and the host under it, the ceiling of every other row.
		by = "the upstream (no proxy in this row)"
	}
	return fmt.Sprintf("%s repetition %d: highest rate with p99 <= %s and success >= %s: %s%d/s after %d probes, stopped by %s: %s",
		name, rep, s.SLOP99, percent(s.MinSuccess), bound, sr.Rate, len(sr.Probes), by, sr.Reason)
}

func percent(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }

// micros renders microseconds with a unit a reader takes in at a glance.
func micros(us float64) string {
	div, unit := microsUnit(us)
	if div == 1 {
		return fmt.Sprintf("%.0fµs", us)
	}
	return fmt.Sprintf("%.2f%s", us/div, unit)
}

func microsUnit(us float64) (float64, string) {
	switch {
	case us >= 1e6:
		return 1e6, "s"
	case us >= 1e3:
		return 1e3, "ms"
	}
	return 1, "µs"
}

func bytesIEC(n int64) string {
	div, unit := iecUnit(n)
	if div == 1 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.1f%s", float64(n)/div, unit)
}

func iecUnit(n int64) (float64, string) {
	const unit = 1024
	if n < unit {
		return 1, "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return float64(div), string("KMGTPE"[exp]) + "iB"
}
