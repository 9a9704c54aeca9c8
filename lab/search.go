package lab

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// SearchResult is what a saturation search found in one run. Every probe is
// also an ordinary entry of the run's steps, with all its measurements.
type SearchResult struct {
	// Rate is the highest target rate that met the SLO, 0 if none did.
	Rate int `json:"rate"`
	// StoppedBy names the limit the search ran into: StoppedByProxy,
	// StoppedByLoadgen, StoppedByMax, or StoppedIncomplete. It says on
	// which side of the load generator the lowest failing rate failed
	// (delivered and failed behind it, or not delivered), not which CPU
	// was full: for that see LimitedBy.
	StoppedBy string `json:"stopped_by"`
	// LimitedBy is what was at its limit at the lowest failing rate, from
	// that step's CPU figures (Attribute): the party whose cpuset was full
	// (PartyProxy, PartyUpstream, PartyLoadgen, PartyReader), a core at
	// its limit with the parties on it ("core 0 (upstream, load
	// generator)"), or NotAttributed. So StoppedByProxy with LimitedBy
	// "proxy" is the proxy's capacity; StoppedByProxy with a shared core
	// or NotAttributed is the rig's, or unexplained. Empty when the search
	// stopped at max or incomplete, and in files written before it.
	LimitedBy string  `json:"limited_by,omitempty"`
	Reason    string  `json:"reason"` // one sentence a reader can quote
	Probes    []Probe `json:"probes"` // in the order they ran
}

// LimitedByProxy reports whether what limited the search was the proxy's
// own CPU: the proxy party, or a core only the proxy runs on ("core 1
// (proxy)"). A search limited by a core the proxy does not use (the
// upstream's and the load generator's, on a small host) found the rig's
// limit, and the proxy's capacity is at least that rate: a ratio of two
// such rates says nothing of the proxies. A search from a file without the
// attribution counts as the proxy's, as that file says.
func (s *SearchResult) LimitedByProxy() bool {
	return s.LimitedBy == "" || s.LimitedBy == PartyProxy || strings.HasSuffix(s.LimitedBy, "("+PartyProxy+")")
}

// Probe is the verdict on one probed rate.
type Probe struct {
	TargetRate int    `json:"target_rate"`
	Passed     bool   `json:"passed"`
	Reason     string `json:"reason"`
}

// What stopped a search.
const (
	// StoppedByProxy: the lowest failing rate missed the SLO while the load
	// generator delivered it, so the rate found is the proxy's.
	StoppedByProxy = "proxy"
	// StoppedByLoadgen: the load generator could not deliver the lowest
	// failing rate, so the rate found is only a lower bound for the proxy.
	StoppedByLoadgen = "loadgen"
	// StoppedByMax: search.max itself passed; the proxy may go higher.
	StoppedByMax = "max"
	// StoppedIncomplete: the run failed or was interrupted mid-search.
	StoppedIncomplete = "incomplete"
)

// SearchPrecision is where bisection stops: when the gap between the
// highest passing and the lowest failing rate is at most this share of the
// passing rate. After doubling the gap equals the passing rate, so five
// bisection probes always reach it (1/32 < 5%); finer would buy little on a
// machine whose run-to-run spread is of the same order.
const SearchPrecision = 0.05

// probeOutcome is how one probed rate fared.
type probeOutcome struct {
	passed bool
	// saturated: the load generator fell short of the rate, so a failure is
	// the load generator's, not the proxy's.
	saturated bool
	reason    string
	// limitedBy is the attribution of a failing step with CPU figures
	// (Attribution.LimitedBy); empty otherwise.
	limitedBy string
}

// searchRate finds the highest rate in [s.Start, s.Max] for which probe
// passes: doubling from Start until a rate fails (or Max passes), then
// bisecting between the last pass and the first fail until they are within
// SearchPrecision. It assumes that passing is monotone in the rate, which
// holds for a proxy below and above its knee; noise near the knee moves the
// answer by at most the final gap. An error from probe ends the search with
// what was found so far, marked StoppedIncomplete.
func searchRate(s scenarios.Search, probe func(rate int) (probeOutcome, error)) (*SearchResult, error) {
	res := &SearchResult{Probes: []Probe{}}
	lo, hi := 0, 0 // highest pass, lowest fail (0: none yet)
	var fail probeOutcome
	try := func(rate int) (probeOutcome, error) {
		o, err := probe(rate)
		if err != nil {
			res.Rate, res.StoppedBy = lo, StoppedIncomplete
			res.Reason = fmt.Sprintf("the search stopped at %d/s before it finished: %v", rate, err)
			return o, err
		}
		res.Probes = append(res.Probes, Probe{TargetRate: rate, Passed: o.passed, Reason: o.reason})
		if o.passed {
			lo = rate
		} else {
			hi, fail = rate, o
		}
		return o, nil
	}

	for rate := s.Start; ; rate = min(2*rate, s.Max) {
		o, err := try(rate)
		if err != nil {
			return res, err
		}
		if !o.passed {
			break
		}
		if rate >= s.Max {
			res.Rate, res.StoppedBy = lo, StoppedByMax
			res.Reason = fmt.Sprintf("every rate tried up to search.max (%d/s) met the SLO; raise max to look further", s.Max)
			return res, nil
		}
	}
	for lo > 0 && !closeEnough(lo, hi) {
		if _, err := try(lo + (hi-lo)/2); err != nil {
			return res, err
		}
	}

	res.Rate = lo
	res.StoppedBy = StoppedByProxy
	res.LimitedBy = fail.limitedBy
	if fail.saturated {
		res.StoppedBy = StoppedByLoadgen
	}
	switch {
	case lo == 0:
		res.Reason = fmt.Sprintf("the first rate, %d/s, already failed (%s); lower search.start", hi, fail.reason)
	case fail.saturated:
		res.Reason = fmt.Sprintf("%d/s passed; at %d/s %s, so %d/s is a lower bound of what the proxy can do", lo, hi, fail.reason, lo)
	default:
		res.Reason = fmt.Sprintf("%d/s passed; at %d/s %s", lo, hi, fail.reason)
	}
	return res, nil
}

