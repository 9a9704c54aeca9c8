package claims

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxylab/proxylab/scenarios"
)

// update rewrites the .err files beside the bad fixtures from what the
// parser gives: go test ./claims -update, then read the diff.
var update = flag.Bool("update", false, "rewrite the expected .err files of the fixtures")

// fixtures lists testdata/<pattern> and fails when there are none, so a
// moved directory cannot make the fixture tests pass vacuously.
func fixtures(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures match testdata/%s (err %v)", pattern, err)
	}
	return files
}

// TestParseBadFixtures checks the complete error text of every bad fixture
// against the .err file beside it: every problem, in file order, each with
// its position.
func TestParseBadFixtures(t *testing.T) {
	for _, file := range fixtures(t, "bad-*.yaml") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			errFile := strings.TrimSuffix(file, ".yaml") + ".err"
			f, err := LoadFile(file)
			if err == nil {
				t.Fatalf("LoadFile(%s) succeeded with %+v; want errors", file, f)
			}
			if f != nil {
				t.Errorf("LoadFile returned a file along with the error")
			}
			if *update {
				if err := os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatalf("every bad fixture needs an .err file: %v", rerr)
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("errors differ\ngot:\n%s\nwant:\n%s", got, want)
			}
			var list scenarios.Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty scenarios.Errors", err)
			}
			for _, e := range list {
				if e.File != file {
					t.Errorf("error %q names file %q, want %q", e, e.File, file)
				}
			}
		})
	}
}

// TestParseCommitted parses every committed claims file and the good
// fixtures.
func TestParseCommitted(t *testing.T) {
	files := append(fixtures(t, "good-*.yaml"), committed(t)...)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			f, err := LoadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range f.Claims {
				if c.Line == 0 || c.Column == 0 {
					t.Errorf("claim %s has no position", c.ID)
				}
			}
		})
	}
}

func committed(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed claims files (err %v)", err)
	}
	return files
}

// TestParseValues checks what the committed file's claims decode to.
func TestParseValues(t *testing.T) {
	f, err := LoadFile("testdata/good-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id     string
		ratio  bool
		op     string
		value  float64
		tol    float64
		at     At
		hasAt  bool
		figure string
	}{
		{"rust-3x-go", true, ">=", 3, 0, At{}, false, "capacity"},
		{"p99-at-step", false, "<", 5000, 0, At{Step: 2}, true, "latency_p99"},
		{"p99-at-rate", false, "~", 4000, 0.25, At{Rate: 10000}, true, "latency_p99"},
		{"rss-whole-run", false, "<=", 2 << 20, 0, At{}, false, "peak_rss"},
	}
	if len(f.Claims) != len(want) {
		t.Fatalf("%d claims, want %d", len(f.Claims), len(want))
	}
	for i, w := range want {
		c := f.Claims[i]
		r := c.Relation
		if c.ID != w.id || r.Ratio != w.ratio || r.Op != w.op || r.Value != w.value || r.Tolerance != w.tol || c.Figure != w.figure {
			t.Errorf("claim %d = %s %+v, want %+v", i, c.ID, r, w)
		}
		if (c.At != nil) != w.hasAt || c.At != nil && *c.At != w.at {
			t.Errorf("claim %s: at %+v, want %+v", c.ID, c.At, w.at)
		}
	}
}
