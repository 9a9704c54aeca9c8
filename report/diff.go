package report

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// NewDiff compares two results files metric by metric (B against A) and
// says first what changed around the measurement: a different kernel,
// image or scenario explains a difference as well as the proxies do.
func NewDiff(a, b *File) Reporter {
	return func(out io.Writer) error {
		w, done := newWriter(out)
		writeDiff(w, a, b)
		return done()
	}
}

func writeDiff(w writer, a, b *File) {
	w("# %s: B against A\n\n", a.Scenario.Name)
	w("- A: `%s`, run `%s`, %s UTC, %d repetition(s)%s\n", a.Path, a.RunID, a.StartedAt.UTC().Format("2006-01-02 15:04"), a.Scenario.Repeat, incomplete(a))
	w("- B: `%s`, run `%s`, %s UTC, %d repetition(s)%s\n\n", b.Path, b.RunID, b.StartedAt.UTC().Format("2006-01-02 15:04"), b.Scenario.Repeat, incomplete(b))

	changed := writeEnvDiff(w, a, b)
	if s := hostSpeed(a.Calibration, b.Calibration); s != "" {
		w("**%s**\n\n", s)
	}
	if len(changed) > 0 {
		w("**The environment changed (%s): a difference below may come from that rather than from the proxies.**\n\n", strings.Join(changed, ", "))
	} else {
		w("Same environment, images and scenario in both files.\n\n")
	}

	w("## Figures\n\n")
	w("Median ±half-width of the %.0f%% bootstrap interval in each file; B/A is the ratio of medians; p is the two-sided Mann-Whitney U test of A's runs against B's. A figure is called changed only when p < %.2f and the intervals do not overlap.\n\n",
		100*stats.Level, stats.Alpha)
	w("| proxy | step | figure | A | B | B/A | p (Mann-Whitney U) | verdict |\n|---|---|---|--:|--:|--:|--:|---|\n")
	var only []string
	for _, pa := range a.Proxies {
		pb := b.Proxy(pa.Name)
		if pb == nil {
			only = append(only, pa.Name+" only in A")
			continue
		}
		for i := range pa.Summary {
			sa := &pa.Summary[i]
			sb := pb.StepSummary(sa.Step)
			if sb == nil {
				w("| %s | %d | - | - | - | - | - | step missing in B |\n", pa.Name, sa.Step)
				continue
			}
			if sa.TargetRate != sb.TargetRate || a.load(sa.Step, sa.TargetRate) != b.load(sb.Step, sb.TargetRate) {
				w("| %s | %d | load | %s | %s | - | - | different load: not compared |\n", pa.Name, sa.Step, a.load(sa.Step, sa.TargetRate), b.load(sb.Step, sb.TargetRate))
				continue
			}
			for _, m := range compared() {
				x, y := *m.Of(sa), *m.Of(sb)
				if x.N == 0 && y.N == 0 {
					continue
				}
				ratio, p, verdict := "-", "-", diffVerdict(m, pa, pb, sa.Step, x, y)
				if x.Median != 0 {
					ratio = fmt.Sprintf("%.3f×", y.Median/x.Median)
				}
				if t, ok := stats.MannWhitney(m.Values(lab.StepsAt(pa.Runs, sa.Step-1)), m.Values(lab.StepsAt(pb.Runs, sa.Step-1))); ok {
					p = fmt.Sprintf("%.3f", t.P)
				}
				w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", pa.Name, a.stepLabel(sa), m.Label,
					lab.FormatStat(x, m.Unit), lab.FormatStat(y, m.Unit), ratio, p, verdict)
			}
		}
	}
	for _, pb := range b.Proxies {
		if a.Proxy(pb.Name) == nil {
			only = append(only, pb.Name+" only in B")
		}
	}
	if len(only) > 0 {
		w("\nNot compared: %s.\n", strings.Join(only, ", "))
	}
	if note := MinPNote(a); note != "" {
		w("\nA: %s\n", note)
	}
	if note := MinPNote(b); note != "" {
		w("\nB: %s\n", note)
	}
}

func incomplete(f *File) string {
	if f.Complete {
		return ""
	}
	return ", **incomplete**"
}

