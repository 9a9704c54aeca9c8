package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// NewTable is the terminal comparison `proxylab compare` ends with: one row
// per proxy and step, medians across repetitions with the half-width of
// their interval, then the notes, what the run verified, searched and
// counted, and how to read the cells.
func NewTable(f *File) Reporter {
	return func(out io.Writer) error {
		if err := writeRows(out, f); err != nil {
			return err
		}
		w, done := newWriter(out)
		if notes := Notes(f); len(notes) > 0 {
			w("\n")
			for _, n := range notes {
				w("%s\n", n)
				for _, l := range n.Logs {
					w("    | %s\n", l)
				}
			}
		}
		writeTableInfo(w, f)
		pl := f.Placement
		w("\n%s; * = target rate not delivered; latency as the load generator saw it, from the send (service) and, for paced steps, from the intended send time (p99 intended); CPU s = proxy CPU time in the step\nplacement: proxy on CPU %s, upstream on CPU %s, load generator on CPU %s%s\n",
			intervalLegend(minRuns(f)), pl.ProxyCPUs, pl.UpstreamCPUs, pl.LoadgenCPUs, sutWhere(f.Host.SUT))
		return done()
	}
}

// writeRows writes the aligned table itself. A * marks a row whose rate
// was not delivered: it is no measurement at that rate.
func writeRows(out io.Writer, f *File) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// A closed-model step has no target rate: its column names the load.
	target, head := func(s lab.StepSummary) string { return fmt.Sprintf("%.0f", s.TargetRate) }, "target/s"
	if f.closed() {
		target = func(s lab.StepSummary) string { return f.load(s.Step, s.TargetRate) }
		head = "load"
	}
	if f.Steps() > 0 {
		fmt.Fprintf(tw, "proxy\tstep\t%s\tachieved/s\tsuccess\tp50\tp99\tp99.9\tmax\tp99 intended\tCPU s\tpeak RSS\tn\t\n", head)
	}
	for _, p := range f.Proxies {
		for _, s := range p.Summary {
			mark := ""
			if s.Saturated > 0 {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
				p.Name, s.Step, target(s), lab.FormatStat(s.AchievedRate, "/s"), mark, lab.FormatValue(s.Success.Median, "ratio"),
				lab.FormatStat(s.P50, "us"), lab.FormatStat(s.P99, "us"), lab.FormatStat(s.P999, "us"), lab.FormatStat(s.Max, "us"),
				lab.FormatStat(s.IntendedP99, "us"),
				lab.FormatStat(s.CPUSeconds, "s"), lab.FormatStat(s.PeakRSSBytes, "bytes"), s.AchievedRate.N)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeCapacityRows(out, f)
}

// writeCapacityRows is a searched file's capacity per row: the median with
// its interval and the ratio to each baseline with the ratio's interval.
func writeCapacityRows(out io.Writer, f *File) error {
	cs := Capacities(f)
	if len(cs) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "capacity\tmedian [95% interval]\tto nginx\tto direct\tsearches stopped by")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Proxy, c.RateText(), c.ToNginx, c.ToDirect, c.StoppedText())
	}
	return tw.Flush()
}

// writeTableInfo says what each row is (verified, a baseline), what each
// search found and what the probes counted: report.md has sections for
// these, the terminal has these lines.
func writeTableInfo(w writer, f *File) {
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	for _, p := range f.Proxies {
		switch v := p.Verified; {
		case p.Name == lab.Direct.Name && p.Baseline:
			add("direct: baseline, no proxy: the load goes straight to the upstream")
		case p.Baseline:
			add("%s: baseline, not a lab proxy: not checked against the proxy contract", p.Name)
		case v != nil && !v.Skipped:
			add("%s: passed %d of %d conformance cases", p.Name, v.Cases-len(v.Failed), v.Cases)
		}
		for _, r := range searches(p) {
			add("%s", searchLine(f, p, r))
		}
	}
	if f.Probes != nil && f.Probes.Mode != "" {
		add("eBPF probes (%s mode), per proxy process and step:", f.Probes.Mode)
		for _, p := range f.Proxies {
			for _, run := range p.Runs {
				for i, st := range run.Steps {
					if c := st.Probes; c != nil {
						add("  %s repetition %d step %d: %s; perf buffer (events %s): %d of %d records delivered, %d failed, %d lost (loss ratio %.4f); kernel misses %s; reader CPU %s",
							p.Name, run.Repetition, i+1, countsAndCheck(c), c.Events, c.Received, c.Attempted, c.Failed, c.LostSamples, c.LossRatio, missesText(c), readerText(c))
					}
					if st.Overhead != nil {
						add("  %s repetition %d step %d: %s", p.Name, run.Repetition, i+1, overheadText(st))
					}
				}
			}
		}
	}
	if len(lines) > 0 {
		w("\n%s\n", strings.Join(lines, "\n"))
	}
}

