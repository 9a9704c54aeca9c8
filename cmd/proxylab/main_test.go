package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/lab"
)

// These tests run the real CLI binary against a real Docker engine: they
// build the images, start containers on host networking and send load to
// 127.0.0.1.

var (
	proxylabBin string
	repoRoot    string
)

func TestMain(m *testing.M) {
	var err error
	if repoRoot, err = lab.FindRoot("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "proxylab-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	proxylabBin = filepath.Join(dir, "proxylab")
	build := exec.Command("go", "build", "-o", proxylabBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build proxylab: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireDocker skips only when this host has no Docker engine; `make test`
// sets PROXYLAB_REQUIRE_DOCKER=1 after starting one, so there a missing
// engine fails instead of quietly skipping.
func requireDocker(t *testing.T) *lab.Engine {
	t.Helper()
	e, err := lab.Connect(context.Background())
	if err != nil {
		if os.Getenv("PROXYLAB_REQUIRE_DOCKER") == "1" {
			t.Fatalf("PROXYLAB_REQUIRE_DOCKER=1 but: %v", err)
		}
		t.Skipf("host lacks a Docker engine (%v); run scripts/setup.sh", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func proxylab(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, proxylabBin, args...)
	cmd.Dir = repoRoot
	return cmd
}

// onlyResultsFile returns the single results file in dir.
func onlyResultsFile(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("want exactly one results file in %s, found %v", dir, files)
	}
	return files[0]
}

func checkSchema(t *testing.T, path string) {
	t.Helper()
	if err := lab.ValidateResults(repoRoot, path); err != nil {
		t.Fatal(err)
	}
}

func assertNoContainers(t *testing.T, e *lab.Engine, runID string) {
	t.Helper()
	left, err := e.Leftovers(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		e.RemoveLeftovers(context.Background(), runID)
		t.Fatalf("%d container(s) labelled %s=%s remain after the run", len(left), lab.RunLabel, runID)
	}
}

// summaryRows is how many summary rows p must have when each of its runs
// that counts has rows steps: none when no run counts, as when the host's
// hypervisor stole more than 5% of a core during each of them (the run is
// then disturbed, kept, and left out of every figure).
func summaryRows(p *lab.ProxyResult, rows int) int {
	for _, r := range p.Runs {
		if r.Counts() {
			return rows
		}
	}
	return 0
}

// compare runs proxylab compare with args to its end, which must be a
// success, and checks what every finished run owes: one results file that
// the schema accepts, and none of the run's containers left.
func compare(t *testing.T, timeout time.Duration, args ...string) (res *lab.Results, path, out string) {
	t.Helper()
	return compareOn(t, requireDocker(t), timeout, args...)
}

// compareOn is compare for a run whose containers are on engine e.
func compareOn(t *testing.T, e *lab.Engine, timeout time.Duration, args ...string) (res *lab.Results, path, out string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := proxylab(ctx, append([]string{"compare", "--results-dir", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("proxylab compare: %v\n%s", err, b)
	}
	path = onlyResultsFile(t, dir)
	checkSchema(t, path)
	if res, err = lab.ReadResults(path); err != nil {
		t.Fatal(err)
	}
	assertNoContainers(t, e, res.RunID)
	return res, path, string(b)
}

func TestCompareSmoke(t *testing.T) {
	res, path, out := compare(t, 8*time.Minute, "scenarios/smoke.yaml", "--report")

	report := filepath.Join(strings.TrimSuffix(path, ".json"), "report.md")
	if !strings.Contains(out, "report: "+report) {
		t.Errorf("output does not name the report %s:\n%s", report, out)
	}
	if md, err := os.ReadFile(report); err != nil || !strings.Contains(string(md), "no interval can be given") {
		t.Errorf("report of a one-repetition run: %v; it must say that no interval can be given:\n%s", err, md)
	}
	if s := res.Source; s == nil || len(s.Commit) != 40 {
		t.Errorf("lab source %+v, want the checkout's commit", s)
	}
	if res.SummaryMethod == nil || res.SummaryMethod.Resamples == 0 || res.Upstream == nil || res.Upstream.ID == "" {
		t.Errorf("summary method %+v, upstream image %+v: want both recorded", res.SummaryMethod, res.Upstream)
	}

	checkSmoke(t, res, path, out, true)
}

// checkSmoke asserts what every smoke run owes, wherever it ran: a
// complete file, every proxy verified (unless the run was told to skip
// it), built and measured at the rate asked, with its usage and latencies.
func checkSmoke(t *testing.T, res *lab.Results, path, out string, verified bool) {
	t.Helper()
	if !res.Complete || res.StopReason != "" {
		t.Errorf("complete = %v (%q), want a complete run", res.Complete, res.StopReason)
	}
	if !strings.Contains(out, path) {
		t.Errorf("output does not name the results file %s:\n%s", path, out)
	}
	if len(res.Proxies) == 0 {
		t.Fatal("no proxies in results")
	}
	for _, p := range res.Proxies {
		if v := p.Verified; verified && (v == nil || v.Skipped || !v.Passed || v.Cases == 0) {
			t.Errorf("%s: verified %+v, want a passed conformance run", p.Name, v)
		} else if !verified && (v == nil || !v.Skipped || v.Reason != "--skip-verify") {
			t.Errorf("%s: verified %+v, want skipped for --skip-verify", p.Name, v)
		}
		if p.Image.SizeBytes <= 0 || p.BinaryBytes <= 0 || p.Image.ID == "" {
			t.Errorf("%s: image %+v, binary %d bytes: want sizes > 0", p.Name, p.Image, p.BinaryBytes)
		}
		if len(p.Runs) != res.Scenario.Repeat {
			t.Fatalf("%s: %d runs, want %d", p.Name, len(p.Runs), res.Scenario.Repeat)
		}
		for _, run := range p.Runs {
			if run.Status != lab.RunOK || len(run.Steps) != len(res.Scenario.Load.Steps) {
				t.Fatalf("%s repetition %d: status %s (%s), %d steps", p.Name, run.Repetition, run.Status, run.Error, len(run.Steps))
			}
			for i, st := range run.Steps {
				if st.Requests == 0 || st.Success != 1.0 {
					t.Errorf("%s step %d: %d requests, success %v (codes %v, errors %v)", p.Name, i+1, st.Requests, st.Success, st.StatusCodes, st.Errors)
				}
				// The smoke rate is one any machine holds; falling more than 5%
				// short means the lab, not the machine, is broken.
				if st.AchievedRate < 0.95*st.TargetRate || st.AchievedRate > 1.05*st.TargetRate {
					t.Errorf("%s step %d: achieved %.1f/s, want within 5%% of %.0f/s", p.Name, i+1, st.AchievedRate, st.TargetRate)
				}
				if st.Resources == nil || st.Resources.ProxyPeakRSSBytes <= 0 {
					t.Errorf("%s step %d: resources %+v, want the proxy's usage", p.Name, i+1, st.Resources)
				}
				if st.Latency.P50 <= 0 || st.Latency.Histogram == "" {
					t.Errorf("%s step %d: latency %+v", p.Name, i+1, st.Latency)
				}
			}
		}
		if want := summaryRows(p, len(res.Scenario.Load.Steps)); len(p.Summary) != want {
			t.Errorf("%s: %d summary rows, want %d", p.Name, len(p.Summary), want)
		}
	}
}

// report needs no Docker: it reads a results file and writes files.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(repoRoot, "lab", "testdata", "results-repeat3.json")
	out, err := proxylab(context.Background(), "report", fixture, "-o", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("proxylab report: %v\n%s", err, out)
	}
	if want := "report: " + filepath.Join(dir, "report.md"); !strings.Contains(string(out), want) {
		t.Errorf("output %q lacks %q", out, want)
	}
	for _, f := range []string{"report.md", "latency-step1.svg", "latency-step1.png", "throughput.png", "p99-timeline.png", "peak-rss.png", "image-size.png", "perf-loss.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	diff, err := proxylab(context.Background(), "report", "--diff", filepath.Join(repoRoot, "lab", "testdata", "results-complete.json"), fixture).Output()
	if err != nil || !strings.Contains(string(diff), "| scenario repeat | 1 | 3 | **changed** |") {
		t.Errorf("report --diff: %v\n%s", err, diff)
	}

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"broken file", []string{"report", bad}, bad},
		{"missing file", []string{"report", filepath.Join(dir, "none.json")}, "none.json"},
		{"diff needs two", []string{"report", "--diff", fixture}, "--diff takes two results files"},
		{"one file twice", []string{"report", fixture, fixture}, "is given twice (to compare two files: --diff)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := proxylab(context.Background(), c.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
				t.Errorf("%v: %v, output %q; want exit 2 naming %q", c.args, err, out, c.want)
			}
		})
	}
}

// A search through a lab proxy and both baselines: the results keep every
// probe as a step, name what the search found and why it stopped, and give
// the baselines rows of the same shape.
func TestCompareSearchWithBaselines(t *testing.T) {
	requireDocker(t)
	if _, err := lab.NginxBinary(); err != nil {
		t.Skipf("host lacks nginx: %v", err)
	}
	res, path, out := compare(t, 8*time.Minute, "cmd/proxylab/testdata/search.yaml")
	if !res.Complete {
		t.Fatalf("incomplete run: %s\n%s", res.StopReason, out)
	}
	if v := res.Toolchains["nginx"]; !strings.HasPrefix(v, "nginx/") {
		t.Errorf("toolchains nginx = %q, want nginx -v's version", v)
	}
	var raw struct {
		Proxies []struct {
			Runs []struct {
				Steps []struct {
					Resources map[string]any `json:"resources"`
				} `json:"steps"`
			} `json:"runs"`
		} `json:"proxies"`
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name     string
		baseline bool
		proxy    bool // has a proxy process: image, resources, probes
	}{{"go", false, true}, {"direct", true, false}, {"nginx", true, true}}
	if len(res.Proxies) != len(want) {
		t.Fatalf("%d rows, want %d", len(res.Proxies), len(want))
	}
	for i, w := range want {
		p := res.Proxies[i]
		if p.Name != w.name || p.Baseline != w.baseline {
			t.Errorf("row %d: %s baseline %v, want %s baseline %v", i, p.Name, p.Baseline, w.name, w.baseline)
		}
		switch v := p.Verified; {
		case w.baseline && (v == nil || !v.Skipped || v.Reason != "not a lab proxy"):
			t.Errorf("%s: verified %+v, want skipped: not a lab proxy", p.Name, v)
		case !w.baseline && (v == nil || v.Skipped || !v.Passed):
			t.Errorf("%s: verified %+v, want a passed conformance run", p.Name, v)
		}
		if hasImage := p.Image.ID != "" && p.BinaryBytes > 0; hasImage != w.proxy {
			t.Errorf("%s: image %+v, binary %d bytes; want an image: %v", p.Name, p.Image, p.BinaryBytes, w.proxy)
		}
		if len(p.Runs) != 1 {
			t.Fatalf("%s: %d runs", p.Name, len(p.Runs))
		}
		run := p.Runs[0]
		sr := run.Search
		if run.Status != lab.RunOK || sr == nil {
			t.Fatalf("%s: status %s (%s), search %+v", p.Name, run.Status, run.Error, sr)
		}
		if sr.StoppedBy != lab.StoppedByMax || sr.Rate != 400 || sr.Reason == "" {
			t.Errorf("%s: search found %d/s, stopped by %q (%s); want 400/s, stopped by max", p.Name, sr.Rate, sr.StoppedBy, sr.Reason)
		}
		if len(sr.Probes) != 3 || len(run.Steps) != len(sr.Probes) {
			t.Fatalf("%s: %d probes, %d steps; want 3 of each", p.Name, len(sr.Probes), len(run.Steps))
		}
		for j, pr := range sr.Probes {
			st := run.Steps[j]
			if pr.TargetRate != 100<<j || !pr.Passed || st.TargetRate != float64(pr.TargetRate) || st.Requests == 0 {
				t.Errorf("%s probe %d: %+v, step at %.0f/s with %d requests; want 100, 200, 400/s, each passed", p.Name, j, pr, st.TargetRate, st.Requests)
			}
			if st.Resources == nil || st.Resources.LoadgenCPUSeconds <= 0 {
				t.Errorf("%s probe %d: resources %+v, want the load generator's CPU time", p.Name, j, st.Resources)
				continue
			}
			_, inFile := raw.Proxies[i].Runs[0].Steps[j].Resources["proxy_cpu_seconds"]
			if inFile != w.proxy || st.Resources.NoProxy == w.proxy || w.proxy && st.Resources.ProxyPeakRSSBytes <= 0 {
				t.Errorf("%s probe %d: resources %+v (proxy figures in the file: %v), want proxy figures: %v", p.Name, j, st.Resources, inFile, w.proxy)
			}
			// Without keep-alive each request is a connection accepted by
			// the proxy, for nginx in a worker process, not the master.
			if res.Probes != nil && res.Probes.Mode != "" {
				if c := st.Probes; (c != nil) != w.proxy || c != nil && c.Accepts < st.Requests {
					t.Errorf("%s probe %d: probe counts %+v for %d requests, want accepts >= requests: %v", p.Name, j, c, st.Requests, w.proxy)
				}
			}
		}
		if want := summaryRows(p, 3); len(p.Summary) != want {
			t.Errorf("%s: %d summary rows, want %d (one per rate probed, none when every run was disturbed)", p.Name, len(p.Summary), want)
		}
	}
	for _, s := range []string{"nginx repetition 1: highest rate", ">= 400/s after 3 probes, stopped by max", "nginx: baseline, not a lab proxy", "direct: baseline, no proxy"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestCompareInterrupt(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { interrupt(t, requireDocker(t), sig) })
	}
}

// duringStep runs the long scenario (with compare's extra arguments),
// calls act once the measured step is under way (plain-line progress from
// inside it: containers and load are live), and returns the exit code, the
// output and the results file.
func duringStep(t *testing.T, act func(cmd *exec.Cmd), extra ...string) (code int, output, path string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --skip-verify: these runs are about stopping, and the smoke test
	// already covers verification.
	acted := false
	output, err := watchCompare(t, ctx, func(line string, cmd *exec.Cmd) {
		if !acted && strings.Contains(line, "step 1/1") && strings.Contains(line, "live") {
			act(cmd)
			acted = true
		}
	}, append([]string{"cmd/proxylab/testdata/long.yaml", "--results-dir", dir, "--skip-verify"}, extra...)...)
	if !acted {
		t.Fatalf("the run never reached its step:\n%s", output)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	path = onlyResultsFile(t, dir)
	checkSchema(t, path)
	return code, output, path
}

// watchCompare runs proxylab compare with args and calls onLine with each
// line of its output as it comes, while the run is live; it returns the
// whole output and how the run ended.
func watchCompare(t *testing.T, ctx context.Context, onLine func(line string, cmd *exec.Cmd), args ...string) (string, error) {
	t.Helper()
	cmd := proxylab(ctx, append([]string{"compare"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	lines := bufio.NewScanner(io.TeeReader(stdout, &out))
	for lines.Scan() {
		onLine(lines.Text(), cmd)
	}
	return out.String(), cmd.Wait()
}

// interrupt sends sig in the middle of a long step and checks that the run
// leaves nothing behind on engine e, where its containers ran, and keeps
// what it measured.
func interrupt(t *testing.T, e *lab.Engine, sig syscall.Signal, extra ...string) {
	code, out, path := duringStep(t, func(cmd *exec.Cmd) {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}, extra...)
	if code != 130 {
		t.Fatalf("exit status %d, want 130\n%s", code, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res lab.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("partial results are not valid JSON: %v", err)
	}
	assertNoContainers(t, e, res.RunID)
	if res.Complete {
		t.Error(`interrupted run says "complete": true`)
	}
	if !strings.Contains(res.StopReason, "interrupted by") {
		t.Errorf("stop_reason %q does not say it was interrupted", res.StopReason)
	}
	run := res.Proxies[0].Runs[0]
	if run.Status != lab.RunInterrupted || len(run.Steps) != 1 || !run.Steps[0].Interrupted || run.Steps[0].Requests == 0 {
		t.Errorf("run %+v: want the interrupted step kept with its requests", run)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		file     string
		wantCode int
		want     string
	}{
		{"scenarios/smoke.yaml", 0, "smoke.yaml: ok"},
		{"cmd/proxylab/testdata/typo.yaml", 2, `typo.yaml:8:3: probes: unknown key "mdoe"`},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			out, err := proxylab(context.Background(), "validate", c.file).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.wantCode || !strings.Contains(string(out), c.want) {
				t.Errorf("validate %s: exit %d, output:\n%s\nwant exit %d and %q", c.file, code, out, c.wantCode, c.want)
			}
		})
	}
}

// A proxy that dies under load is recorded as failed with its last log
// lines, and the run still writes its file and cleans up.
func TestProxyDiesMidRun(t *testing.T) {
	e := requireDocker(t)
	code, out, path := duringStep(t, func(*exec.Cmd) {
		// The docker CLI, not the lab, does the killing: this is what an OOM
		// kill or a crash looks like from the lab's side.
		ids, err := exec.Command("docker", "ps", "-q", "--filter", "label="+lab.RunLabel, "--filter", "label=proxylab.component=go").Output()
		if err != nil || len(bytes.TrimSpace(ids)) == 0 {
			t.Fatalf("find the proxy container: %v %q", err, ids)
		}
		if out, err := exec.Command("docker", "kill", strings.TrimSpace(string(ids))).CombinedOutput(); err != nil {
			t.Fatalf("docker kill: %v %s", err, out)
		}
	})
	if code != 1 {
		t.Fatalf("exit status %d, want 1\n%s", code, out)
	}
	res, err := lab.ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	assertNoContainers(t, e, res.RunID)
	if res.Complete || !strings.Contains(res.StopReason, "failed") {
		t.Errorf("complete %v, stop_reason %q: want an incomplete run that names the failure", res.Complete, res.StopReason)
	}
	run := res.Proxies[0].Runs[0]
	if run.Status != lab.RunFailed || !strings.Contains(run.Error, "exited with code 137") {
		t.Errorf("run status %s, error %q: want failed, exited with code 137", run.Status, run.Error)
	}
	if !strings.Contains(strings.Join(run.LastLogs, "\n"), "proxylab-go-proxy") {
		t.Errorf("last_logs %q: want the proxy's start-up line", run.LastLogs)
	}
	if len(run.Steps) != 1 || run.Steps[0].Requests == 0 {
		t.Errorf("steps %+v: want the step measured until the proxy died", run.Steps)
	}
	if !strings.Contains(out, "go repetition 1 failed") {
		t.Errorf("table does not report the failure:\n%s", out)
	}
}

// compare must refuse to measure a proxy that breaks the contract. The
// broken proxy is the real Go proxy built from a copy of the checkout in
// which one line is changed: its Via entry names another proxy.
func TestCompareRefusesNonConformantProxy(t *testing.T) {
	e := requireDocker(t)
	root := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "scenarios/smoke.yaml", "scenarios/schema.json", "upstream", "go-proxy"} {
		cp := exec.Command("cp", "-r", "--parents", f, root)
		cp.Dir = repoRoot
		if out, err := cp.CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v %s", f, err, out)
		}
	}
	req := filepath.Join(root, "go-proxy", "requesthead.go")
	src, err := os.ReadFile(req)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), `"1.1 proxylab-go"`, `"1.1 somebody-else"`, 1)
	if broken == string(src) {
		t.Fatal("go-proxy/requesthead.go no longer holds the Via entry this test changes")
	}
	if err := os.WriteFile(req, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	results := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, proxylabBin, "compare", "--root", root, "--results-dir", results, filepath.Join(root, "scenarios", "smoke.yaml"))
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("exit %v, want status 4 (not conformant)\n%s", err, out)
	}
	for _, want := range []string{"FAIL hop-by-hop/via-added", "proxy fails the conformance suite: go (", "--skip-verify"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(results, "*.json")); len(files) != 0 {
		t.Errorf("a refused run wrote results: %v", files)
	}
	if left, _ := e.Leftovers(context.Background(), ""); len(left) != 0 {
		t.Errorf("%d containers left after a refused run", len(left))
	}
}

