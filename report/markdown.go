package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// NewMarkdown renders report.md for f alone, in the order a report of
// several files has; plots are the image files (relative to the report) to
// show, in order.
func NewMarkdown(f *File, plots []Plot) Reporter {
	return NewSetMarkdown([]*File{f}, nil, [][]Plot{plots})
}

func writeMethod(w writer, files []*File) {
	w("## How to read this report\n\n")
	w("- A figure is the median across repetitions (one repetition = one run of every step against a fresh proxy container). ")
	w("`±` is half the width of the %.0f%% percentile-bootstrap interval of that median (%d resamples, seed %d: the same file always gives the same interval); `[lo, hi]` is that interval itself. ",
		100*stats.Level, stats.Resamples, stats.Seed)
	w("With fewer than %d runs no interval can be given and the median stands alone. ", stats.MinN)
	w("With 3 runs the interval is simply the range of the runs, and covers the true median only 75%% of the time, not 95%%.\n")
	w("- Differences between proxies are tested with benchstat's two-sided **Mann-Whitney U test** (golang.org/x/perf/benchmath; exact up to 25-50 runs per side) on the per-run values, at α = %.2f. ", stats.Alpha)
	w("A proxy is called better only when the test is significant **and** the two intervals do not overlap; otherwise the difference is reported as not significant, however large the medians look.\n")
	var said []string
	for _, f := range files {
		if note := MinPNote(f); note != "" && !slices.Contains(said, note) {
			said = append(said, note)
			w("- **%s**\n", note)
		}
	}
	w("- A figure whose runs disagree by a coefficient of variation (standard deviation / mean) above %.0f%% is flagged as noisy.\n", 100*lab.NoiseCV)
	w("- A step whose target rate was not delivered (every connection busy, or the load generator short of CPU; the results file says which) is no measurement at that rate: it is marked and never enters a comparison.\n")
	w("- Baselines (`direct`: load straight at the upstream; `nginx`) are shown for scale and never called the best.\n")
	w("- Latency is what the load generator saw, for every request including errors: **service** latency from send to last byte, and, for paced steps, **intended** latency from the request's pacer slot, which also counts the time it waited for a free connection (what a user would have seen). Each table says which it is.\n")
	roles := map[role]bool{}
	for _, f := range files {
		roles[roleOf(f)] = true
	}
	if roles[roleCapacity] {
		w("- A row's **capacity** is the highest rate its saturation search found that still met the scenario's objective, median across searches; its ratio to a baseline has the bootstrap interval of the ratio (both sides resampled). `>=` marks a lower bound: the load generator or `search.max`, not the row, stopped a search.\n")
	}
	if roles[roleFractions] {
		w("- Steps given as a **share of capacity** run every row at the same rates: that share of the slowest lab proxy's median capacity, so that no lab proxy is measured beyond what it holds.\n")
	}
	if roles[roleClosed] {
		w("- A **closed loop** keeps each connection busy, its next request sent when the last answer arrived: it measures how fast a fixed number of connections are served, not latency at a given rate, and its figures are never set beside the open model's.\n")
	}
	w("\n")
}

// cell renders a Stat for a table, marking noisy figures.
func cell(s lab.Stat, unit string) string {
	v := lab.FormatStat(s, unit)
	if s.Noisy() {
		v += " ⚠"
	}
	return v
}

func cv(s lab.Stat) string {
	if math.IsNaN(s.CV) || s.N < 2 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*s.CV)
}

func proxyLabel(p *lab.ProxyResult) string {
	if p.Baseline {
		return p.Name + " (baseline)"
	}
	return p.Name
}

func (f *File) stepLabel(s *lab.StepSummary) string {
	l := fmt.Sprintf("%d (%s)", s.Step, f.load(s.Step, s.TargetRate))
	if s.Saturated > 0 {
		l += " ‡"
	}
	return l
}

func writeThroughput(w writer, f *File) {
	if f.Steps() == 0 {
		return
	}
	w("## Throughput\n\n")
	w("| proxy | step | achieved rate/s | CV | throughput/s | CV | success | n |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range f.Proxies {
		for i := range p.Summary {
			s := &p.Summary[i]
			w("| %s | %s | %s | %s | %s | %s | %s | %d |\n", proxyLabel(p), f.stepLabel(s),
				cell(s.AchievedRate, "/s"), cv(s.AchievedRate), cell(s.Throughput, "/s"), cv(s.Throughput),
				lab.FormatStat(s.Success, "ratio"), s.AchievedRate.N)
		}
	}
	w("\nAchieved rate: requests sent per second; throughput: successful responses per second. ⚠ = CV above %.0f%%; ‡ = load generator saturated in at least one run.\n\n", 100*lab.NoiseCV)
}

