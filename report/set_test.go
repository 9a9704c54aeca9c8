package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/claims"
	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/scenarios"
)

func load(t *testing.T, name string) *File {
	t.Helper()
	f, err := Load(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// capacityFile is the search fixture as a three-repetition capacity run:
// each row's search repeated with its rate moved by -5% and +5%, so that
// capacities and their ratios get intervals. The probes stay those of the
// one real search.
func capacityFile(t *testing.T) *File {
	f := load(t, "search")
	f.Scenario.Name, f.Scenario.Repeat = "capacity", 3
	for _, p := range f.Proxies {
		var runs []*lab.Run
		for i, k := range []float64{1, 0.95, 1.05} {
			for _, r := range p.Runs {
				c, s := *r, *r.Search
				s.Rate = int(float64(s.Rate) * k)
				c.Search, c.Repetition = &s, i+1
				runs = append(runs, &c)
			}
		}
		p.Runs = runs
		p.Summary = lab.SummariseFor(f.Scenario, p.Runs)
	}
	return f
}

// fractionsFile is the three-repetition fixture as the latency scenario
// run after capacityFile: its rates are 5%, 12.5% and 25% of rust's
// 40000/s.
func fractionsFile(t *testing.T, capacity *File) *File {
	f := load(t, "repeat3")
	f.Scenario.Name = "latency"
	for i, share := range []scenarios.Share{0.05, 0.125, 0.25} {
		f.Scenario.Load.Steps[i].OfCapacity = share
	}
	f.Capacity = &lab.CapacityRef{Rate: 40000, Proxy: "rust", Scenario: capacity.Scenario.Name, RunID: capacity.RunID, File: capacity.Path, Runs: 3}
	return f
}

// closedFile is the three-repetition fixture as a closed-model run of 400
// connections: no target rate anywhere.
func closedFile(t *testing.T, steps int) *File {
	f := load(t, "repeat3")
	f.Scenario.Name = "closed"
	l := &f.Scenario.Load
	l.Model, l.Connections = scenarios.ModelClosed, 400
	l.Steps = l.Steps[:steps]
	for i := range l.Steps {
		l.Steps[i] = scenarios.Step{Duration: scenarios.Duration(30 * time.Second)}
	}
	for _, p := range f.Proxies {
		for _, r := range p.Runs {
			r.Steps = r.Steps[:min(steps, len(r.Steps))]
			for _, st := range r.Steps {
				st.TargetRate = 0
			}
		}
		p.Summary = lab.SummariseFor(f.Scenario, p.Runs)
	}
	return f
}

// Which part a file plays is read from what it holds, never its name.
func TestRoleOf(t *testing.T) {
	churn := load(t, "repeat3")
	churn.Scenario.Load.Keepalive = false
	named := load(t, "repeat3")
	named.Scenario.Name = "capacity"
	searchedClosed := capacityFile(t)
	searchedClosed.Scenario.Load.Model = scenarios.ModelClosed
	cases := []struct {
		name string
		f    *File
		want role
	}{
		{"search", capacityFile(t), roleCapacity},
		{"of_capacity steps", fractionsFile(t, capacityFile(t)), roleFractions},
		{"keepalive off", churn, roleChurn},
		{"closed model", closedFile(t, 1), roleClosed},
		{"closed wins over anything else", searchedClosed, roleClosed},
		{"a name is no role", named, roleSteps},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := roleOf(c.f); got != c.want {
				t.Errorf("roleOf = %v, want %v", got, c.want)
			}
		})
	}
}

// verdicts are hand-built claims verdicts of each outcome.
func verdictsFixture() []claims.Verdict {
	return []claims.Verdict{
		{Claim: &claims.Claim{ID: "rust-capacity", Quote: "Our Rust proxy handles 3.2x the requests of nginx.", Source: "https://example.org/post", Note: "requests are capacity at p99 <= 10ms"},
			Quoted: "ratio >= 3.20", Measured: "0.77 (0.73-0.81)", Value: 0.77, Lo: 0.73, Hi: 0.81, Outcome: claims.Refuted,
			Why: "the interval lies wholly below 3.20", Rests: "rust runs 1-3, nginx runs 1-3 of capacity (run 8c1b5b47)"},
		{Claim: &claims.Claim{ID: "zig-image", Quote: "The zig image is under 100 KB."},
			Quoted: "image <= 100.0 KB", Measured: "86.7 KB", Value: 86728, Lo: 86728, Hi: 86728, Outcome: claims.Supported,
			Why: "sizes have no run-to-run noise", Rests: "zig image of capacity (run 8c1b5b47)"},
		{Claim: &claims.Claim{ID: "go-p99"},
			Quoted: "p99 <= 1.0 ms", Value: 0.9, Lo: 0.6, Hi: 1.4, Outcome: claims.Inconclusive,
			Why: "the interval straddles 1.0 ms"},
	}
}

