package claims

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/lab"
)

// Judge judges every claim of f against results, one verdict per claim in
// file order. Results are only read.
func Judge(f *File, results []*lab.Results) []Verdict {
	out := make([]Verdict, len(f.Claims))
	for i := range f.Claims {
		out[i] = JudgeClaim(&f.Claims[i], results)
	}
	return out
}

// JudgeClaim judges one claim; see Judge.
func JudgeClaim(c *Claim, results []*lab.Results) Verdict {
	v := Verdict{Claim: c, Measured: "-", Outcome: Inconclusive}
	fig := FigureByName(c.Figure)
	if fig == nil {
		v.Quoted = c.Relation.Text
		v.Why = fmt.Sprintf("unknown figure %q", c.Figure)
		return v
	}
	v.Quoted = quoted(c, fig)
	r, why := pick(c, fig, results)
	if r == nil {
		v.Why = why
		return v
	}
	m, why := measure(c, fig, r)
	if m == nil {
		v.Why = why
		return v
	}
	v.Rests = m.rests
	v.Value, v.Lo, v.Hi = m.value, m.lo, m.hi
	v.Measured = m.format(c, fig)
	if m.lowerBound != "" {
		v.Why = m.lowerBound
		return v
	}
	v.Outcome, v.Why = decide(c, fig, m)
	return v
}

// measurement is the quantity a verdict rests on.
type measurement struct {
	value, lo, hi float64
	interval      bool // lo and hi are a bootstrap interval
	rests         string
	// lowerBound says why the value is only a lower bound; the verdict is
	// then inconclusive.
	lowerBound string
}

func (m *measurement) format(c *Claim, fig *Figure) string {
	f := fig.unit().format
	if c.Relation.Ratio {
		f = ratioUnit.format
	}
	if !m.interval {
		return f(m.value)
	}
	return fmt.Sprintf("%s (%s-%s)", f(m.value), f(m.lo), f(m.hi))
}

// quoted is the claim's side of the relation in the figure's units.
func quoted(c *Claim, fig *Figure) string {
	r := c.Relation
	rows, f := c.Subject, fig.unit().format
	if r.Ratio {
		rows, f = c.Subject+"/"+c.Against, ratioUnit.format
	}
	s := fmt.Sprintf("%s %s%s %s %s", rows, fig.Label, atText(c.At), r.Op, f(r.Value))
	if r.Op == "~" {
		s += fmt.Sprintf(" ± %g%%", 100*r.Tolerance)
	}
	return s
}

func atText(at *At) string {
	switch {
	case at == nil:
		return ""
	case at.Step > 0:
		return fmt.Sprintf(" at step %d", at.Step)
	}
	return fmt.Sprintf(" at %d/s", at.Rate)
}

// decide applies the relation to the interval (a point for figures
// without noise): supported when it lies wholly on the claim's side,
// refuted when wholly on the other.
func decide(c *Claim, fig *Figure, m *measurement) (outcome, why string) {
	r := c.Relation
	f := fig.unit().format
	if r.Ratio {
		f = ratioUnit.format
	}
	what := "the interval " + fmt.Sprintf("(%s-%s)", f(m.lo), f(m.hi))
	if !m.interval {
		what = f(m.value)
	}
	x := f(r.Value)
	var yes, no bool
	switch r.Op {
	case ">=":
		yes, no = m.lo >= r.Value, m.hi < r.Value
	case ">":
		yes, no = m.lo > r.Value, m.hi <= r.Value
	case "<=":
		yes, no = m.hi <= r.Value, m.lo > r.Value
	case "<":
		yes, no = m.hi < r.Value, m.lo >= r.Value
	case "~":
		lo, hi := r.Value*(1-r.Tolerance), r.Value*(1+r.Tolerance)
		band := fmt.Sprintf("%s ± %g%% (%s-%s)", x, 100*r.Tolerance, f(lo), f(hi))
		switch {
		case m.lo >= lo && m.hi <= hi:
			return Supported, fmt.Sprintf("%s lies within %s", what, band)
		case m.hi < lo || m.lo > hi:
			return Refuted, fmt.Sprintf("%s lies outside %s", what, band)
		}
		return Inconclusive, fmt.Sprintf("%s straddles an edge of %s", what, band)
	}
	side := map[string]string{">=": "at or above", ">": "above", "<=": "at or below", "<": "below"}
	opposite := map[string]string{">=": "<", ">": "<=", "<=": ">", "<": ">="}
	switch {
	case yes:
		return Supported, fmt.Sprintf("%s lies %s %s", what, side[r.Op], x)
	case no:
		return Refuted, fmt.Sprintf("%s lies %s %s", what, side[opposite[r.Op]], x)
	}
	return Inconclusive, fmt.Sprintf("%s straddles %s", what, x)
}