func writeLatency(w writer, f *File) {
	if f.Steps() == 0 {
		return
	}
	w("## Latency percentiles\n\n")
	w("| proxy | step | p50 | p90 | p99 | CV p99 | p99.9 | CV p99.9 | max |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range f.Proxies {
		for i := range p.Summary {
			s := &p.Summary[i]
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", proxyLabel(p), f.stepLabel(s),
				cell(s.P50, "us"), cell(s.P90, "us"), cell(s.P99, "us"), cv(s.P99), cell(s.P999, "us"), cv(s.P999), cell(s.Max, "us"))
		}
	}
	w("\nService latency: from each request's send to the last byte of its answer. Per run, percentiles come from the run's HDR histogram (3 significant digits); the table gives their median across runs.\n\n")
	writeIntendedLatency(w, f)
}

// writeIntendedLatency is the latency a user would have seen: from each
// request's intended send time, its pacer slot, so that the time a
// request waited for a free connection counts. Only paced steps have it.
func writeIntendedLatency(w writer, f *File) {
	has := false
	for _, p := range f.Proxies {
		for _, s := range p.Summary {
			has = has || s.IntendedP99.N > 0
		}
	}
	if !has {
		return
	}
	w("### Latency from the intended send time\n\n")
	w("| proxy | step | p50 | p90 | p99 | CV p99 | p99.9 | max | p99 intended / service |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range f.Proxies {
		for i := range p.Summary {
			s := &p.Summary[i]
			if s.IntendedP99.N == 0 {
				continue
			}
			ratio := "-"
			if s.P99.Median > 0 {
				ratio = fmt.Sprintf("%.2f×", s.IntendedP99.Median/s.P99.Median)
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", proxyLabel(p), f.stepLabel(s),
				cell(s.IntendedP50, "us"), cell(s.IntendedP90, "us"), cell(s.IntendedP99, "us"), cv(s.IntendedP99),
				cell(s.IntendedP999, "us"), cell(s.IntendedMax, "us"), ratio)
		}
	}
	w("\nFrom each request's pacer slot, (n+1)/rate, to the last byte of its answer: the time a request waited for a free connection, and how late the pacer woke, count too (coordinated omission corrected, as wrk2, Nighthawk and oha report). The search's SLO is judged on this p99. On a target that keeps up the two differ by the pacer's wake-up lateness, a fraction of a millisecond.\n\n")
}

func writeComparisons(w writer, f *File) {
	cs := Compare(f)
	if len(cs) == 0 {
		return
	}
	hasDirect := f.Proxy(lab.Direct.Name) != nil
	w("## Comparisons\n\n")
	w("Each proxy against the best of its step on each figure: ratio of medians with its %.0f%% bootstrap interval (both samples resampled, %d resamples), and the two-sided Mann-Whitney U p-value of the per-run values.\n\n",
		100*stats.Level, stats.Resamples)
	head := "| step | figure | proxy | median | ratio to best | p (Mann-Whitney U) | verdict |"
	rule := "|---|---|---|--:|--:|--:|---|"
	if hasDirect {
		head += " ratio to direct |"
		rule += "--:|"
	}
	w("%s\n%s\n", head, rule)
	for _, c := range cs {
		for _, r := range c.Rows {
			ratio := "-"
			if !math.IsNaN(r.Ratio) {
				ratio = fmt.Sprintf("%.3f×", r.Ratio)
				if r.HasRatioIV {
					ratio += fmt.Sprintf(" [%.3f, %.3f]", r.RatioIV.Lo, r.RatioIV.Hi)
				}
			}
			p := "-"
			if r.HasTest {
				p = fmt.Sprintf("%.3f", r.Test.P)
				if !r.Test.Exact {
					p += " (normal approx.)"
				}
			}
			verdict := r.Verdict
			if r.Verdict == VerdictBest && c.Winner {
				verdict = "**best, significantly**"
			}
			w("| %d (%s) | %s | %s | %s | %s | %s | %s |", c.Step, f.load(c.Step, c.TargetRate), c.Metric.Label, proxyLabel(f.Proxy(r.Proxy)),
				lab.FormatStat(r.Stat, c.Metric.Unit), ratio, p, verdict)
			if hasDirect {
				d := "-"
				if !math.IsNaN(r.ToDirect) {
					d = fmt.Sprintf("%.3f×", r.ToDirect)
				}
				w(" %s |", d)
			}
			w("\n")
		}
	}
	w("\n")
}

