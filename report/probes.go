package report

import (
	"fmt"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// eventsText says what the probes sent through the perf buffer.
func eventsText(f *File) string {
	switch e := f.Scenario.Probes.Events; e.Sample {
	case 0:
		return "none (the programs only count)"
	case 1:
		return "all (one record per event)"
	default:
		return fmt.Sprintf("one in %d per CPU", e.Sample)
	}
}

func writeProbes(w writer, f *File) {
	if f.Probes == nil {
		return
	}
	w("## eBPF counts and perf-buffer loss\n\n")
	if f.Probes.Mode == "" {
		w("No counts: the probes did not attach (%s).\n\n", oneLine(f.Probes.Error))
		return
	}
	w("Probes attached in **%s** mode", f.Probes.Mode)
	if len(f.Probes.Attempts) > 0 {
		var why []string
		for _, a := range f.Probes.Attempts {
			why = append(why, fmt.Sprintf("%s: %s", a.Mode, oneLine(a.Error)))
		}
		w(" (earlier modes failed: %s)", strings.Join(why, "; "))
	}
	w(". Perf buffer events: %s", eventsText(f))
	switch {
	case f.Probes.ReaderCPUs != "":
		w("; the reader thread ran on CPUs %s (the load generator's)", f.Probes.ReaderCPUs)
	case f.Probes.ReaderPinError != "":
		w("; the reader thread was not pinned (%s)", oneLine(f.Probes.ReaderPinError))
	}
	w(". Counted per proxy process. Each column is its own median across runs, so the columns of a row need not add up.\n\n")
	w("| proxy | step | accepts | load generator connections | connects | upstream connections | kernel misses | events attempted | received | failed | lost samples | loss ratio | reader CPU s |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range f.Proxies {
		for i := range p.Summary {
			s := &p.Summary[i]
			c := probeColumns{steps: lab.StepsAt(p.Runs, s.Step-1)}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", proxyLabel(p), f.stepLabel(s),
				c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Accepts), true }),
				c.count(func(sp *lab.StepProbes) (float64, bool) {
					if sp.Check == nil {
						return 0, false
					}
					return float64(sp.Check.LoadgenConnections), true
				}),
				c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Connects), true }),
				c.count(func(sp *lab.StepProbes) (float64, bool) {
					if sp.Check == nil || sp.Check.UpstreamConnections == nil {
						return 0, false
					}
					return float64(*sp.Check.UpstreamConnections), true
				}),
				c.misses(),
				c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Attempted), true }),
				c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Received), true }),
				c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Failed), true }),
				c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.LostSamples), true }),
				lossCell(s.ProbeLossRatio),
				c.seconds(func(sp *lab.StepProbes) (float64, bool) { return sp.ReaderCPUSeconds, !sp.Predates() }))
		}
	}
	w("\nAccepts: connections the proxy accepted from the load generator, beside the connections the load generator says it opened; connects: IPv4 connections the proxy opened to the upstream, beside the connections the upstream says it accepted. " +
		"The two of a pair must agree up to the step's failed requests (the notes flag any step where they do not). Over keep-alive, all stay near zero once the pools are warm. " +
		"Kernel misses: probe runs the kernel skipped (another BPF program running on the CPU, or a kretprobe out of instances): the counts may be short by as many; ? where this kernel does not report them. " +
		"Events attempted are the records sent through the perf buffer, as chosen by probes.events; loss ratio = failed / attempted, where a failure is a record the reader did not make room for in time. " +
		"Reader CPU: the perf buffer reader thread's CPU time, part of the load generator's.\n\n")
	writeOverhead(w, f)
}

// writeOverhead shows what the probes cost each proxy, from the steps
// measured twice (probes.overhead).
func writeOverhead(w writer, f *File) {
	if !f.Scenario.Probes.Overhead {
		return
	}
	w("### Observer effect\n\n")
	w("Every step also ran with the probes detached, right before or after it (alternating). Ratios are attached / detached, median across runs with their range: throughput below 1 and CPU per request above 1 are what the probes cost the proxy.\n\n")
	w("| proxy | step | throughput on/off | proxy CPU per request on/off | runs |\n|---|---|--:|--:|--:|\n")
	for _, p := range f.Proxies {
		for i := range p.Summary {
			s := &p.Summary[i]
			var tp, cpu []float64
			sat := false
			for _, st := range lab.StepsAt(p.Runs, s.Step-1) {
				o := st.Overhead
				if o == nil {
					continue
				}
				sat = sat || o.Off.LoadgenSaturated || st.LoadgenSaturated
				if o.ThroughputRatio != nil {
					tp = append(tp, *o.ThroughputRatio)
				}
				if o.CPUPerRequestRatio != nil {
					cpu = append(cpu, *o.CPUPerRequestRatio)
				}
			}
			mark := ""
			if sat {
				mark = " *"
			}
			w("| %s | %s%s | %s | %s | %d |\n", proxyLabel(p), f.stepLabel(s), mark, ratioCell(tp), ratioCell(cpu), max(len(tp), len(cpu)))
		}
	}
	w("\nA step marked * had a half, in some run, that did not deliver its target rate: its throughput ratio compares different loads.\n\n")
}

func ratioCell(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.3f", v[0])
	}
	return fmt.Sprintf("%.3f (%.3f to %.3f)", stats.Median(v), lo, hi)
}

// probeColumns renders one step's probe figures across its runs.
type probeColumns struct{ steps []*lab.Step }