// A report of a capacity search and a latency run at shares of its
// capacity: one report.md, findings leading with capacity, every file's
// plots under its own name.
func TestWriteSetGolden(t *testing.T) {
	capacity := capacityFile(t)
	files := []*File{capacity, fractionsFile(t, capacity)}
	dir := t.TempDir()
	path, err := WriteSet(files, verdictsFixture(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	golden(t, "set-capacity-latency.md", md)
	order := []string{"# capacity, latency:", "## How to read this report", "## Findings", "### Capacity",
		"### Latency at fixed shares of capacity", "**At 5% of capacity (2000/s, the slowest lab proxy's, rust)**",
		"### CPU per request", "### Memory (peak RSS)", "### Image and binary sizes", "## Claims", "## Warnings",
		"## capacity in detail", "## latency in detail", "## Environment"}
	at := 0
	for _, want := range order {
		i := strings.Index(md[at:], want)
		if i < 0 {
			t.Fatalf("report.md lacks %q after byte %d", want, at)
		}
		at += i
	}
	for _, want := range []string{"the search reported above", "| rust | 40000/s [38000, 42000] |", "**The files differ in their environment**"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if n := strings.Count(md, "## Environment"); n != 1 {
		t.Errorf("%d environment sections, want one", n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if name != "report.md" && !strings.Contains(md, "("+name+")") {
			t.Errorf("%s is written but report.md does not link it", name)
		}
		if name != "report.md" && !strings.HasPrefix(name, "capacity-") && !strings.HasPrefix(name, "latency-") {
			t.Errorf("%s: a plot of several files is named after its file's scenario", name)
		}
	}
}

// The claims table the terminal shows, and the same fields in report.md.
func TestClaimsReporter(t *testing.T) {
	vs := verdictsFixture()
	got := render(t, NewClaims(vs))
	golden(t, "claims.txt", got)
	md := render(t, NewSetMarkdown([]*File{load(t, "complete")}, vs, [][]Plot{nil}))
	for _, v := range vs {
		for _, want := range []string{v.Claim.ID, v.Quoted, measured(v), v.Outcome, v.Why, v.Rests, v.Claim.Quote} {
			if !strings.Contains(got, want) && v.Claim.Quote != want {
				t.Errorf("terminal table lacks %q", want)
			}
			if !strings.Contains(md, want) {
				t.Errorf("report.md lacks %q", want)
			}
		}
	}
	if got := render(t, NewClaims(nil)); got != "no claims judged\n" {
		t.Errorf("no verdicts: %q", got)
	}
	if err := NewClaims(vs)(failingWriter{}); err == nil {
		t.Error("a write error is not returned")
	}
}

// The latency-against-throughput plot has one series per row, drawn from
// every step, and renders; a closed loop of one step per row has none.
func TestLatencyThroughputPlot(t *testing.T) {
	cases := []struct {
		name string
		f    *File
		plot bool
	}{
		{"search", load(t, "search"), true},
		{"fixed steps", load(t, "repeat3"), true},
		{"closed, three steps", closedFile(t, 3), true},
		{"closed, one step", closedFile(t, 1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			series := latencySeries(c.f)
			if len(series) != len(c.f.Proxies) {
				t.Fatalf("%d series, want one per row (%d)", len(series), len(c.f.Proxies))
			}
			for i, s := range series {
				if s.Proxy != c.f.Proxies[i] {
					t.Errorf("series %d is %s, want %s", i, s.Proxy.Name, c.f.Proxies[i].Name)
				}
				steps := 0
				for _, r := range s.Proxy.Runs {
					steps += len(r.Steps)
				}
				if n := len(s.P99) + len(s.Sat99); n != steps {
					t.Errorf("%s: %d points, want one per step of every run (%d)", s.Proxy.Name, n, steps)
				}
			}
			p, err := latencyThroughput(c.f)
			if err != nil {
				t.Fatal(err)
			}
			if (p != nil) != c.plot {
				t.Fatalf("plot drawn: %v, want %v", p != nil, c.plot)
			}
			if p != nil {
				if err := p.Save(plotWidth, plotHeight, filepath.Join(t.TempDir(), "lt.png")); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A closed-model step is named by its connections and duration in every
// output, never by the 0 its results hold as a target rate.
func TestClosedLabels(t *testing.T) {
	f := closedFile(t, 3)
	const label = "closed loop, 400 connections, 30 s"
	table := render(t, NewTable(f))
	md := render(t, NewMarkdown(f, nil))
	diff := render(t, NewDiff(f, f))
	for name, out := range map[string]string{"table": table, "report.md": md, "diff": diff} {
		if !strings.Contains(out, label) {
			t.Errorf("%s lacks %q", name, label)
		}
		for _, bad := range []string{" 0/s", "(0/s)", "offered 0"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s says %q", name, bad)
			}
		}
	}
	if !strings.Contains(md, "### Closed loop") || strings.Contains(md, "### Latency at fixed rates") {
		t.Error("report.md does not give the closed loop its own section")
	}
	if !strings.Contains(table, "  load  ") {
		t.Error("the table's load column is not named load")
	}
	golden(t, "table-closed.txt", table)
}
