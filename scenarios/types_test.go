package scenarios

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		in      string // a YAML value
		want    time.Duration
		wantErr string
	}{
		{in: "5s", want: 5 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "100us", want: 100 * time.Microsecond},
		{in: "100µs", want: 100 * time.Microsecond},
		{in: `"0"`, want: 0},
		{in: "0s", want: 0},
		{in: "5 seconds", wantErr: `invalid duration "5 seconds" (use Go syntax`},
		{in: "5S", wantErr: `invalid duration "5S"`},
		{in: ".5s", wantErr: `invalid duration ".5s"`},
		{in: "+5s", wantErr: `invalid duration "+5s"`},
		{in: "-5s", wantErr: `invalid duration "-5s": must not be negative`},
		{in: "5", wantErr: "expected a duration, got integer 5"},
		{in: "0", wantErr: "expected a duration, got integer 0"},
		{in: "[5s]", wantErr: "expected a duration, got a list"},
		{in: "9999999999h", wantErr: `invalid duration "9999999999h": too large`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := yaml.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || d.D() != tt.want {
				t.Fatalf("got %v, %v; want %v", d.D(), err, tt.want)
			}
		})
	}
}

func TestByteSizeYAML(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr string
	}{
		{in: "1024", want: 1024},
		{in: "0", want: 0},
		{in: "-1", want: -1}, // left for validation, which names the field
		{in: `"1024"`, want: 1024},
		{in: "512B", want: 512},
		{in: "1KiB", want: 1024},
		{in: "1 KiB", want: 1024},
		{in: "16MiB", want: 16 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1KB", want: 1000},
		{in: "3MB", want: 3e6},
		{in: "1GB", want: 1e9},
		{in: "1kb", wantErr: `invalid size "1kb"`},
		{in: "1.5MiB", wantErr: `invalid size "1.5MiB"`},
		{in: "1  KiB", wantErr: `invalid size "1  KiB"`},
		{in: "1TiB", wantErr: `invalid size "1TiB"`},
		{in: "9999999999GiB", wantErr: `invalid size "9999999999GiB": too large`},
		{in: "99999999999999999999", wantErr: "expected a size, got number 99999999999999999999"}, // YAML reads it as a float
		{in: "1.5", wantErr: "expected a size, got number 1.5"},
		{in: "true", wantErr: "expected a size, got boolean true"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b ByteSize
			err := yaml.Unmarshal([]byte(tt.in), &b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || b != tt.want {
				t.Fatalf("got %d, %v; want %d", b, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{1000, "1KB"},
		{6 << 20, "6MiB"},
		{3 << 30, "3GiB"},
		{2e9, "2GB"},
	}
	for _, tt := range tests {
		got := tt.in.String()
		if got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := parseSize(got)
		if err != nil || back != tt.in {
			t.Errorf("parseSize(%q) = %d, %v; want %d", got, back, err, tt.in)
		}
	}
}

// TestJSONRoundTrip pins the encoding results files use: durations as Go
// strings, sizes as integers.
func TestJSONRoundTrip(t *testing.T) {
	s := &Scenario{
		Name:     "rt",
		Proxies:  []string{"go", "zig"},
		Repeat:   2,
		Warmup:   Duration(1500 * time.Millisecond),
		Upstream: Upstream{ResponseBytes: 4 << 10, Delay: Duration(2 * time.Millisecond)},
		Load: Load{
			Method: "POST", Path: "/x", BodyBytes: 100, Connections: 8, Keepalive: false,
			Search: &Search{SLOP99: Duration(10 * time.Millisecond), MinSuccess: 0.99, Start: 100, Max: 1000, StepDuration: Duration(time.Minute)},
		},
		Resources: Resources{ProxyCPUs: "1-2", ProxyMemory: 64 << 20},
		Probes:    Probes{Enabled: true, Mode: "kprobe", PerfBufferPages: 16, Events: Events{Sample: 8}},
		File:      "not/encoded.yaml",
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{
		`"warmup":"1.5s"`, `"delay":"2ms"`, `"slo_p99":"10ms"`, `"step_duration":"1m0s"`,
		`"response_bytes":4096`, `"body_bytes":100`, `"proxy_memory":67108864`,
		`"keepalive":false`, `"proxy_cpus":"1-2"`, `"perf_buffer_pages":16`, `"events":{"sample":8}`,
	} {
		if !strings.Contains(string(data), frag) {
			t.Errorf("JSON lacks %s:\n%s", frag, data)
		}
	}
	for _, absent := range []string{"not/encoded.yaml", `"steps"`, `"description"`} {
		if strings.Contains(string(data), absent) {
			t.Errorf("JSON contains %s:\n%s", absent, data)
		}
	}
	var back Scenario
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(&back)
	if string(again) != string(data) {
		t.Errorf("round trip changed the JSON\nfirst:  %s\nsecond: %s", data, again)
	}
	if back.Warmup != s.Warmup || *back.Load.Search != *s.Load.Search {
		t.Errorf("decoded %+v, want %+v", back, s)
	}
}

// Events reads and writes one spelling per meaning, in YAML and JSON alike.
func TestEventsSpellings(t *testing.T) {
	for _, tc := range []struct {
		yaml, json string
		want       Events
	}{
		{"events: none", `"none"`, Events{}},
		{"events: all", `"all"`, Events{Sample: 1}},
		{"events: {sample: 64}", `{"sample":64}`, Events{Sample: 64}},
	} {
		s, err := Parse("e.yaml", []byte("name: e\nload: {steps: [{rate: 1, duration: 1s}]}\nprobes:\n  "+tc.yaml+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if s.Probes.Events != tc.want {
			t.Errorf("%s: decoded %+v, want %+v", tc.yaml, s.Probes.Events, tc.want)
		}
		j, err := json.Marshal(tc.want)
		if err != nil || string(j) != tc.json {
			t.Errorf("%+v: JSON %s, %v; want %s", tc.want, j, err, tc.json)
		}
		var back Events
		if err := json.Unmarshal(j, &back); err != nil || back != tc.want {
			t.Errorf("%s: read back %+v, %v", j, back, err)
		}
		// Written back as YAML, it parses to the same (FuzzParse does this
		// for whole scenarios).
		y, err := yaml.Marshal(map[string]Events{"events": tc.want})
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("e.yaml", append([]byte("name: e\nload: {steps: [{rate: 1, duration: 1s}]}\nprobes:\n  "), y...))
		if err != nil || again.Probes.Events != tc.want {
			t.Errorf("%+v: YAML %q parses back as %v, %v", tc.want, y, again, err)
		}
	}
	for _, bad := range []string{`"some"`, `{}`, `3`, `{"every":3}`} {
		var e Events
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("Unmarshal(%s) accepted it as %+v", bad, e)
		}
	}
}

// A results file written before probes.events existed sent every event.
func TestProbesJSONWithoutEvents(t *testing.T) {
	var p Probes
	if err := json.Unmarshal([]byte(`{"enabled":true,"mode":"auto","perf_buffer_pages":64}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Events != (Events{Sample: 1}) || !p.Enabled || p.PerfBufferPages != 64 {
		t.Errorf("old probes read as %+v", p)
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{in: `"1m30s"`, want: Duration(90 * time.Second)},
		{in: `"-5s"`, want: Duration(-5 * time.Second)}, // written by MarshalJSON for values built in code
		{in: `".5s"`, want: Duration(500 * time.Millisecond)},
		{in: `null`, want: Duration(7)},
		{in: `5000000000`, wantErr: true},
		{in: `"5 seconds"`, wantErr: true},
		{in: `""`, wantErr: true},
	}
	for _, tt := range tests {
		d := Duration(7)
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err != nil) != tt.wantErr || (!tt.wantErr && d != tt.want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v (error %v)", tt.in, d, err, tt.want, tt.wantErr)
		}
	}
}

func TestTotalDuration(t *testing.T) {
	steps := []Step{{Rate: 1, Duration: Duration(10 * time.Second)}, {Rate: 2, Duration: Duration(20 * time.Second)}}
	tests := []struct {
		name string
		s    Scenario
		want time.Duration
	}{
		{"steps once", Scenario{Repeat: 1, Warmup: Duration(5 * time.Second), Load: Load{Steps: steps}}, 35 * time.Second},
		{"steps thrice", Scenario{Repeat: 3, Warmup: Duration(5 * time.Second), Load: Load{Steps: steps}}, 105 * time.Second},
		{"no warm-up", Scenario{Repeat: 2, Load: Load{Steps: steps}}, 60 * time.Second},
		{"repeat unset counts once", Scenario{Load: Load{Steps: steps}}, 30 * time.Second},
		{"overhead runs each step twice", Scenario{Repeat: 1, Warmup: Duration(5 * time.Second), Load: Load{Steps: steps}, Probes: Probes{Overhead: true}}, 65 * time.Second},
		{"search counts one step", Scenario{Repeat: 2, Warmup: Duration(time.Second), Load: Load{Search: &Search{StepDuration: Duration(10 * time.Second)}}}, 22 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.s.TotalDuration(); got != tt.want {
			t.Errorf("%s: TotalDuration() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