func (c probeColumns) values(get func(*lab.StepProbes) (float64, bool)) []float64 {
	var v []float64
	for _, st := range c.steps {
		if st.Probes != nil {
			if x, ok := get(st.Probes); ok {
				v = append(v, x)
			}
		}
	}
	return v
}

func (c probeColumns) count(get func(*lab.StepProbes) (float64, bool)) string {
	v := c.values(get)
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", stats.Median(v))
}

func (c probeColumns) seconds(get func(*lab.StepProbes) (float64, bool)) string {
	v := c.values(get)
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", stats.Median(v))
}

// misses is the median of the kernel's miss counts, "?" if any run's
// kernel did not keep them.
func (c probeColumns) misses() string {
	unknown := false
	v := c.values(func(sp *lab.StepProbes) (float64, bool) {
		n, known := sp.Missed()
		unknown = unknown || !known
		return float64(n), known
	})
	if unknown {
		return "?"
	}
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", stats.Median(v))
}

// probeNotes are what a reader of a proxy's probe counts must know: every
// layer at which events went missing, and every step whose counts disagree
// with the independent count.
func probeNotes(p *lab.ProxyResult) []Note {
	var out []Note
	add := func(where, text string) { out = append(out, Note{Proxy: p.Name, Where: where, Text: text}) }
	var lost []string
	for _, r := range p.Runs {
		for i, st := range r.Steps {
			sp := st.Probes
			if sp == nil {
				continue
			}
			where := fmt.Sprintf("step %d repetition %d", i+1, r.Repetition)
			if n, _ := sp.Missed(); n > 0 {
				add(where, fmt.Sprintf("the kernel skipped the probes %d times (%s): accepts and connects may be short by as many", n, missParts(sp)))
			}
			if off := sp.AcceptsOff(); off > 0 {
				add(where, fmt.Sprintf("MISMATCH: the probes counted %d accepts, the load generator opened %d connections: %d beyond the %d failed requests that could explain it%s",
					sp.Accepts, sp.Check.LoadgenConnections, off, sp.Check.Tolerance, missCause(sp)))
			}
			if off := sp.ConnectsOff(); off > 0 {
				add(where, fmt.Sprintf("MISMATCH: the probes counted %d connects, the upstream accepted %d connections: %d beyond the %d failed requests that could explain it%s",
					sp.Connects, *sp.Check.UpstreamConnections, off, sp.Check.Tolerance, missCause(sp)))
			}
			if sp.Check != nil && sp.Check.UpstreamError != "" {
				add(where, "no upstream count to check the connects against: "+oneLine(sp.Check.UpstreamError))
			}
			if sp.Failed > 0 {
				lost = append(lost, fmt.Sprintf("step %d repetition %d: %d of %d", i+1, r.Repetition, sp.Failed, sp.Attempted))
			}
		}
	}
	if len(lost) > 0 {
		add("", "the perf buffer lost records the reader did not make room for in time ("+strings.Join(lost, "; ")+"); the accept and connect counts are exact regardless")
	}
	return out
}

// probeRunNotes are the run's: miss counts the kernel does not keep, and a
// reader that could not be pinned.
func probeRunNotes(f *File) []Note {
	if f.Probes == nil || f.Probes.Mode == "" {
		return nil
	}
	var out []Note
	seen := map[string]bool{}
	var why []string
	for _, p := range f.Proxies {
		for _, r := range p.Runs {
			for _, st := range r.Steps {
				if sp := st.Probes; sp != nil && sp.MissesUnknown != "" && !seen[sp.MissesUnknown] {
					seen[sp.MissesUnknown] = true
					why = append(why, sp.MissesUnknown)
				}
			}
		}
	}
	if len(why) > 0 {
		out = append(out, Note{Text: "events the kernel skipped are not counted here, so a shortfall in accepts or connects would go unexplained: " + strings.Join(why, "; ")})
	}
	if f.Probes.ReaderPinError != "" {
		out = append(out, Note{Text: "the perf buffer reader was not pinned to the load generator's CPUs and may have run on the proxy's: " + f.Probes.ReaderPinError})
	}
	return out
}

func missParts(sp *lab.StepProbes) string {
	var parts []string
	if sp.ProgMisses != nil && *sp.ProgMisses > 0 {
		parts = append(parts, fmt.Sprintf("%d program runs skipped", *sp.ProgMisses))
	}
	if sp.KretprobeMisses != nil && *sp.KretprobeMisses > 0 {
		parts = append(parts, fmt.Sprintf("%d kretprobe returns missed", *sp.KretprobeMisses))
	}
	return strings.Join(parts, ", ")
}

// missCause names what the kernel says it missed, as a possible cause of a
// mismatch.
func missCause(sp *lab.StepProbes) string {
	n, known := sp.Missed()
	switch {
	case n > 0:
		return fmt.Sprintf(" (the kernel's %d misses may)", n)
	case !known:
		return " (the kernel's miss counts are unknown here)"
	}
	return ""
}

// overheadText is one step's observer-effect ratios for the terminal.
func overheadText(st *lab.Step) string {
	o := st.Overhead
	ratio := func(r *float64) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", *r)
	}
	first := "attached first"
	if o.OffFirst {
		first = "detached first"
	}
	return fmt.Sprintf("probes attached/detached: throughput %s, proxy CPU per request %s (%s)", ratio(o.ThroughputRatio), ratio(o.CPUPerRequestRatio), first)
}
