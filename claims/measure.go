package claims

import (
	"fmt"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// rowValues are one row's per-run values of a figure and what was left
// out.
type rowValues struct {
	name   string
	values []float64
	reps   []int // the repetitions the values come from
	runs   int
	// excluded counts runs left out, by reason, in the order first met.
	excluded []exclusion
	// lowerBound names the repetitions whose value is only a lower bound.
	lowerBound []int
}

type exclusion struct {
	why string
	n   int
}

func (rv *rowValues) exclude(why string) {
	for i := range rv.excluded {
		if rv.excluded[i].why == why {
			rv.excluded[i].n++
			return
		}
	}
	rv.excluded = append(rv.excluded, exclusion{why, 1})
}

// measure computes the claim's quantity from r, or says why it cannot.
func measure(c *Claim, fig *Figure, r *lab.Results) (*measurement, string) {
	if fig.From == FromBuild {
		return measureBuild(c, fig, r), ""
	}
	var rvs []*rowValues
	for _, name := range rows(c) {
		rv := runValues(c, fig, r, row(r, name))
		if len(rv.values) < stats.MinN {
			return nil, tooFew(rv)
		}
		rvs = append(rvs, rv)
	}
	m := &measurement{interval: true, rests: restsText(rvs, r)}
	s := rvs[0].values
	var iv stats.Interval
	var ok bool
	if c.Relation.Ratio {
		a := rvs[1].values
		if stats.Median(a) == 0 {
			return nil, fmt.Sprintf("the median %s of %s is zero, so there is no ratio", fig.Name, c.Against)
		}
		m.value = stats.Median(s) / stats.Median(a)
		iv, ok = stats.BootstrapRatio(s, a)
	} else {
		m.value = stats.Median(s)
		iv, ok = stats.BootstrapMedian(s)
	}
	if !ok {
		return nil, fmt.Sprintf("no interval for the ratio: a resampled median of %s's %s is zero", c.Against, fig.Name)
	}
	m.lo, m.hi = iv.Lo, iv.Hi
	m.lowerBound = lowerBoundText(rvs, fig)
	return m, ""
}

func measureBuild(c *Claim, fig *Figure, r *lab.Results) *measurement {
	v, _ := fig.Build(row(r, c.Subject))
	one, many := "image", "images"
	if fig.Name == "binary_bytes" {
		one, many = "binary", "binaries"
	}
	rests := c.Subject + " " + one
	if c.Against != "" {
		a, _ := fig.Build(row(r, c.Against))
		v /= a
		rests = fmt.Sprintf("%s and %s %s", c.Subject, c.Against, many)
	}
	return &measurement{value: v, lo: v, hi: v, rests: fmt.Sprintf("%s in %s (run %s)", rests, r.Scenario.Name, shortID(r.RunID))}
}

// runValues reads the figure from every usable run of p: status ok, the
// selected step reached, not interrupted and not saturated by the load
// generator.
func runValues(c *Claim, fig *Figure, r *lab.Results, p *lab.ProxyResult) *rowValues {
	rv := &rowValues{name: p.Name, runs: len(p.Runs)}
	for _, run := range p.Runs {
		v, lower, why := runValue(c, fig, r, run)
		if why != "" {
			rv.exclude(why)
			continue
		}
		rv.values = append(rv.values, v)
		rv.reps = append(rv.reps, run.Repetition)
		if lower {
			rv.lowerBound = append(rv.lowerBound, run.Repetition)
		}
	}
	return rv
}

// runValue is the figure in one run, or why the run is left out.
func runValue(c *Claim, fig *Figure, r *lab.Results, run *lab.Run) (v float64, lowerBound bool, why string) {
	if run.Status != lab.RunOK {
		return 0, false, map[string]string{lab.RunFailed: "failed", lab.RunInterrupted: "were interrupted"}[run.Status]
	}
	if run.Disturbed {
		return 0, false, "were disturbed (something outside the run used its cores)"
	}
	if fig.From == FromSearch {
		v, lower, ok := fig.Run(run)
		if !ok {
			return 0, false, "have no search result"
		}
		return v, lower, ""
	}
	st, why := pickStep(c, fig, r, run)
	if st == nil && why == "" {
		return wholeRun(fig, run)
	}
	where := strings.TrimPrefix(atText(c.At), " ")
	if where == "" {
		where = "in their step"
	}
	switch {
	case st == nil:
		return 0, false, why
	case st.Interrupted:
		return 0, false, "were interrupted " + where
	case st.LoadgenSaturated:
		return 0, false, "were saturated " + where + " (the load generator fell short of the rate)"
	}
	v, ok := fig.Step(st)
	if !ok {
		return 0, false, fmt.Sprintf("have no %s %s", fig.Name, where)
	}
	return v, false, ""
}

// wholeRun is the maximum of the figure over the run's steps that ran to
// their end. A saturated step counts: a high-water mark is the proxy's
// whatever the load generator managed.
func wholeRun(fig *Figure, run *lab.Run) (float64, bool, string) {
	best, found := 0.0, false
	for _, st := range run.Steps {
		if st.Interrupted {
			continue
		}
		if v, ok := fig.Step(st); ok && (!found || v > best) {
			best, found = v, true
		}
	}
	if !found {
		return 0, false, "have no " + fig.Name
	}
	return best, false, ""
}

// tooFew explains a row with fewer than stats.MinN usable runs.
func tooFew(rv *rowValues) string {
	var parts []string
	for _, e := range rv.excluded {
		why := e.why
		if e.n == 1 {
			why = singular(why)
		}
		parts = append(parts, fmt.Sprintf("%d of %d runs of %s %s", e.n, rv.runs, rv.name, why))
	}
	head := fmt.Sprintf("%s has %d usable runs, a verdict needs at least %d", rv.name, len(rv.values), stats.MinN)
	if len(rv.values) == 1 {
		head = fmt.Sprintf("%s has 1 usable run, a verdict needs at least %d", rv.name, stats.MinN)
	}
	if len(parts) == 0 {
		return head
	}
	return strings.Join(parts, "; ") + ": " + head
}

func singular(why string) string {
	for _, p := range [][2]string{{"were ", "was "}, {"have ", "has "}} {
		if w, ok := strings.CutPrefix(why, p[0]); ok {
			return p[1] + w
		}
	}
	return why
}

func lowerBoundText(rvs []*rowValues, fig *Figure) string {
	var parts []string
	for _, rv := range rvs {
		if len(rv.lowerBound) > 0 {
			parts = append(parts, fmt.Sprintf("%s runs %s", rv.name, repsText(rv.lowerBound)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("the %s of %s is a lower bound only: those searches stopped at the load generator, at search.max or unfinished, or were limited by a CPU other than the proxy's (limited_by), not by the proxy", fig.Name, strings.Join(parts, ", "))
}

// restsText names the rows and runs a verdict rests on: "rust runs 1-3,
// go runs 1-3 of capacity (run 3f2a9c1e)".
func restsText(rvs []*rowValues, r *lab.Results) string {
	parts := make([]string, len(rvs))
	for i, rv := range rvs {
		parts[i] = fmt.Sprintf("%s runs %s", rv.name, repsText(rv.reps))
	}
	return fmt.Sprintf("%s of %s (run %s)", strings.Join(parts, ", "), r.Scenario.Name, shortID(r.RunID))
}

// repsText writes repetition numbers as ranges: "1-3", "1,3", "1-2,4".
func repsText(reps []int) string {
	reps = slices.Sorted(slices.Values(reps))
	var parts []string
	for i := 0; i < len(reps); {
		j := i
		for j+1 < len(reps) && reps[j+1] == reps[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", reps[i], reps[j]))
		} else {
			parts = append(parts, fmt.Sprint(reps[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
