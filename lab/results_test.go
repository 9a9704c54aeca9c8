package lab

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/scenarios"
)

func TestWriteIsAtomicAndRoundTrips(t *testing.T) {
	dir := t.TempDir()
	sc, err := scenarios.LoadFile("../scenarios/smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &Results{SchemaVersion: SchemaVersion, RunID: "abc", Scenario: sc, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	path := FileName(dir, r)
	if want := filepath.Join(dir, sc.Name+"-20260102T030405Z.json"); path != want {
		t.Fatalf("FileName = %s, want %s", path, want)
	}
	for i := 0; i < 2; i++ {
		r.Complete = i == 1
		if err := Write(path, r); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in results dir, want only the results file (no temp files left)", len(entries))
	}
	back, err := ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Complete || back.RunID != "abc" || back.Scenario.Name != sc.Name || back.Scenario.Warmup != sc.Warmup {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestWriteKeepsOldFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A results value that cannot be encoded must not clobber the file.
	r := &Results{Toolchains: map[string]string{}}
	r.Proxies = []*ProxyResult{{Summary: []StepSummary{{AchievedRate: Stat{Median: math.NaN()}}}}}
	if err := Write(path, r); err == nil {
		t.Fatal("Write of NaN succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file now %q, want the old content", b)
	}
}

// The schema check must be able to fail: each edit breaks a real file in
// one way a careless change to the Go types would.
func TestValidateResultsRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/results-complete.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, from, to string }{
		{"missing complete", `"complete": true,`, ``},
		{"success above 1", `"success": 1,`, `"success": 1.5,`},
		{"unknown key", `"schema_version": 1,`, `"schema_version": 1, "extra": 0,`},
		{"wrong schema version", `"schema_version": 1,`, `"schema_version": 2,`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(string(good), c.from, c.to, 1)
			if bad == string(good) {
				t.Fatalf("fixture has no %q", c.from)
			}
			path := filepath.Join(t.TempDir(), "bad.json")
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := ValidateResults("..", path); err == nil {
				t.Error("schema accepted the broken file")
			}
		})
	}
}

// A file written before the summary method was recorded is summarised
// again when read, so it reads as the same runs written today do: the two
// fixtures hold the same runs, one from before the method and the CV were
// recorded. The direct row is a baseline in files older than the flag.
func TestReadResultsUpgrades(t *testing.T) {
	old, err := ReadResults("testdata/results-repeat3-before-method.json")
	if err != nil {
		t.Fatal(err)
	}
	now, err := ReadResults("testdata/results-repeat3.json")
	if err != nil {
		t.Fatal(err)
	}
	if old.SummaryMethod != nil {
		t.Fatal("the old fixture records a summary method; it no longer tests the upgrade")
	}
	for i, p := range now.Proxies {
		got, _ := json.Marshal(old.Proxies[i].Summary)
		want, _ := json.Marshal(p.Summary)
		if string(got) != string(want) {
			t.Errorf("%s: upgraded summary differs from today's:\n got %s\nwant %s", p.Name, got, want)
		}
	}

	r := &Results{Scenario: now.Scenario, Proxies: []*ProxyResult{{Name: Direct.Name}}}
	upgrade(r)
	if !r.Proxies[0].Baseline {
		t.Error("a direct row without the baseline flag is not marked as a baseline")
	}
}
