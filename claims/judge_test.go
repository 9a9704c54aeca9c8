package claims

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// results reads results files from lab/testdata, where they live.
func results(t *testing.T, names ...string) []*lab.Results {
	t.Helper()
	var out []*lab.Results
	for _, n := range names {
		r, err := lab.ReadResults(filepath.Join("..", "lab", "testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// claim parses one claim written as a YAML flow mapping.
func claim(t *testing.T, yaml string) *File {
	t.Helper()
	f, err := Parse("test.yaml", []byte("claims:\n  - {"+yaml+"}\n"))
	if err != nil {
		t.Fatalf("%s: %v", yaml, err)
	}
	return f
}

const head = "id: c, quote: q, source: s, "

// closedRun builds a closed-model results file, as the fixtures have none:
// one 30 s step per run, the given p99s and rates.
func closedRun(name string, p99s []int64, rates []float64) *lab.Results {
	sc := &scenarios.Scenario{Name: name, Load: scenarios.Load{Model: scenarios.ModelClosed, Connections: 400,
		Steps: []scenarios.Step{{Duration: scenarios.Duration(30 * time.Second)}}}}
	p := &lab.ProxyResult{Name: "rust"}
	for i := range p99s {
		st := &lab.Step{StepResult: loadgen.StepResult{AchievedRate: rates[i], Requests: uint64(rates[i] * 30),
			Latency: loadgen.Latency{P99: p99s[i]}}}
		p.Runs = append(p.Runs, &lab.Run{Repetition: i + 1, Status: lab.RunOK, Steps: []*lab.Step{st}})
	}
	return &lab.Results{RunID: "c105ed00aa", Scenario: sc, StartedAt: time.Unix(1, 0), Proxies: []*lab.ProxyResult{p}}
}

// searched builds a searched results file: per row, each run's capacity,
// every search stopped by stoppedBy.
func searched(stoppedBy string, capacities map[string][]int) *lab.Results {
	sc := &scenarios.Scenario{Name: "capacity", Load: scenarios.Load{Search: &scenarios.Search{Start: 1000, Max: 100000}}}
	r := &lab.Results{RunID: "5ea4c4ed11", Scenario: sc}
	for _, name := range []string{"go", "rust"} {
		p := &lab.ProxyResult{Name: name}
		for i, c := range capacities[name] {
			st := &lab.Step{StepResult: loadgen.StepResult{TargetRate: float64(c)}, Resources: &lab.Resources{ProxyPeakRSSBytes: int64(1e6 * (i + 5))}}
			p.Runs = append(p.Runs, &lab.Run{Repetition: i + 1, Status: lab.RunOK, Steps: []*lab.Step{st},
				Search: &lab.SearchResult{Rate: c, StoppedBy: stoppedBy}})
		}
		r.Proxies = append(r.Proxies, p)
	}
	return r
}

func TestJudge(t *testing.T) {
	byProxy := searched(lab.StoppedByProxy, map[string][]int{"go": {10000, 11000, 12000}, "rust": {40000, 42000, 41000}})
	byLoadgen := searched(lab.StoppedByLoadgen, map[string][]int{"go": {10000, 11000, 12000}, "rust": {40000, 42000, 41000}})
	limitedBy := func(by string) *lab.Results {
		r := searched(lab.StoppedByProxy, map[string][]int{"go": {10000, 11000, 12000}, "rust": {40000, 42000, 41000}})
		for _, p := range r.Proxies {
			for _, run := range p.Runs {
				run.Search.LimitedBy = by
			}
		}
		return r
	}
	openTwin := closedRun("replicate-article", []int64{17000, 18000, 19000}, []float64{41000, 42000, 43000})
	openTwin.Scenario.Load.Model = scenarios.ModelOpen
	closed := closedRun("replicate-article", []int64{17000, 18000, 19000}, []float64{41000, 42000, 43000})
	short := results(t, "results-repeat3.json")
	all := results(t, "results-repeat3.json", "results-default3.json", "results-search.json", "results-baselines.json")
	tests := []struct {
		name    string
		claim   string
		results []*lab.Results
		outcome string
		why     string // a part of Why
		rests   string
	}{
		{"ambiguous", "figure: latency_p99, subject: go, against: rust, at: {step: 3}, relation: ratio > 1", all, Inconclusive, "the figure is in several results (keepalive-1k-short, keepalive-1k): name one with scenario:", ""},
		{"ratio straddles", "figure: latency_p99, scenario: keepalive-1k-short, subject: go, against: rust, at: {step: 3}, relation: ratio > 1", all, Inconclusive, "the interval (0.97x-1.30x) straddles 1.00x", "go runs 1-3, rust runs 1-3 of keepalive-1k-short (run 9387cf09)"},
		{"rss supported", "figure: peak_rss, scenario: keepalive-1k, subject: go, against: rust, relation: ratio > 1", all, Supported, "the interval (1.35x-1.43x) lies above 1.00x", "go runs 1-3, rust runs 1-3 of keepalive-1k (run 91265822)"},
		{"rss refuted", "figure: peak_rss, scenario: keepalive-1k, subject: rust, against: go, relation: ratio <= 0.33", all, Refuted, "the interval (0.70x-0.74x) lies above 0.33x", ""},
		{"rss at step", "figure: peak_rss, scenario: keepalive-1k, subject: zig, against: go, at: {rate: 10000}, relation: ratio <= 0.33", all, Supported, "lies at or below 0.33x", "zig runs 1-3, go runs 1-3"},
		{"value p50", "figure: latency_p50, subject: zig, at: {step: 1}, relation: value < 1ms", short, Supported, "the interval (133µs-139µs) lies below 1.00ms", "zig runs 1-3 of keepalive-1k-short"},
		{"one search run", "figure: capacity, subject: rust, against: go, relation: ratio >= 3.2", all, Inconclusive, "rust has 1 usable run, a verdict needs at least 3", ""},
		{"saturated", "figure: latency_p99, subject: rust, at: {step: 3}, relation: value < 10ms", results(t, "results-baselines.json"), Inconclusive, "1 of 3 runs of rust was saturated at step 3 (the load generator fell short of the rate): rust has 2 usable runs", ""},
		{"failed", "figure: latency_p99, subject: go, relation: value < 10ms", results(t, "results-failed.json"), Inconclusive, "1 of 1 runs of go failed: go has 0 usable runs", ""},
		{"interrupted", "figure: latency_p99, subject: go, relation: value < 10ms", results(t, "results-interrupted.json"), Inconclusive, "1 of 1 runs of go was interrupted", ""},
		{"missing row", "figure: latency_p99, subject: nginx, against: go, at: {step: 1}, relation: ratio < 1", results(t, "results-default3.json"), Inconclusive, "no results hold rows nginx and go with latency_p99", ""},
		{"missing figure", "figure: cpu_per_request, subject: direct, at: {step: 1}, relation: value < 10us", results(t, "results-baselines.json"), Inconclusive, "no results hold row direct with cpu_per_request", ""},
		{"missing figure named", "figure: perf_loss_ratio, scenario: keepalive-1k, subject: go, at: {step: 1}, relation: value < 1%", results(t, "results-complete.json"), Inconclusive, "results of keepalive-1k (run b58ed19d) hold no perf_loss_ratio for go at step 1", ""},
		{"no such scenario", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2", all, Inconclusive, "no results of scenario capacity among those given (keepalive-1k-short, keepalive-1k, max)", ""},
		{"no search", "figure: capacity, subject: rust, against: go, relation: ratio >= 3.2", short, Inconclusive, "no results hold rows rust and go with capacity: run a search scenario", ""},
		{"many steps no at", "figure: latency_p99, subject: rust, relation: value < 5ms", short, Inconclusive, "no results hold row rust with latency_p99", ""},
		{"image value", "figure: image_bytes, subject: go, relation: value ~ 6MB ± 10%", all[:2], Supported, "6.01MB lies within 6.00MB ± 10% (5.40MB-6.60MB)", "go image in keepalive-1k (run 91265822)"},
		{"image refuted", "figure: image_bytes, subject: rust, relation: value ~ 3.8MB ± 10%", all, Refuted, "2.18MB lies outside 3.80MB ± 10% (3.42MB-4.18MB)", "rust image in max (run 8c1b5b47)"},
		{"image ratio", "figure: image_bytes, subject: zig, against: go, relation: ratio ~ 0.53 ± 10%", all[:2], Refuted, "0.01x lies outside 0.53x ± 10%", "zig and go images"},
		{"image differs", "figure: image_bytes, subject: zig, relation: value < 1MB", all, Inconclusive, "the figure is in several results (keepalive-1k-short, keepalive-1k, max)", ""},
		{"binary", "figure: binary_bytes, scenario: max, subject: nginx, relation: value <= 1.3MB", all, Supported, "1.26MB lies at or below 1.30MB", "nginx binary in max (run 8c1b5b47)"},
		{"capacity supported", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2x", []*lab.Results{byProxy}, Supported, "the interval (3.33x-4.20x) lies at or above 3.20x", "rust runs 1-3, go runs 1-3 of capacity (run 5ea4c4ed)"},
		{"capacity limited by the rig's core", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2x",
			[]*lab.Results{limitedBy("core 0 (upstream, load generator)")}, Inconclusive, "limited by a CPU other than the proxy's", "rust runs 1-3, go runs 1-3 of capacity"},
		{"capacity not attributed", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2x",
			[]*lab.Results{limitedBy(lab.NotAttributed)}, Inconclusive, "is a lower bound only", "rust runs 1-3, go runs 1-3 of capacity"},
		{"capacity limited by the proxies", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2x",
			[]*lab.Results{limitedBy(lab.PartyProxy)}, Supported, "", "rust runs 1-3, go runs 1-3 of capacity"},
		{"capacity limited by the proxy's own core", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2x",
			[]*lab.Results{limitedBy("core 1 (proxy)")}, Supported, "", "rust runs 1-3, go runs 1-3 of capacity"},
		{"capacity lower bound", "figure: capacity, scenario: capacity, subject: rust, against: go, relation: ratio >= 3.2x", []*lab.Results{byLoadgen}, Inconclusive, "is a lower bound only", "rust runs 1-3, go runs 1-3 of capacity"},
		{"capacity rss", "figure: peak_rss, scenario: capacity, subject: rust, against: go, relation: ratio <= 0.33", []*lab.Results{byProxy}, Refuted, "lies above 0.33x", "rust runs 1-3, go runs 1-3 of capacity"},
		{"closed rate", "figure: achieved_rate, scenario: replicate-article, subject: rust, relation: value ~ 42180 ± 10%", []*lab.Results{closed}, Supported, "the interval (41000/s-43000/s) lies within 42180/s ± 10%", "rust runs 1-3 of replicate-article (run c105ed00)"},
		{"closed p99", "figure: latency_p99, scenario: replicate-article, subject: rust, relation: value ~ 18.3ms ± 10%", []*lab.Results{closed}, Supported, "the interval (17.00ms-19.00ms) lies within 18.30ms ± 10% (16.47ms-20.13ms)", ""},
		{"closed p99 outside", "figure: latency_p99, scenario: replicate-article, subject: rust, relation: value ~ 1.83ms ± 10%", []*lab.Results{closed}, Refuted, "lies outside 1.83ms ± 10%", ""},
		{"closed p99 edge", "figure: latency_p99, scenario: replicate-article, subject: rust, relation: value ~ 17ms ± 5%", []*lab.Results{closed}, Inconclusive, "straddles an edge of 17.00ms ± 5% (16.15ms-17.85ms)", ""},
		{"models mixed", "figure: latency_p99, subject: rust, relation: value ~ 18.3ms ± 10%", []*lab.Results{closed, openTwin}, Inconclusive, "both the open and the closed load model", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(claim(t, head+tt.claim), tt.results)[0]
			if v.Outcome != tt.outcome || !strings.Contains(v.Why, tt.why) || !strings.Contains(v.Rests, tt.rests) {
				t.Errorf("got %s: %s [%s]\nwant %s: ...%s... [%s]", v.Outcome, v.Why, v.Rests, tt.outcome, tt.why, tt.rests)
			}
		})
	}
}
