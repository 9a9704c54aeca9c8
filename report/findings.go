package report

import (
	"fmt"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// writeFindings is the headline of a report, in the order a reader of a
// proxy comparison asks: how much each row carries, how fast it answers
// below that, what it costs in CPU and memory, how large it is, what
// connection churn does, and the closed loop apart.
func writeFindings(w writer, files []*File, plots [][]Plot) {
	w("## Findings\n\n")
	byRole := func(rs ...role) (fs []*File, ps [][]Plot) {
		for i, f := range files {
			for _, r := range rs {
				if roleOf(f) == r {
					fs, ps = append(fs, f), append(ps, plots[i])
				}
			}
		}
		return fs, ps
	}
	caps, capPlots := byRole(roleCapacity)
	writeCapacityFindings(w, caps, capPlots, files)
	fr, frPlots := byRole(roleFractions)
	writeLatencyFindings(w, "Latency at fixed shares of capacity", fr, frPlots, files)
	st, stPlots := byRole(roleSteps)
	writeLatencyFindings(w, "Latency at fixed rates", st, stPlots, files)
	open, _ := byRole(roleSteps, roleFractions, roleChurn)
	writeCPUFindings(w, open)
	notClosed, _ := byRole(roleCapacity, roleSteps, roleFractions, roleChurn)
	writeMemoryFindings(w, notClosed)
	writeSizeFindings(w, files)
	churn, churnPlots := byRole(roleChurn)
	writeChurnFindings(w, churn, churnPlots)
	closed, closedPlots := byRole(roleClosed)
	writeClosedFindings(w, closed, closedPlots)
}

// label names a file within a findings section when the section holds
// more than one.
func label(w writer, f *File, several bool) {
	if several {
		w("**%s** (run `%s`)\n\n", f.Scenario.Name, f.RunID)
	}
}

func headlinePlots(w writer, plots []Plot) {
	for _, p := range plots {
		if p.Headline {
			w("![%s](%s)\n\n*%s* ([SVG](%s))\n\n", p.Title, p.PNG, p.Caption, p.SVG)
		}
	}
}

func writeCapacityFindings(w writer, files []*File, plots [][]Plot, all []*File) {
	if len(files) == 0 {
		return
	}
	w("### Capacity\n\n")
	for i, f := range files {
		label(w, f, len(files) > 1)
		cs := Capacities(f)
		w("The highest rate each row sustained%s, median across its searches with the %.0f%% bootstrap interval, and its ratio to the baselines with the interval of the ratio. `>=` marks a lower bound: the load generator, `search.max`, or a CPU other than the row's own (the rig) stopped a search.\n\n",
			objective(f), 100*stats.Level)
		w("| row | capacity, median [95%% interval] | per search | to nginx | to direct | searches stopped by |\n|---|--:|---|--:|--:|---|\n")
		for _, c := range cs {
			w("| %s | %s | %s | %s | %s | %s |\n", proxyLabel(f.Proxy(c.Proxy)), c.RateText(), c.perRun(), c.ToNginx, c.ToDirect, c.StoppedText())
		}
		w("\n")
		if slow, ok := slowestLab(cs); ok {
			w("The slowest lab proxy is **%s** at %s/s: steps given as shares of capacity (`of_capacity`) in a scenario run after this search are shares of that rate.\n\n", slow.Proxy, rate(slow.Stat.Median))
		}
		for _, c := range cs {
			if c.Bound {
				w("- %s: a search was stopped by the load generator or by search.max, so %s is a lower bound of its capacity, not the capacity itself.\n", c.Proxy, c.RateText())
			}
		}
		headlinePlots(w, plots[i])
	}
}

// capacityText says what a file's shares of capacity are shares of, and
// whether the search that measured it is in this report.
func capacityText(f *File, all []*File) string {
	c := f.Capacity
	if c == nil {
		return "The steps are shares of a capacity the results file does not record."
	}
	where := fmt.Sprintf("from results file `%s`, which is not part of this report", c.File)
	for _, g := range all {
		if g.RunID == c.RunID {
			where = "the search reported above"
		}
	}
	return fmt.Sprintf("Every share is of %d/s: the median capacity of **%s**, the slowest lab proxy, over %d searches of scenario `%s` (run `%s`, %s). Every row is measured at the same rates.",
		c.Rate, c.Proxy, c.Runs, c.Scenario, c.RunID, where)
}

// stepHead names a step in the findings: its share of capacity when it
// was given as one, its load otherwise.
func stepHead(f *File, step int, target float64) string {
	if st := f.Scenario.Load.Steps; step-1 < len(st) && st[step-1].OfCapacity > 0 {
		h := fmt.Sprintf("At %s of capacity (%s", st[step-1].OfCapacity, f.load(step, target))
		if c := f.Capacity; c != nil {
			h += ", the slowest lab proxy's, " + c.Proxy
		}
		return h + ")"
	}
	return fmt.Sprintf("Step %d (%s)", step, f.load(step, target))
}

func writeLatencyFindings(w writer, title string, files []*File, plots [][]Plot, all []*File) {
	var has []int
	for i, f := range files {
		if f.Steps() > 0 {
			has = append(has, i)
		}
	}
	if len(has) == 0 {
		return
	}
	w("### %s\n\n", title)
	for _, i := range has {
		f := files[i]
		label(w, f, len(has) > 1)
		if roleOf(f) == roleFractions {
			w("%s\n\n", capacityText(f, all))
		}
		cs := Compare(f)
		for step := 1; step <= f.Steps(); step++ {
			w("**%s**\n\n", stepHead(f, step, targetOf(f, step)))
			writeStepLatency(w, f, step)
			writeStepFindings(w, cs, step)
		}
		headlinePlots(w, plots[i])
	}
}

// targetOf is step's target rate as any row's summary has it.
func targetOf(f *File, step int) float64 {
	for _, p := range f.Proxies {
		if s := p.StepSummary(step); s != nil {
			return s.TargetRate
		}
	}
	return 0
}

// writeStepLatency is one step's p50 and p99 per row.
func writeStepLatency(w writer, f *File, step int) {
	w("| row | achieved rate/s | p50 | p99 | n |\n|---|--:|--:|--:|--:|\n")
	for _, p := range f.Proxies {
		s := p.StepSummary(step)
		if s == nil {
			continue
		}
		mark := ""
		if s.Saturated > 0 {
			mark = " ‡"
		}
		w("| %s | %s%s | %s | %s | %d |\n", proxyLabel(p), cell(s.AchievedRate, "/s"), mark, cell(s.P50, "us"), cell(s.P99, "us"), s.AchievedRate.N)
	}
	w("\n")
}

// writeStepFindings lists what the comparisons of step support.
func writeStepFindings(w writer, cs []Comparison, step int) {
	any := false
	for _, c := range cs {
		if c.Step == step {
			w("- %s\n", c.Finding())
			any = true
		}
	}
	if any {
		w("\n")
	}
}

// cpuPerResponse is the proxy's CPU milliseconds per 1000 successful
// responses in each run of step (1-based): per run, so that the figure
// has an interval like every other.
func cpuPerResponse(p *lab.ProxyResult, step int) []float64 {
	var v []float64
	for _, st := range lab.StepsAt(p.Runs, step-1) {
		ok := float64(st.Requests) * st.Success
		if r := st.Resources; r != nil && !r.NoProxy && ok > 0 {
			v = append(v, 1e6*r.ProxyCPUSeconds/ok)
		}
	}
	return v
}

// numText is "median ±half-width" with prec decimals; "-" without values.
func numText(s lab.Stat, prec int) string {
	if s.N == 0 {
		return "-"
	}
	v := fmt.Sprintf("%.*f", prec, s.Median)
	if s.HasInterval {
		v += fmt.Sprintf(" ±%.*f", prec, s.HalfWidth())
	}
	if s.Noisy() {
		v += " ⚠"
	}
	return v
}

func writeCPUFindings(w writer, files []*File) {
	head := false
	for _, f := range files {
		if !hasCPU(f) {
			continue
		}
		if !head {
			w("### CPU per request\n\nThe proxy process's CPU milliseconds per 1000 successful responses, median across runs ±half-width of its interval: what a request costs, whatever the rate. The direct baseline has no proxy process.\n\n")
			head = true
		}
		label(w, f, len(files) > 1)
		w("| row |")
		for step := 1; step <= f.Steps(); step++ {
			w(" %s |", stepHead(f, step, targetOf(f, step)))
		}
		w("\n|---|%s\n", strings.Repeat("--:|", f.Steps()))
		for _, p := range f.Proxies {
			w("| %s |", proxyLabel(p))
			for step := 1; step <= f.Steps(); step++ {
				w(" %s |", numText(lab.Describe(cpuPerResponse(p, step)), 3))
			}
			w("\n")
		}
		w("\n")
	}
}

func hasCPU(f *File) bool {
	for _, p := range f.Proxies {
		for step := 1; step <= f.Steps(); step++ {
			if len(cpuPerResponse(p, step)) > 0 {
				return true
			}
		}
	}
	return false
}

// peakRSSRuns is each finished run's resident-set high-water mark: the
// largest of its steps', since the mark only grows while the proxy runs.
func peakRSSRuns(p *lab.ProxyResult) []float64 {
	var v []float64
	for _, r := range p.Runs {
		if !r.Counts() {
			continue
		}
		peak, ok := 0.0, false
		for _, st := range r.Steps {
			if res := st.Resources; res != nil && !res.NoProxy {
				peak, ok = max(peak, float64(res.ProxyPeakRSSBytes)), true
			}
		}
		if ok {
			v = append(v, peak)
		}
	}
	return v
}

func writeMemoryFindings(w writer, files []*File) {
	rows := rowNames(files)
	cells := make([][]string, len(rows))
	any := false
	for i, name := range rows {
		for _, f := range files {
			c := "-"
			if p := f.Proxy(strings.TrimSuffix(name, " (baseline)")); p != nil {
				if v := peakRSSRuns(p); len(v) > 0 {
					c, any = cell(lab.Describe(v), "bytes"), true
				}
			}
			cells[i] = append(cells[i], c)
		}
	}
	if !any {
		return
	}
	w("### Memory (peak RSS)\n\nThe proxy process's resident-set high-water mark over a whole run, median across runs ±half-width of its interval.\n\n| row |")
	for _, f := range files {
		if len(files) == 1 {
			w(" peak RSS |")
			break
		}
		w(" %s |", f.Scenario.Name)
	}
	w("\n|---|%s\n", strings.Repeat("--:|", len(files)))
	for i, name := range rows {
		w("| %s | %s |\n", name, strings.Join(cells[i], " | "))
	}
	w("\n")
}

func writeSizeFindings(w writer, files []*File) {
	var lines []string
	for _, name := range rowNames(files) {
		for _, f := range files {
			p := f.Proxy(strings.TrimSuffix(name, " (baseline)"))
			if p == nil || (p.BinaryBytes == 0 && p.Image.SizeBytes == 0) {
				continue
			}
			bin, img := "-", "-"
			if p.BinaryBytes > 0 {
				bin = bytesBoth(p.BinaryBytes)
			}
			if p.Image.SizeBytes > 0 {
				img = bytesBoth(p.Image.SizeBytes)
			}
			lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s |", name, p.Language, bin, img))
			break
		}
	}
	if len(lines) == 0 {
		return
	}
	w("### Image and binary sizes\n\n| row | language | static binary | image |\n|---|---|--:|--:|\n%s\n\nEvery image is `FROM scratch` holding the static binary only; the direct baseline has none.\n\n", strings.Join(lines, "\n"))
}

func writeChurnFindings(w writer, files []*File, plots [][]Plot) {
	if len(files) == 0 {
		return
	}
	w("### Connection churn and probes\n\nA new connection for every request (keep-alive off): what the proxies' accept and connect paths cost, counted by the eBPF probes with the perf buffer's loss beside them. Each figure is the median across runs.\n\n")
	for i, f := range files {
		label(w, f, len(files) > 1)
		if f.Probes == nil || f.Probes.Mode == "" {
			w("No probe counts in this file (probes disabled or not attached).\n\n")
		} else {
			w("Perf buffer events: %s.\n\n", eventsText(f))
			w("| row | step | accepts | load generator connections | connects | upstream connections | events attempted | failed | loss ratio |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
			for _, p := range f.Proxies {
				for i := range p.Summary {
					writeChurnRow(w, f, p, &p.Summary[i])
				}
			}
			w("\n")
		}
		headlinePlots(w, plots[i])
	}
}

func writeChurnRow(w writer, f *File, p *lab.ProxyResult, s *lab.StepSummary) {
	c := probeColumns{steps: lab.StepsAt(p.Runs, s.Step-1)}
	w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", proxyLabel(p), f.stepLabel(s),
		c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Accepts), true }),
		c.count(func(sp *lab.StepProbes) (float64, bool) {
			return float64(checkOf(sp).LoadgenConnections), sp.Check != nil
		}),
		c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Connects), true }),
		c.count(func(sp *lab.StepProbes) (float64, bool) {
			if sp.Check == nil || sp.Check.UpstreamConnections == nil {
				return 0, false
			}
			return float64(*sp.Check.UpstreamConnections), true
		}),
		c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Attempted), true }),
		c.count(func(sp *lab.StepProbes) (float64, bool) { return float64(sp.Failed), true }),
		lossCell(s.ProbeLossRatio))
}