func closeEnough(lo, hi int) bool {
	return hi-lo <= 1 || float64(hi-lo) <= SearchPrecision*float64(lo)
}

// judge decides whether a measured step meets the search's objective. A
// step whose rate was not delivered never passes: its latencies were
// measured under a load other than the target. It counts as the load
// generator's failure when requests went out late with a connection free,
// and as the proxy's when every connection was busy, for then the target's
// latency at this rate exceeded what the scenario's connections carry.
// A failing step's reason ends with what was at its limit (limits).
func judge(st *Step, s *scenarios.Search) probeOutcome {
	slo := s.SLOP99.D()
	p99us, which := sloP99(st)
	p99 := time.Duration(p99us) * time.Microsecond
	var missed []string
	if st.Success < s.MinSuccess {
		missed = append(missed, fmt.Sprintf("success %s is below %s", percent(st.Success), percent(s.MinSuccess)))
	}
	if p99 > slo {
		missed = append(missed, fmt.Sprintf("%s %s is above the SLO of %s", which, micros(float64(p99us)), slo))
	}
	if st.Requests == 0 {
		missed = append(missed, "no request was answered")
	}
	switch {
	case st.LoadgenSaturated && st.SaturationCause == loadgen.SaturatedConnections:
		r := "the rate was not delivered: " + st.Saturation
		if len(missed) > 0 {
			r += "; " + strings.Join(missed, ", ")
		}
		return limits(st, probeOutcome{reason: r}, proxyUsed)
	case st.LoadgenSaturated:
		r := "the load generator could not deliver the rate: " + st.Saturation
		if st.Resources != nil && st.Resources.Parties == nil && st.Duration > 0 {
			r += fmt.Sprintf(" (it used %.2f CPU s in %.1f s)", st.Resources.LoadgenCPUSeconds, st.Duration)
		}
		if len(missed) > 0 {
			r += "; " + strings.Join(missed, ", ")
		}
		return limits(st, probeOutcome{saturated: true, reason: r}, nil)
	case len(missed) > 0:
		// A proxy far from using its CPUs that still misses the SLO points
		// at something else (a full shared core, a neighbour on the host, a
		// pause) rather than at its capacity; the attribution says which.
		return limits(st, probeOutcome{reason: strings.Join(missed, ", ")}, proxyUsed)
	}
	return probeOutcome{passed: true, reason: fmt.Sprintf("%s %s within %s, success %s",
		which, micros(float64(p99us)), slo, percent(st.Success))}
}

// sloP99 is the p99 a search's SLO is judged on: from the intended send
// time, what a user would have seen, including the time a request waited
// for a free connection. A step read from a file older than that figure
// has only the service p99.
func sloP99(st *Step) (us int64, which string) {
	if l := st.IntendedLatency; l != nil {
		return l.P99, "intended p99"
	}
	return st.Latency.P99, "p99"
}

// limits ends a failing step's reason with what was at its limit, by the
// step's parties and cores (Attribute), and with its disturbance. A step
// without those figures (read from an older file) says what old (if any)
// says instead and is attributed to nothing.
func limits(st *Step, o probeOutcome, old func(*Step) string) probeOutcome {
	res := st.Resources
	if res == nil || res.Parties == nil {
		if old != nil {
			o.reason += old(st)
		}
		return o
	}
	a := Attribute(res.Parties, res.Cores, res.IntervalSeconds)
	o.reason += ": " + a.Text
	o.limitedBy = a.LimitedBy
	if st.Disturbed {
		o.reason += " (disturbed: " + st.Disturbance + ")"
	}
	return o
}

// proxyUsed is the proxy's CPU time, for a step without parties.
func proxyUsed(st *Step) string {
	if res := st.Resources; res != nil && !res.NoProxy && st.Duration > 0 {
		return fmt.Sprintf(" (the proxy used %.2f CPU s in %.1f s)", res.ProxyCPUSeconds, st.Duration)
	}
	return ""
}

// SummariseFor summarises runs of scenario sc: per step for fixed steps,
// per rate probed for a search.
func SummariseFor(sc *scenarios.Scenario, runs []*Run) []StepSummary {
	if sc != nil && sc.Load.Search != nil {
		return summariseSearch(runs)
	}
	return Summarise(runs)
}

// summariseSearch summarises a searched proxy's runs by rate: one row per
// distinct rate probed, lowest first. Repetitions of a search probe
// different rates, so the per-index summary of fixed steps would mix them.
func summariseSearch(runs []*Run) []StepSummary {
	var rates []float64
	for _, r := range runs {
		for _, st := range r.Steps {
			if !slices.Contains(rates, st.TargetRate) {
				rates = append(rates, st.TargetRate)
			}
		}
	}
	slices.Sort(rates)
	var out []StepSummary
	for _, rate := range rates {
		var one []*Run
		for _, r := range runs {
			// A rate probed twice in one run counts once: the later probe.
			for i := len(r.Steps) - 1; i >= 0; i-- {
				if st := r.Steps[i]; st.TargetRate == rate {
					one = append(one, &Run{Status: r.Status, Disturbed: r.Disturbed, Steps: []*Step{st}})
					break
				}
			}
		}
		if s := Summarise(one); len(s) == 1 {
			s[0].Step = len(out) + 1
			out = append(out, s[0])
		}
	}
	return out
}
