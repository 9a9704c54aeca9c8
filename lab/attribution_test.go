package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/loadgen"
	"github.com/proxylab/proxylab/scenarios"
)

// twoCore is the default placement of a two-core host over a 2 s step:
// the proxy alone on CPU 1, the upstream and the load generator on CPU 0,
// each party using the given CPU seconds and each core busy for the given
// seconds (tasks, then irq).
func twoCore(proxy, upstream, lg float64, core0, core1 [2]float64) ([]Party, []CoreTime) {
	const d = 2.0
	parties := []Party{
		{Name: PartyProxy, CPUs: "1", CPUSeconds: proxy, Share: proxy / d},
		{Name: PartyUpstream, CPUs: "0", CPUSeconds: upstream, Share: upstream / d},
		{Name: PartyLoadgen, CPUs: "0", CPUSeconds: lg, Share: lg / d},
	}
	cores := []CoreTime{
		{CPU: 0, Busy: core0[0], IRQ: core0[1], Idle: d - core0[0] - core0[1]},
		{CPU: 1, Busy: core1[0], IRQ: core1[1], Idle: d - core1[0] - core1[1]},
	}
	return parties, cores
}

func TestAttribute(t *testing.T) {
	cases := []struct {
		name          string
		proxy, up, lg float64
		core0, core1  [2]float64
		limitedBy     string
		text          []string // in the text, in order
	}{
		{"proxy at its limit", 1.9, 0.4, 1.0, [2]float64{1.3, 0.1}, [2]float64{1.8, 0.15},
			PartyProxy, []string{"proxy used 95% of CPU 1"}},
		{"shared core at its limit", 1.2, 0.7, 1.1, [2]float64{1.76, 0.2}, [2]float64{1.2, 0.1},
			"core 0 (upstream, load generator)", []string{"core 0 (upstream, load generator) was 98% busy"}},
		{"upstream at its limit", 0.8, 1.84, 0.1, [2]float64{1.91, 0.05}, [2]float64{0.8, 0.1},
			"core 0 (upstream, load generator)", []string{"core 0 (upstream, load generator) was 98% busy", "also upstream used 92% of CPU 0"}},
		{"upstream at its limit, core below", 0.8, 1.82, 0.0, [2]float64{1.79, 0.0}, [2]float64{0.8, 0.1},
			PartyUpstream, []string{"upstream used 91% of CPU 0"}},
		{"nobody", 1.44, 0.3, 1.1, [2]float64{1.5, 0.2}, [2]float64{1.4, 0.1},
			NotAttributed, []string{"not attributed: proxy 72% of CPU 1, upstream 15% of CPU 0, load generator 55% of CPU 0, core 0 85% busy, core 1 75% busy"}},
		{"just below the limit", 1.78, 0.3, 1.1, [2]float64{1.5, 0.28}, [2]float64{1.7, 0.08},
			NotAttributed, []string{"proxy 89% of CPU 1", "core 0 89% busy", "core 1 89% busy"}},
		{"both: the fuller named first", 1.84, 0.7, 1.2, [2]float64{1.8, 0.18}, [2]float64{1.8, 0.1},
			"core 0 (upstream, load generator)", []string{"core 0 (upstream, load generator) was 99% busy; also proxy used 92% of CPU 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parties, cores := twoCore(c.proxy, c.up, c.lg, c.core0, c.core1)
			a := Attribute(parties, cores, 2)
			if a.LimitedBy != c.limitedBy {
				t.Errorf("limited by %q (%s), want %q", a.LimitedBy, a.Text, c.limitedBy)
			}
			rest := a.Text
			for _, w := range c.text {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("text %q: want %q in it (in order)", a.Text, w)
				}
				rest = rest[i+len(w):]
			}
			if a.LimitedBy != NotAttributed && strings.Contains(a.Text, NotAttributed) {
				t.Errorf("text %q of an attributed step", a.Text)
			}
		})
	}
}