func writeResources(w writer, f *File) {
	if f.Steps() == 0 {
		return
	}
	hasLoadgen := false
	for _, p := range f.Proxies {
		for step := 1; step <= f.Steps(); step++ {
			hasLoadgen = hasLoadgen || len(loadgenCPU(p, step)) > 0
		}
	}
	w("## Resources\n\n")
	head, rule := "| proxy | step | proxy CPU s | CPU ms per 1000 responses | peak RSS |", "|---|---|--:|--:|--:|"
	if hasLoadgen {
		head, rule = head+" load generator CPU s |", rule+"--:|"
	}
	w("%s\n%s\n", head, rule)
	for _, p := range f.Proxies {
		for i := range p.Summary {
			s := &p.Summary[i]
			per := "-"
			if s.CPUSeconds.N > 0 && s.Throughput.Median > 0 {
				d := f.stepDuration(s.Step)
				if d > 0 {
					per = fmt.Sprintf("%.3f", 1e6*s.CPUSeconds.Median/(s.Throughput.Median*d))
				}
			}
			w("| %s | %s | %s | %s | %s |", proxyLabel(p), f.stepLabel(s), cell(s.CPUSeconds, "s"), per, cell(s.PeakRSSBytes, "bytes"))
			if hasLoadgen {
				w(" %s |", lab.FormatStat(lab.Describe(loadgenCPU(p, s.Step)), "s"))
			}
			w("\n")
		}
	}
	w("\nCPU s: the proxy process's CPU time during the step; peak RSS: its resident-set high-water mark since it started (so it only grows from step to step).\n\n")
	writeParties(w, f)
}

