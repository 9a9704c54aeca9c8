package scenarios

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// valid returns a scenario built in code that passes Validate; each case
// below breaks one thing.
func valid() *Scenario {
	return &Scenario{
		Name:     "ok",
		Repeat:   1,
		Warmup:   Duration(time.Second),
		Upstream: Upstream{ResponseBytes: 1024},
		Load: Load{
			Method: "GET", Path: "/", Connections: 1, Keepalive: true,
			Steps: []Step{{Rate: 1, Duration: Duration(time.Second)}},
		},
		Probes: Probes{Mode: "auto", PerfBufferPages: 1},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Scenario)
		want   []string // every error line, in order; none for a valid scenario
	}{
		{"valid", func(*Scenario) {}, nil},
		{"all proxies, search, limits", func(s *Scenario) {
			s.Proxies = ProxyNames()
			s.Load.Steps = nil
			s.Load.Search = &Search{SLOP99: 1, MinSuccess: 1, Start: 5, Max: 5, StepDuration: Duration(time.Second)}
			s.Load.Connections = maxConnections
			s.Resources = Resources{ProxyCPUs: "0-0", UpstreamCPUs: "1,3-7", LoadgenCPUs: "12", ProxyMemory: minProxyMemory}
			s.Probes.PerfBufferPages = 1024
			s.Load.Method, s.Load.BodyBytes = "PATCH", 1
		}, nil},
		{"no name", func(s *Scenario) { s.Name = "" }, []string{"name: required"}},
		{"long name", func(s *Scenario) { s.Name = strings.Repeat("a", 65) }, []string{"name: longer than 64 characters"}},
		{"name starts with dot", func(s *Scenario) { s.Name = ".x" }, []string{`name: invalid name ".x"`}},
		{"repeat", func(s *Scenario) { s.Repeat = -2 }, []string{"repeat: must be at least 1, got -2"}},
		{"negative warmup", func(s *Scenario) { s.Warmup = Duration(-time.Second) }, []string{"warmup: must not be negative, got -1s"}},
		{"negative delay", func(s *Scenario) { s.Upstream.Delay = -1 }, []string{"upstream.delay: must not be negative"}},
		{"negative response", func(s *Scenario) { s.Upstream.ResponseBytes = -1 }, []string{"upstream.response_bytes: must not be negative, got -1"}},
		{"proxies", func(s *Scenario) { s.Proxies = []string{"zig", "haproxy", "zig", "nginx", "nginx"} }, []string{
			`proxies[1]: unknown proxy "haproxy"; allowed: go, rust, zig, direct, nginx`,
			`proxies[2]: duplicate proxy "zig" (already proxies[0])`,
			`proxies[4]: duplicate proxy "nginx" (already proxies[3])`,
		}},
		{"method", func(s *Scenario) { s.Load.Method = "CONNECT" }, []string{`load.method: unknown method "CONNECT"; allowed: GET`}},
		{"path with space", func(s *Scenario) { s.Load.Path = "/a b" }, []string{`load.path: must be visible ASCII only, got "/a b"`}},
		{"path not ASCII", func(s *Scenario) { s.Load.Path = "/é" }, []string{`load.path: must be visible ASCII only`}},
		{"empty path", func(s *Scenario) { s.Load.Path = "" }, []string{`load.path: must start with "/", got ""`}},
		{"body on HEAD", func(s *Scenario) { s.Load.Method, s.Load.BodyBytes = "HEAD", 10 }, []string{"load.body_bytes: a request body needs one of the methods POST, PUT, PATCH, not HEAD"}},
		{"negative body", func(s *Scenario) { s.Load.BodyBytes = -5 }, []string{"load.body_bytes: must not be negative, got -5"}},
		{"too many connections", func(s *Scenario) { s.Load.Connections = maxConnections + 1 }, []string{"load.connections: must be between 1 and 100000, got 100001"}},
		{"neither", func(s *Scenario) { s.Load.Steps = nil }, []string{"load: needs steps (fixed rates) or search"}},
		{"empty steps", func(s *Scenario) { s.Load.Steps = []Step{} }, []string{"load.steps: empty step list"}},
		{"both", func(s *Scenario) {
			s.Load.Search = &Search{SLOP99: 1, MinSuccess: 1, Start: 1, Max: 1, StepDuration: Duration(time.Second)}
		}, []string{"load.search: set either steps or search, not both"}},
		{"bad step", func(s *Scenario) {
			s.Load.Steps = append(s.Load.Steps, Step{Rate: 0, Duration: Duration(999 * time.Millisecond)})
		}, []string{
			"load.steps[1].rate: must be greater than 0, got 0",
			"load.steps[1].duration: must be at least 1s, got 999ms",
		}},
		{"bad search", func(s *Scenario) {
			s.Load.Steps = nil
			s.Load.Search = &Search{MinSuccess: 0, Start: 0, Max: -1}
		}, []string{
			"load.search.slo_p99: must be greater than 0, got 0s",
			"load.search.min_success: must be greater than 0 and at most 1, got 0",
			"load.search.start: must be at least 1, got 0",
			"load.search.max: must be at least start (0), got -1",
			"load.search.step_duration: must be at least 1s, got 0s",
		}},
		{"cpusets", func(s *Scenario) { s.Resources = Resources{ProxyCPUs: "1,", UpstreamCPUs: "2-1", LoadgenCPUs: " 0"} }, []string{
			`resources.proxy_cpus: invalid cpuset "1,"`,
			`resources.upstream_cpus: invalid cpuset "2-1": range 2-1 does not run upwards`,
			`resources.loadgen_cpus: invalid cpuset " 0"`,
		}},
		{"memory below Docker's minimum", func(s *Scenario) { s.Resources.ProxyMemory = minProxyMemory - 1 }, []string{"resources.proxy_memory: must be 0 (the lab's default limit) or at least 6MiB"}},
		{"negative memory", func(s *Scenario) { s.Resources.ProxyMemory = -1 }, []string{"resources.proxy_memory: must not be negative"}},
		{"probe mode", func(s *Scenario) { s.Probes.Mode = "" }, []string{`probes.mode: unknown probe mode ""; allowed: auto, kprobe, fentry, tracepoint`}},
		{"pages", func(s *Scenario) { s.Probes.PerfBufferPages = 96 }, []string{"probes.perf_buffer_pages: must be a power of two such as 8, 64 or 256, got 96"}},
		{"negative pages", func(s *Scenario) { s.Probes.PerfBufferPages = -64 }, []string{"probes.perf_buffer_pages: must be a power of two"}},
		{"negative sample", func(s *Scenario) { s.Probes.Events.Sample = -2 }, []string{"probes.events.sample: sample rate must be from 2 to 1048576, got -2"}},
		{"sample too sparse", func(s *Scenario) { s.Probes.Events.Sample = MaxSample + 1 }, []string{"probes.events.sample: sample rate must be from 2 to 1048576, got 1048577"}},
		{"file named", func(s *Scenario) { s.File, s.Repeat = "x.yaml", 0 }, []string{"x.yaml: repeat: must be at least 1, got 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(s)
			err := s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("Validate() = %v (%T), want Errors", err, err)
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, e := range list {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want it to start with %q", i, e, tt.want[i])
				}
				if e.Line != 0 || e.Column != 0 {
					t.Errorf("error %d has position %d:%d; a scenario built in code has none", i, e.Line, e.Column)
				}
			}
		})
	}
}

func TestErrorsUnwrap(t *testing.T) {
	_, err := Parse("x.yaml", []byte("name: x\nrepeat: 0\nload: {steps: [{rate: 1, duration: 1s}]}\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) failed", err)
	}
	if *e != (Error{File: "x.yaml", Line: 2, Column: 9, Path: "repeat", Msg: "must be at least 1, got 0"}) {
		t.Errorf("got %+v", *e)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Column: 5, Path: "load", Msg: "m"}, "f.yaml:3:5: load: m"},
		{Error{File: "f.yaml", Line: 3, Msg: "m"}, "f.yaml:3: m"},
		{Error{File: "f.yaml", Path: "name", Msg: "m"}, "f.yaml: name: m"},
		{Error{Path: "name", Msg: "m"}, "name: m"},
		{Error{Line: 1, Column: 2, Msg: "m"}, "1:2: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}