// With the SUT host another machine, its CPU 0 is not this host's: a full
// core there names the parties on it there, and a full core here the load
// generator alone.
func TestAttributeAcrossHosts(t *testing.T) {
	parties := []Party{
		{Name: PartyProxy, CPUs: "1", CPUSeconds: 1.2, Share: 0.6, Host: SUTLabel},
		{Name: PartyUpstream, CPUs: "0", CPUSeconds: 1.0, Share: 0.5, Host: SUTLabel},
		{Name: PartyReader, CPUs: "0", CPUSeconds: 0.02, Share: 0.01, Host: SUTLabel},
		{Name: PartyLoadgen, CPUs: "0-1", CPUSeconds: 1.9, Share: 0.475},
	}
	cases := []struct {
		name         string
		sut0, local0 float64 // busy seconds of CPU 0 on each host in 2 s
		limitedBy    string
		text         string
	}{
		{"full core on the SUT host", 1.95, 1.0, "sut core 0 (upstream, probe reader)", "sut core 0 (upstream, probe reader) was 98% busy"},
		{"full core here", 1.0, 1.95, "core 0 (load generator)", "core 0 (load generator) was 98% busy"},
		{"neither", 1.0, 1.0, NotAttributed, "sut core 0 50% busy, sut core 1 60% busy, core 0 50% busy, core 1 48% busy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cores := []CoreTime{
				{CPU: 0, Busy: c.sut0, Idle: 2 - c.sut0, Host: SUTLabel},
				{CPU: 1, Busy: 1.2, Idle: 0.8, Host: SUTLabel},
				{CPU: 0, Busy: c.local0, Idle: 2 - c.local0},
				{CPU: 1, Busy: 0.95, Idle: 1.05},
			}
			a := Attribute(parties, cores, 2)
			if a.LimitedBy != c.limitedBy || !strings.Contains(a.Text, c.text) {
				t.Errorf("limited by %q (%s), want %q with %q", a.LimitedBy, a.Text, c.limitedBy, c.text)
			}
		})
	}
}

// A core whose only party is at its limit repeats that party: it is no
// candidate of its own.
func TestAttributeNamesAFullProxyCoreOnce(t *testing.T) {
	parties, cores := twoCore(1.9, 0.1, 0.5, [2]float64{0.6, 0.05}, [2]float64{1.85, 0.1})
	if a := Attribute(parties, cores, 2); a.LimitedBy != PartyProxy || strings.Contains(a.Text, "also") {
		t.Errorf("attribution %+v: want the proxy alone", a)
	}
}

func TestAttributeWithoutFigures(t *testing.T) {
	if a := Attribute(nil, nil, 2); a.LimitedBy != NotAttributed || !strings.Contains(a.Text, "no CPU figures") {
		t.Errorf("attribution %+v", a)
	}
}

func TestDisturbedThreshold(t *testing.T) {
	cases := []struct {
		name      string
		outside   []OutsideProcess
		cores     []CoreTime
		share     float64
		disturbed bool
		text      string
	}{
		// 2 s: 0.1 s outside is 5% of a core.
		{"quiet", []OutsideProcess{{73, "kdamond.0", 0.01, ""}}, []CoreTime{{CPU: 0}, {CPU: 1}}, 0.005, false, ""},
		{"just under", []OutsideProcess{{9, "dockerd", 0.09, ""}}, nil, 0.045, false, ""},
		{"at the threshold", []OutsideProcess{{9, "dockerd", 0.1, ""}}, nil, 0.05, false, ""},
		{"just over", []OutsideProcess{{7, "sh", 0.1, ""}, {9, "dockerd", 0.02, ""}}, nil, 0.06, true,
			"used 6% of a core (sh (pid 7) 0.10 s; dockerd (pid 9) 0.02 s): above the 5% allowed"},
		{"steal only", []OutsideProcess{}, []CoreTime{{CPU: 0, Steal: 0.08}, {CPU: 1, Steal: 0.04}}, 0.06, true,
			"used 6% of a core (6% stolen by the hypervisor)"},
		{"many", []OutsideProcess{{1, "a", 0.2, ""}, {2, "b", 0.1, ""}, {3, "c", 0.1, ""}, {4, "d", 0.1, ""}, {5, "e", 0.1, ""}}, nil, 0.3, true, "c (pid 3) 0.10 s; 2 more"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := OutsideInterference(c.outside, c.cores, 2)
			if in.Share != c.share {
				t.Errorf("share %v (%+v), want %v", in.Share, in, c.share)
			}
			d, text := Disturbance(in, 2)
			if d != c.disturbed || !strings.Contains(text, c.text) || d && !strings.HasPrefix(text, "something outside the run") {
				t.Errorf("disturbed %v %q, want %v containing %q", d, text, c.disturbed, c.text)
			}
		})
	}
}

