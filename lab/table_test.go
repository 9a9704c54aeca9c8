package lab

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden tables in testdata/")

// The fixtures are real results files (complete, a proxy killed mid-step,
// Ctrl-C mid-step, and scenarios/max.yaml: a search with both baselines in
// which the load generator fell short), with timelines shortened; the
// search's histograms are dropped as well, since no table reads them.
func TestPrintTable(t *testing.T) {
	for _, name := range []string{"complete", "failed", "interrupted", "repeat3", "search"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "results-"+name+".json")
			if err := ValidateResults("..", path); err != nil {
				t.Fatal(err)
			}
			r, err := ReadResults(path)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			PrintTable(&got, r)
			golden := filepath.Join("testdata", "table-"+name+".txt")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("table differs from %s:\n%s\nwant:\n%s", golden, got.String(), want)
			}
			if !r.Complete && !strings.Contains(got.String(), "INCOMPLETE: "+r.StopReason) {
				t.Errorf("an incomplete run's table must say so:\n%s", got.String())
			}
		})
	}
}
