package lab

import (
	"fmt"
	"math"
	"strings"

	"github.com/proxylab/proxylab/scenarios"
	"github.com/proxylab/proxylab/stats"
)

// CapacityOf is the capacity that of_capacity steps of a later scenario are
// shares of: the lowest median rate a search found among the lab proxies of
// res (baselines excluded), over their runs that finished. Taking the
// slowest proxy's keeps every row at rates each lab proxy holds, so p99 is
// compared at the same load, below every knee. file is where res was read
// from or written to, for the record.
func CapacityOf(res *Results, file string) (*CapacityRef, error) {
	if res.Scenario == nil || res.Scenario.Load.Search == nil {
		return nil, fmt.Errorf("%s: scenario %q has no load.search, so it measured no capacity", file, scenarioName(res))
	}
	var best *CapacityRef
	var none []string
	for _, p := range res.Proxies {
		if p.Baseline {
			continue
		}
		rates, disturbed := searchRates(p, (*Run).Counts), false
		if len(rates) == 0 {
			// Only the rates of later steps rest on it, not a figure: a
			// host whose hypervisor disturbed every search still gets
			// its steps, and the results say on what.
			rates = searchRates(p, func(r *Run) bool { return r.Status == RunOK })
			disturbed = len(rates) > 0
		}
		if len(rates) == 0 {
			none = append(none, p.Name)
			continue
		}
		c := &CapacityRef{Rate: int(math.Round(stats.Median(rates))), Proxy: p.Name, Scenario: res.Scenario.Name,
			RunID: res.RunID, File: file, Runs: len(rates), Disturbed: disturbed}
		if best == nil || c.Rate < best.Rate {
			best = c
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%s: no lab proxy has a finished search with a passing rate (%s), so there is no capacity to take shares of",
			file, strings.Join(none, ", "))
	}
	return best, nil
}

// searchRates are the passing rates of p's searched runs that keep holds.
func searchRates(p *ProxyResult, keep func(*Run) bool) []float64 {
	var rates []float64
	for _, r := range p.Runs {
		if keep(r) && r.Search != nil && r.Search.Rate > 0 {
			rates = append(rates, float64(r.Search.Rate))
		}
	}
	return rates
}

func scenarioName(res *Results) string {
	if res.Scenario == nil {
		return ""
	}
	return res.Scenario.Name
}

// StepRates is the rate of each of sc's steps: the rate given, a share of
// c for of_capacity (at least 1/s), and 0 in the closed model, where the
// connections set the pace. A scenario with of_capacity steps and no c is
// an error that says how to give one.
func StepRates(sc *scenarios.Scenario, c *CapacityRef) ([]int, error) {
	rates := make([]int, len(sc.Load.Steps))
	for i, st := range sc.Load.Steps {
		switch {
		case sc.Load.Closed():
		case st.OfCapacity > 0 && c == nil:
			return nil, fmt.Errorf("%s: load.steps[%d] is %s of the capacity, and no capacity was measured before it: "+
				"run it after a search scenario in the same compare (proxylab compare scenarios/capacity.yaml %s) or pass --capacity RESULTS.json",
				sc.File, i, st.OfCapacity, sc.File)
		case st.OfCapacity > 0:
			rates[i] = max(1, int(math.Round(float64(st.OfCapacity)*float64(c.Rate))))
		default:
			rates[i] = st.Rate
		}
	}
	return rates, nil
}