// searchLine states what a search found; a rate that is only a lower
// bound (lowerBound) says so with ">=", so it is never read as the proxy's
// capacity.
func searchLine(f *File, p *lab.ProxyResult, r *lab.Run) string {
	sr := r.Search
	bound := ""
	if lowerBound(p, sr) {
		bound = ">= "
	}
	return fmt.Sprintf("%s repetition %d: highest rate%s: %s%d/s after %d probes, stopped by %s: %s",
		p.Name, r.Repetition, objective(f), bound, sr.Rate, len(sr.Probes), stoppedBy(p, sr), sr.Reason)
}

// lowerBound reports whether a search's rate is only a lower bound of the
// row's capacity: the load generator or search.max stopped it, or a CPU
// other than the proxy's limited it (the rig's limit; for the direct row,
// which has no proxy, that limit is its capacity).
func lowerBound(p *lab.ProxyResult, sr *lab.SearchResult) bool {
	return sr.StoppedBy == lab.StoppedByLoadgen || sr.StoppedBy == lab.StoppedByMax ||
		p.Name != lab.Direct.Name && !sr.LimitedByProxy()
}

// objective is the search's objective as its probes were judged: on the
// p99 from the intended send time when the file has it, as newer files
// do, else on the service p99.
func objective(f *File) string {
	s := f.Scenario.Load.Search
	if s == nil {
		return ""
	}
	which := "p99"
	for _, p := range f.Proxies {
		for _, r := range p.Runs {
			for _, st := range r.Steps {
				if st.IntendedLatency != nil {
					which = "intended p99"
				}
			}
		}
	}
	return fmt.Sprintf(" with %s <= %s and success >= %s", which, s.SLOP99, lab.FormatValue(s.MinSuccess, "ratio"))
}

// minRuns is the smallest number of repetitions behind any row.
func minRuns(f *File) int {
	n := math.MaxInt
	for _, p := range f.Proxies {
		for _, s := range p.Summary {
			n = min(n, s.AchievedRate.N)
		}
	}
	return n
}

// intervalLegend explains the "median ±half-width" cells for the smallest
// number of repetitions in a table.
func intervalLegend(minN int) string {
	switch {
	case minN == math.MaxInt:
		return "medians over n repetitions"
	case minN < stats.MinN:
		return fmt.Sprintf("medians over n repetitions; with n < %d no interval can be given, so rows with fewer runs show the median alone", stats.MinN)
	}
	return fmt.Sprintf("median ±half-width of its %.0f%% bootstrap interval (%d resamples, seed %d) over n repetitions; with n = 3 that interval is the full range of the runs",
		100*stats.Level, stats.Resamples, stats.Seed)
}

// countsAndCheck is a step's accepts and connects, each with the count at
// the other end of the connections when there is one.
func countsAndCheck(c *lab.StepProbes) string {
	accepts, connects := fmt.Sprintf("%d accepts", c.Accepts), fmt.Sprintf("%d connects", c.Connects)
	if k := c.Check; k != nil {
		accepts += fmt.Sprintf(" (load generator opened %d)", k.LoadgenConnections)
		if k.UpstreamConnections != nil {
			connects += fmt.Sprintf(" (upstream accepted %d)", *k.UpstreamConnections)
		}
	}
	return accepts + ", " + connects
}

// readerText is the reader thread's CPU time, "-" where the file predates it.
func readerText(c *lab.StepProbes) string {
	if c.Predates() {
		return "-"
	}
	return fmt.Sprintf("%.3fs", c.ReaderCPUSeconds)
}

// missesText is the kernel's miss count, or "unknown" where it keeps none.
func missesText(c *lab.StepProbes) string {
	n, known := c.Missed()
	if !known {
		return "unknown"
	}
	return fmt.Sprint(n)
}

// sutWhere says where the proxy and the upstream ran when it was not this
// host.
func sutWhere(s *lab.SUTHost) string {
	switch {
	case s == nil:
		return ""
	case s.SameMachine:
		return fmt.Sprintf("; proxy and upstream on the SUT engine %s at %s (a network namespace of this host)", s.Engine, s.Address)
	}
	return fmt.Sprintf("; proxy and upstream on the SUT host %s (%s at %s), the load generator on this one", s.Name, s.Engine, s.Address)
}