// With keep-alive off every request is a new connection, so the probes'
// accept count for the proxy process must equal the requests sent, and the
// perf buffer must account for every event.
func TestCompareCountsWithProbes(t *testing.T) {
	requireDocker(t)
	if os.Geteuid() != 0 {
		t.Skip("host lacks the capability: eBPF probes need root")
	}
	// The smoke test covers verification; this one is about the probes.
	res, _, out := compare(t, 5*time.Minute, "cmd/proxylab/testdata/probes.yaml", "--skip-verify")
	checkProbeCounts(t, res)
	if res.Probes.ReaderCPUs != res.Placement.LoadgenCPUs || res.Probes.ReaderPinError != "" {
		t.Errorf("reader pinned to %q (%s), load generator on %q", res.Probes.ReaderCPUs, res.Probes.ReaderPinError, res.Placement.LoadgenCPUs)
	}
	if !strings.Contains(out, "eBPF probes ("+res.Probes.Mode+" mode)") {
		t.Errorf("table does not report the probes:\n%s", out)
	}
}

// checkProbeCounts asserts what a run of testdata/probes.yaml owes,
// wherever its probes ran: the attach mode, accepts equal to the requests
// sent, a perf buffer that accounts for every sampled event, agreement with
// the load generator's and the upstream's counts, and the detached twin.
func checkProbeCounts(t *testing.T, res *lab.Results) {
	t.Helper()
	if res.Probes == nil || res.Probes.Mode == "" {
		t.Fatalf("results do not say how the probes were attached: %+v", res.Probes)
	}
	st := res.Proxies[0].Runs[0].Steps[0]
	c := st.Probes
	if c == nil {
		t.Fatal("step has no probe counts")
	}
	if c.Mode != res.Probes.Mode {
		t.Errorf("step mode %q, attach mode %q", c.Mode, res.Probes.Mode)
	}
	// Requests counts responses received; a request still in flight at the
	// step's end was accepted but not counted, hence the small allowance.
	if c.Accepts < st.Requests || c.Accepts > st.Requests+uint64(res.Scenario.Load.Connections) {
		t.Errorf("probes counted %d accepts for %d requests without keep-alive", c.Accepts, st.Requests)
	}
	if c.Attempted != c.Received+c.Failed {
		t.Errorf("perf buffer does not add up: attempted %d, received %d, failed %d", c.Attempted, c.Received, c.Failed)
	}
	t.Logf("step probes %+v, check %+v", c.Counts, c.Check)
	// The scenario samples one event in four: some records, not all.
	if c.Events != "sample" || c.SampleEvery != 4 || c.Attempted == 0 || c.Attempted > (c.Accepts+c.Connects)/2 {
		t.Errorf("events %q every %d: %d records for %d events", c.Events, c.SampleEvery, c.Attempted, c.Accepts+c.Connects)
	}
	// The independent count: the load generator's dials and the upstream's
	// accepts agree with the probes'.
	if k := c.Check; k == nil || k.UpstreamError != "" || k.UpstreamConnections == nil {
		t.Errorf("no connection check, or no upstream count: %+v", k)
	} else if c.AcceptsOff() != 0 || c.ConnectsOff() != 0 {
		t.Errorf("probes %d accepts %d connects; load generator %d, upstream %d (tolerance %d)",
			c.Accepts, c.Connects, k.LoadgenConnections, *k.UpstreamConnections, k.Tolerance)
	}
	if o := st.Overhead; o == nil || o.Off.Requests == 0 || o.ThroughputRatio == nil || o.CPUPerRequestRatio == nil {
		t.Errorf("no twin with the probes detached, or no ratios: %+v", o)
	} else {
		t.Logf("overhead: %+v, throughput ratio %.3f, CPU per request ratio %.3f", o.Off, *o.ThroughputRatio, *o.CPUPerRequestRatio)
	}
}

