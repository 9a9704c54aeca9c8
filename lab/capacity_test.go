package lab

import (
	"slices"
	"strings"
	"testing"

	"github.com/proxylab/proxylab/scenarios"
)

// TestCapacityOf takes the slowest lab proxy's median search rate, never a
// baseline's, and says why when there is none.
func TestCapacityOf(t *testing.T) {
	res, err := ReadResults("testdata/results-search.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := CapacityOf(res, "testdata/results-search.json")
	if err != nil {
		t.Fatal(err)
	}
	// go 44000, rust 40000, zig 46000; direct 64000 and nginx 52000 are
	// baselines.
	want := CapacityRef{Rate: 40000, Proxy: "rust", Scenario: "max", RunID: res.RunID, File: "testdata/results-search.json", Runs: 1}
	if *c != want {
		t.Errorf("CapacityOf = %+v, want %+v", *c, want)
	}

	// Three runs of rust: the median, not the lowest.
	rust := res.Proxies[1]
	for _, rate := range []int{52000, 30000} {
		rust.Runs = append(rust.Runs, &Run{Status: RunOK, Search: &SearchResult{Rate: rate}})
	}
	if c, _ := CapacityOf(res, ""); c.Rate != 40000 || c.Runs != 3 {
		t.Errorf("with rust at 40000, 52000, 30000: %+v, want the median 40000 of 3 runs", *c)
	}

	// A proxy whose every run was disturbed still gives the rates of later
	// steps, and says so.
	for _, r := range rust.Runs {
		r.Disturbed = true
	}
	if c, _ := CapacityOf(res, ""); c.Proxy != "rust" || c.Rate != 40000 || !c.Disturbed {
		t.Errorf("rust disturbed in every run: %+v, want its median marked disturbed", *c)
	}

	// Failed runs do not count; a proxy with none left is skipped.
	for _, p := range res.Proxies {
		for _, r := range p.Runs {
			if !p.Baseline {
				r.Status = RunFailed
			}
		}
	}
	if _, err := CapacityOf(res, "x.json"); err == nil || !strings.Contains(err.Error(), "go, rust, zig") {
		t.Errorf("no finished lab proxy: err = %v, want one naming go, rust, zig", err)
	}

	steps, err := ReadResults("testdata/results-repeat3.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CapacityOf(steps, "r.json"); err == nil || !strings.Contains(err.Error(), "no load.search") {
		t.Errorf("fixed steps: err = %v, want no load.search", err)
	}
}

func TestStepRates(t *testing.T) {
	c := &CapacityRef{Rate: 40000, Proxy: "rust"}
	tests := []struct {
		name  string
		load  scenarios.Load
		c     *CapacityRef
		want  []int
		error string
	}{
		{"rates", scenarios.Load{Steps: []scenarios.Step{{Rate: 100}, {Rate: 2000}}}, nil, []int{100, 2000}, ""},
		{"shares", scenarios.Load{Steps: []scenarios.Step{{OfCapacity: 0.25}, {OfCapacity: 0.75}, {Rate: 7}}}, c, []int{10000, 30000, 7}, ""},
		{"tiny share", scenarios.Load{Steps: []scenarios.Step{{OfCapacity: 0.00001}}}, c, []int{1}, ""},
		{"closed", scenarios.Load{Model: scenarios.ModelClosed, Steps: []scenarios.Step{{}}}, nil, []int{0}, ""},
		{"share without capacity", scenarios.Load{Steps: []scenarios.Step{{Rate: 5}, {OfCapacity: 0.5}}}, nil, nil,
			"x.yaml: load.steps[1] is 50% of the capacity, and no capacity was measured before it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StepRates(&scenarios.Scenario{File: "x.yaml", Load: tt.load}, tt.c)
			if tt.error != "" {
				if err == nil || !strings.Contains(err.Error(), tt.error) {
					t.Fatalf("err = %v, want %q", err, tt.error)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("StepRates = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
