package main

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/lab"
)

// A repetition during which something outside the run burns the proxy's
// core is marked disturbed, left out of the figures, and run again with
// --retry-disturbed; the repetitions before and after it are not.
func TestCompareMarksDisturbedRepetition(t *testing.T) {
	e := requireDocker(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Up to 3 retries: the burner takes one, the host's own steal may take
	// another.
	burner := &burner{cpus: proxyCPUs(t)}
	defer burner.stop()
	out, err := watchCompare(t, ctx, func(line string, _ *exec.Cmd) {
		switch {
		case strings.Contains(line, "starting go (repetition 2/2)") && burner.cmd == nil:
			burner.start(t)
		case strings.Contains(line, "running it again"):
			burner.stop()
		}
	}, "--results-dir", dir, "--skip-verify", "--retry-disturbed", "3", "cmd/proxylab/testdata/disturbed.yaml")
	if err != nil {
		t.Fatalf("proxylab compare: %v\n%s", err, out)
	}
	path := onlyResultsFile(t, dir)
	checkSchema(t, path)
	res, err := lab.ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	assertNoContainers(t, e, res.RunID)

	// Every attempt is kept in order, numbered from 2 after the first;
	// the first of repetition 2 ran with the burner and names it, and was
	// run again; a disturbed attempt is re-run until one counts or the
	// retries are spent. (The host's own steal may disturb other attempts
	// too: a shared hypervisor took 8-18% of a core under load here.)
	last := map[int]*lab.Run{}
	attempts := map[int]int{}
	var burned *lab.Run
	counting := 0
	for i, r := range res.Proxies[0].Runs {
		if r.Status != lab.RunOK || (last[r.Repetition] != nil) != (r.Attempt > 1) {
			t.Errorf("run %d: repetition %d attempt %d status %s: want attempts numbered from 2 after the first", i, r.Repetition, r.Attempt, r.Status)
		}
		if p := last[r.Repetition]; p != nil && p.Counts() {
			t.Errorf("run %d: repetition %d run again after an attempt that counted", i, r.Repetition)
		}
		if r.Repetition == 2 && last[2] == nil {
			burned = r
		}
		if r.Counts() {
			counting++
		}
		last[r.Repetition] = r
		attempts[r.Repetition]++
	}
	if burned == nil || !burned.Disturbed || !strings.Contains(burned.Steps[0].Disturbance, "sh (pid ") || attempts[2] < 2 {
		t.Errorf("repetition 2's first attempt %+v, %d attempts: want it disturbed by the burner (sh) and run again\n%s", burned, attempts[2], out)
	}
	for rep, r := range last {
		if !r.Counts() && attempts[rep] != 4 {
			t.Errorf("repetition %d ends disturbed after %d attempts: want a re-run up to 3 times", rep, attempts[rep])
		}
	}
	if s := res.Proxies[0].Summary; counting > 0 && (len(s) != 1 || s[0].AchievedRate.N != counting) || counting == 0 && len(s) != 0 {
		t.Errorf("summary %+v, want one step over the %d runs that count", s, counting)
	}
	if !strings.Contains(out, "DISTURBED") {
		t.Errorf("output does not say a run was disturbed:\n%s", out)
	}
}

// proxyCPUs is the cpuset the lab pins the proxy to on this host.
func proxyCPUs(t *testing.T) []int {
	t.Helper()
	cpus, err := lab.ParseCPUSet(lab.DefaultPlacement(runtime.NumCPU()).ProxyCPUs)
	if err != nil {
		t.Fatal(err)
	}
	return cpus
}

// burner is a process outside the run that keeps one CPU busy.
type burner struct {
	cpus []int
	cmd  *exec.Cmd
}

func (b *burner) start(t *testing.T) {
	b.cmd = exec.Command("sh", "-c", "while :; do :; done")
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var set unix.CPUSet
	for _, c := range b.cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(b.cmd.Process.Pid, &set); err != nil {
		t.Fatalf("pinning the burner to CPUs %v: %v", b.cpus, err)
	}
}

func (b *burner) stop() {
	if b.cmd != nil && b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
}
