package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/sys/unix"
)

// RunLabel marks every container a run starts, so `proxylab cleanup` and a
// crashed run's successor can find them.
const RunLabel = "proxylab.run"

// Container is one running component.
type Container struct {
	ID   string
	Name string
	Pid  int // host PID of the component's process
	e    *Engine
}

// ContainerSpec says how to run one artifact.
type ContainerSpec struct {
	Artifact *Artifact
	RunID    string
	Name     string
	Env      []string
	CPUs     string // cpuset, "" = any
	Memory   int64  // bytes, 0 = no limit
	// Tmpfs mounts writable memory-backed folders (path -> mount options)
	// into the read-only root, for programs that must write files; what
	// they write counts against the memory limit.
	Tmpfs map[string]string
	Cmd   []string // arguments to the image's entry point
	// Reader: the lab's agent on a SUT host (agentwire.go), which reads
	// every process there: root, in the host's PID namespace.
	Reader bool
	// Caps are capabilities added for the agent's eBPF probes (with
	// them: no seccomp or AppArmor filter on the bpf syscall, and the
	// host's tracefs).
	Caps []string
	// Privileged: every capability, for an engine that refuses Tracer.
	Privileged bool
}

// Start runs the artifact the way DESIGN.md requires for every measured
// process: host network (no NAT or veth in the path), pinned CPUs, a memory
// limit without swap, read-only root, no capabilities, no privilege gain.
func (e *Engine) Start(ctx context.Context, s ContainerSpec) (*Container, error) {
	cfg := &container.Config{
		Image:  s.Artifact.ImageTag,
		Env:    s.Env,
		Cmd:    s.Cmd,
		User:   "65534:65534",
		Labels: map[string]string{RunLabel: s.RunID, "proxylab.component": s.Artifact.Name},
	}
	host := &container.HostConfig{
		NetworkMode:    "host",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Tmpfs:          s.Tmpfs,
		Resources: container.Resources{
			CpusetCpus: s.CPUs,
			Memory:     s.Memory,
			MemorySwap: s.Memory, // equal to Memory: no swap, so paging cannot hide in the numbers
		},
	}
	if s.Reader {
		cfg.User, host.PidMode = "0:0", "host"
	}
	if len(s.Caps) > 0 {
		host.CapAdd = s.Caps
		host.SecurityOpt = append(host.SecurityOpt, "seccomp=unconfined", "apparmor=unconfined")
		host.Binds = []string{"/sys/kernel/tracing:/sys/kernel/tracing"}
	}
	if s.Privileged {
		host.Privileged, host.CapDrop = true, nil
	}
	created, err := e.cli.ContainerCreate(ctx, cfg, host, nil, nil, s.Name)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", s.Name, err)
	}
	c := &Container{ID: created.ID, Name: s.Name, e: e}
	if err := e.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		c.Remove(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("start container %s: %w", s.Name, err)
	}
	insp, err := e.cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		c.Remove(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("inspect container %s: %w", s.Name, err)
	}
	c.Pid = insp.State.Pid
	return c, nil
}

// Remove kills and deletes the container. It uses its own deadline so that
// it still works when the run's context has been cancelled by Ctrl-C.
func (c *Container) Remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return c.e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
}

// Stop sends SIGTERM and waits for the process to exit, so a proxy's own
// shutdown path runs before the container is removed.
func (c *Container) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	timeout := 10
	return c.e.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout})
}

// Exited reports whether the container's process has ended, and how.
func (c *Container) Exited(ctx context.Context) (bool, string) {
	insp, err := c.e.cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		return true, err.Error()
	}
	if insp.State.Running {
		return false, ""
	}
	s := fmt.Sprintf("exited with code %d", insp.State.ExitCode)
	switch code := insp.State.ExitCode; {
	case insp.State.OOMKilled:
		s += " (killed: out of memory)"
	case code > 128 && code < 128+65:
		s += " (killed by " + unix.SignalName(syscall.Signal(code-128)) + ")"
	}
	return true, s
}

// Died returns a channel that yields a description when the container's
// process ends before ctx does.
func (c *Container) Died(ctx context.Context) <-chan string {
	out := make(chan string, 1)
	waitC, errC := c.e.cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	go func() {
		select {
		case w := <-waitC:
			_, why := c.Exited(context.WithoutCancel(ctx))
			if why == "" {
				why = fmt.Sprintf("exited with code %d", w.StatusCode)
			}
			out <- why
		case <-errC:
		case <-ctx.Done():
		}
	}()
	return out
}

// Logs returns the last n lines the component wrote (stdout and stderr).
func (c *Container) Logs(ctx context.Context, n int) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rc, err := c.e.cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return []string{"(logs unavailable: " + err.Error() + ")"}
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return []string{"(logs unreadable: " + err.Error() + ")"}
	}
	var lines []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// WaitHTTP polls url until it answers 200, the container exits, or timeout
// passes.
func (c *Container) WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return waitHTTP(ctx, c.Name, url, timeout, func() (bool, string) { return c.Exited(ctx) })
}

// Usage is what the process has consumed so far.
type Usage struct {
	CPUSeconds   float64
	PeakRSSBytes int64
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on x86-64.
const clockTicks = 100

// Usage reads the component's CPU time and peak resident set from /proc: the
// load goes to 127.0.0.1, so the engine is on this host and its PIDs are ours
// to read, with no sampling gap as in the stats API. For a component of
// several processes (nginx's master and workers) both are summed over the
// process and its descendants; shared pages then count once per process, so
// the peak is an upper bound.
func (c *Container) Usage() (Usage, error) { return treeUsage(c.Pids()) }

// treeUsage sums the usage of a process tree, its root first (as pidTree
// lists it). A descendant that has exited since the tree was listed is
// skipped; the root's error is returned, since without it the tree has no
// usage at all.
func treeUsage(pids []int) (Usage, error) {
	var total Usage
	for i, pid := range pids {
		u, err := processUsage(pid)
		if err != nil {
			if i > 0 && errors.Is(err, fs.ErrNotExist) {
				continue // a worker that has just exited
			}
			return Usage{}, err
		}
		total.CPUSeconds += u.CPUSeconds
		total.PeakRSSBytes += u.PeakRSSBytes
	}
	return total, nil
}

// Pids lists the component's process and its descendants, the main
// process first.
func (c *Container) Pids() []int { return pidTree(c.Pid) }

// pidTree lists root and its descendants, breadth first, root first.
func pidTree(root int) []int {
	pids := []int{root}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, children(pids[i])...)
	}
	return pids
}

// children reads /proc/PID/task/*/children: every thread's own children,
// since a child belongs to the thread that forked it.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func processUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Usage{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return Usage{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u := Usage{CPUSeconds: float64(utime+stime) / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			u.PeakRSSBytes = kb * 1024
		}
	}
	return u, nil
}

// Leftovers lists containers from any run (label proxylab.run), running or
// not.
func (e *Engine) Leftovers(ctx context.Context, runID string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("label", RunLabel))
	if runID != "" {
		f = filters.NewArgs(filters.Arg("label", RunLabel+"="+runID))
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// RemoveLeftovers force-removes every container labelled by a run (all runs
// when runID is empty) and says how many it removed.
func (e *Engine) RemoveLeftovers(ctx context.Context, runID string) (int, error) {
	ids, err := e.Leftovers(ctx, runID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := (&Container{ID: id, e: e}).Remove(ctx); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