// rows are the claim's rows, subject first.
func rows(c *Claim) []string {
	if c.Against == "" {
		return []string{c.Subject}
	}
	return []string{c.Subject, c.Against}
}

// row returns the named row of r, or nil.
func row(r *lab.Results, name string) *lab.ProxyResult {
	for _, p := range r.Proxies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func shortID(id string) string { return id[:min(8, len(id))] }

func describeResults(r *lab.Results) string {
	return fmt.Sprintf("results of %s (run %s)", r.Scenario.Name, shortID(r.RunID))
}

// pick chooses the one results file the claim is judged on: the claim's
// scenario, or else the only scenario holding the figure for its rows.
// Several files of that scenario leave the newest; files of open and closed
// models are never mixed.
func pick(c *Claim, fig *Figure, results []*lab.Results) (*lab.Results, string) {
	var candidates []*lab.Results
	var names []string
	for _, r := range results {
		if r == nil || r.Scenario == nil {
			continue
		}
		if !slices.Contains(names, r.Scenario.Name) {
			names = append(names, r.Scenario.Name)
		}
		if c.Scenario == "" || r.Scenario.Name == c.Scenario {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 {
		if c.Scenario != "" {
			return nil, fmt.Sprintf("no results of scenario %s among those given (%s)", c.Scenario, orNone(names))
		}
		return nil, "no results given"
	}
	var holders []*lab.Results
	var reasons []string
	for _, r := range candidates {
		if why := holds(c, fig, r); why != "" {
			reasons = append(reasons, why)
			continue
		}
		holders = append(holders, r)
	}
	if len(holders) == 0 {
		if c.Scenario != "" {
			return nil, reasons[len(reasons)-1]
		}
		return nil, fmt.Sprintf("no results hold %s with %s: %s", rowsText(c), fig.Name, fig.Needs)
	}
	return choose(c, fig, holders)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func rowsText(c *Claim) string {
	if c.Against == "" {
		return "row " + c.Subject
	}
	return "rows " + c.Subject + " and " + c.Against
}

// choose narrows the files that hold the figure to one.
func choose(c *Claim, fig *Figure, holders []*lab.Results) (*lab.Results, string) {
	var names []string
	models := map[string]bool{}
	for _, r := range holders {
		if !slices.Contains(names, r.Scenario.Name) {
			names = append(names, r.Scenario.Name)
		}
		models[model(r)] = true
	}
	newest := slices.MaxFunc(holders, func(a, b *lab.Results) int { return a.StartedAt.Compare(b.StartedAt) })
	if len(names) > 1 && !(fig.From == FromBuild && sameBuilds(c, fig, holders)) {
		return nil, fmt.Sprintf("the figure is in several results (%s): name one with scenario:", strings.Join(names, ", "))
	}
	if len(models) > 1 && fig.From != FromBuild {
		return nil, fmt.Sprintf("the results of scenario %s are of both the open and the closed load model, which are never compared: give the files of one", names[0])
	}
	return newest, ""
}

func model(r *lab.Results) string {
	return cmp.Or(r.Scenario.Load.Model, "open")
}

// sameBuilds reports whether every file gives the rows the same size, so
// that which one is used does not matter.
func sameBuilds(c *Claim, fig *Figure, holders []*lab.Results) bool {
	for _, name := range rows(c) {
		first, _ := fig.Build(row(holders[0], name))
		for _, r := range holders[1:] {
			if v, _ := fig.Build(row(r, name)); v != first {
				return false
			}
		}
	}
	return true
}

// holds says why r cannot give the figure for the claim's rows; "" when it
// can.
func holds(c *Claim, fig *Figure, r *lab.Results) string {
	for _, name := range rows(c) {
		p := row(r, name)
		if p == nil {
			return fmt.Sprintf("%s have no row %s", describeResults(r), name)
		}
		if why := rowHolds(c, fig, r, p); why != "" {
			return why
		}
	}
	return ""
}

func rowHolds(c *Claim, fig *Figure, r *lab.Results, p *lab.ProxyResult) string {
	switch fig.From {
	case FromBuild:
		if _, ok := fig.Build(p); !ok {
			return fmt.Sprintf("%s hold no %s for %s", describeResults(r), fig.Name, p.Name)
		}
		return ""
	case FromSearch:
		if r.Scenario.Load.Search == nil {
			return fmt.Sprintf("%s are not of a search, so they hold no %s: %s", describeResults(r), fig.Name, fig.Needs)
		}
		return ""
	}
	if why := selectable(c, fig, r); why != "" {
		return why
	}
	for _, run := range p.Runs {
		st, why := pickStep(c, fig, r, run)
		if st == nil && why == "" {
			if _, _, why := wholeRun(fig, run); why == "" {
				return ""
			}
		}
		if st != nil {
			if _, ok := fig.Step(st); ok {
				return ""
			}
		}
	}
	return fmt.Sprintf("%s hold no %s for %s%s: %s", describeResults(r), fig.Name, p.Name, atText(c.At), fig.Needs)
}

// selectable says why the claim's at cannot select a step of r's scenario.
func selectable(c *Claim, fig *Figure, r *lab.Results) string {
	l := r.Scenario.Load
	switch {
	case l.Search != nil && (c.At == nil || c.At.Rate == 0) && !(c.At == nil && fig.Whole):
		return fmt.Sprintf("%s are of a search, whose probes are chosen by rate: give at: {rate: R}", describeResults(r))
	case l.Search != nil:
		return ""
	case c.At == nil && !fig.Whole && len(l.Steps) != 1:
		return fmt.Sprintf("%s have %d steps: choose one with at: {step: N}", describeResults(r), len(l.Steps))
	case c.At != nil && c.At.Step > len(l.Steps):
		return fmt.Sprintf("%s have %d steps, not %d", describeResults(r), len(l.Steps), c.At.Step)
	}
	return ""
}

// pickStep returns the run's step the claim is about, or nil with the
// reason in the words of "runs of go ...". With no at and a figure taken
// over the whole run, it returns nil and "" (see wholeRun).
func pickStep(c *Claim, fig *Figure, r *lab.Results, run *lab.Run) (*lab.Step, string) {
	switch {
	case c.At == nil && r.Scenario.Load.Search == nil && len(r.Scenario.Load.Steps) == 1:
		if len(run.Steps) == 0 {
			return nil, "did not reach the step"
		}
		return run.Steps[0], ""
	case c.At == nil:
		return nil, ""
	case c.At.Rate > 0:
		// A search may probe a rate twice: the later probe counts, as in
		// the lab's summaries.
		for i := len(run.Steps) - 1; i >= 0; i-- {
			if run.Steps[i].TargetRate == float64(c.At.Rate) {
				return run.Steps[i], ""
			}
		}
		return nil, fmt.Sprintf("did not run %d/s", c.At.Rate)
	case c.At.Step > len(run.Steps):
		return nil, fmt.Sprintf("did not reach step %d", c.At.Step)
	}
	return run.Steps[c.At.Step-1], ""
}