func diffVerdict(m lab.Metric, pa, pb *lab.ProxyResult, step int, x, y lab.Stat) string {
	sa, sb := pa.StepSummary(step), pb.StepSummary(step)
	switch {
	case sa.Saturated > 0 || sb.Saturated > 0:
		return VerdictSaturated
	case x.N < stats.MinN || y.N < stats.MinN:
		return VerdictCannotCompare
	}
	t, ok := stats.MannWhitney(m.Values(lab.StepsAt(pa.Runs, step-1)), m.Values(lab.StepsAt(pb.Runs, step-1)))
	apart := distinct(x, y)
	switch {
	case ok && apart && t.Significant():
		dir := "lower"
		if y.Median > x.Median {
			dir = "higher"
		}
		good := (dir == "higher") == m.HigherIsBetter
		word := "worse"
		if good {
			word = "better"
		}
		return fmt.Sprintf("**changed: %s in B (%s)**", dir, word)
	case ok && apart && t.MinP >= stats.Alpha:
		return VerdictApartFewRuns
	}
	return "no significant change"
}

// writeEnvDiff prints the environment side by side and returns the names
// of what differs.
func writeEnvDiff(w writer, a, b *File) []string {
	ea, eb := Environment(a.Results), Environment(b.Results)
	keys := []string{}
	va, vb := map[string]string{}, map[string]string{}
	for _, kv := range ea {
		keys = append(keys, kv.Key)
		va[kv.Key] = kv.Value
	}
	for _, kv := range eb {
		if !slices.Contains(keys, kv.Key) {
			keys = append(keys, kv.Key)
		}
		vb[kv.Key] = kv.Value
	}
	var changed []string
	w("## Environment\n\n| | A | B | |\n|---|---|---|---|\n")
	for _, k := range keys {
		mark := ""
		// The calibration differs in every pair of files; hostSpeed
		// says whether by more than its own spread.
		if va[k] != vb[k] && k != "calibration" {
			mark = "**changed**"
			changed = append(changed, k)
		}
		w("| %s | %s | %s | %s |\n", k, mdEscape(orDash(va[k])), mdEscape(orDash(vb[k])), mark)
	}
	if d := scenarioDiff(a, b); len(d) > 0 {
		for _, x := range d {
			w("| scenario %s | %s | %s | **changed** |\n", x[0], mdEscape(x[1]), mdEscape(x[2]))
		}
		changed = append(changed, "scenario")
	}
	w("\n")
	return changed
}

// hostSpeed compares the two hosts by their calibrations, before any proxy
// is compared: a host that did half the calibration rate makes every rate
// below look halved. Within 10% the hosts are called alike, which is about
// the spread of one short calibration.
func hostSpeed(a, b *lab.Calibration) string {
	if a == nil || b == nil || a.Error != "" || b.Error != "" || a.AchievedRate <= 0 || b.AchievedRate <= 0 {
		return ""
	}
	r := b.AchievedRate / a.AchievedRate
	switch {
	case r < 0.9:
		return fmt.Sprintf("B's host was %.1fx slower than A's in the calibration (%.0f against %.0f requests/s without a proxy): rates below differ by that much before any proxy does", 1/r, b.AchievedRate, a.AchievedRate)
	case r > 1/0.9:
		return fmt.Sprintf("B's host was %.1fx faster than A's in the calibration (%.0f against %.0f requests/s without a proxy): rates below differ by that much before any proxy does", r, b.AchievedRate, a.AchievedRate)
	}
	return fmt.Sprintf("Both hosts did the same calibration rate within 10%% (%.0f and %.0f requests/s without a proxy).", a.AchievedRate, b.AchievedRate)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// scenarioDiff lists the scenario fields (dotted paths) whose values differ;
// the name and description are labels, not conditions, and are skipped.
func scenarioDiff(a, b *File) [][3]string {
	flat := func(f *File) map[string]string {
		raw, _ := json.Marshal(f.Scenario)
		var v any
		json.Unmarshal(raw, &v)
		out := map[string]string{}
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			switch t := v.(type) {
			case map[string]any:
				for k, x := range t {
					walk(strings.TrimPrefix(prefix+"."+k, "."), x)
				}
			default:
				b, _ := json.Marshal(t)
				out[prefix] = string(b)
			}
		}
		walk("", v)
		return out
	}
	fa, fb := flat(a), flat(b)
	var keys []string
	for k := range fa {
		keys = append(keys, k)
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out [][3]string
	for _, k := range keys {
		if k == "name" || k == "description" || reflect.DeepEqual(fa[k], fb[k]) {
			continue
		}
		out = append(out, [3]string{k, orDash(fa[k]), orDash(fb[k])})
	}
	return out
}
