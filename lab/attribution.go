package lab

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// DisturbedThreshold is the interference (CPU time used on the run's cores
// by anything outside the run, as a share of one core) above which a step
// is disturbed. Quiet steps on loopback measure 0-2.5% of a core (the
// kernel's housekeeping, and the tick); 5% leaves room for the 10 ms
// tick /proc counts in and for the few milliseconds between reading the
// parties and the cores, and is still well below what a neighbour's build
// or benchmark takes.
const DisturbedThreshold = 0.05

// LimitShare is the share of its CPUs at which a party, or a core, counts
// as at its limit. Not 1: the kernel's accounting is sampled at the tick,
// and a process at its limit still leaves slivers of idle time while it
// waits on the other parties.
const LimitShare = 0.90

// NotAttributed is the attribution of a step in which no party and no core
// was at its limit.
const NotAttributed = "not attributed"

// Interference is what InterferenceOf found outside the run in one step.
type Interference struct {
	Share  float64             // of one core, over every group
	Groups []InterferenceGroup // the run's cores, grouped by the parties sharing them
	// Processes are the outside processes that used the cores, largest
	// first, when the step read them (OutsideInterference).
	Processes []OutsideProcess
	Steal     float64 // seconds, with Processes
}

// OutsideInterference is the interference of a step from the processes
// outside the run that ran on its cores (their exact CPU seconds, see
// processTimes) plus the time the hypervisor stole from the cores, as a
// share of one core. It replaces the per-core difference of
// InterferenceOf, which compares tick samples with exact times and so
// misreads light periodic loads by tens of percent of a core either way.
func OutsideInterference(outside []OutsideProcess, cores []CoreTime, interval float64) Interference {
	in := Interference{Processes: outside}
	used := 0.0
	for _, p := range outside {
		used += p.CPUSeconds
	}
	for _, c := range cores {
		in.Steal += c.Steal
	}
	in.Steal = roundTick(in.Steal)
	if interval > 0 {
		in.Share = roundShare((used + in.Steal) / interval)
	}
	return in
}

// InterferenceGroup is a set of the run's cores that parties share (the
// connected parts of the parties' cpusets: with the two-core placement,
// core 0 with the upstream and the load generator, core 1 with the proxy).
// A party's time cannot be split between the cores of its cpuset, so
// outside time is only known per group.
type InterferenceGroup struct {
	CPUs    []int
	Parties []string
	Outside float64 // seconds of CPU used by others than the parties, at least 0
	Steal   float64 // seconds the hypervisor took from these cores
}

// InterferenceOf computes the interference of a step from its readings:
// per group of cores, the time the cores spent running tasks less the
// parties' CPU seconds (floored at 0: the tick sampling of the two differs
// by a few ticks), plus the time stolen from the cores, summed over the
// groups and divided by the interval.
//
// Interrupts and softirqs count as the run's own. All its traffic is on
// loopback, so nearly all of that time is the parties' networking: sending
// on loopback runs the receiving side's softirq on the sender's CPU, and
// what the kernel defers goes to the CPU's ksoftirqd. How they enter the
// sum depends on the kernel's accounting (irqInTasks, see Resources):
//   - when the kernel charges irq time to the interrupted task as well
//     (tick accounting, this lab's default host), the parties' seconds
//     already hold their softirq work, so the cores' side is busy + irq,
//     less the ksoftirqd threads' time, which is the deferred rest of it;
//   - otherwise irq time is in no task's seconds and the cores' side is
//     busy alone; ksoftirqd's softirq time is then in the irq columns too.
//
// Either way an irq column is never interference by itself. Measured on
// this lab's two-core host (tick accounting) with real loopback HTTP at
// 1000-12000/s in 2 s steps, the irq columns held 0.1-0.4 s per step,
// ksoftirqd at most 0.01 s, and quiet steps came out at 0-2.5% of a core;
// counting the irq columns as an outsider's would have put nearly every
// step over DisturbedThreshold.
func InterferenceOf(parties []Party, cores []CoreTime, interval float64, irqInTasks bool) Interference {
	var in Interference
	for _, g := range coreGroups(parties, cores) {
		var onCores, used, steal float64
		for _, c := range cores {
			if !slices.Contains(g.CPUs, c.CPU) {
				continue
			}
			onCores += c.Busy
			if irqInTasks {
				onCores += c.IRQ - c.Softirqd
			}
			steal += c.Steal
		}
		for _, p := range parties {
			if slices.Contains(g.Parties, p.Name) {
				used += p.CPUSeconds
			}
		}
		g.Outside, g.Steal = roundTick(max(0, onCores-used)), roundTick(steal)
		in.Groups = append(in.Groups, g)
		if interval > 0 {
			in.Share += (g.Outside + g.Steal) / interval
		}
	}
	in.Share = roundShare(in.Share)
	return in
}

