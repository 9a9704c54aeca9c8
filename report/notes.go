package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// Note is one thing a reader must know before quoting a figure of a file:
// a proxy not verified, a rate not delivered, a noisy figure, a failed
// run. Notes derives them once; the terminal table and report.md show the
// same notes in the same words.
type Note struct {
	Proxy string // "" when the note is about the whole run
	Where string // "step 2", "repetition 1 failed"; "" for the proxy as a whole
	Text  string
	Logs  []string // a failed run's last log lines, for outputs that show them
}

// String is the note as one line: "go step 2: ...".
func (n Note) String() string {
	head := strings.TrimSpace(n.Proxy + " " + n.Where)
	if head == "" {
		return n.Text
	}
	return head + ": " + n.Text
}

// Notes lists f's warnings: per proxy in file order, then those of the run.
func Notes(f *File) []Note {
	var out []Note
	for _, p := range f.Proxies {
		out = append(out, proxyNotes(f, p)...)
		out = append(out, probeNotes(p)...)
	}
	if f.Probes != nil && f.Probes.Error != "" {
		out = append(out, Note{Text: "no eBPF probe counts: " + f.Probes.Error})
	}
	out = append(out, probeRunNotes(f)...)
	if f.Source != nil && f.Source.Dirty {
		out = append(out, Note{Text: fmt.Sprintf("the lab checkout had uncommitted changes: the code measured may differ from commit %s", short(f.Source.Commit))})
	}
	if !f.Complete {
		reason := f.StopReason
		if reason == "" {
			reason = "not finished"
		}
		out = append(out, Note{Text: "INCOMPLETE: " + reason + "; the steps measured before that are valid, but the comparison is not whole"})
	}
	return out
}

func proxyNotes(f *File, p *lab.ProxyResult) []Note {
	var out []Note
	add := func(where, text string) { out = append(out, Note{Proxy: p.Name, Where: where, Text: text}) }
	if v := p.Verified; v != nil && !p.Baseline {
		switch {
		case v.Skipped:
			add("", "NOT verified against the proxy contract (--skip-verify): it may not do the same work as the others")
		case !v.Passed:
			add("", fmt.Sprintf("failed %d of %d conformance cases", len(v.Failed), v.Cases))
		}
	}
	if len(p.Summary) == 0 {
		add("", "no step completed, so nothing to summarise (partial steps are in the results file)")
	}
	var short, few []string
	fewN := map[int]bool{}
	for i := range p.Summary {
		s := &p.Summary[i]
		if s.Saturated > 0 {
			r := f.load(s.Step, s.TargetRate)
			if s.Saturated < s.AchievedRate.N {
				r += fmt.Sprintf(" (in %d of %d runs)", s.Saturated, s.AchievedRate.N)
			}
			short = append(short, r)
		}
		if n := noiseNote(s); n != "" {
			add(fmt.Sprintf("step %d", s.Step), n)
		}
		if s.AchievedRate.N > 0 && s.AchievedRate.N < stats.MinN {
			few = append(few, fmt.Sprint(s.Step))
			fewN[s.AchievedRate.N] = true
		}
	}
	if len(short) > 0 {
		add("", fmt.Sprintf("the target rate was not delivered at %s (every connection busy, or the load generator short of CPU: each step's saturation_cause says which); those rows are no measurement at their rate",
			strings.Join(short, ", ")))
	}
	if len(few) == len(p.Summary) && len(fewN) == 1 {
		// One repetition gives every step too few runs: one line, not one
		// per step, so the other notes stay visible.
		add("", fmt.Sprintf("only %d run(s) per step, so no interval can be given", p.Summary[0].AchievedRate.N))
	} else if len(few) > 0 {
		add("", fmt.Sprintf("fewer than %d runs in step %s, so no interval can be given there", stats.MinN, strings.Join(few, ", ")))
	}
	disturbed := 0
	for _, r := range p.Runs {
		if r.Status != lab.RunOK {
			out = append(out, Note{Proxy: p.Name, Where: fmt.Sprintf("repetition %d %s", r.Repetition, r.Status), Text: r.Error, Logs: r.LastLogs})
		}
		if r.Disturbed {
			disturbed++
		}
	}
	if disturbed > 0 {
		add("", fmt.Sprintf("%d run(s) DISTURBED (something outside the run used its cores; the steps say how much): left out of every figure and verdict", disturbed))
	}
	return out
}

// noiseNote names the figures of a step whose coefficient of variation
// across repetitions exceeds lab.NoiseCV; "" when none does.
func noiseNote(s *lab.StepSummary) string {
	var noisy []string
	for _, m := range lab.Metrics {
		if st := m.Of(s); m.NoiseChecked && st.Noisy() {
			noisy = append(noisy, fmt.Sprintf("%s %.0f%%", m.Label, 100*st.CV))
		}
	}
	if len(noisy) == 0 {
		return ""
	}
	slices.Sort(noisy)
	return fmt.Sprintf("NOISY: CV across runs above %.0f%% for %s; differences of that size between proxies may be noise",
		100*lab.NoiseCV, strings.Join(noisy, ", "))
}
