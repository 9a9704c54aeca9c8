package claims

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/scenarios"
)

// The patterns below are repeated in schema.json; the schema test keeps the
// two in step. Scenario names follow the scenarios package's rule.
var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	scenarioPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// LoadFile reads the claims file at path and parses it with Parse.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes one claims file as strictly as a scenario (unknown keys,
// wrong types and duplicate keys are errors) and checks every claim. name
// labels errors and is kept in File.Path. On failure the file is nil and
// the error is a scenarios.Errors listing every problem in file order.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Path: name}
	d, errs := scenarios.DecodeStrict(name, data, f, "claims file", "claims: a list of claims")
	if d == nil {
		return nil, errs
	}
	v := &validator{d: d, errs: errs}
	v.file(f)
	if len(v.errs) > 0 {
		v.errs.SortByPosition()
		return nil, v.errs
	}
	return f, nil
}

type validator struct {
	d    *scenarios.Decoded
	errs scenarios.Errors
}

func (v *validator) add(path, format string, args ...any) {
	if e := v.d.Errorf(path, format, args...); e != nil {
		v.errs = append(v.errs, e)
	}
}

func (v *validator) file(f *File) {
	switch {
	case v.d.Absent("claims"):
		v.add("claims", "required: a list of claims, each with id, quote, source, figure, subject and relation")
	case len(f.Claims) == 0:
		v.add("claims", "empty list; give at least one claim")
	}
	ids := map[string]int{}
	for i := range f.Claims {
		c := &f.Claims[i]
		path := fmt.Sprintf("claims[%d]", i)
		if n := v.d.Nodes[path]; n != nil {
			c.Line, c.Column = n.Line, n.Column
		}
		v.claim(path, c)
		if c.ID == "" {
			continue
		}
		if first, dup := ids[c.ID]; dup {
			v.add(path+".id", "duplicate id %q (first used by claims[%d] at line %d)", c.ID, first, f.Claims[first].Line)
			continue
		}
		ids[c.ID] = i
	}
}

func (v *validator) claim(path string, c *Claim) {
	if v.required(path, "id", c.ID, "a short name for the claim, such as rust-3x-go") && !idPattern.MatchString(c.ID) {
		v.add(path+".id", "invalid id %q (use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit)", c.ID)
	}
	v.required(path, "quote", c.Quote, "the sentence as published")
	v.required(path, "source", c.Source, "where the sentence was published")
	if c.Scenario != "" && !scenarioPattern.MatchString(c.Scenario) {
		v.add(path+".scenario", "invalid scenario name %q (scenario names use lower-case letters, digits, '.', '_' and '-')", c.Scenario)
	}
	fig := v.figure(path, c.Figure)
	v.rows(path, c)
	v.at(path, c, fig)
	v.relation(path, c, fig)
}

// required reports a missing or empty string field; it returns whether the
// field holds something to check further.
func (v *validator) required(path, key, val, what string) bool {
	if val != "" {
		return true
	}
	if v.d.Absent(path + "." + key) {
		v.add(path+"."+key, "required (%s)", what)
	} else {
		v.add(path+"."+key, "must not be empty (%s)", what)
	}
	return false
}

func (v *validator) figure(path, name string) *Figure {
	if !v.required(path, "figure", name, "what is measured: "+strings.Join(FigureNames(), ", ")) {
		return nil
	}
	fig := FigureByName(name)
	if fig == nil {
		hint := ""
		if s := scenarios.Closest(name, FigureNames()); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		v.add(path+".figure", "unknown figure %q%s; allowed: %s", name, hint, strings.Join(FigureNames(), ", "))
	}
	return fig
}

func (v *validator) rows(path string, c *Claim) {
	names := scenarios.ProxyNames()
	if v.required(path, "subject", c.Subject, "the row the claim is about: "+strings.Join(names, ", ")) && !slices.Contains(names, c.Subject) {
		v.add(path+".subject", "unknown proxy %q; allowed: %s", c.Subject, strings.Join(names, ", "))
	}
	switch {
	case c.Against == "":
	case !slices.Contains(names, c.Against):
		v.add(path+".against", "unknown proxy %q; allowed: %s", c.Against, strings.Join(names, ", "))
	case c.Against == c.Subject:
		v.add(path+".against", "is the subject itself (%q); a ratio compares two different rows", c.Against)
	}
}

func (v *validator) at(path string, c *Claim, fig *Figure) {
	if c.At == nil || fig == nil {
		return
	}
	p := path + ".at"
	switch {
	case !fig.TakesAt:
		v.add(p, "figure %s takes no at: it is read from the %s, not from a step", fig.Name, map[string]string{FromSearch: "search as a whole", FromBuild: "row's build"}[fig.From])
	case !v.d.Absent(p+".step") && !v.d.Absent(p+".rate"):
		v.add(p, "set either step or rate, not both")
	case v.d.Absent(p+".step") && v.d.Absent(p+".rate"):
		v.add(p, "needs step: N (1-based) or rate: R (the step's target rate, or a search's probe at R)")
	case !v.d.Absent(p+".step") && c.At.Step < 1:
		v.add(p+".step", "must be at least 1 (steps count from 1), got %d", c.At.Step)
	case !v.d.Absent(p+".rate") && c.At.Rate < 1:
		v.add(p+".rate", "must be at least 1, got %d", c.At.Rate)
	}
}

func (v *validator) relation(path string, c *Claim, fig *Figure) {
	p := path + ".relation"
	if v.d.Absent(p) {
		v.add(p, "required (such as \"ratio >= 3.2x\" or \"value ~ 18.3ms ± 10%%\")")
		return
	}
	if v.d.Failed[p] {
		return
	}
	r := &c.Relation
	switch {
	case r.Ratio && c.Against == "":
		v.add(p, "a ratio needs against: the row the subject is divided by")
	case !r.Ratio && c.Against != "":
		v.add(p, "a value relation takes no against (it is the subject's own value): write ratio %s, or drop against", strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.Text), "value")))
	}
	if fig != nil {
		if err := r.resolve(fig); err != nil {
			v.add(p, "%v", err)
		}
	}
}
