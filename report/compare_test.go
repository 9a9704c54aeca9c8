package report

import (
	"strings"
	"testing"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/scenarios"
)

// synthetic builds a file with one step per proxy whose runs have the given
// p99 latencies (µs); saturated marks every run's step as saturated.
func synthetic(proxies map[string][]int64, order []string, baseline map[string]bool, saturated map[string]bool) *File {
	f := &File{Results: &lab.Results{Scenario: &scenarios.Scenario{Name: "t"}}}
	for _, name := range order {
		pr := &lab.ProxyResult{Name: name, Baseline: baseline[name]}
		for i, p99 := range proxies[name] {
			st := &lab.Step{}
			st.TargetRate, st.AchievedRate, st.Throughput, st.Success = 1000, 1000, 1000, 1
			st.Latency.P99 = p99
			st.LoadgenSaturated = saturated[name]
			pr.Runs = append(pr.Runs, &lab.Run{Repetition: i + 1, Status: lab.RunOK, Steps: []*lab.Step{st}})
		}
		pr.Summary = lab.Summarise(pr.Runs)
		f.Proxies = append(f.Proxies, pr)
	}
	return f
}

func p99Comparison(t *testing.T, f *File) Comparison {
	t.Helper()
	for _, c := range Compare(f) {
		if c.Metric.Key == "latency_p99_us" {
			return c
		}
	}
	t.Fatal("no p99 comparison")
	return Comparison{}
}

func verdicts(c Comparison) map[string]string {
	out := map[string]string{}
	for _, r := range c.Rows {
		out[r.Proxy] = r.Verdict
	}
	return out
}

func TestCompare(t *testing.T) {
	cases := []struct {
		name      string
		runs      map[string][]int64
		order     []string
		baseline  map[string]bool
		saturated map[string]bool
		best      string
		winner    bool
		verdicts  map[string]string
		finding   string
	}{
		{
			name:     "shifted apart with five runs: significant",
			runs:     map[string][]int64{"a": {100, 101, 102, 103, 104}, "b": {200, 201, 202, 203, 204}},
			order:    []string{"a", "b"},
			best:     "a",
			winner:   true,
			verdicts: map[string]string{"a": VerdictBest, "b": VerdictWorse},
			finding:  "better than every other proxy",
		},
		{
			name:     "identical samples: never faster",
			runs:     map[string][]int64{"a": {100, 101, 102, 103, 104}, "b": {100, 101, 102, 103, 104}},
			order:    []string{"a", "b"},
			best:     "a",
			verdicts: map[string]string{"a": VerdictBest, "b": VerdictIndistinct},
			finding:  "every proxy has the same median",
		},
		{
			name:     "overlapping intervals: not significant however the medians differ",
			runs:     map[string][]int64{"a": {100, 150, 90, 300, 120}, "b": {130, 95, 310, 160, 140}},
			order:    []string{"a", "b"},
			best:     "a",
			verdicts: map[string]string{"a": VerdictBest, "b": VerdictIndistinct},
			finding:  "not significantly different from b",
		},
		{
			name:     "p below 0.05 but the intervals overlap: not called faster, and says why",
			runs:     map[string][]int64{"a": {100, 101, 102, 103, 106}, "b": {104, 105, 107, 108, 109}},
			order:    []string{"a", "b"},
			best:     "a",
			verdicts: map[string]string{"a": VerdictBest, "b": VerdictIndistinct},
			finding:  "p = 0.03 but the intervals overlap",
		},
		{
			name:     "apart with three runs: the test cannot reach 0.05",
			runs:     map[string][]int64{"a": {100, 101, 102}, "b": {200, 201, 202}},
			order:    []string{"a", "b"},
			best:     "a",
			verdicts: map[string]string{"a": VerdictBest, "b": VerdictApartFewRuns},
			finding:  "3 runs cannot make that significant",
		},
		{
			name:     "one run each: no interval, no verdict",
			runs:     map[string][]int64{"a": {100}, "b": {200}},
			order:    []string{"a", "b"},
			best:     "a",
			verdicts: map[string]string{"a": VerdictBest, "b": VerdictCannotCompare},
			finding:  "with fewer than 3 runs",
		},
		{
			name:     "a faster baseline is never the best",
			runs:     map[string][]int64{"direct": {50, 51, 52, 53, 54}, "a": {100, 101, 102, 103, 104}, "b": {200, 201, 202, 203, 204}},
			order:    []string{"direct", "a", "b"},
			baseline: map[string]bool{"direct": true},
			best:     "a",
			winner:   true,
			verdicts: map[string]string{"direct": VerdictBaseline, "a": VerdictBest, "b": VerdictWorse},
		},
		{
			name:      "a saturated step is never the best",
			runs:      map[string][]int64{"a": {100, 101, 102, 103, 104}, "b": {200, 201, 202, 203, 204}},
			order:     []string{"a", "b"},
			saturated: map[string]bool{"a": true},
			best:      "b",
			verdicts:  map[string]string{"a": VerdictSaturated, "b": VerdictBest},
			finding:   "no other proxy to rank it against",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmp := p99Comparison(t, synthetic(c.runs, c.order, c.baseline, c.saturated))
			if cmp.Best != c.best || cmp.Winner != c.winner {
				t.Errorf("best %q winner %v, want %q %v", cmp.Best, cmp.Winner, c.best, c.winner)
			}
			got := verdicts(cmp)
			for p, v := range c.verdicts {
				if got[p] != v {
					t.Errorf("%s: verdict %q, want %q", p, got[p], v)
				}
			}
			if f := cmp.Finding(); !strings.Contains(f, c.finding) {
				t.Errorf("finding %q lacks %q", f, c.finding)
			}
		})
	}
}

func TestRatioToDirect(t *testing.T) {
	f := synthetic(map[string][]int64{"direct": {50, 50, 50}, "a": {100, 100, 100}}, []string{"direct", "a"}, map[string]bool{"direct": true}, nil)
	for _, r := range p99Comparison(t, f).Rows {
		if r.Proxy == "a" && r.ToDirect != 2 {
			t.Errorf("a to direct %v, want 2", r.ToDirect)
		}
	}
}

func TestMinPNote(t *testing.T) {
	cases := []struct {
		runs int
		want string
	}{
		{3, "smallest p-value the test can produce is 0.10"},
		{4, ""},
	}
	for _, c := range cases {
		v := make([]int64, c.runs)
		for i := range v {
			v[i] = int64(100 + i)
		}
		f := synthetic(map[string][]int64{"a": v, "b": v}, []string{"a", "b"}, nil, nil)
		got := MinPNote(f)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%d runs: %q, want %q", c.runs, got, c.want)
		}
	}
}