// probes lists every attach mode with a verdict, and --pid counts exactly
// the accepts of the watched process (this test process).
func TestProbesCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("host lacks the capability: eBPF probes need root")
	}
	out, err := proxylab(context.Background(), "probes").CombinedOutput()
	if err != nil {
		t.Fatalf("proxylab probes: %v\n%s", err, out)
	}
	for _, mode := range []string{"kprobe", "fentry", "tracepoint"} {
		if !strings.Contains(string(out), "\n"+mode+" ") {
			t.Errorf("no verdict for %s:\n%s", mode, out)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 7
	for _, tc := range []struct {
		args []string
		// sent: records through the perf buffer for n accepts and n connects.
		events string
		sent   uint64
	}{
		{nil, "all", 2 * n},
		{[]string{"--events", "none", "--reader-cpus", "0"}, "none", 0},
	} {
		t.Run(tc.events, func(t *testing.T) {
			c, raw := probePid(t, ln, n, tc.args...)
			if c.Accepts != n || c.Connects != n || c.Attempted != c.Received+c.Failed {
				t.Errorf("counts %+v: want exactly %d accepts and connects, and attempted == received + failed", c, n)
			}
			if c.Events != tc.events || c.Attempted != tc.sent {
				t.Errorf("events %q, %d records attempted; want %q and %d", c.Events, c.Attempted, tc.events, tc.sent)
			}
			for _, field := range []string{`"sample_every"`, `"reader_cpu_seconds"`} {
				if !strings.Contains(raw, field) {
					t.Errorf("output lacks %s:\n%s", field, raw)
				}
			}
			if _, known := c.Missed(); !known && !strings.Contains(c.MissesUnknown, "kernel") {
				t.Errorf("miss counts unknown without a reason naming the kernel: %q", c.MissesUnknown)
			}
		})
	}
}

// probePid runs probes --pid on this test process while it makes n
// connections to ln and accepts them, and returns what it printed.
func probePid(t *testing.T, ln net.Listener, n int, args ...string) (bpf.Counts, string) {
	t.Helper()
	cmd := proxylab(context.Background(), append([]string{"probes", "--pid", strconv.Itoa(os.Getpid()), "--for", "3s"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Connect only once the probes say they are watching.
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.Contains(line, "watching process") {
		t.Fatalf("probes did not start watching: %q %v", line, err)
	}
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probes --pid: %v", err)
	}
	var c bpf.Counts
	if err := json.Unmarshal(stdout.Bytes(), &c); err != nil {
		t.Fatalf("probes --pid printed %q: %v", stdout.String(), err)
	}
	return c, stdout.String()
}