// checkOf is sp's connection check, a zero one when there is none.
func checkOf(sp *lab.StepProbes) lab.ConnectionCheck {
	if sp.Check == nil {
		return lab.ConnectionCheck{}
	}
	return *sp.Check
}

func writeClosedFindings(w writer, files []*File, plots [][]Plot) {
	if len(files) == 0 {
		return
	}
	w("### Closed loop\n\nEach connection sends its next request when the last answer arrived, so the load is a number of busy connections, not a rate: these figures say how fast that many connections are served, and are compared only with each other, never with the open-model figures above.\n\n")
	for i, f := range files {
		label(w, f, len(files) > 1)
		cs := Compare(f)
		for step := 1; step <= f.Steps(); step++ {
			w("**%s**\n\n", f.load(step, 0))
			w("| row | throughput/s | p50 | p99 | CPU ms per 1000 responses | n |\n|---|--:|--:|--:|--:|--:|\n")
			for _, p := range f.Proxies {
				if s := p.StepSummary(step); s != nil {
					w("| %s | %s | %s | %s | %s | %d |\n", proxyLabel(p), cell(s.Throughput, "/s"), cell(s.P50, "us"), cell(s.P99, "us"),
						numText(lab.Describe(cpuPerResponse(p, step)), 3), s.Throughput.N)
				}
			}
			w("\n")
			writeStepFindings(w, cs, step)
		}
		headlinePlots(w, plots[i])
	}
}