// writeParties is every party's share of its cpuset, each core's busy
// share and the interference per step, medians across the runs that count:
// which party was near its limit, and whether the host was quiet. A
// searched file probes other rates in each run, so its steps are not
// lined up and its searches say what limited them instead.
func writeParties(w writer, f *File) {
	if f.Scenario.Load.Search != nil {
		return
	}
	var names []string
	var cpus []int
	for _, p := range f.Proxies {
		for _, r := range p.Runs {
			for _, st := range r.Steps {
				if res := st.Resources; res != nil {
					for _, pt := range res.Parties {
						if !slices.Contains(names, pt.Name) {
							names = append(names, pt.Name)
						}
					}
					for _, c := range res.Cores {
						if !slices.Contains(cpus, c.CPU) {
							cpus = append(cpus, c.CPU)
						}
					}
				}
			}
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(cpus)
	w("### CPU of every party\n\n| proxy | step |")
	for _, n := range names {
		w(" %s |", n)
	}
	for _, c := range cpus {
		w(" core %d busy |", c)
	}
	w(" outside the run |\n|---|---|%s\n", strings.Repeat("--:|", len(names)+len(cpus)+1))
	for _, p := range f.Proxies {
		for i := range p.Summary {
			steps := lab.StepsAt(p.Runs, p.Summary[i].Step-1)
			w("| %s | %s |", proxyLabel(p), f.stepLabel(&p.Summary[i]))
			for _, n := range names {
				w(" %s |", shareCell(steps, func(res *lab.Resources) (float64, bool) {
					j := slices.IndexFunc(res.Parties, func(pt lab.Party) bool { return pt.Name == n })
					return res.Parties[max(j, 0)].Share, j >= 0
				}))
			}
			for _, c := range cpus {
				w(" %s |", shareCell(steps, func(res *lab.Resources) (float64, bool) {
					j := slices.IndexFunc(res.Cores, func(ct lab.CoreTime) bool { return ct.CPU == c })
					if j < 0 || res.IntervalSeconds <= 0 {
						return 0, false
					}
					ct := res.Cores[j]
					return (ct.Busy + ct.IRQ + ct.Steal) / res.IntervalSeconds, true
				}))
			}
			w(" %s |\n", shareCell(steps, func(res *lab.Resources) (float64, bool) {
				if res.Interference == nil {
					return 0, false
				}
				return *res.Interference, true
			}))
		}
	}
	w("\nEach party's CPU time as a share of its cpuset, each core's busy time (tasks, interrupts, steal) as a share of the step (the kernel's tick samples: at light, periodic loads they read low or high, near a limit they agree with the parties'), and what processes outside the run used of the run's cores, as a share of one core (exact); medians across the runs that count. A party or core near 100%% was the limit; above %.0f%% outside the run, a run is disturbed and counts nowhere.\n\n", 100*lab.DisturbedThreshold)
}

// shareCell is the median of get over the steps that have it, as a
// percentage.
func shareCell(steps []*lab.Step, get func(*lab.Resources) (float64, bool)) string {
	var v []float64
	for _, st := range steps {
		if st.Resources != nil {
			if x, ok := get(st.Resources); ok {
				v = append(v, x)
			}
		}
	}
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*stats.Median(v))
}

// stepDuration is the planned duration of a step in seconds; 0 when the
// scenario has no such step (a search).
func (f *File) stepDuration(step int) float64 {
	if st := f.Scenario.Load.Steps; step-1 < len(st) {
		return st[step-1].Duration.D().Seconds()
	}
	return 0
}

func writeSizes(w writer, f *File) {
	w("## Image and binary sizes\n\n| proxy | language | static binary | image | image id | conformance |\n|---|---|--:|--:|---|---|\n")
	for _, p := range f.Proxies {
		conf := "-"
		if v := p.Verified; v != nil {
			switch {
			case v.Skipped:
				conf = "not verified"
			default:
				conf = fmt.Sprintf("%d/%d cases", v.Cases-len(v.Failed), v.Cases)
			}
		}
		bin, img := "-", "-"
		if p.BinaryBytes > 0 {
			bin = bytesBoth(p.BinaryBytes)
		}
		if p.Image.SizeBytes > 0 {
			img = bytesBoth(p.Image.SizeBytes)
		}
		w("| %s | %s | %s | %s | `%s` | %s |\n", proxyLabel(p), p.Language, bin, img, short(p.Image.ID), conf)
	}
	if u := f.Upstream; u != nil {
		w("| upstream (origin) | go | - | %s | `%s` | - |\n", bytesBoth(u.SizeBytes), short(u.ID))
	}
	w("\nEvery image is `FROM scratch` holding the static binary only.\n\n")
}

func bytesBoth(n int64) string {
	return fmt.Sprintf("%s (%d B)", lab.FormatValue(float64(n), "bytes"), n)
}

func lossCell(s lab.Stat) string {
	if s.N == 0 {
		return "-"
	}
	v := fmt.Sprintf("%.4f", s.Median)
	if s.HasInterval {
		v += fmt.Sprintf(" ±%.4f", s.HalfWidth())
	}
	return v
}

func writeSearches(w writer, f *File) {
	has := false
	for _, p := range f.Proxies {
		has = has || len(searches(p)) > 0
	}
	if !has {
		return
	}
	w("## Saturation search\n\nThe highest rate each run sustained within the scenario's objective, and what stopped the search: `proxy` (the proxy missed the objective), `loadgen` (the load generator could not go faster: the proxy's limit is higher than shown), `max` (the scenario's ceiling).\n\n")
	w("| proxy | highest rate/s | per run | stopped by | probes tried |\n|---|--:|---|---|--:|\n")
	for _, p := range f.Proxies {
		runs := searches(p)
		if len(runs) == 0 {
			continue
		}
		var rates []float64
		var per, by []string
		probes := 0
		for _, r := range runs {
			rates = append(rates, float64(r.Search.Rate))
			per = append(per, rate(float64(r.Search.Rate)))
			by = append(by, stoppedBy(p, r.Search))
			probes += len(r.Search.Probes)
		}
		w("| %s | %s | %s | %s | %d |\n", proxyLabel(p), lab.FormatStat(lab.Describe(rates), "/s"), strings.Join(per, ", "), strings.Join(by, ", "), probes)
	}
	w("\n")
	for _, p := range f.Proxies {
		for _, r := range searches(p) {
			if r.Search.StoppedBy == lab.StoppedByLoadgen {
				w("- %s repetition %d: stopped by the load generator, not the proxy: %s\n", p.Name, r.Repetition, oneLine(r.Search.Reason))
			}
		}
	}
	w("\n")
}

// stoppedBy names what ended a search; the direct row has no proxy, so
// there the limit is the upstream and the host under it.
// stoppedBy says what ended a search: which side missed the objective,
// and, when the file attributes it, whose CPU was at its limit. A search
// limited by anything but the proxy's own CPU found the rig's limit, not
// the proxy's.
func stoppedBy(p *lab.ProxyResult, s *lab.SearchResult) string {
	by := s.StoppedBy
	if p.Name == lab.Direct.Name && s.StoppedBy == lab.StoppedByProxy {
		by = "upstream (no proxy)"
	}
	switch {
	case s.LimitedBy == "" || s.StoppedBy == lab.StoppedIncomplete:
	case s.LimitedBy == lab.NotAttributed:
		by += ", " + lab.NotAttributed
	default:
		by += ", limited by " + s.LimitedBy
	}
	return by
}

// KV is one line of the environment table.
type KV struct{ Key, Value string }

// Environment lists what decides whether two results files are comparable,
// in a fixed order so that two files can be compared line by line.
func Environment(r *lab.Results) []KV {
	h := r.Host
	// Files written before these fields existed have no summary method
	// either; their absence there means "not recorded", not "not exposed".
	recorded := r.SummaryMethod != nil
	unknown := "not recorded in this file"
	gov, mhz := unknown, unknown
	if recorded {
		gov = "not exposed by the kernel (no cpufreq)"
		mhz = "-"
	}
	if h.CPUGovernor != "" {
		gov = h.CPUGovernor
	}
	if h.CPUMHz > 0 {
		mhz = fmt.Sprintf("%.0f MHz", h.CPUMHz)
	}
	out := []KV{
		{"kernel", h.Kernel},
		{"CPU", h.CPUModel},
		{"CPU clock at start", mhz},
		{"frequency governor", gov},
		{"cores", fmt.Sprint(h.Cores)},
		{"memory", lab.FormatValue(float64(h.MemoryBytes), "bytes")},
		{"Docker", h.DockerVersion},
	}
	out = append(out, sutEnvironment(h.SUT)...)
	var tc []string
	for k := range r.Toolchains {
		tc = append(tc, k)
	}
	slices.Sort(tc)
	for _, k := range tc {
		out = append(out, KV{"toolchain " + k, r.Toolchains[k]})
	}
	lab := unknown
	if recorded {
		lab = "not a git checkout"
	}
	if s := r.Source; s != nil {
		lab = s.Commit
		if s.Dirty {
			lab += " (with uncommitted changes)"
		}
	}
	out = append(out, KV{"lab commit", lab}, KV{"proxylab version", r.ToolVersion})
	for _, p := range r.Proxies {
		out = append(out, KV{"image " + p.Name, p.Image.ID})
	}
	if r.Upstream != nil {
		out = append(out, KV{"image upstream", r.Upstream.ID})
	}
	pl := r.Placement
	where := ""
	if h.SUT != nil && !h.SUT.SameMachine {
		where = " (on the SUT host; the load generator's on this one)"
	}
	out = append(out, KV{"placement", fmt.Sprintf("proxy CPU %s, upstream CPU %s, load generator CPU %s, proxy memory %s%s",
		pl.ProxyCPUs, pl.UpstreamCPUs, pl.LoadgenCPUs, fmtBytesOrDash(pl.ProxyMemory), where)})
	probes := "disabled"
	if r.Probes != nil {
		probes = r.Probes.Mode
		if probes == "" {
			probes = "not attached"
		}
	}
	out = append(out, KV{"eBPF probes", probes}, KV{"calibration", calibrationText(r.Calibration)})
	return out
}

// sutEnvironment describes the SUT host, when the run had one: the
// machine, the way to it and where the figures taken there came from.
func sutEnvironment(s *lab.SUTHost) []KV {
	if s == nil {
		return nil
	}
	h := s.Host
	machine := fmt.Sprintf("%s (%s, %s): kernel %s, %d cores, %s, Docker %s", s.Name, s.Architecture, s.OS, h.Kernel, h.Cores,
		lab.FormatValue(float64(h.MemoryBytes), "bytes"), h.DockerVersion)
	if s.SameMachine {
		machine += "; the same kernel as the load generator's host (a network namespace of it)"
	}
	p := s.Path
	path := fmt.Sprintf("%s from %s on %s (MTU %d), TCP connect %s", s.Address, p.LocalAddress, p.Interface, p.MTU,
		lab.FormatValue(p.ConnectMicros, "us"))
	return []KV{{"SUT host", machine}, {"SUT engine", s.Engine}, {"network path", path}, {"SUT readings", s.Readings}}
}

// calibrationText is what the host's calibration measured.
func calibrationText(c *lab.Calibration) string {
	switch {
	case c == nil:
		return "not recorded in this file"
	case c.Error != "":
		return "failed: " + c.Error
	}
	return fmt.Sprintf("%.0f requests/s, p99 %s, load generator %.2f CPU s (no proxy, closed loop, %d connections, %.0f s)",
		c.AchievedRate, lab.FormatValue(float64(c.P99), "us"), c.LoadgenCPUSeconds, c.Connections, c.Duration)
}

func fmtBytesOrDash(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return lab.FormatValue(float64(n), "bytes")
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return mdEscape(s)
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	if id == "" {
		return "-"
	}
	return id
}

func rate(r float64) string {
	if r == math.Trunc(r) {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}
