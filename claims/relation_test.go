package claims

import (
	"encoding/json"
	"testing"
)

// TestRelationUnits converts every unit of every figure unit, and each op.
func TestRelationUnits(t *testing.T) {
	tests := []struct {
		figure, rel string
		want, tol   float64
		op          string
	}{
		{"capacity", "value >= 42180", 42180, 0, ">="},
		{"capacity", "value > 42180/s", 42180, 0, ">"},
		{"latency_p99", "value <= 500ns", 0.5, 0, "<="},
		{"latency_p99", "value < 500us", 500, 0, "<"},
		{"latency_p99", "value < 500µs", 500, 0, "<"},
		{"latency_p99", "value < 500μs", 500, 0, "<"},
		{"latency_p99", "value ~ 18.3ms ± 10%", 18300, 0.1, "~"},
		{"latency_max", "value<2s", 2e6, 0, "<"},
		{"image_bytes", "value ~ 12.4MB +- 5%", 12.4e6, 0.05, "~"},
		{"image_bytes", "value < 1000", 1000, 0, "<"},
		{"image_bytes", "value < 10B", 10, 0, "<"},
		{"image_bytes", "value < 1.5KB", 1500, 0, "<"},
		{"image_bytes", "value < 2GB", 2e9, 0, "<"},
		{"binary_bytes", "value < 1KiB", 1024, 0, "<"},
		{"binary_bytes", "value < 1.5MiB", 1.5 * (1 << 20), 0, "<"},
		{"peak_rss", "value < 1GiB", 1 << 30, 0, "<"},
		{"perf_loss_ratio", "value ~ 0.72% ± 50%", 0.0072, 0.5, "~"},
		{"perf_loss_ratio", "value <= 0.0072", 0.0072, 0, "<="},
		{"accepts", "value >= 400", 400, 0, ">="},
		{"capacity", "ratio >= 3.2x", 3.2, 0, ">="},
		{"latency_p99", "ratio > 1", 1, 0, ">"},
		{"image_bytes", "ratio ~ 0.53 ± 100%", 0.53, 1, "~"},
	}
	for _, tt := range tests {
		r, err := parseRelation(tt.rel)
		if err == nil {
			err = r.resolve(FigureByName(tt.figure))
		}
		if err != nil {
			t.Errorf("%s %q: %v", tt.figure, tt.rel, err)
			continue
		}
		if d := r.Value - tt.want; d > 1e-9*tt.want || d < -1e-9*tt.want || r.Tolerance != tt.tol || r.Op != tt.op {
			t.Errorf("%s %q = %v %s ± %v, want %v %s ± %v", tt.figure, tt.rel, r.Value, r.Op, r.Tolerance, tt.want, tt.op, tt.tol)
		}
	}
}

// TestRelationRejects lists spellings each figure refuses.
func TestRelationRejects(t *testing.T) {
	for _, tt := range []struct{ figure, rel string }{
		{"capacity", "value >= 42,180"},
		{"capacity", "value >= 4ms"},
		{"latency_p99", "value < 18.3"},
		{"latency_p99", "value < 18.3m"},
		{"image_bytes", "value < 12.4mb"},
		{"perf_loss_ratio", "value < 1ms"},
		{"accepts", "value < 4%"},
		{"capacity", "ratio > 3%"},
		{"capacity", "value == 3"},
		{"capacity", "value ≥ 3"},
		{"capacity", "value ~ 3 ± 0.0%"},
		{"capacity", "value ~ 3 ± 100.1%"},
		{"capacity", "value -3"},
	} {
		r, err := parseRelation(tt.rel)
		if err == nil {
			err = r.resolve(FigureByName(tt.figure))
		}
		if err == nil {
			t.Errorf("%s %q accepted as %+v", tt.figure, tt.rel, r)
		}
	}
}

func TestRepsText(t *testing.T) {
	for in, want := range map[string]string{"[1,2,3]": "1-3", "[1,3]": "1,3", "[4,1,2]": "1-2,4", "[2]": "2"} {
		var reps []int
		if err := json.Unmarshal([]byte(in), &reps); err != nil {
			t.Fatal(err)
		}
		if got := repsText(reps); got != want {
			t.Errorf("repsText(%s) = %q, want %q", in, got, want)
		}
	}
}

// TestJudgeLeavesResults checks that judging reads results only.
func TestJudgeLeavesResults(t *testing.T) {
	rs := results(t, "results-baselines.json", "results-search.json")
	before, _ := json.Marshal(rs)
	f, err := LoadFile("go-rust-zig-article.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vs := Judge(f, rs)
	if len(vs) != len(f.Claims) {
		t.Fatalf("%d verdicts for %d claims", len(vs), len(f.Claims))
	}
	for i, v := range vs {
		if v.Claim != &f.Claims[i] || v.Outcome == "" || v.Why == "" || v.Quoted == "" {
			t.Errorf("verdict %d incomplete: %+v", i, v)
		}
	}
	if after, _ := json.Marshal(rs); string(after) != string(before) {
		t.Error("Judge changed the results")
	}
}
