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

// Interference is what was found outside the run in one step.
type Interference struct {
	Share float64 // of one core
	// Processes are the outside processes that used the cores, largest
	// first.
	Processes []OutsideProcess
	Steal     float64 // seconds the hypervisor took from the cores
}

// OutsideInterference is the interference of a step from the processes
// outside the run that ran on its cores (their exact CPU seconds, see
// processTimes) plus the time the hypervisor stole from the cores, as a
// share of one core. Not the cores' busy time less the parties': that
// compares tick samples with exact times, and misread light periodic
// loads by tens of percent of a core either way.
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
	return true, processesText(in, interval)
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
		on := partiesOn(parties, c)
		busy := (c.Busy + c.IRQ + c.Steal) / interval
		figures = append(figures, fmt.Sprintf("%s %s busy", coresName(c.Host, []int{c.CPU}, nil), pct(busy)))
		if busy < LimitShare || len(on) == 1 && atLimit[on[0]] {
			continue
		}
		name := coresName(c.Host, []int{c.CPU}, on)
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

// partiesOn names the parties whose cpuset holds the core, on its host.
func partiesOn(parties []Party, c CoreTime) []string {
	var out []string
	for _, p := range parties {
		if p.Host == c.Host && slices.Contains(partyCPUs(p), c.CPU) {
			out = append(out, p.Name)
		}
	}
	return out
}

// coresName is "core 0 (upstream, load generator)", or "cores 0,2 (...)";
// on a SUT host that is another machine, "sut core 1 (proxy)".
func coresName(host string, cpus []int, parties []string) string {
	var s []string
	for _, c := range cpus {
		s = append(s, strconv.Itoa(c))
	}
	name := "core " + strings.Join(s, ",")
	if len(cpus) > 1 {
		name = "cores " + strings.Join(s, ",")
	}
	if host != "" {
		name = host + " " + name
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
