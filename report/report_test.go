package report

import (
	"bytes"
	"errors"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxylab/proxylab/lab"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (tables, reports, diffs)")

// fixture is the path of a results file every test reads; the results
// files live once, beside the code that writes them.
func fixture(name string) string {
	return filepath.Join("..", "lab", "testdata", "results-"+name+".json")
}

// fixtures are results files the report is checked against. All but one
// were produced by real runs (default.yaml with three repetitions and 12 s
// steps; a shorter three-repetition run and a one-repetition run written
// before the environment fields existed; a proxy killed mid-step; Ctrl-C
// mid-step; scenarios/max.yaml, a search with both baselines in which the
// load generator fell short). "baselines" is derived from the three-
// repetition run to give fixed steps baseline rows and a saturated step, so
// it is not checked against the schema. "probes" is derived from the
// three-repetition run to hold every probe field (a sample of events, the
// connection check, a mismatch with kernel misses, perf-buffer loss, an
// unreadable upstream count); lab's tests check it against the schema.
var fixtures = []struct {
	name     string
	produced bool
}{
	{"default3", true},
	{"repeat3", true},
	{"complete", true},
	{"failed", true},
	{"interrupted", true},
	{"baselines", false},
	{"search", true},
	{"probes", false},
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestReportGolden(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			path := fixture(fx.name)
			if fx.produced {
				if err := lab.ValidateResults("..", path); err != nil {
					t.Fatal(err)
				}
			}
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			mdPath, err := Write(f, dir)
			if err != nil {
				t.Fatal(err)
			}
			md, err := os.ReadFile(mdPath)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "report-"+fx.name+".md", string(md))
			checkPlots(t, f, dir, string(md))
		})
	}
}

// checkPlots: every plot the report links exists as SVG and as a PNG that
// decodes at the size asked for, and every file written is linked.
func checkPlots(t *testing.T, f *File, dir, md string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "report.md" {
			continue
		}
		if !strings.Contains(md, "("+name+")") {
			t.Errorf("%s is written but report.md does not link it", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(name) {
		case ".png":
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if got := img.Bounds().Dx(); got != int(plotWidth.Dots(96)) {
				t.Errorf("%s is %d px wide, want %v", name, got, plotWidth.Dots(96))
			}
		case ".svg":
			s := string(b)
			if !strings.Contains(s, "<svg") {
				t.Errorf("%s is not an SVG", name)
			}
			// Every plot says where it came from.
			for _, want := range []string{f.Scenario.Name, f.Host.Kernel, f.StartedAt.UTC().Format("2006-01-02")} {
				if !strings.Contains(s, want) {
					t.Errorf("%s does not mention %q", name, want)
				}
			}
		default:
			t.Errorf("unexpected file %s", name)
		}
	}
}

// The plots each fixture must have: spectra per step, throughput and the
// timeline wherever a step completed, the perf-loss plot only with probes.
func TestPlotsPerFixture(t *testing.T) {
	cases := []struct {
		fixture string
		want    []string
		absent  []string
	}{
		{"repeat3", []string{"latency-step1", "latency-step3", "latency-throughput", "throughput", "p99-timeline", "peak-rss", "image-size", "perf-loss"}, nil},
		{"complete", []string{"latency-step1", "throughput", "p99-timeline", "peak-rss", "image-size"}, []string{"perf-loss"}},
		{"interrupted", []string{"image-size"}, []string{"latency-step1", "perf-loss"}},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			f, err := Load(fixture(c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			plots, err := Plots(f, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, p := range plots {
				have[p.Name] = true
			}
			for _, w := range c.want {
				if !have[w] {
					t.Errorf("no %s plot; have %v", w, have)
				}
			}
			for _, a := range c.absent {
				if have[a] {
					t.Errorf("%s plot drawn without data for it", a)
				}
			}
		})
	}
}

func TestDiffGolden(t *testing.T) {
	a, err := Load(fixture("complete"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(fixture("repeat3"))
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, NewDiff(a, b))
	golden(t, "diff-complete-repeat3.md", got)
	for _, want := range []string{"| scenario repeat | 1 | 3 | **changed** |", "The environment changed"} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	same := render(t, NewDiff(b, b))
	if !strings.Contains(same, "Same environment, images and scenario in both files.") || strings.Contains(same, "**changed") {
		t.Errorf("a file against itself shows changes:\n%s", same)
	}
}

// render runs r into a string, failing the test on a write error.
func render(t *testing.T, r Reporter) string {
	t.Helper()
	var b strings.Builder
	if err := r(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The terminal table of each fixture, including an incomplete run's, which
// must say so.
func TestTableGolden(t *testing.T) {
	for _, name := range []string{"complete", "failed", "interrupted", "repeat3", "search", "probes"} {
		t.Run(name, func(t *testing.T) {
			f, err := Load(fixture(name))
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, NewTable(f))
			golden(t, "table-"+name+".txt", got)
			if !f.Complete && !strings.Contains(got, "INCOMPLETE: "+f.StopReason) {
				t.Errorf("an incomplete run's table must say so:\n%s", got)
			}
		})
	}
}

// Every output shows the same warnings: each note of a fixture appears, in
// the same words, in the terminal table and in report.md.
func TestNotesInEveryOutput(t *testing.T) {
	for _, name := range []string{"failed", "interrupted", "search", "baselines"} {
		t.Run(name, func(t *testing.T) {
			f, err := Load(fixture(name))
			if err != nil {
				t.Fatal(err)
			}
			notes := Notes(f)
			if len(notes) == 0 {
				t.Fatal("fixture has no notes to check")
			}
			table, md := render(t, NewTable(f)), render(t, NewMarkdown(f, nil))
			for _, n := range notes {
				if !strings.Contains(table, n.String()) {
					t.Errorf("table lacks note %q", n)
				}
				if !strings.Contains(md, "- "+oneLine(n.String())) {
					t.Errorf("report.md lacks note %q", n)
				}
			}
		})
	}
}

// A reporter says when it could not write.
func TestReporterWriteError(t *testing.T) {
	f, err := Load(fixture("complete"))
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]Reporter{"table": NewTable(f), "markdown": NewMarkdown(f, nil), "diff": NewDiff(f, f)} {
		if err := r(failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: error %v, want the writer's", name, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, content, want string }{
		{"not JSON", "{", "unexpected end of JSON input"},
		{"no scenario", `{"schema_version": 1}`, "no scenario in the file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load = %v, want an error naming %s and saying %q", err, path, c.want)
			}
		})
	}
}
