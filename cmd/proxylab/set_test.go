package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxylab/proxylab/lab"
)

// A compare of several scenarios hands the first one's capacity to the
// shares of the second, runs the third in the closed model, judges the
// claims against all three and writes one report of them; the claims
// never change a results file.
func TestCompareSetSharesClosedAndClaims(t *testing.T) {
	e := requireDocker(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	td := "cmd/proxylab/testdata/"
	// --retry-disturbed: the capacity comes from runs that count, and a
	// shared host's hypervisor may steal enough to disturb one.
	b, err := proxylab(ctx, "compare", "--results-dir", dir, "--skip-verify", "--retry-disturbed", "3", "--report", "--claims", td+"claims.yaml",
		td+"set-search.yaml", td+"set-shares.yaml", td+"set-closed.yaml").CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("proxylab compare: %v\n%s", err, out)
	}
	byName := map[string]*lab.Results{}
	var paths []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, p := range files {
		checkSchema(t, p)
		res, err := lab.ReadResults(p)
		if err != nil {
			t.Fatal(err)
		}
		assertNoContainers(t, e, res.RunID)
		byName[res.Scenario.Name] = res
		paths = append(paths, p)
	}
	if len(byName) != 3 {
		t.Fatalf("results files %v, want one per scenario\n%s", files, out)
	}

	search, shares, closed := byName["set-search"], byName["set-shares"], byName["set-closed"]
	if c := shares.Capacity; c == nil || c.Rate != 400 || c.Proxy != "go" || c.RunID != search.RunID {
		t.Errorf("set-shares capacity %+v, want 400/s of go from run %s", c, search.RunID)
	}
	for _, p := range shares.Proxies {
		if st := p.Runs[0].Steps[0]; st.TargetRate != 200 || st.Requests == 0 {
			t.Errorf("%s at 50%% of 400/s: target %.0f/s with %d requests, want 200/s", p.Name, st.TargetRate, st.Requests)
		}
	}
	if closed.Capacity != nil {
		t.Errorf("set-closed has no shares but records capacity %+v", closed.Capacity)
	}
	for _, p := range closed.Proxies {
		if st := p.Runs[0].Steps[0]; st.TargetRate != 0 || st.Requests == 0 || st.LoadgenSaturated {
			t.Errorf("%s closed: target %.0f/s, %d requests, saturated %v; want unpaced, answered, never saturated", p.Name, st.TargetRate, st.Requests, st.LoadgenSaturated)
		}
	}
	if !strings.Contains(out, "verified earlier in this invocation") && !strings.Contains(out, "--skip-verify") {
		t.Errorf("output says nothing of verification:\n%s", out)
	}

	for _, want := range []string{"capacity for the scenarios after it: 400/s (go", "== claims:", "go-image-small", "supported", "go-capacity", "inconclusive"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "set-search+set-shares+set-closed-*", "report.md"))
	if len(reports) != 1 {
		t.Fatalf("report.md of the set: found %v, want one", reports)
	}
	md, _ := os.ReadFile(reports[0])
	for _, want := range []string{"set-search", "set-shares", "set-closed", "go-image-small", "closed loop"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}

	// proxylab claims reads the files and changes none of them.
	before := map[string][]byte{}
	for _, p := range paths {
		before[p], _ = os.ReadFile(p)
	}
	cb, err := proxylab(ctx, append([]string{"claims", td + "claims.yaml"}, paths...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(cb), "go-image-small") {
		t.Errorf("proxylab claims: %v\n%s", err, cb)
	}
	for _, p := range paths {
		if now, _ := os.ReadFile(p); !bytes.Equal(now, before[p]) {
			t.Errorf("proxylab claims changed %s", p)
		}
	}
}

// Bad input to compare is refused before anything is built or measured,
// with the file and what to do: shares with no search before them, a
// claims file that does not parse.
func TestCompareRefusesBeforeMeasuring(t *testing.T) {
	td := "cmd/proxylab/testdata/"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"shares without a search", []string{td + "set-shares.yaml"},
			"set-shares.yaml: its steps are shares of a capacity (of_capacity), and no scenario before it searches for one"},
		{"capacity file without a search", []string{"--capacity", "lab/testdata/results-repeat3.json", td + "set-shares.yaml"},
			"has no load.search, so it measured no capacity"},
		{"bad claims file", []string{"--claims", td + "set-shares.yaml", td + "set-search.yaml"}, "set-shares.yaml:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := proxylab(ctx, append([]string{"compare", "--results-dir", t.TempDir()}, c.args...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
				t.Errorf("compare %v: %v, output:\n%s\nwant exit 2 and %q", c.args, err, out, c.want)
			}
		})
	}
}