// coreGroups joins the cores that a party's cpuset spans into one group,
// and gives each group the parties on it. A party whose cpuset holds none
// of the cores is in no group; a core no party uses is a group of its own.
func coreGroups(parties []Party, cores []CoreTime) []InterferenceGroup {
	group := map[int]int{} // CPU -> group number
	for i, c := range cores {
		group[c.CPU] = i
	}
	join := func(a, b int) {
		for c, g := range group {
			if g == b {
				group[c] = a
			}
		}
	}
	for _, p := range parties {
		first := -1
		for _, c := range partyCPUs(p) {
			g, ok := group[c]
			switch {
			case !ok:
			case first < 0:
				first = g
			case g != first:
				join(first, g)
			}
		}
	}
	var out []InterferenceGroup
	for _, c := range cores {
		i := slices.IndexFunc(out, func(g InterferenceGroup) bool { return group[g.CPUs[0]] == group[c.CPU] })
		if i < 0 {
			out = append(out, InterferenceGroup{})
			i = len(out) - 1
		}
		out[i].CPUs = append(out[i].CPUs, c.CPU)
	}
	for i := range out {
		for _, p := range parties {
			if slices.ContainsFunc(partyCPUs(p), func(c int) bool { return slices.Contains(out[i].CPUs, c) }) {
				out[i].Parties = append(out[i].Parties, p.Name)
			}
		}
	}
	return out
}

// processesText names the largest outside users of the run's cores and
// the steal: "something outside the run used 31% of a core (sh 0.90 s,
// dockerd 0.02 s; 1% stolen by the hypervisor): above the 5% allowed".
func processesText(in Interference, interval float64) string {
	var who []string
	for i, p := range in.Processes {
		if i == 3 {
			who = append(who, fmt.Sprintf("%d more", len(in.Processes)-i))
			break
		}
		who = append(who, fmt.Sprintf("%s (pid %d) %.2f s", p.Name, p.PID, p.CPUSeconds))
	}
	if in.Steal > 0 {
		who = append(who, fmt.Sprintf("%s stolen by the hypervisor", pct(in.Steal/interval)))
	}
	return fmt.Sprintf("something outside the run used %s of a core (%s): above the %s allowed",
		pct(in.Share), strings.Join(who, "; "), pct(DisturbedThreshold))
}

// partyCPUs is a party's cpuset as CPU numbers; a cpuset that does not
// parse holds none.
func partyCPUs(p Party) []int {
	cpus, _ := ParseCPUSet(p.CPUs)
	return cpus
}

// Disturbance says whether in is above DisturbedThreshold and, if so, how
// much was used outside the run and on which cores.
func Disturbance(in Interference, interval float64) (bool, string) {
	if in.Share <= DisturbedThreshold || interval <= 0 {
		return false, ""
	}
	if in.Processes != nil {
		return true, processesText(in, interval)
	}
	var where []string
	for _, g := range in.Groups {
		if g.Outside+g.Steal <= 0 {
			continue
		}
		s := fmt.Sprintf("%s on %s", pct((g.Outside+g.Steal)/interval), coresName(g.CPUs, g.Parties))
		if g.Steal > 0 {
			s += fmt.Sprintf(", %s of it stolen by the hypervisor", pct(g.Steal/interval))
		}
		where = append(where, s)
	}
	return true, fmt.Sprintf("something outside the run used %s of a core (%s): above the %s allowed",
		pct(in.Share), strings.Join(where, "; "), pct(DisturbedThreshold))
}

