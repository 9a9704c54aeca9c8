package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/proxylab/proxylab/scenarios"
)

// PrintTable writes the terminal comparison: one row per proxy and step,
// medians across repetitions, and a note wherever a figure should not be
// read as the proxy's capacity.
func PrintTable(w io.Writer, r *Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := 0
	for _, p := range r.Proxies {
		rows += len(p.Summary)
	}
	if rows > 0 {
		fmt.Fprintln(tw, "proxy\tstep\ttarget/s\tachieved/s\tsuccess\tp50\tp99\tp99.9\tmax\tCPU s\tpeak RSS\tn\t")
	}
	for _, p := range r.Proxies {
		for _, s := range p.Summary {
			// * marks a row the load generator could not deliver: it
			// measures the load generator, so no verdict may rest on it.
			mark, cpu, rss := "", "-", "-"
			if s.Saturated > 0 {
				mark = "*"
			}
			if s.CPUSeconds.N > 0 {
				cpu, rss = fmt.Sprintf("%.2f", s.CPUSeconds.Median), bytesIEC(int64(s.PeakRSSBytes.Median))
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
				p.Name, s.Step, s.TargetRate, s.AchievedRate.Median, mark, percent(s.Success.Median),
				micros(s.P50.Median), micros(s.P99.Median), micros(s.P999.Median), micros(s.Max.Median),
				cpu, rss, s.AchievedRate.N)
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
			notes = append(notes, fmt.Sprintf("* %s: the load generator fell short of %s; those rows measure the load generator, not the proxy",
				p.Name, strings.Join(short, ", ")))
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
	fmt.Fprintf(w, "\nmedians over n repetitions; latency as the load generator saw it; CPU s = proxy CPU time in the step\nplacement: proxy on CPU %s, upstream on CPU %s, load generator on CPU %s\n",
		r.Placement.ProxyCPUs, r.Placement.UpstreamCPUs, r.Placement.LoadgenCPUs)
}

// searchNote states what a search found; a rate that is only a lower
// bound (the load generator or search.max stopped the search) says so with
// ">=", so it is never read as the proxy's capacity.
func searchNote(name string, rep int, sr *SearchResult, s *scenarios.Search) string {
	bound := ""
	if sr.StoppedBy == StoppedByLoadgen || sr.StoppedBy == StoppedByMax {
		bound = ">= "
	}
	return fmt.Sprintf("%s repetition %d: highest rate with p99 <= %s and success >= %s: %s%d/s after %d probes, stopped by %s: %s",
		name, rep, s.SLOP99, percent(s.MinSuccess), bound, sr.Rate, len(sr.Probes), sr.StoppedBy, sr.Reason)
}

func percent(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }

// micros renders microseconds with a unit a reader takes in at a glance.
func micros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.0fµs", us)
	}
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
