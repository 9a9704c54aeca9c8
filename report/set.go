package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/proxylab/proxylab/claims"
	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/scenarios"
)

// role is the part a results file plays in a report, read from what it
// holds rather than from its scenario's name, so that any scenario file
// lands where its figures belong.
type role int

const (
	roleSteps     role = iota // fixed rates
	roleCapacity              // a saturation search
	roleFractions             // steps given as shares of a measured capacity
	roleChurn                 // a new connection per request
	roleClosed                // the closed load model
)

// roleOf decides a file's part. The closed model comes first: its figures
// are never set beside an open model's, whatever else the file holds.
func roleOf(f *File) role {
	l := f.Scenario.Load
	switch {
	case f.closed():
		return roleClosed
	case l.Search != nil:
		return roleCapacity
	case !l.Keepalive:
		// Churn at shares of capacity is still churn: its headline is
		// the connections, not latency at the share.
		return roleChurn
	case f.Capacity != nil || slices.ContainsFunc(l.Steps, func(s scenarios.Step) bool { return s.OfCapacity > 0 }):
		return roleFractions
	}
	return roleSteps
}

func (r role) String() string {
	return [...]string{"fixed rates", "saturation search", "latency at shares of capacity", "connection churn", "closed loop"}[r]
}

// WriteSet renders the results files of one invocation into dir as one
// report: report.md and every plot as SVG and PNG. verdicts are the claims
// judged against the files, shown in their own section; none leaves it
// out. It returns the path of report.md.
func WriteSet(files []*File, verdicts []claims.Verdict, dir string) (string, error) {
	if len(files) == 0 {
		return "", fmt.Errorf("report: no results files to write a report of")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	prefixes := plotPrefixes(files)
	plots := make([][]Plot, len(files))
	for i, f := range files {
		var err error
		if plots[i], err = plotsNamed(f, dir, prefixes[i]); err != nil {
			return "", fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	path := filepath.Join(dir, "report.md")
	if err := WriteFile(path, NewSetMarkdown(files, verdicts, plots)); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	return path, nil
}

// plotPrefixes keeps the plots of several files apart in one folder: each
// file's are named after its scenario ("capacity-throughput.svg"). A single
// file's plots keep their plain names.
func plotPrefixes(files []*File) []string {
	out := make([]string, len(files))
	if len(files) == 1 {
		return out
	}
	seen := map[string]int{}
	for i, f := range files {
		p := slug(f.Scenario.Name)
		if seen[p]++; seen[p] > 1 {
			p += fmt.Sprint(seen[p])
		}
		out[i] = p + "-"
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func slug(s string) string {
	if s = strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-."); s == "" {
		return "results"
	}
	return s
}

// NewSetMarkdown renders report.md for files; plots[i] are file i's image
// files (relative to the report), in order.
func NewSetMarkdown(files []*File, verdicts []claims.Verdict, plots [][]Plot) Reporter {
	return func(out io.Writer) error {
		w, done := newWriter(out)
		writeSet(w, files, verdicts, plots)
		return done()
	}
}

// writeSet is the report's order, written for a blog post: what was run
// and how to read it, the findings headline first (capacity, then latency
// at fixed shares of it, cost, size, churn, claims), the warnings, then
// each file in detail and the environment once.
func writeSet(w writer, files []*File, verdicts []claims.Verdict, plots [][]Plot) {
	writeTitle(w, files)
	writeMethod(w, files)
	writeFindings(w, files, plots)
	writeClaims(w, verdicts)
	writeWarnings(w, files)
	for i, f := range files {
		writeDetails(w, f, plots[i], len(files) > 1)
	}
	writeEnvironment(w, files)
}

// rowNames are the rows of every file, each once, in order of appearance.
func rowNames(files []*File) []string {
	var names []string
	for _, f := range files {
		for _, p := range f.Proxies {
			if n := proxyLabel(p); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

func writeTitle(w writer, files []*File) {
	rows := strings.Join(rowNames(files), ", ")
	if len(files) == 1 {
		f := files[0]
		w("# %s: %s\n\n", f.Scenario.Name, rows)
		if d := f.Scenario.Description; d != "" {
			w("%s.\n\n", strings.TrimSuffix(d, "."))
		}
		w("%s\n\n", runLine(f))
		return
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Scenario.Name)
	}
	w("# %s: %s\n\n", strings.Join(names, ", "), rows)
	w("%d results files of one comparison, each a scenario run against every row:\n\n", len(files))
	for _, f := range files {
		d := ""
		if f.Scenario.Description != "" {
			d = " " + strings.TrimSuffix(f.Scenario.Description, ".") + "."
		}
		w("- **%s** (%s, `%s`):%s %s\n", f.Scenario.Name, roleOf(f), f.Path, d, runLine(f))
	}
	w("\n")
}

// runLine says when a file's run was made, whether it finished, and how
// often each row was measured.
func runLine(f *File) string {
	sc := f.Scenario
	status := "complete"
	if !f.Complete {
		reason := f.StopReason
		if reason == "" {
			reason = "not finished"
		}
		status = "**INCOMPLETE: " + reason + "**; the steps measured before that are valid, but the comparison is not whole"
	}
	reps := "1 repetition per proxy"
	if sc.Repeat > 1 {
		reps = fmt.Sprintf("%d repetitions per proxy, the proxy order rotated each repetition", sc.Repeat)
	}
	return fmt.Sprintf("Run `%s`, %s to %s UTC, %s. %s; %s warm-up per run, not measured. proxylab %s.",
		f.RunID, f.StartedAt.UTC().Format("2006-01-02 15:04:05"), f.EndedAt.UTC().Format("15:04:05"), status, reps, sc.Warmup, f.ToolVersion)
}

func writeWarnings(w writer, files []*File) {
	any := false
	for _, f := range files {
		notes := Notes(f)
		if len(notes) == 0 {
			continue
		}
		if !any {
			w("## Warnings\n\n")
			any = true
		}
		if len(files) > 1 {
			w("**%s**\n\n", f.Scenario.Name)
		}
		for _, n := range notes {
			w("- %s\n", oneLine(n.String()))
		}
		w("\n")
	}
}

// writeDetails is every table of one file. Several files each get a
// heading, and their sections sit one level below it.
func writeDetails(w writer, f *File, plots []Plot, several bool) {
	if several {
		w("## %s in detail (%s)\n\n%s Results file `%s`.\n\n", f.Scenario.Name, roleOf(f), runLine(f), f.Path)
		w = demoted(w)
	}
	writeThroughput(w, f)
	writeLatency(w, f)
	writeComparisons(w, f)
	writeResources(w, f)
	writeSizes(w, f)
	writeProbes(w, f)
	writeSearches(w, f)
	writePlots(w, plots)
	w("## Scenario `%s` (as parsed, defaults applied)\n\n```json\n", f.Scenario.Name)
	b, _ := json.MarshalIndent(f.Scenario, "", "  ")
	w("%s\n```\n\n", b)
}

// demoted writes headings one level down, so a file's sections nest under
// its own heading in a report of several files.
func demoted(w writer) writer {
	return func(format string, a ...any) {
		if strings.HasPrefix(format, "#") {
			format = "#" + format
		}
		w(format, a...)
	}
}

// writePlots shows the plots the findings did not already show.
func writePlots(w writer, plots []Plot) {
	var rest []Plot
	for _, p := range plots {
		if !p.Headline {
			rest = append(rest, p)
		}
	}
	if len(rest) == 0 {
		return
	}
	w("## Plots\n\n")
	for _, p := range rest {
		writePlot(w, p)
	}
}

func writePlot(w writer, p Plot) {
	w("### %s\n\n![%s](%s)\n\n%s ([SVG](%s))\n\n", p.Title, p.Title, p.PNG, p.Caption, p.SVG)
}

// writeEnvironment shows the first file's environment and says where any
// other file's differs: a different kernel, commit or image explains a
// difference between files as well as the proxies do.
func writeEnvironment(w writer, files []*File) {
	first := files[0]
	w("## Environment\n\n| | |\n|---|---|\n")
	env := Environment(first.Results)
	for _, kv := range env {
		w("| %s | %s |\n", kv.Key, mdEscape(kv.Value))
	}
	w("\n")
	if len(files) == 1 {
		return
	}
	var diffs []string
	for _, kv := range env {
		var other []string
		for _, f := range files[1:] {
			if v, ok := envValue(f, kv.Key); ok && v != kv.Value {
				other = append(other, fmt.Sprintf("`%s` in %s", mdEscape(v), f.Scenario.Name))
			}
		}
		if len(other) > 0 {
			diffs = append(diffs, fmt.Sprintf("- %s: `%s` in %s, %s", kv.Key, mdEscape(kv.Value), first.Scenario.Name, strings.Join(other, ", ")))
		}
	}
	if len(diffs) == 0 {
		w("Every file of this report was measured in this environment, with the same commit and images.\n\n")
		return
	}
	w("**The files differ in their environment**: a difference between their figures may come from that rather than from the proxies.\n\n%s\n\n", strings.Join(diffs, "\n"))
}

func envValue(f *File, key string) (string, bool) {
	for _, kv := range Environment(f.Results) {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// labProxies are f's rows that are not baselines.
func labProxies(f *File) []*lab.ProxyResult {
	var out []*lab.ProxyResult
	for _, p := range f.Proxies {
		if !p.Baseline {
			out = append(out, p)
		}
	}
	return out
}