// Attribution names what limited a saturated or failing step.
type Attribution struct {
	// LimitedBy is the party at its limit (PartyProxy, ...), a core at its
	// limit with the parties on it ("core 0 (upstream, load generator)"),
	// or NotAttributed.
	LimitedBy string
	// Text says so with the figures, for a reason a reader can quote.
	Text string
}

// limit is one candidate for what limited a step.
type limit struct {
	name, text string
	share      float64
}

// Attribute decides what limited a step from its parties' shares and its
// cores' busy time: a party that used at least LimitShare of its cpuset,
// or a core busy (tasks, interrupts and steal) for at least LimitShare of
// the interval. A core whose only party is itself at its limit adds
// nothing and is not a candidate. Of several candidates the most saturated
// is named, a party before a core at equal shares, and the others are
// listed after it. With none, the step is NotAttributed and the text gives
// every figure, so that a reader sees how far each was from its limit.
func Attribute(parties []Party, cores []CoreTime, interval float64) Attribution {
	if len(parties) == 0 && len(cores) == 0 || interval <= 0 {
		return Attribution{LimitedBy: NotAttributed, Text: NotAttributed + ": no CPU figures"}
	}
	var limits []limit
	atLimit := map[string]bool{}
	for _, p := range parties {
		if p.Share >= LimitShare {
			atLimit[p.Name] = true
			limits = append(limits, limit{p.Name, fmt.Sprintf("%s used %s of %s", p.Name, pct(p.Share), cpusName(p.CPUs)), p.Share})
		}
	}
	var figures []string
	for _, p := range parties {
		figures = append(figures, fmt.Sprintf("%s %s of %s", p.Name, pct(p.Share), cpusName(p.CPUs)))
	}
	for _, c := range cores {
		on := partiesOn(parties, c.CPU)
		busy := (c.Busy + c.IRQ + c.Steal) / interval
		figures = append(figures, fmt.Sprintf("core %d %s busy", c.CPU, pct(busy)))
		if busy < LimitShare || len(on) == 1 && atLimit[on[0]] {
			continue
		}
		name := coresName([]int{c.CPU}, on)
		limits = append(limits, limit{name, fmt.Sprintf("%s was %s busy", name, pct(busy)), busy})
	}
	if len(limits) == 0 {
		return Attribution{LimitedBy: NotAttributed, Text: NotAttributed + ": " + strings.Join(figures, ", ")}
	}
	slices.SortStableFunc(limits, func(a, b limit) int { return cmp.Compare(b.share, a.share) })
	text := limits[0].text
	if len(limits) > 1 {
		var also []string
		for _, l := range limits[1:] {
			also = append(also, l.text)
		}
		text += "; also " + strings.Join(also, ", ")
	}
	return Attribution{LimitedBy: limits[0].name, Text: text}
}

// partiesOn names the parties whose cpuset holds cpu.
func partiesOn(parties []Party, cpu int) []string {
	var out []string
	for _, p := range parties {
		if slices.Contains(partyCPUs(p), cpu) {
			out = append(out, p.Name)
		}
	}
	return out
}

// coresName is "core 0 (upstream, load generator)", or "cores 0,2 (...)".
func coresName(cpus []int, parties []string) string {
	var s []string
	for _, c := range cpus {
		s = append(s, strconv.Itoa(c))
	}
	name := "core " + strings.Join(s, ",")
	if len(cpus) > 1 {
		name = "cores " + strings.Join(s, ",")
	}
	if len(parties) > 0 {
		name += " (" + strings.Join(parties, ", ") + ")"
	}
	return name
}

// cpusName is a cpuset as text: "CPU 1", "CPUs 0-3".
func cpusName(set string) string {
	if cpus, err := ParseCPUSet(set); err == nil && len(cpus) == 1 {
		return "CPU " + set
	}
	return "CPUs " + set
}

// pct is a share as a whole percentage.
func pct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

// roundShare keeps three decimals of a share: a tenth of a percent is
// finer than the tick the figures are counted in.
func roundShare(f float64) float64 { return math.Round(f*1000) / 1000 }