// A failing probe with CPU figures says what was at its limit instead of
// the proxy's CPU seconds alone, and the search takes its attribution.
func TestJudgeAttributes(t *testing.T) {
	search := scenarios.Search{SLOP99: scenarios.Duration(10 * time.Millisecond), MinSuccess: 0.999, Start: 1000, Max: 64000}
	step := func(rate float64, p99 int64) *Step {
		st := &Step{StepResult: loadgen.StepResult{TargetRate: rate, Requests: 1000, Success: 1, Duration: 2}}
		st.Latency.P99 = p99
		full := rate >= 16000
		core0 := [2]float64{1.2, 0.2}
		if full {
			core0 = [2]float64{1.76, 0.2}
		}
		parties, cores := twoCore(1.3, 0.6, 1.2, core0, [2]float64{1.3, 0.1})
		st.Resources = &Resources{ProxyCPUSeconds: 1.3, Parties: parties, Cores: cores, IntervalSeconds: 2}
		if full {
			st.Latency.P99 = 15200
		}
		return st
	}
	probe := func(rate int) (probeOutcome, error) { return judge(step(float64(rate), 900), &search), nil }
	res, err := searchRate(search, probe)
	if err != nil {
		t.Fatal(err)
	}
	want := "at 16000/s p99 15.20ms is above the SLO of 10ms: core 0 (upstream, load generator) was 98% busy"
	if res.StoppedBy != StoppedByProxy || res.LimitedBy != "core 0 (upstream, load generator)" || !strings.Contains(res.Reason, want) {
		t.Errorf("search %+v: want stopped by the proxy side, limited by core 0, reason containing %q", res, want)
	}
	if strings.Contains(res.Reason, "proxy used") {
		t.Errorf("reason %q speaks of the proxy's CPU", res.Reason)
	}

	quiet := step(8000, 12000)
	quiet.Disturbed, quiet.Disturbance = true, "something outside the run used 9% of a core"
	o := judge(quiet, &search)
	if o.limitedBy != NotAttributed || !strings.Contains(o.reason, ": not attributed: proxy 65% of CPU 1") || !strings.Contains(o.reason, "(disturbed: something outside") {
		t.Errorf("judge = %+v: want not attributed with the figures and the disturbance", o)
	}
}

// The new figures survive the file, and a file without them reads as
// before: no parties, no cores, no interference.
func TestResourcesJSON(t *testing.T) {
	in := 0.012
	up := 0.61
	r := Resources{ProxyCPUSeconds: 1.2, ProxyPeakRSSBytes: 9, LoadgenCPUSeconds: 1.5, UpstreamCPUSeconds: &up,
		Parties: []Party{{Name: PartyProxy, CPUs: "1", CPUSeconds: 1.2, Share: 0.6}}, Cores: []CoreTime{{CPU: 1, Busy: 1.2, IRQ: 0.1, Idle: 0.7}},
		IntervalSeconds: 2.001, Interference: &in, Outside: []OutsideProcess{{7, "sh", 0.02, ""}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"upstream_cpu_seconds":0.61`, `"parties":[{"name":"proxy","cpus":"1","cpu_seconds":1.2,"share":0.6}]`,
		`"cores":[{"cpu":1,"busy":1.2,"irq":0.1,"steal":0,"idle":0.7}]`, `"interval_seconds":2.001`, `"interference":0.012`,
		`"outside":[{"pid":7,"name":"sh","cpu_seconds":0.02}]`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s: want %s", b, k)
		}
	}
	var back Resources
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if *back.UpstreamCPUSeconds != up || len(back.Parties) != 1 || len(back.Cores) != 1 || *back.Interference != in || len(back.Outside) != 1 || back.IntervalSeconds != 2.001 {
		t.Errorf("read back %+v", back)
	}
	var old Resources
	if err := json.Unmarshal([]byte(`{"proxy_cpu_seconds":1.66,"proxy_peak_rss_bytes":5,"loadgen_cpu_seconds":1.9}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.NoProxy || old.ProxyCPUSeconds != 1.66 || old.Parties != nil || old.Cores != nil || old.Interference != nil || old.UpstreamCPUSeconds != nil {
		t.Errorf("an older file's resources read as %+v", old)
	}
}

// A searched file carrying the parties, the cores, a disturbed step and the
// search's attribution matches results/schema.json. The figures are put
// into the file as it is, so that nothing else of it is rewritten.
func TestSchemaHoldsAttribution(t *testing.T) {
	b, err := os.ReadFile("testdata/results-search.json")
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	parties, cores := twoCore(1.3, 0.6, 1.2, [2]float64{1.76, 0.2}, [2]float64{1.3, 0.1})
	in, up := 0.06, 0.6
	res, err := json.Marshal(Resources{ProxyCPUSeconds: 1.3, ProxyPeakRSSBytes: 1 << 20, LoadgenCPUSeconds: 1.2, UpstreamCPUSeconds: &up,
		Parties: parties, Cores: cores, IntervalSeconds: 2.003, Interference: &in, Outside: []OutsideProcess{{7, "sh", 0.12, ""}}})
	if err != nil {
		t.Fatal(err)
	}
	var resources any
	json.Unmarshal(res, &resources)
	run := f["proxies"].([]any)[0].(map[string]any)["runs"].([]any)[0].(map[string]any)
	steps := run["steps"].([]any)
	st := steps[len(steps)-1].(map[string]any)
	st["resources"], st["disturbed"], st["disturbance"] = resources, true, "something outside the run used 6% of a core"
	run["search"].(map[string]any)["limited_by"] = "core 0 (upstream, load generator)"
	path := filepath.Join(t.TempDir(), "r.json")
	if b, err = json.Marshal(f); err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateResults("..", path); err != nil {
		t.Error(err)
	}
}
