package claims

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/proxylab/proxylab/scenarios"
	"gopkg.in/yaml.v3"
)

// relationPattern is the spelling of a relation; schema.json carries the
// same pattern and the schema test compares the two. Groups: kind, op,
// number, unit, tolerance sign, tolerance.
var relationPattern = regexp.MustCompile(`^(ratio|value) *(>=|<=|>|<|~) *([0-9]+(?:\.[0-9]+)?) *([a-zA-Zµμ/%]+)? *(?:(±|\+-) *([0-9]+(?:\.[0-9]+)?) *%)?$`)

const relationHint = `write "<ratio|value> <op> <number>[unit] [± <tolerance>%]" with op >=, <=, >, < or ~, such as "ratio >= 3.2x" or "value ~ 18.3ms ± 10%"`

// Ops are the relations' operators; "~" is about equal, within a relative
// tolerance.
var Ops = []string{">=", "<=", ">", "<", "~"}

// UnmarshalYAML reads the relation's syntax. The number's unit depends on
// the claim's figure, so Parse converts it afterwards (resolve).
func (r *Relation) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return fmt.Errorf("expected a relation, got %s (%s)", scenarios.Describe(n), relationHint)
	}
	v, err := parseRelation(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// parseRelation reads the spelling of a relation, leaving Value to resolve.
func parseRelation(s string) (Relation, error) {
	m := relationPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Relation{}, fmt.Errorf("invalid relation %q (%s)", s, relationHint)
	}
	r := Relation{Ratio: m[1] == "ratio", Op: m[2], Text: s, unit: m[4]}
	r.number, _ = strconv.ParseFloat(m[3], 64)
	switch {
	case r.Op == "~" && m[6] == "":
		return Relation{}, fmt.Errorf("invalid relation %q: ~ needs a tolerance such as \"± 10%%\"", s)
	case r.Op != "~" && m[6] != "":
		return Relation{}, fmt.Errorf("invalid relation %q: a tolerance goes with ~ only, not with %s", s, r.Op)
	case m[6] != "":
		t, _ := strconv.ParseFloat(m[6], 64)
		if t <= 0 || t > 100 {
			return Relation{}, fmt.Errorf("invalid relation %q: the tolerance must be above 0%% and at most 100%%, got %s%%", s, m[6])
		}
		r.Tolerance = t / 100
	}
	return r, nil
}

// resolve converts the written number into the figure's base unit.
func (r *Relation) resolve(fig *Figure) error {
	u := fig.unit()
	if r.Ratio {
		u = ratioUnit
	}
	mult, ok := u.suffixes[r.unit]
	if !ok {
		return fmt.Errorf("%q: %s", r.Text, u.hint(r.unit, fig, r.Ratio))
	}
	r.Value = r.number * mult
	return nil
}

// unit is how a figure's values are written in a relation and shown in a
// verdict.
type unit struct {
	name     string             // as in Figure.Unit
	what     string             // "a duration", for messages
	suffixes map[string]float64 // accepted suffix -> multiplier to the base unit; "" for a plain number
	example  string
	format   func(float64) string
}

var ratioUnit = &unit{"x", "a ratio", map[string]float64{"": 1, "x": 1}, "3.2x", func(v float64) string { return fmt.Sprintf("%.2fx", v) }}

// hint explains a unit that does not go with the figure.
func (u *unit) hint(got string, fig *Figure, ratio bool) string {
	var names []string
	plain := false
	for _, s := range unitOrder[u.name] {
		if s == "" {
			plain = true
			continue
		}
		names = append(names, s)
	}
	var allowed string
	switch {
	case len(names) == 0:
		allowed = "a plain number"
	case plain:
		allowed = "a plain number or one with " + strings.Join(names, ", ")
	default:
		allowed = "a number with " + strings.Join(names, ", ")
	}
	what := fmt.Sprintf("%s (%s)", fig.Name, u.what)
	if ratio {
		what = "a ratio"
	}
	if got == "" {
		return fmt.Sprintf("%s needs a unit: write %s, such as %s", fig.Name, allowed, u.example)
	}
	return fmt.Sprintf("unit %q does not go with %s: write %s, such as %s", got, what, allowed, u.example)
}

// unitOrder lists each unit's suffixes in the order messages give them.
var unitOrder = map[string][]string{
	"x":     {"", "x"},
	"/s":    {"", "/s"},
	"us":    {"ns", "us", "µs", "ms", "s"},
	"bytes": {"", "B", "KB", "MB", "GB", "KiB", "MiB", "GiB"},
	"ratio": {"", "%"},
	"count": {""},
}

// units are the figures' units. Sizes are shown in decimal units, the
// ones published sizes are given in; µ has two code points in the wild.
var units = map[string]*unit{
	"/s": {"/s", "a rate", map[string]float64{"": 1, "/s": 1}, "42180 or 42180/s",
		func(v float64) string { return fmt.Sprintf("%.0f/s", v) }},
	"us": {"us", "a duration", map[string]float64{"ns": 1e-3, "us": 1, "µs": 1, "μs": 1, "ms": 1e3, "s": 1e6}, "18.3ms or 500us",
		formatMicros},
	"bytes": {"bytes", "a size", map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}, "12.4MB or 3MiB",
		formatBytes},
	"ratio": {"ratio", "a share", map[string]float64{"": 1, "%": 0.01}, "0.72% or 0.0072",
		func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }},
	"count": {"count", "a count", map[string]float64{"": 1}, "400",
		func(v float64) string { return fmt.Sprintf("%.0f", v) }},
}

func formatMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	case us >= 10:
		return fmt.Sprintf("%.0fµs", us)
	}
	return fmt.Sprintf("%.2fµs", us)
}

func formatBytes(b float64) string {
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.2fGB", b/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.2fMB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1fKB", b/1e3)
	}
	return fmt.Sprintf("%.0fB", b)
}
