package scenarios

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// update rewrites the .err and .json files beside the fixtures from what
// the decoder gives: go test ./scenarios -update, then read the diff.
var update = flag.Bool("update", false, "rewrite the expected .err and .json files of the fixtures")

// fixtures lists testdata/<prefix>*.yaml and fails when there are none, so a
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
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".err")
			if err != nil {
				t.Fatalf("every bad fixture needs an .err file: %v", err)
			}
			s, err := LoadFile(file)
			if err == nil {
				t.Fatalf("LoadFile(%s) succeeded with %+v; want errors", file, s)
			}
			if s != nil {
				t.Errorf("LoadFile returned a scenario along with the error")
			}
			if *update {
				want = []byte(err.Error() + "\n")
				if err := os.WriteFile(strings.TrimSuffix(file, ".yaml")+".err", want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("errors differ\ngot:\n%s\nwant:\n%s", got, want)
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty Errors", err)
			}
			for _, e := range list {
				if e.File != file {
					t.Errorf("error %q names file %q, want %q", e, e.File, file)
				}
			}
		})
	}
}

// TestParseGoodFixtures compares each good fixture, decoded, with the JSON
// file beside it, which spells out every default.
func TestParseGoodFixtures(t *testing.T) {
	for _, file := range fixtures(t, "good-*.yaml") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			wantJSON, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".json")
			if err != nil {
				t.Fatalf("every good fixture needs a .json file: %v", err)
			}
			s, err := LoadFile(file)
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if s.File != file {
				t.Errorf("File = %q, want %q", s.File, file)
			}
			gotJSON, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				var b strings.Builder
				enc := json.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(s); err != nil {
					t.Fatal(err)
				}
				wantJSON = []byte(b.String())
				if err := os.WriteFile(strings.TrimSuffix(file, ".yaml")+".json", wantJSON, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var got, want any
			if err := json.Unmarshal(gotJSON, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(wantJSON, &want); err != nil {
				t.Fatalf("%s.json: %v", file, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded scenario differs\ngot:  %s\nwant: %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := LoadFile("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"proxies", len(s.Proxies), 0},
		{"repeat", s.Repeat, 1},
		{"warmup", s.Warmup.D(), 5 * time.Second},
		{"upstream.response_bytes", s.Upstream.ResponseBytes, ByteSize(1024)},
		{"upstream.delay", s.Upstream.Delay.D(), time.Duration(0)},
		{"load.method", s.Load.Method, "GET"},
		{"load.path", s.Load.Path, "/"},
		{"load.body_bytes", s.Load.BodyBytes, ByteSize(0)},
		{"load.connections", s.Load.Connections, 64},
		{"load.keepalive", s.Load.Keepalive, true},
		{"load.search", s.Load.Search == nil, true},
		{"resources.proxy_cpus", s.Resources.ProxyCPUs, ""},
		{"resources.proxy_memory", s.Resources.ProxyMemory, ByteSize(0)},
		{"probes.enabled", s.Probes.Enabled, false},
		{"probes.mode", s.Probes.Mode, "auto"},
		{"probes.perf_buffer_pages", s.Probes.PerfBufferPages, 64},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

// TestExplicitZeroBeatsDefault guards the reason defaults are applied before
// decoding: a key written with a zero value must not be replaced.
func TestExplicitZeroBeatsDefault(t *testing.T) {
	s, err := Parse("zero.yaml", []byte("name: z\nwarmup: 0s\nload:\n  keepalive: false\n  steps: [{rate: 1, duration: 1s}]\nprobes: {enabled: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Warmup != 0 || s.Load.Keepalive {
		t.Errorf("warmup = %v, keepalive = %v; want 0s and false as written", s.Warmup, s.Load.Keepalive)
	}
}

func TestSearchDefaults(t *testing.T) {
	s, err := LoadFile("testdata/good-search.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Search{SLOP99: Duration(10 * time.Millisecond), MinSuccess: 0.999, Start: 1000, Max: 500000, StepDuration: Duration(10 * time.Second)}
	if s.Load.Search == nil || *s.Load.Search != want {
		t.Errorf("search = %+v, want %+v", s.Load.Search, want)
	}
	if s.Load.Steps != nil {
		t.Errorf("steps = %v, want nil for a search scenario", s.Load.Steps)
	}
}

// TestCommittedScenarios loads every scenario file in this directory, as the
// design requires, and checks what the lab relies on in the two it names.
func TestCommittedScenarios(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("want at least smoke.yaml and the default run, found %v (err %v)", files, err)
	}
	loaded := map[string]*Scenario{}
	for _, f := range files {
		s, err := LoadFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		loaded[f] = s
	}
	tests := []struct {
		file  string
		check func(s *Scenario) string
	}{
		{"smoke.yaml", func(s *Scenario) string {
			if d := s.TotalDuration(); d >= time.Minute/2 {
				return "runs " + d.String() + " per proxy; keep it well under a minute"
			}
			if s.Probes.Enabled {
				return "enables probes; integration tests must not need eBPF"
			}
			return ""
		}},
		{"capacity.yaml", func(s *Scenario) string {
			if s.Load.Search == nil || s.Repeat < 3 {
				return "must search, at least 3 times, so each capacity has an interval"
			}
			return ""
		}},
		{"latency.yaml", func(s *Scenario) string {
			for _, st := range s.Load.Steps {
				if st.OfCapacity == 0 {
					return "every step must be a share of the capacity"
				}
			}
			return ""
		}},
		{"churn.yaml", func(s *Scenario) string {
			if s.Load.Keepalive || s.Probes.Events.Sample != 1 {
				return "must open a connection per request and send every probe event"
			}
			return ""
		}},
		{"replicate-article.yaml", func(s *Scenario) string {
			if !s.Load.Closed() || s.Load.Connections != 400 || len(s.Load.Steps) != 1 || s.Load.Steps[0].Duration.D() != 30*time.Second {
				return "must be wrk -c400 -d30s: closed model, 400 connections, one 30 s step"
			}
			return ""
		}},
	}
	for _, f := range DefaultRun {
		tests = append(tests, struct {
			file  string
			check func(s *Scenario) string
		}{f, func(s *Scenario) string {
			if !slices.Equal(s.Proxies, ProxyNames()) {
				return "the default run measures every proxy and both baselines"
			}
			if s.Repeat < 3 || !s.Probes.Enabled || s.Probes.Mode != "auto" {
				return "the default run repeats at least 3 times with probes in auto mode"
			}
			return ""
		}})
	}
	var total time.Duration
	for _, f := range DefaultRun {
		if s := loaded[f]; s != nil {
			total += estimate(s)
		}
	}
	if total > 14*time.Minute {
		t.Errorf("the default run (%v) takes about %v; keep make compare within 15 minutes with building and verifying", DefaultRun, total.Round(time.Second))
	}
	for _, tt := range tests {
		s := loaded[tt.file]
		if s == nil {
			t.Errorf("%s did not load", tt.file)
			continue
		}
		if msg := tt.check(s); msg != "" {
			t.Errorf("%s: %s", tt.file, msg)
		}
	}
}

// TestSchemaModeline keeps editors validating the committed files as they
// are written.
// estimate is about how long s runs for every row it lists: its steps, a
// search as eleven probes (doubling from a few thousand to past 100000/s,
// then five bisections) and three seconds per row and repetition to start
// the containers.
func estimate(s *Scenario) time.Duration {
	per := s.TotalDuration() + 3*time.Second*time.Duration(s.Repeat)
	if se := s.Load.Search; se != nil {
		per += 10 * se.StepDuration.D() * time.Duration(s.Repeat)
	}
	return per * time.Duration(len(s.Proxies))
}

func TestSchemaModeline(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		if first != "# yaml-language-server: $schema=schema.json" {
			t.Errorf("%s starts with %q, want the yaml-language-server schema line", f, first)
		}
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts is
// valid and survives being written back as YAML.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	committed, _ := filepath.Glob("*.yaml")
	for _, file := range append(files, committed...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("re-parsing marshalled scenario: %v\n%s", err, out)
		}
		// Compared as JSON, which treats "proxies: []" and no proxies alike,
		// as the lab does.
		first, _ := json.Marshal(s)
		second, _ := json.Marshal(again)
		if string(first) != string(second) {
			t.Fatalf("YAML round trip changed the scenario\nfirst:  %s\nsecond: %s", first, second)
		}
	})
}
